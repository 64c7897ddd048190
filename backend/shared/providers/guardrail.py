"""ApplyGuardrail: the deployment's guardrail on a prompt before a call that
cannot carry it (image models; models outside Bedrock)."""

from __future__ import annotations

import time
from typing import Any

from shared.guardrails import Guardrail, findings, usage_cost
from shared.providers.base import Generation, GuardrailBlocked, bedrock_errors


class GuardrailCheck:
    """Checks a call's input texts (its prompt, its negative prompt). Passed:
    a Generation whose `text` lines are the texts to send (masked where the
    guardrail anonymised them), costing `guardrail_usd`. Blocked:
    GuardrailBlocked, billed."""

    def __init__(self, client: Any, guardrail: Guardrail) -> None:
        self._client = client
        self._guardrail = guardrail

    def check(self, texts: list[str]) -> tuple[Generation, list[str]]:
        started = time.monotonic()
        with bedrock_errors():
            response = self._client.apply_guardrail(
                guardrailIdentifier=self._guardrail.id,
                guardrailVersion=self._guardrail.version,
                source="INPUT",
                content=[{"text": {"text": t}} for t in texts],
            )
        cost = usage_cost(response.get("usage"))
        sent = list(texts)
        if response.get("action") == "GUARDRAIL_INTERVENED":
            blocked, masked = findings(response.get("assessments", []))
            if blocked or not masked:
                raise GuardrailBlocked("input", blocked, guardrail_usd=cost)
            outputs = [o.get("text", "") for o in response.get("outputs", [])]
            if len(outputs) == len(texts):  # the anonymised texts, in order
                sent = outputs
        generation = Generation(
            model="guardrail",
            content=b"",
            content_type="text/plain",
            extension="txt",
            input_tokens=0,
            output_tokens=0,
            latency_ms=int((time.monotonic() - started) * 1000),
            guardrail_usd=cost,
            guardrail_action="MASKED" if sent != list(texts) else None,
        )
        return generation, sent
