"""Improving a prompt with the deployment's enhance model."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from shared.budgets import BudgetLedger
from shared.errors import ModelRejected, ModelThrottled, ModelUnavailable, MonthlyBudgetExceeded
from shared.providers import ModelCallError, Provider
from shared.registry import enabled_specs
from shared.settings import Settings

_COMMON = (
    "You rewrite prompts for generative models. Keep the user's intent, language and any "
    "facts or data they gave; make the request specific and unambiguous. Answer with the "
    "improved prompt only: no preamble, no quotes, no explanation."
)

SYSTEM_PROMPTS = {
    "text": _COMMON + " The prompt is for a text model: state the audience, the format, the length and the tone.",
    "image": _COMMON + " The prompt is for an image model: describe subject, composition, style, lighting and colours.",
    "chart": _COMMON + " The prompt is for a chart: name the chart type, what goes on each axis, the grouping and the title.",
}


MAX_TOKENS = 1024


def enhance_prompt(
    prompt: str, kind: str, *, owner: str, settings: Settings, provider: Provider, ledger: BudgetLedger, now: datetime
) -> dict[str, Any]:
    """One model call, metered in the key's monthly ledger: its worst case is
    reserved first (429 if the month cannot cover it), then settled to its cost."""
    model = settings.enhance_model_id
    spec = enabled_specs((model,))[model]  # an unknown EnhanceModelId is a deployment error
    estimate = spec.estimate_usd(len(prompt) + len(SYSTEM_PROMPTS[kind]), MAX_TOKENS)
    if not ledger.try_reserve(owner, estimate, now):
        raise MonthlyBudgetExceeded(f"this API key's monthly budget of ${ledger.monthly_limit} is spent")
    actual = Decimal(0)
    try:
        generation = provider.generate(model, prompt, system=SYSTEM_PROMPTS[kind], max_tokens=spec.output_limit(MAX_TOKENS))
        actual = spec.cost_usd(generation.input_tokens, generation.output_tokens)
    except ModelCallError as exc:
        if exc.code == "ThrottlingException":
            raise ModelThrottled("the enhance model is throttled; retry in a few seconds") from exc
        if exc.code == "ValidationException":
            raise ModelRejected(f"the enhance model refused the prompt: {exc.public}") from exc
        raise ModelUnavailable(f"the enhance model failed ({exc.code}); retry later") from exc
    finally:
        ledger.adjust(owner, actual - estimate, now)
    improved = (generation.text or "").strip()
    return {
        "prompt": improved,
        "original": prompt,
        "kind": kind,
        "model": model,
        "inputTokens": generation.input_tokens,
        "outputTokens": generation.output_tokens,
        "costUsd": float(actual),
    }
