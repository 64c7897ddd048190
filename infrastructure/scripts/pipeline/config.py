"""What a deployment is asked to do: samconfig.toml's settings for an
environment, the parameters after overrides, and the typed requests the other
modules take. Parameters are validated against the template offline, before
anything is created."""

from __future__ import annotations

import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cfn_render import ROOT, RenderError, render

from .console import PipelineError

SAMCONFIG = ROOT / "samconfig.toml"
ENVIRONMENTS = ("dev", "staging", "prod")
# What the emulator cannot create (the WAF association) is left out by this
# parameter; an explicit DeployTarget wins.
EMULATOR_PARAMETERS = {"DeployTarget": "local-emulator"}


def key_values(text: str) -> dict[str, str]:
    """samconfig's "K=V K2='v 2'" strings, as a dict."""
    pairs = {}
    for item in shlex.split(text or ""):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise PipelineError(f"expected Key=Value, got {item!r}")
        pairs[key] = value
    return pairs


def pairs(items: list[str]) -> dict[str, str]:
    """Key=Value arguments (--parameter, --tag), each one whole."""
    return key_values(" ".join(shlex.quote(item) for item in items))


def samconfig(environment: str) -> dict[str, Any]:
    config = tomllib.loads(SAMCONFIG.read_text(encoding="utf-8"))
    if environment not in config:
        raise PipelineError(f"samconfig.toml has no [{environment}] section")
    return config[environment]["deploy"]["parameters"]


@dataclass(frozen=True)
class Settings:
    """One environment's deploy settings, from samconfig.toml."""

    environment: str
    stack_name: str
    s3_prefix: str
    capabilities: tuple[str, ...]
    confirm_changeset: bool
    parameters: dict[str, str]
    tags: dict[str, str]

    @classmethod
    def of(cls, environment: str) -> Settings:
        if environment not in ENVIRONMENTS:
            raise PipelineError(f"the environment must be one of {', '.join(ENVIRONMENTS)} (got {environment!r})")
        config = samconfig(environment)
        return cls(
            environment=environment,
            stack_name=config["stack_name"],
            s3_prefix=config.get("s3_prefix", config["stack_name"]),
            capabilities=tuple(config.get("capabilities", "CAPABILITY_IAM").split()),
            confirm_changeset=bool(config.get("confirm_changeset")),
            parameters=key_values(config.get("parameter_overrides", "")),
            tags=key_values(config.get("tags", "")),
        )


def deploy_parameters(environment: str, overrides: list[str], endpoint: str | None) -> dict[str, str]:
    """samconfig's parameters for the environment, then the emulator's, then the overrides."""
    params = dict(Settings.of(environment).parameters)
    if endpoint:
        params |= EMULATOR_PARAMETERS
    return params | pairs(overrides)


def validate(parameters: dict[str, str]) -> None:
    """What CloudFormation would refuse, refused before anything is created."""
    try:
        rendered = render(parameters=parameters)
    except RenderError as exc:
        raise PipelineError(f"invalid parameters: {exc}") from exc
    if rendered.rule_failures:
        raise PipelineError("the parameters contradict each other: " + "; ".join(rendered.rule_failures))


@dataclass(frozen=True)
class StackRequest:
    """One stack, created or updated through a change set."""

    stack: str
    template_url: str | None = None
    template_file: Path | None = None
    parameters: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    capabilities: tuple[str, ...] = ()
    dry_run: bool = False
    confirm: bool = False  # ask before executing (samconfig confirm_changeset)
    yes: bool = False  # ... unless told not to ask
    termination_protection: bool = False


@dataclass(frozen=True)
class DeployRequest:
    """A whole deployment (python -m pipeline deploy)."""

    environment: str
    regions: tuple[str, ...]
    profile: str | None = None
    endpoint: str | None = None
    ca_bundle: str | None = None
    stack_name: str | None = None  # samconfig's, unless given
    outputs_file: Path | None = None  # outputs/<env>.json (outputs/<env>-<region>.json for several regions)
    overrides: tuple[str, ...] = ()
    dry_run: bool = False
    yes: bool = False
    seed: bool = True
    smoke: bool = True
    lint: bool = True

    @property
    def target(self) -> str:
        """What to build for: the Lambda runtime, or the emulator's host interpreter."""
        return "local" if self.endpoint else "aws"

    def outputs_for(self, region: str) -> Path:
        if self.outputs_file:
            if len(self.regions) == 1:
                return self.outputs_file
            return self.outputs_file.with_name(f"{self.outputs_file.stem}-{region}{self.outputs_file.suffix}")
        name = self.environment if len(self.regions) == 1 else f"{self.environment}-{region}"
        return ROOT / "outputs" / f"{name}.json"
