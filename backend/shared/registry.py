"""The model registry: which Bedrock models genstack knows, their output kind,
request family, limits and prices. Data lives in registry.json beside this file."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

_REGISTRY_FILE = Path(__file__).with_name("registry.json")


@dataclass(frozen=True)
class ModelSpec:
    id: str
    kind: str
    family: str
    api: str
    max_output_tokens: int
    input_per_1k: Decimal
    output_per_1k: Decimal

    def output_limit(self, deployment_max_tokens: int) -> int:
        """The output tokens a call asks for: the deployment's cap, within the model's."""
        return min(deployment_max_tokens, self.max_output_tokens)

    def estimate_usd(self, prompt_chars: int, deployment_max_tokens: int) -> Decimal:
        """The most a call can cost: a prompt of at most one token per three
        characters (English averages about four) and every output token used."""
        return self.cost_usd(-(-prompt_chars // 3), self.output_limit(deployment_max_tokens))

    def cost_usd(self, input_tokens: int, output_tokens: int) -> Decimal:
        cost = (self.input_per_1k * input_tokens + self.output_per_1k * output_tokens) / 1000
        return cost.quantize(Decimal("0.00000001"))


@lru_cache(maxsize=1)
def load_registry() -> dict[str, ModelSpec]:
    raw = json.loads(_REGISTRY_FILE.read_text(encoding="utf-8"), parse_float=Decimal)
    return {
        m["id"]: ModelSpec(
            id=m["id"],
            kind=m["kind"],
            family=m["family"],
            api=m["api"],
            max_output_tokens=int(m["maxOutputTokens"]),
            input_per_1k=Decimal(m["inputPer1k"]),
            output_per_1k=Decimal(m["outputPer1k"]),
        )
        for m in raw["models"]
    }


def enabled_specs(enabled_ids: tuple[str, ...]) -> dict[str, ModelSpec]:
    """The registry entries of a deployment's enabled models.

    An enabled id missing from the registry is a deployment mistake; it fails
    loudly here instead of producing jobs that cannot be priced.
    """
    registry = load_registry()
    unknown = [m for m in enabled_ids if m not in registry]
    if unknown:
        raise ValueError(f"EnabledModels lists models the registry does not know: {', '.join(unknown)}")
    return {m: registry[m] for m in enabled_ids}
