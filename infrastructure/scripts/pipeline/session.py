"""The session a deployment runs in: AWS (a profile or the default credential
chain) or a local emulator (--endpoint: its dummy credentials and its
certificate), the same code either way."""

from __future__ import annotations

import os
import subprocess
from functools import cache
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

from cfn_render import ROOT

from .console import PipelineError

MINISTACK_PY = ROOT / ".tools" / "ministack" / "bin" / "python"


@cache
def emulator_certificate() -> str | None:
    """ministack's self-signed certificate (what `make local` trusts), if it is installed;
    asked of its interpreter once per run, whatever the number of regions."""
    if not MINISTACK_PY.exists():
        return None
    code = "from ministack.core.tls import resolve_tls_material as r; print(r()[0])"
    done = subprocess.run([str(MINISTACK_PY), "-c", code], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        return None
    return done.stdout.strip() or None


class Aws:
    def __init__(self, region: str, profile: str | None = None, endpoint: str | None = None, ca_bundle: str | None = None):
        self.region = region
        self.endpoint = endpoint.rstrip("/") if endpoint else None
        if self.endpoint:
            # An emulator accepts any credentials: never pick up a real AWS profile.
            self.session = boto3.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name=region)  # noqa: S106
            # Its own certificate first: AWS_CA_BUNDLE may name the system's store.
            https = self.endpoint.startswith("https://")
            self.ca_bundle = ca_bundle or (emulator_certificate() if https else None) or os.environ.get("AWS_CA_BUNDLE")
        else:
            self.session = boto3.Session(profile_name=profile or None, region_name=region)
            self.ca_bundle = ca_bundle or os.environ.get("AWS_CA_BUNDLE") or None
        self.profile = None if self.endpoint else profile

    def client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.endpoint, verify=self.ca_bundle or None)

    def environment(self) -> dict[str, str]:
        """The environment for a tool run beside boto3 (sam package): the same
        account, region, endpoint and certificate."""
        env = {k: v for k, v in os.environ.items() if k not in ("AWS_ENDPOINT_URL", "AWS_CA_BUNDLE")}
        env |= {"AWS_REGION": self.region, "AWS_DEFAULT_REGION": self.region, "SAM_CLI_TELEMETRY": "0"}
        if self.endpoint:
            env |= {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
            env.pop("AWS_PROFILE", None)
            env.pop("AWS_SESSION_TOKEN", None)
        elif self.profile:
            env["AWS_PROFILE"] = self.profile
        if self.ca_bundle:
            env["AWS_CA_BUNDLE"] = self.ca_bundle
        return env

    def identity(self) -> dict[str, str]:
        """Who deploys (sts get-caller-identity); a clear error without credentials."""
        try:
            who = self.client("sts").get_caller_identity()
        except NoCredentialsError as exc:
            raise PipelineError(
                f"no AWS credentials for region {self.region}: set AWS_PROFILE or pass --profile "
                "(make deploy PROFILE=...); for a local emulator pass --endpoint"
            ) from exc
        except (BotoCoreError, ClientError) as exc:
            where = self.endpoint or f"AWS in {self.region}"
            raise PipelineError(f"cannot reach {where} with these credentials: {exc}") from exc
        return {"account": who["Account"], "arn": who["Arn"]}
