"""The model registry: which models genstack knows (Bedrock's, and those of
the providers beyond it), their output kind, request family, limits and
prices. Data lives in registry.json beside this file."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from decimal import Decimal
from functools import lru_cache
from pathlib import Path

_REGISTRY_FILE = Path(__file__).with_name("registry.json")


ZERO = Decimal(0)


@dataclass(frozen=True)
class ModelSpec:
    id: str
    kind: str  # the model's own output: text or image
    family: str
    api: str  # converse | invoke-image
    max_prompt_chars: int
    max_output_tokens: int = 0
    input_per_1k: Decimal = ZERO
    output_per_1k: Decimal = ZERO
    per_image: Decimal = ZERO  # one 1024x1024 standard image
    parameters: str = ""  # the name of the model's parameter set (shared.parameters)
    # (quality, max pixels, max steps, price) of one image; None matches any.
    image_prices: tuple[tuple[str | None, int | None, int | None, Decimal], ...] = ()
    provider: str = "bedrock"  # bedrock | openai | stability | google
    provider_model: str = ""  # the id the provider's API takes (Bedrock: the id itself)
    endpoint: str = ""  # the provider's endpoint for the model, where it has several (Stability)
    billing: str = ""  # "tokens": an image model that reports and bills tokens (gpt-image-1)
    request: str = ""  # JSON: fields sent in every request to the model (request_extras)

    @property
    def external(self) -> bool:
        """Called over the internet with a key of its own, not through Bedrock."""
        return self.provider != "bedrock"

    @property
    def guardrail_in_call(self) -> bool:
        """Whether the model's own call carries the guardrail (Converse's
        guardrailConfig); other models' prompts are checked by ApplyGuardrail."""
        return self.api == "converse"

    def request_extras(self) -> dict:
        return json.loads(self.request) if self.request else {}

    def serves(self, kind: str) -> bool:
        """Whether a job of `kind` may use this model: charts are written by text models."""
        return kind == self.kind or (kind == "chart" and self.kind == "text")

    def output_limit(self, deployment_max_tokens: int) -> int:
        """The output tokens a call asks for: the deployment's cap, within the model's."""
        return min(deployment_max_tokens, self.max_output_tokens)

    def image_price(self, parameters: dict | None = None) -> Decimal:
        """The price of one image made with these parameters: the first of
        the model's price rules its quality, size and steps fall under."""
        parameters = parameters or {}
        pixels = int(parameters.get("width", 1024)) * int(parameters.get("height", 1024))
        for quality, max_pixels, max_steps, usd in self.image_prices:
            if quality is not None and parameters.get("quality", "standard") != quality:
                continue
            if max_pixels is not None and pixels > max_pixels:
                continue
            if max_steps is not None and int(parameters.get("steps", 0)) > max_steps:
                continue
            return usd
        return self.per_image

    def cost_usd(self, input_tokens: int, output_tokens: int, images: int = 0, image_price: Decimal | None = None) -> Decimal:
        per_image = self.per_image if image_price is None else image_price
        cost = (self.input_per_1k * input_tokens + self.output_per_1k * output_tokens) / 1000 + per_image * images
        return cost.quantize(Decimal("0.00000001"))


@lru_cache(maxsize=1)
def load_registry() -> dict[str, ModelSpec]:
    raw = registry_data()
    return {
        m["id"]: ModelSpec(
            id=m["id"],
            kind=m["kind"],
            family=m["family"],
            api=m["api"],
            max_prompt_chars=int(m["maxPromptChars"]),
            max_output_tokens=int(m.get("maxOutputTokens", 0)),
            input_per_1k=Decimal(m.get("inputPer1k", 0)),
            output_per_1k=Decimal(m.get("outputPer1k", 0)),
            per_image=Decimal(m.get("perImage", 0)),
            parameters=m.get("parameters", ""),
            image_prices=tuple(
                (rule.get("quality"), rule.get("maxPixels"), rule.get("maxSteps"), Decimal(rule["usd"]))
                for rule in m.get("imagePrices", [])
            ),
            provider=m.get("provider", "bedrock"),
            provider_model=m.get("providerModel", m["id"]),
            endpoint=m.get("endpoint", ""),
            billing=m.get("billing", ""),
            request=json.dumps(m["request"]) if "request" in m else "",
        )
        for m in raw["models"]
    }


@lru_cache(maxsize=1)
def registry_data() -> dict:
    """The registry file as data (parameter sets, guardrail prices), floats as Decimals."""
    return json.loads(_REGISTRY_FILE.read_text(encoding="utf-8"), parse_float=Decimal)


# Prefixes of Bedrock's cross-region inference profiles: "us.amazon.nova-lite-v1:0"
# routes amazon.nova-lite-v1:0 across the US regions, at the model's price.
# https://docs.aws.amazon.com/bedrock/latest/userguide/inference-profiles-support.html
INFERENCE_PROFILE_PREFIXES = ("us", "us-gov", "eu", "apac", "jp", "au", "ca", "global")


def provider_defaults() -> dict[str, dict]:
    """Each provider beyond Bedrock: its name and API base URL."""
    return {k: v for k, v in registry_data()["providers"].items() if not k.startswith("_")}


def provider_names() -> dict[str, str]:
    """Each provider's name as people know it, Bedrock included."""
    return {"bedrock": "Amazon Bedrock", **{k: v["name"] for k, v in provider_defaults().items()}}


def spec_for(model_id: str) -> ModelSpec | None:
    """The registry entry of a model ID or of an inference profile ID (which
    keeps its own ID: it is what the calls name)."""
    registry = load_registry()
    if model_id in registry:
        return registry[model_id]
    prefix, _, base = model_id.partition(".")
    if prefix in INFERENCE_PROFILE_PREFIXES and base in registry:
        return replace(registry[base], id=model_id)
    return None


def enabled_specs(enabled_ids: tuple[str, ...]) -> dict[str, ModelSpec]:
    """The registry entries of a deployment's enabled models.

    An enabled id missing from the registry is a deployment mistake; it fails
    loudly here instead of producing jobs that cannot be priced.
    """
    specs = {m: spec_for(m) for m in enabled_ids}
    unknown = [m for m, spec in specs.items() if spec is None]
    if unknown:
        raise ValueError(f"EnabledModels lists models the registry does not know: {', '.join(unknown)}")
    return {m: spec for m, spec in specs.items() if spec is not None}
