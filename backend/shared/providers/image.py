"""Images through Bedrock InvokeModel, each family with its own request and
response body:
- amazon-image (Nova Canvas, Titan Image Generator v2): taskType TEXT_IMAGE;
  answers {"images": [base64 PNG], "error"?}
- stability (SD3.5, Stable Image Core/Ultra): {"prompt", "mode", "output_format"};
  answers {"images": [base64], "finish_reasons": [null | "Filter reason: ..."]}"""

from __future__ import annotations

import base64
import binascii
import json
import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from shared.providers.base import OUTCOME_UNKNOWN, Generation, ModelCallError
from shared.providers.text import RETRYABLE_CODES
from shared.registry import ModelSpec, spec_for

SIDE = 1024  # 1024 x 1024, the size the registry's per-image prices are for


def request_body(spec: ModelSpec, prompt: str) -> dict[str, Any]:
    if spec.family == "amazon-image":
        return {
            "taskType": "TEXT_IMAGE",
            "textToImageParams": {"text": prompt},
            "imageGenerationConfig": {"numberOfImages": 1, "width": SIDE, "height": SIDE, "quality": "standard"},
        }
    if spec.family == "stability":
        return {"prompt": prompt, "mode": "text-to-image", "aspect_ratio": "1:1", "output_format": "png"}
    raise ValueError(f"no image request format for family {spec.family}")


def image_of(spec: ModelSpec, body: dict[str, Any]) -> bytes:
    """The PNG in a family's response, or why there is none."""
    if body.get("error"):
        raise ModelCallError("ImageGenerationError", str(body["error"]), retryable=False)
    reasons = [r for r in body.get("finish_reasons") or [] if r]
    if reasons:  # Stability reports content filtering here
        raise ModelCallError("ContentFiltered", "; ".join(map(str, reasons)), retryable=False)
    images = body.get("images") or []
    if not images:
        raise ModelCallError("EmptyResponse", f"{spec.id} returned no image", retryable=False, public=True)
    try:
        return base64.b64decode(images[0], validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ModelCallError(
            "InvalidResponse", f"{spec.id} returned an image that is not base64", retryable=False, public=True
        ) from exc


class InvokeImageProvider:
    def __init__(self, client: Any) -> None:
        self._client = client

    def generate(
        self, model: str, prompt: str, *, system: str | None = None, max_tokens: int = 0, metadata: dict[str, str] | None = None
    ) -> Generation:
        """(InvokeModel takes no request metadata: an image call is matched
        to the invocation log by model and time.)"""
        spec = spec_for(model)
        if spec is None:
            raise ModelCallError("UnknownModel", f"{model} is not in the model registry", retryable=False, public=True)
        started = time.monotonic()
        try:
            response = self._client.invoke_model(
                modelId=model,
                body=json.dumps(request_body(spec, prompt)).encode("utf-8"),
                contentType="application/json",
                accept="application/json",
            )
            body = json.loads(response["body"].read())
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = error.get("Code", "ClientError")
            raise ModelCallError(code, error.get("Message", str(exc)), retryable=code in RETRYABLE_CODES) from exc
        except BotoCoreError as exc:
            name = type(exc).__name__
            raise ModelCallError(name, str(exc), retryable=True, outcome_unknown=name in OUTCOME_UNKNOWN) from exc
        png = image_of(spec, body)
        return Generation(
            model=model,
            content=png,
            content_type="image/png",
            extension="png",
            input_tokens=0,
            output_tokens=0,
            latency_ms=int((time.monotonic() - started) * 1000),
            images=1,
        )
