"""Models beyond Bedrock, behind the same provider interface:

- OpenAI: Chat Completions (text and chart jobs) and Images (gpt-image-1, DALL-E 3);
- Stability AI: the Stable Image generate endpoints (core, ultra, sd3);
- Google: Gemini through the Gemini API (generateContent), and Imagen (predict).

Each call is one HTTPS request (shared.providers.http) with the provider's key
from Secrets Manager (shared.providers.keys). Usage comes from the answer
where the provider reports it (tokens: OpenAI, Gemini; gpt-image-1's image
tokens), else the registry's price per image. Errors map to the codes a
Bedrock call's would have, so retries, settlement and the caller's messages
work the same: 429 and 5xx are retryable; a 200 that cannot be read is of
unknown outcome (it may be billed, so its reservation is charged).

Request and response shapes follow each provider's published API description;
tests/unit/test_external_providers.py checks them against those documents
(tests/data/providers/, with their sources and dates)."""

from __future__ import annotations

import base64
import binascii
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from shared.providers.base import Generation, ModelCallError, finish_of
from shared.providers.http import Http, HttpResponse
from shared.providers.keys import ProviderKeys
from shared.registry import ModelSpec, spec_for

# HTTP statuses a later identical request may get past (429 unless the
# account is out of credit, which no retry fixes; 5xx).
_RETRYABLE_STATUS = {408: "ModelTimeoutException", 429: "ThrottlingException", 500: "InternalServerException"}
_RETRYABLE_STATUS.update({502: "ServiceUnavailableException", 503: "ServiceUnavailableException"})
_RETRYABLE_STATUS.update({504: "ModelTimeoutException", 529: "ServiceUnavailableException"})
_FINAL_STATUS = {
    400: "ValidationException",
    401: "PROVIDER_AUTH_FAILED",
    403: "AccessDeniedException",
    404: "ResourceNotFoundException",
    413: "ValidationException",
    422: "ValidationException",
}
# A gateway timeout reached the provider: the work may have been done and billed.
_UNKNOWN_OUTCOME_STATUS = frozenset({408, 504})


def _spec(model: str) -> ModelSpec:
    spec = spec_for(model)
    if spec is None:
        raise ModelCallError("UnknownModel", f"{model} is not in the model registry", retryable=False, public=True)
    return spec


def _provider_text(body: Any) -> tuple[str, str]:
    """The provider's own error code and message, from the error shapes of
    OpenAI ({"error": {"message", "type", "code"}}), Google ({"error":
    {"code", "message", "status"}}) and Stability ({"name", "errors": [...]})."""
    if not isinstance(body, dict):
        return "", ""
    error = body.get("error")
    if isinstance(error, dict):
        code = error.get("code") if isinstance(error.get("code"), str) else error.get("status") or error.get("type") or ""
        return str(code or ""), str(error.get("message", ""))
    if "errors" in body or "name" in body:
        errors = body.get("errors") or []
        return str(body.get("name", "")), "; ".join(str(e) for e in errors)[:500]
    return "", ""


def http_error(response: HttpResponse, key: str) -> ModelCallError:
    """A provider's error answer as the ModelCallError a Bedrock call would raise."""
    status = response.status
    provider_code, text = _provider_text(response.json())
    detail = f"HTTP {status} {provider_code}: {text}".replace(key, "***") if key else f"HTTP {status} {provider_code}: {text}"
    detail = detail[:500]
    if provider_code in ("content_policy_violation", "content_moderation", "moderation_blocked"):
        return ModelCallError("ContentFiltered", detail, retryable=False)
    if status == 429 and provider_code in ("insufficient_quota", "billing_hard_limit_reached"):
        return ModelCallError("ServiceQuotaExceededException", detail, retryable=False)
    if status in _RETRYABLE_STATUS or status >= 500:
        return ModelCallError(
            _RETRYABLE_STATUS.get(status, "InternalServerException"),
            detail,
            retryable=True,
            outcome_unknown=status in _UNKNOWN_OUTCOME_STATUS,
        )
    return ModelCallError(_FINAL_STATUS.get(status, f"HTTP{status}"), detail, retryable=False)


def _unreadable(spec: ModelSpec, why: str) -> ModelCallError:
    # The provider said 200: the call is likely billed, so it is charged as reserved.
    return ModelCallError("InvalidResponse", f"{spec.id} answered {why}", retryable=False, public=True, outcome_unknown=True)


def _decode(spec: ModelSpec, encoded: Any) -> bytes:
    try:
        return base64.b64decode(str(encoded), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise _unreadable(spec, "an image that is not base64") from exc


def _text_generation(
    model: str, text: str, started: float, input_tokens: int, output_tokens: int, finish: Any = None
) -> Generation:
    return Generation(
        model=model,
        content=text.encode("utf-8"),
        content_type="text/plain; charset=utf-8",
        extension="txt",
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        latency_ms=int((time.monotonic() - started) * 1000),
        text=text,
        finish=finish_of(finish),
    )


def _image_generation(model: str, pngs: list[bytes], started: float, input_tokens: int = 0, output_tokens: int = 0) -> Generation:
    return Generation(
        model=model,
        content=pngs[0],
        content_type="image/png",
        extension="png",
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        latency_ms=int((time.monotonic() - started) * 1000),
        images=len(pngs),
        attachments=tuple((f"{n}.png", "image/png", png) for n, png in enumerate(pngs[1:], start=2)),
    )


@dataclass(frozen=True)
class _Request:
    """One call, as every external provider receives it."""

    spec: ModelSpec
    model: str
    key: str
    prompt: str
    turns: list[dict[str, str]]  # the conversation, or the prompt as its one user turn
    system: str | None
    max_tokens: int
    params: dict[str, Any]
    reference: str = ""  # "jobId|callId", where the provider logs a caller's request id


def _openai_headers(r: _Request) -> dict[str, str]:
    """Its key, and the call's ids as X-Client-Request-Id, which OpenAI logs
    with the request (ASCII, at most 512 characters)."""
    headers = {"authorization": f"Bearer {r.key}"}
    if r.reference and r.reference.isascii() and len(r.reference) <= 512:
        headers["x-client-request-id"] = r.reference
    return headers


class _External:
    """What every external provider shares: its key, its base URL, one POST."""

    provider = ""

    def __init__(self, http: Http, keys: ProviderKeys, base_url: str) -> None:
        self._http = http
        self._keys = keys
        self._base = base_url.rstrip("/")

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
        """One call (the Provider interface). `metadata` (the job and call
        ids) goes where the provider's API logs a caller's request id
        (OpenAI's X-Client-Request-Id), for reconciling its bill with the call
        records; `guardrail` cannot ride along (the worker checks the input
        with ApplyGuardrail first)."""
        spec = _spec(model)
        key = self._keys.key(self.provider)
        turns = messages or [{"role": "user", "content": prompt}]
        reference = f"{metadata.get('genstackJobId', '')}|{metadata.get('genstackCallId', '')}" if metadata else ""
        return self._call(_Request(spec, model, key, prompt, turns, system, max_tokens, params or {}, reference))

    def _call(self, r: _Request) -> Generation:
        raise NotImplementedError

    def _post(self, spec: ModelSpec, path: str, headers: dict[str, str], key: str, **body: Any) -> Any:
        response = self._http.post(f"{self._base}{path}", headers=headers, **body)
        if response.status != 200:
            raise http_error(response, key)
        data = response.json()
        if not isinstance(data, dict):
            raise _unreadable(spec, "with a body that is not a JSON object")
        return data


# ----------------------------------------------------------------- OpenAI
def openai_chat_body(
    spec: ModelSpec,
    turns: list[dict[str, str]],
    *,
    system: str | None,
    max_tokens: int,
    params: dict[str, Any],
) -> dict[str, Any]:
    """The Chat Completions request (POST /chat/completions)."""
    messages = ([{"role": "system", "content": system}] if system else []) + [
        {"role": t["role"], "content": t["content"]} for t in turns
    ]
    body: dict[str, Any] = {
        "model": spec.provider_model,
        "messages": messages,
        "max_completion_tokens": max_tokens,
        # Not kept for OpenAI's own evals and distillation: the prompts are the tenants'.
        "store": False,
    }
    for name, field in (("temperature", "temperature"), ("topP", "top_p"), ("stopSequences", "stop"), ("seed", "seed")):
        if name in params:
            body[field] = params[name]
    body.update(spec.request_extras())
    return body


class OpenAiChatProvider(_External):
    provider = "openai"

    def _call(self, r: _Request) -> Generation:
        spec, model, key = r.spec, r.model, r.key
        body = openai_chat_body(spec, r.turns, system=r.system, max_tokens=r.max_tokens, params=r.params)
        started = time.monotonic()
        data = self._post(spec, "/chat/completions", _openai_headers(r), key, json_body=body)
        return openai_chat_generation(spec, model, data, started)


def openai_chat_generation(spec: ModelSpec, model: str, data: dict[str, Any], started: float) -> Generation:
    usage = data.get("usage") or {}
    input_tokens, output_tokens = int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))
    choices = data.get("choices") or []
    if not choices or not isinstance(choices[0], dict):
        raise _unreadable(spec, "without a choice")
    message, finish = choices[0].get("message") or {}, choices[0].get("finish_reason")
    text = message.get("content") or ""
    if not text:
        billed = {"input_tokens": input_tokens, "output_tokens": output_tokens, "billed_usd": Decimal(0)}
        if finish == "content_filter":
            raise ModelCallError("ContentFiltered", "finish_reason content_filter", retryable=False, **billed)
        if message.get("refusal"):
            raise ModelCallError("ModelRefused", "the model refused to answer", retryable=False, public=True, **billed)
        raise ModelCallError(
            "EmptyResponse", f"the model returned no text (finish_reason {finish})", retryable=False, public=True, **billed
        )
    return _text_generation(model, text, started, input_tokens, output_tokens, finish)


def openai_image_body(spec: ModelSpec, prompt: str, params: dict[str, Any]) -> dict[str, Any]:
    """The Images request (POST /images/generations): the size from width and
    height, the bytes in the answer (gpt-image-1 always answers base64)."""
    body: dict[str, Any] = {
        "model": spec.provider_model,
        "prompt": prompt,
        "n": int(params.get("count", 1)),
        "size": f"{int(params.get('width', 1024))}x{int(params.get('height', 1024))}",
    }
    if "quality" in params:
        body["quality"] = params["quality"]
    if spec.family == "openai-dalle":
        body["response_format"] = "b64_json"
        if "style" in params:
            body["style"] = params["style"]
    else:
        body["output_format"] = "png"
    body.update(spec.request_extras())
    return body


class OpenAiImageProvider(_External):
    provider = "openai"

    def _call(self, r: _Request) -> Generation:
        spec, model, key, prompt, params = r.spec, r.model, r.key, r.prompt, r.params
        started = time.monotonic()
        body = openai_image_body(spec, prompt, params)
        data = self._post(spec, "/images/generations", _openai_headers(r), key, json_body=body)
        items = [d for d in data.get("data") or [] if isinstance(d, dict) and d.get("b64_json")]
        if not items:
            raise _unreadable(spec, "without an image")
        usage = data.get("usage") or {}
        return _image_generation(
            model,
            [_decode(spec, d["b64_json"]) for d in items],
            started,
            input_tokens=int(usage.get("input_tokens", 0)),
            output_tokens=int(usage.get("output_tokens", 0)),
        )


# -------------------------------------------------------------- Stability
def stability_fields(spec: ModelSpec, prompt: str, params: dict[str, Any]) -> dict[str, str]:
    """The multipart form of POST /v2beta/stable-image/generate/{core|ultra|sd3}."""
    fields = {"prompt": prompt, "output_format": "png", "aspect_ratio": str(params.get("aspectRatio", "1:1"))}
    if spec.endpoint == "sd3":
        fields["model"] = spec.provider_model
        fields["mode"] = "text-to-image"
    for name, field in (("seed", "seed"), ("negativePrompt", "negative_prompt"), ("style", "style_preset")):
        if name in params:
            fields[field] = str(params[name])
    return fields


class StabilityImageProvider(_External):
    """Stability answers one image per request. With `accept:
    application/json`: {"image": base64, "finish_reason": "SUCCESS" |
    "CONTENT_FILTERED", "seed"}. A filtered image is still generated (and
    billed: the credits are spent), so it is settled at its price."""

    provider = "stability"

    def _call(self, r: _Request) -> Generation:
        spec, model, key, prompt, params = r.spec, r.model, r.key, r.prompt, r.params
        p = params
        started = time.monotonic()
        headers = {"authorization": f"Bearer {key}", "accept": "application/json"}
        path = f"/v2beta/stable-image/generate/{spec.endpoint}"
        data = self._post(spec, path, headers, key, fields=stability_fields(spec, prompt, p))
        if data.get("finish_reason") == "CONTENT_FILTERED":
            raise ModelCallError(
                "ContentFiltered", "finish_reason CONTENT_FILTERED", retryable=False, billed_usd=spec.image_price(p)
            )
        if not data.get("image"):
            raise _unreadable(spec, "without an image")
        return _image_generation(model, [_decode(spec, data["image"])], started)


# ----------------------------------------------------------------- Google
def gemini_body(
    spec: ModelSpec,
    turns: list[dict[str, str]],
    *,
    system: str | None,
    max_tokens: int,
    params: dict[str, Any],
) -> dict[str, Any]:
    """The generateContent request: turns as contents (the assistant is
    "model"), the system prompt as systemInstruction."""
    config: dict[str, Any] = {"maxOutputTokens": max_tokens}
    for name, field in (("temperature", "temperature"), ("topP", "topP"), ("stopSequences", "stopSequences"), ("seed", "seed")):
        if name in params:
            config[field] = params[name]
    extras = spec.request_extras()
    config.update(extras.pop("generationConfig", {}))
    body: dict[str, Any] = {
        "contents": [{"role": "model" if t["role"] == "assistant" else "user", "parts": [{"text": t["content"]}]} for t in turns],
        "generationConfig": config,
    }
    if system:
        body["systemInstruction"] = {"parts": [{"text": system}]}
    body.update(extras)
    return body


_GEMINI_BLOCKED = frozenset({"SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY"})


class GeminiTextProvider(_External):
    provider = "google"

    def _call(self, r: _Request) -> Generation:
        spec, model, key = r.spec, r.model, r.key
        body = gemini_body(spec, r.turns, system=r.system, max_tokens=r.max_tokens, params=r.params)
        started = time.monotonic()
        path = f"/v1beta/models/{spec.provider_model}:generateContent"
        data = self._post(spec, path, {"x-goog-api-key": key}, key, json_body=body)
        return gemini_generation(spec, model, data, started)


def gemini_generation(spec: ModelSpec, model: str, data: dict[str, Any], started: float) -> Generation:
    usage = data.get("usageMetadata") or {}
    input_tokens = int(usage.get("promptTokenCount", 0))
    # Thinking tokens are billed as output.
    output_tokens = int(usage.get("candidatesTokenCount", 0)) + int(usage.get("thoughtsTokenCount", 0))
    billed = {"input_tokens": input_tokens, "output_tokens": output_tokens, "billed_usd": Decimal(0)}
    blocked = (data.get("promptFeedback") or {}).get("blockReason")
    candidates = data.get("candidates") or []
    if blocked and not candidates:
        raise ModelCallError("ContentFiltered", f"prompt blocked: {blocked}", retryable=False, **billed)
    if not candidates or not isinstance(candidates[0], dict):
        raise _unreadable(spec, "without a candidate")
    candidate = candidates[0]
    parts = (candidate.get("content") or {}).get("parts") or []
    text = "".join(p.get("text", "") for p in parts if isinstance(p, dict) and not p.get("thought"))
    finish = candidate.get("finishReason")
    if not text:
        if finish in _GEMINI_BLOCKED:
            raise ModelCallError("ContentFiltered", f"finishReason {finish}", retryable=False, **billed)
        raise ModelCallError(
            "EmptyResponse", f"the model returned no text (finishReason {finish})", retryable=False, public=True, **billed
        )
    return _text_generation(model, text, started, input_tokens, output_tokens, finish)


def imagen_body(spec: ModelSpec, prompt: str, params: dict[str, Any]) -> dict[str, Any]:
    """The predict request of an Imagen model."""
    body = {
        "instances": [{"prompt": prompt}],
        "parameters": {"sampleCount": int(params.get("count", 1)), "aspectRatio": params.get("aspectRatio", "1:1")},
    }
    body.update(spec.request_extras())
    return body


class ImagenProvider(_External):
    """Imagen answers {"predictions": [{"bytesBase64Encoded", "mimeType"}]};
    an image its safety filter removed is left out (and not billed): fewer
    images than asked is a result, none is ContentFiltered."""

    provider = "google"

    def _call(self, r: _Request) -> Generation:
        spec, model, key, prompt, params = r.spec, r.model, r.key, r.prompt, r.params
        started = time.monotonic()
        path = f"/v1beta/models/{spec.provider_model}:predict"
        data = self._post(spec, path, {"x-goog-api-key": key}, key, json_body=imagen_body(spec, prompt, params))
        predictions = [p for p in data.get("predictions") or [] if isinstance(p, dict)]
        images = [p["bytesBase64Encoded"] for p in predictions if p.get("bytesBase64Encoded")]
        if not images:
            reasons = [str(p.get("raiFilteredReason")) for p in predictions if p.get("raiFilteredReason")]
            raise ModelCallError("ContentFiltered", "; ".join(reasons) or "no image returned", retryable=False)
        return _image_generation(model, [_decode(spec, i) for i in images], started)


def external_providers(http: Http, keys: ProviderKeys, base_urls: dict[str, str]) -> dict[str, Any]:
    """The providers by the registry's "api", each at its base URL."""
    return {
        "openai-chat": OpenAiChatProvider(http, keys, base_urls["openai"]),
        "openai-image": OpenAiImageProvider(http, keys, base_urls["openai"]),
        "stability-image": StabilityImageProvider(http, keys, base_urls["stability"]),
        "gemini": GeminiTextProvider(http, keys, base_urls["google"]),
        "imagen": ImagenProvider(http, keys, base_urls["google"]),
    }
