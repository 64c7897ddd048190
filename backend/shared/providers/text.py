"""Text through Bedrock Converse: one code path for every text model family."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

from shared.guardrails import Guardrail, converse_trace, findings, usage_cost
from shared.providers.base import Generation, GuardrailBlocked, ModelCallError, bedrock_errors, finish_of

# Generation parameters that go into Converse's inferenceConfig as they are.
INFERENCE_PARAMETERS = ("temperature", "topP", "stopSequences")


class ConverseTextProvider:
    def __init__(self, client: Any, *, temperature: float = 0.7) -> None:
        self._client = client
        self._temperature = temperature

    def generate(
        self,
        model: str,
        prompt: str,
        *,
        system: str | None = None,
        max_tokens: int,
        metadata: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
        messages: list[dict[str, str]] | None = None,
        guardrail: Guardrail | None = None,
    ) -> Generation:
        turns = messages or [{"role": "user", "content": prompt}]
        inference: dict[str, Any] = {"maxTokens": max_tokens, "temperature": self._temperature}
        for name in INFERENCE_PARAMETERS:
            if params and name in params:
                inference[name] = params[name]
        inference["maxTokens"] = max_tokens  # the caller's, which the parameters' maxTokens already decided
        request: dict[str, Any] = {
            "modelId": model,
            "messages": [{"role": t["role"], "content": [{"text": t["content"]}]} for t in turns],
            "inferenceConfig": inference,
        }
        if system:
            request["system"] = [{"text": system}]
        if metadata:
            request["requestMetadata"] = metadata
        if guardrail:
            request["guardrailConfig"] = guardrail.converse_config()
        started = time.monotonic()
        with bedrock_errors():
            response = self._client.converse(**request)
        elapsed_ms = int((time.monotonic() - started) * 1000)
        usage = response.get("usage", {})
        guardrail_usd, action = Decimal(0), None
        if guardrail:
            assessments, units = converse_trace(response)
            input_chars = sum(len(t["content"]) for t in turns) + len(system or "")
            # Units the trace does not report are charged at their worst case.
            guardrail_usd = usage_cost(units) if units is not None else guardrail.converse_bound(input_chars, max_tokens)
            if response.get("stopReason") == "guardrail_intervened":
                blocked_in, masked_in = findings(assessments["input"])
                blocked_out, masked_out = findings(assessments["output"])
                if blocked_in or blocked_out or not (masked_in or masked_out):
                    raise GuardrailBlocked(
                        "input" if blocked_in or (not blocked_out and not assessments["output"]) else "output",
                        blocked_in or blocked_out,
                        input_tokens=int(usage.get("inputTokens", 0)),
                        output_tokens=int(usage.get("outputTokens", 0)),
                        guardrail_usd=guardrail_usd,
                    )
                action = "MASKED"

        blocks = response.get("output", {}).get("message", {}).get("content", [])
        text = "".join(block["text"] for block in blocks if "text" in block)
        if not text:
            stop = response.get("stopReason", "unknown")
            # The model answered: its tokens (and the guardrail's units) are billed all the same.
            raise ModelCallError(
                "EmptyResponse",
                f"the model returned no text (stopReason {stop})",
                retryable=False,
                public=True,
                input_tokens=int(usage.get("inputTokens", 0)),
                output_tokens=int(usage.get("outputTokens", 0)),
                billed_usd=guardrail_usd,
            )
        return Generation(
            model=model,
            content=text.encode("utf-8"),
            content_type="text/plain; charset=utf-8",
            extension="txt",
            input_tokens=int(usage.get("inputTokens", 0)),
            output_tokens=int(usage.get("outputTokens", 0)),
            latency_ms=int(response.get("metrics", {}).get("latencyMs", elapsed_ms)),
            text=text,
            guardrail_usd=guardrail_usd,
            guardrail_action=action,
            finish=finish_of(response.get("stopReason")),
        )
