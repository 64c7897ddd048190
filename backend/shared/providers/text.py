"""Text through Bedrock Converse: one code path for every text model family."""

from __future__ import annotations

import time
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from shared.providers.base import OUTCOME_UNKNOWN, Generation, ModelCallError

# Bedrock error codes a later identical call may get past.
RETRYABLE_CODES = frozenset(
    {
        "ThrottlingException",
        "ModelTimeoutException",
        "ServiceUnavailableException",
        "InternalServerException",
        "ModelNotReadyException",
    }
)


class ConverseTextProvider:
    def __init__(self, client: Any, *, temperature: float = 0.7) -> None:
        self._client = client
        self._temperature = temperature

    def generate(
        self, model: str, prompt: str, *, system: str | None = None, max_tokens: int, metadata: dict[str, str] | None = None
    ) -> Generation:
        request: dict[str, Any] = {
            "modelId": model,
            "messages": [{"role": "user", "content": [{"text": prompt}]}],
            "inferenceConfig": {"maxTokens": max_tokens, "temperature": self._temperature},
        }
        if system:
            request["system"] = [{"text": system}]
        if metadata:
            request["requestMetadata"] = metadata
        started = time.monotonic()
        try:
            response = self._client.converse(**request)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = error.get("Code", "ClientError")
            raise ModelCallError(code, error.get("Message", str(exc)), retryable=code in RETRYABLE_CODES) from exc
        except BotoCoreError as exc:  # connection and read timeouts
            name = type(exc).__name__
            raise ModelCallError(name, str(exc), retryable=True, outcome_unknown=name in OUTCOME_UNKNOWN) from exc
        elapsed_ms = int((time.monotonic() - started) * 1000)

        blocks = response.get("output", {}).get("message", {}).get("content", [])
        text = "".join(block["text"] for block in blocks if "text" in block)
        if not text:
            stop = response.get("stopReason", "unknown")
            raise ModelCallError("EmptyResponse", f"the model returned no text (stopReason {stop})", retryable=False, public=True)
        usage = response.get("usage", {})
        return Generation(
            model=model,
            content=text.encode("utf-8"),
            content_type="text/plain; charset=utf-8",
            extension="txt",
            input_tokens=int(usage.get("inputTokens", 0)),
            output_tokens=int(usage.get("outputTokens", 0)),
            latency_ms=int(response.get("metrics", {}).get("latencyMs", elapsed_ms)),
            text=text,
        )
