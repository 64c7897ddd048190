"""Generation parameters: what each model takes, checked against the model
registry's data (registry.json "parameterSets"), and the values a call runs
with, defaults filled in.

A request names parameters once for every model of its job ("parameters")
and per model ("modelParameters", merged over them). Each model's set is
resolved on its own: a parameter the model does not take, or a value outside
its range, is a 400 naming the model and the parameter and listing what the
model takes. What a call runs with is stored in the job before it is queued,
seeds included (a seed a request leaves out is drawn then), so the result
reports exactly what ran and a later run of the job runs the same."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

from shared.errors import InvalidRequest
from shared.registry import ModelSpec, registry_data

TEXT_KINDS = ("text", "chart")
# The order parameters are reported in (the registry's, per set).
_RANDOM = random.SystemRandom()


@dataclass(frozen=True)
class Rule:
    name: str
    type: str  # number | integer | string | strings | enum
    minimum: Decimal | None = None
    maximum: Decimal | str | None = None  # "maxOutputTokens": the model's own limit
    multiple_of: int | None = None
    min_length: int | None = None
    max_length: int | None = None
    max_items: int | None = None
    values: tuple[str, ...] = ()
    default: Any = None  # a value, "random", "deployment", or None (not sent)

    def upper(self, spec: ModelSpec) -> Decimal | None:
        if self.maximum == "maxOutputTokens":
            return Decimal(spec.max_output_tokens)
        return self.maximum if isinstance(self.maximum, Decimal) else None

    def describe(self, spec: ModelSpec) -> str:
        """What the rule accepts, in a few words ("0 to 1", "one of a, b")."""
        if self.type in ("number", "integer"):
            text = f"{_num(self.minimum)} to {_num(self.upper(spec))}"
            return text + (f", a multiple of {self.multiple_of}" if self.multiple_of else "")
        if self.type == "enum":
            return "one of " + ", ".join(self.values)
        if self.type == "strings":
            return f"at most {self.max_items} strings of at most {self.max_length} characters"
        return f"{self.min_length or 1} to {self.max_length} characters"

    def check(self, spec: ModelSpec, value: Any) -> str | None:
        """Why `value` is not acceptable, or None."""
        if self.type in ("number", "integer"):
            if isinstance(value, bool) or not isinstance(value, int | float | Decimal) or not math.isfinite(value):
                return "must be a finite number"
            if self.type == "integer" and value != int(value):
                return "must be a whole number"
            number, upper = Decimal(str(value)), self.upper(spec)
            if (self.minimum is not None and number < self.minimum) or (upper is not None and number > upper):
                return f"must be from {self.describe(spec)}"
            if self.multiple_of and int(value) % self.multiple_of:
                return f"must be a multiple of {self.multiple_of}"
            return None
        if self.type == "enum":
            return None if value in self.values else f"must be {self.describe(spec)}"
        if self.type == "strings":
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                return "must be a list of strings"
            if len(value) > (self.max_items or 0) or any(not v or len(v) > (self.max_length or 0) for v in value):
                return f"must be {self.describe(spec)}, none empty"
            return None
        if not isinstance(value, str):
            return "must be a string"
        if len(value) < (self.min_length or 1) or (self.max_length is not None and len(value) > self.max_length):
            return f"must be {self.describe(spec)}"
        return None


def _num(value: Decimal | None) -> str:
    if value is None:
        return "any"
    return str(int(value)) if value == value.to_integral_value() else str(value)


def _rule(name: str, raw: dict[str, Any]) -> Rule:
    maximum = raw.get("max")
    return Rule(
        name=name,
        type=raw["type"],
        minimum=Decimal(str(raw["min"])) if "min" in raw else None,
        maximum=maximum if isinstance(maximum, str) else (Decimal(str(maximum)) if maximum is not None else None),
        multiple_of=raw.get("multipleOf"),
        min_length=raw.get("minLength"),
        max_length=raw.get("maxLength"),
        max_items=raw.get("maxItems"),
        values=tuple(raw.get("values", ())),
        default=raw.get("default"),
    )


@dataclass(frozen=True)
class ParameterSet:
    rules: dict[str, Rule]
    sizes: tuple[tuple[int, int], ...] = ()  # the (width, height) pairs the model takes, if it lists them
    max_pixels: int | None = None
    aspect: tuple[Decimal, Decimal] | None = None  # width / height, lowest and highest


@lru_cache(maxsize=32)
def _set(name: str) -> ParameterSet:
    raw = registry_data()["parameterSets"].get(name)
    if raw is None:
        raise ValueError(f"the registry has no parameter set {name!r}")
    size = raw.get("_size", {})
    return ParameterSet(
        rules={k: _rule(k, v) for k, v in raw.items() if not k.startswith("_")},
        sizes=tuple(tuple(int(n) for n in s.split("x")) for s in size.get("sizes", ())),  # type: ignore[misc]
        max_pixels=size.get("maxPixels"),
        aspect=tuple(Decimal(str(a)) for a in size["aspect"]) if "aspect" in size else None,  # type: ignore[arg-type]
    )


def parameter_set(spec: ModelSpec, kind: str) -> ParameterSet:
    """What a job of `kind` on this model takes: the model's set; a chart adds
    the chart's size (genstack renders it) to its text model's set."""
    own = _set(spec.parameters)
    if kind != "chart":
        return own
    return ParameterSet(rules={**own.rules, **_set("chart").rules})


def accepted(spec: ModelSpec, kind: str) -> dict[str, str]:
    """Each parameter the model takes for `kind`, with what it accepts (the
    size rules on `width`, which they bind together with `height`)."""
    pset = parameter_set(spec, kind)
    takes = {name: rule.describe(spec) for name, rule in pset.rules.items()}
    together = []
    if pset.sizes:
        together.append("width x height one of " + ", ".join(f"{w}x{h}" for w, h in pset.sizes))
    if pset.max_pixels:
        together.append(f"width x height at most {pset.max_pixels} pixels")
    if pset.aspect:
        together.append(f"width / height from {_num(pset.aspect[0])} to {_num(pset.aspect[1])}")
    if together and "width" in takes:
        takes["width"] += "; " + "; ".join(together)
    return takes


def _refuse(spec: ModelSpec, kind: str, name: str, message: str) -> InvalidRequest:
    takes = accepted(spec, kind)
    listing = "; ".join(f"{n} ({d})" for n, d in takes.items())
    return InvalidRequest(
        f"{spec.id}: parameter '{name}' {message}. For a {kind} job {spec.id} takes: {listing}",
        details={"field": f"parameters.{name}", "model": spec.id, "parameter": name, "accepts": takes},
    )


def resolve(
    spec: ModelSpec,
    kind: str,
    given: dict[str, Any],
    *,
    deployment_max_tokens: int,
    rng: random.Random = _RANDOM,
) -> dict[str, Any]:
    """The parameters a call of `spec` runs with: `given`, checked, with the
    defaults filled in (in the registry's order). 400 on anything the model
    does not take."""
    pset = parameter_set(spec, kind)
    for name, value in given.items():
        rule = pset.rules.get(name)
        if rule is None:
            raise _refuse(spec, kind, name, "is not one it takes")
        problem = rule.check(spec, value)
        if problem:
            raise _refuse(spec, kind, name, f"{problem} (got {str(value)[:60]})")
    resolved: dict[str, Any] = {}
    for name, rule in pset.rules.items():
        if name in given:
            resolved[name] = given[name]
        elif rule.default == "random":
            resolved[name] = rng.randint(int(rule.minimum or 0), int(rule.upper(spec) or 0))
        elif rule.default == "deployment":
            resolved[name] = min(deployment_max_tokens, int(rule.upper(spec) or deployment_max_tokens))
        elif rule.default is not None:
            resolved[name] = int(rule.default) if rule.type == "integer" else rule.default
    _check_size(spec, kind, pset, resolved, given)
    return {k: float(v) if isinstance(v, Decimal) else v for k, v in resolved.items()}


def _check_size(spec: ModelSpec, kind: str, pset: ParameterSet, resolved: dict[str, Any], given: dict[str, Any]) -> None:
    if "width" not in resolved or "height" not in resolved:
        return
    width, height = int(resolved["width"]), int(resolved["height"])
    name = "width" if "width" in given else "height"
    if pset.sizes and (width, height) not in pset.sizes:
        sizes = ", ".join(f"{w}x{h}" for w, h in pset.sizes)
        raise _refuse(spec, kind, name, f"and height make {width}x{height}, not a size it takes ({sizes})")
    if pset.max_pixels and width * height > pset.max_pixels:
        raise _refuse(spec, kind, name, f"and height make {width * height} pixels, more than {pset.max_pixels}")
    if pset.aspect:
        low, high = pset.aspect
        if not low <= Decimal(width) / Decimal(height) <= high:
            raise _refuse(spec, kind, name, f"and height make an aspect ratio outside {_num(low)} to {_num(high)}")


def defaults_for(spec: ModelSpec, kind: str, *, deployment_max_tokens: int, seed_source: str) -> dict[str, Any]:
    """The parameters of a job made before parameters existed (queued across
    an upgrade): the defaults, with a seed derived from the job, so every run
    of it is the same."""
    return resolve(spec, kind, {}, deployment_max_tokens=deployment_max_tokens, rng=random.Random(seed_source))  # noqa: S311 - a seed for an image, not a secret
