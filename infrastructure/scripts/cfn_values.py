"""The values side of cfn_render: markers for what only a deployment knows,
parameter checking, SAM Globals, and how values cross into nested stacks."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any


class Unresolved(str):
    """A value only a deployment knows, e.g. '{GetAtt:Bucket.Arn}'."""


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()


class RenderError(ValueError):
    pass


def parameter_values(path: str, declared: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """The values a stack gets: given, else defaults; checked as CloudFormation checks
    them (AllowedValues, Min/MaxValue, AllowedPattern) before anything is created."""
    unknown = set(given) - set(declared)
    if unknown:
        raise RenderError(f"{path}: unknown parameters {sorted(unknown)}")
    values: dict[str, Any] = {}
    for name, spec in declared.items():
        if name in given:
            value = given[name]
        elif "Default" in spec:
            value = spec["Default"]
        else:
            raise RenderError(f"{path}: parameter {name} has no value and no default")
        if isinstance(value, Unresolved):
            values[name] = value
            continue
        if spec["Type"] == "CommaDelimitedList":
            value = value if isinstance(value, list) else [v.strip() for v in str(value).split(",")]
            checked = value
        else:
            value = str(value)
            checked = [value]
        allowed = spec.get("AllowedValues")
        if allowed is not None and any(v not in [str(a) for a in allowed] for v in checked):
            raise RenderError(f"{path}: {name}={value!r} is not one of {allowed}")
        if spec["Type"] == "Number":
            try:
                number = float(value)
            except ValueError:
                raise RenderError(f"{path}: {name}={value!r} is not a number") from None
            if "MinValue" in spec and number < float(spec["MinValue"]):
                raise RenderError(f"{path}: {name}={value} is below its MinValue {spec['MinValue']}")
            if "MaxValue" in spec and number > float(spec["MaxValue"]):
                raise RenderError(f"{path}: {name}={value} is above its MaxValue {spec['MaxValue']}")
        pattern = spec.get("AllowedPattern")
        if pattern is not None and any(not re.fullmatch(pattern, v) for v in checked):
            raise RenderError(f"{path}: {name}={value!r} does not match {pattern}")
        values[name] = value
    return values


def with_globals(template: dict[str, Any], resource: dict[str, Any], resolve: Callable[[Any], Any]) -> dict[str, Any]:
    """SAM Globals, merged into a function as the SAM transform does."""
    defaults = template.get("Globals", {}).get("Function")
    if resource["Type"] != "AWS::Serverless::Function" or not defaults:
        return resource
    props = dict(resource.get("Properties", {}))
    for key, value in defaults.items():
        if key not in props:
            props[key] = value
        elif key == "Environment":
            merged = {**value.get("Variables", {}), **props[key].get("Variables", {})}
            props[key] = {"Variables": merged}
        elif key == "Tags":
            props[key] = {**value, **props[key]}
    preference = props.get("DeploymentPreference")
    if preference and str(resolve(preference.get("Enabled", True))).lower() == "false":
        # SAM drops a disabled preference's settings (no CodeDeploy resources)
        props["DeploymentPreference"] = {k: v for k, v in preference.items() if k in ("Enabled", "Type")}
    return {**resource, "Properties": props}


def scalar(value: Any) -> Any:
    return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


def param_value(value: Any) -> Any:
    """A value passed to a nested stack's parameter (CloudFormation passes strings)."""
    if isinstance(value, list):
        if any(isinstance(v, Unresolved) for v in value):
            return Unresolved(",".join(value))
        return ",".join(str(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is NO_VALUE or isinstance(value, Unresolved):
        return value
    return str(value)
