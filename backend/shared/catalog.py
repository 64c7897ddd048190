"""GET /models: the models a deployment enables, as a client choosing among
them needs them: provider, the job kinds each serves, prices, the parameters
it takes with their ranges, and whether it can be called now (a model beyond
Bedrock needs its provider's key secret). The same for every key: it is the
deployment's configuration, not anyone's data."""

from __future__ import annotations

from typing import Any

from shared.parameters import accepted
from shared.registry import ModelSpec, enabled_specs, provider_names
from shared.settings import Settings

KINDS = ("text", "image", "chart")


def _price(spec: ModelSpec) -> dict[str, Any]:
    if spec.kind == "text" or spec.billing == "tokens":
        price: dict[str, Any] = {
            "inputPer1kTokensUsd": float(spec.input_per_1k),
            "outputPer1kTokensUsd": float(spec.output_per_1k),
        }
        if spec.kind == "image":
            price["perImageUsd"] = float(spec.per_image)  # about, at 1024x1024: it bills the image's tokens
        return price
    return {"perImageUsd": float(spec.per_image)}  # one 1024x1024 standard image; see parameters for others


def catalog(settings: Settings) -> dict[str, Any]:
    names = provider_names()
    models = []
    for model_id, spec in enabled_specs(settings.enabled_models).items():
        kinds = [kind for kind in KINDS if spec.serves(kind)]
        models.append(
            {
                "id": model_id,
                "provider": spec.provider,
                "providerName": names[spec.provider],
                "kinds": kinds,
                "available": not spec.external or bool(settings.secret_of(spec.provider)),
                "maxPromptChars": spec.max_prompt_chars,
                "pricing": _price(spec),
                "parameters": {kind: accepted(spec, kind) for kind in kinds},
            }
        )
    return {"models": models, "enhanceModel": settings.enhance_model_id}
