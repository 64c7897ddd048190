"""Images through Bedrock InvokeModel, each family with its own request and
response body:
- amazon-image (Nova Canvas, Titan Image Generator v2): taskType TEXT_IMAGE;
  answers {"images": [base64 PNG], "error"?}
- stability (SD3.5, Stable Image Core/Ultra): {"prompt", "mode", "output_format"};
  answers {"images": [base64], "finish_reasons": [null | "Filter reason: ..."]}
- stability-sdxl (SDXL 1.0): {"text_prompts", "cfg_scale", "steps", ...};
  answers {"artifacts": [{"base64", "seed", "finishReason"}]}
The model reports its images by count: a call is billed for every image it made."""

from __future__ import annotations

import base64
import binascii
import json
import time
from typing import Any

from shared.providers.base import Generation, ModelCallError, bedrock_errors
from shared.registry import ModelSpec, spec_for

SIDE = 1024  # the size of an image when the request sets none (its parameters' defaults)


def request_body(spec: ModelSpec, prompt: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    """The family's InvokeModel body for the call's parameters (resolved: every
    value the model runs with is sent, so the result can be reproduced)."""
    p = params or {}
    if spec.family == "amazon-image":
        text: dict[str, Any] = {"text": prompt}
        if "negativePrompt" in p:
            text["negativeText"] = p["negativePrompt"]
        if "style" in p:  # Nova Canvas's style presets
            text["style"] = p["style"]
        config: dict[str, Any] = {
            "numberOfImages": int(p.get("count", 1)),
            "width": int(p.get("width", SIDE)),
            "height": int(p.get("height", SIDE)),
            "quality": p.get("quality", "standard"),
        }
        for name, field in (("cfgScale", "cfgScale"), ("seed", "seed")):
            if name in p:
                config[field] = p[name]
        return {"taskType": "TEXT_IMAGE", "textToImageParams": text, "imageGenerationConfig": config}
    if spec.family == "stability":
        body = {"prompt": prompt, "mode": "text-to-image", "aspect_ratio": p.get("aspectRatio", "1:1"), "output_format": "png"}
        if "seed" in p:
            body["seed"] = p["seed"]
        if "negativePrompt" in p:
            body["negative_prompt"] = p["negativePrompt"]
        return body
    if spec.family == "stability-sdxl":
        prompts = [{"text": prompt, "weight": 1.0}]
        if "negativePrompt" in p:
            prompts.append({"text": p["negativePrompt"], "weight": -1.0})
        body = {
            "text_prompts": prompts,
            "width": int(p.get("width", SIDE)),
            "height": int(p.get("height", SIDE)),
            "samples": int(p.get("count", 1)),
        }
        for name, field in (("cfgScale", "cfg_scale"), ("steps", "steps"), ("seed", "seed"), ("style", "style_preset")):
            if name in p:
                body[field] = p[name]
        return body
    raise ValueError(f"no image request format for family {spec.family}")


def _decode(spec: ModelSpec, encoded: str) -> bytes:
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ModelCallError(
            "InvalidResponse", f"{spec.id} returned an image that is not base64", retryable=False, public=True
        ) from exc


def images_of(spec: ModelSpec, body: dict[str, Any]) -> list[bytes]:
    """The PNGs in a family's response, or why there are none."""
    if body.get("error"):
        raise ModelCallError("ImageGenerationError", str(body["error"]), retryable=False)
    if "artifacts" in body:  # SDXL: {"artifacts": [{"base64", "seed", "finishReason"}]}
        artifacts = body["artifacts"] or []
        filtered = [a for a in artifacts if a.get("finishReason") == "CONTENT_FILTERED"]
        if filtered:
            raise ModelCallError("ContentFiltered", "CONTENT_FILTERED", retryable=False)
        failed = [a for a in artifacts if a.get("finishReason") not in (None, "SUCCESS")]
        if failed:
            raise ModelCallError("ImageGenerationError", str(failed[0].get("finishReason")), retryable=False)
        images = [a.get("base64") for a in artifacts if a.get("base64")]
    else:
        reasons = [r for r in body.get("finish_reasons") or [] if r]
        if reasons:  # Stability reports content filtering here
            raise ModelCallError("ContentFiltered", "; ".join(map(str, reasons)), retryable=False)
        images = body.get("images") or []
    if not images:
        raise ModelCallError("EmptyResponse", f"{spec.id} returned no image", retryable=False, public=True)
    return [_decode(spec, i) for i in images]


class InvokeImageProvider:
    def __init__(self, client: Any) -> None:
        self._client = client

    def generate(
        self,
        model: str,
        prompt: str,
        *,
        system: str | None = None,
        max_tokens: int = 0,
        metadata: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
        messages: list[dict[str, str]] | None = None,
        guardrail: Any | None = None,
    ) -> Generation:
        """(InvokeModel takes no request metadata: an image call is matched
        to the invocation log by model and time.)"""
        spec = spec_for(model)
        if spec is None:
            raise ModelCallError("UnknownModel", f"{model} is not in the model registry", retryable=False, public=True)
        started = time.monotonic()
        with bedrock_errors():
            response = self._client.invoke_model(
                modelId=model,
                body=json.dumps(request_body(spec, prompt, params)).encode("utf-8"),
                contentType="application/json",
                accept="application/json",
            )
            body = json.loads(response["body"].read())
        pngs = images_of(spec, body)
        return Generation(
            model=model,
            content=pngs[0],
            content_type="image/png",
            extension="png",
            input_tokens=0,
            output_tokens=0,
            latency_ms=int((time.monotonic() - started) * 1000),
            images=len(pngs),
            # The further images of a count above 1: model.2.png, model.3.png, ...
            attachments=tuple((f"{n}.png", "image/png", png) for n, png in enumerate(pngs[1:], start=2)),
        )
