"""Improving a prompt with the deployment's enhance model."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from shared.budgets import KeyProfile, text_call_bound
from shared.costs import Call, CallLedger, Usage, call_id, period_of
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
# A reservation made by /enhance outlives the function (29 s) by this margin:
# past it, the sweeper knows the request died and charges the reservation.
LEASE_SECONDS = 60


def enhance_prompt(
    prompt: str,
    kind: str,
    *,
    owner: str,
    settings: Settings,
    provider: Provider,
    calls: CallLedger,
    profile: KeyProfile,
    now: datetime,
    request_id: str | None = None,
) -> dict[str, Any]:
    """One model call, metered like a job's: its worst case is reserved on the
    key's month as a call record first (429 if the month cannot take it), and
    settled to its real cost, released if it failed unbilled, or charged
    (UNCONFIRMED) if its outcome is unknown."""
    model = settings.enhance_model_id
    spec = enabled_specs((model,))[model]  # an unknown EnhanceModelId is a deployment error
    system = SYSTEM_PROMPTS[kind]
    call = Call(
        job_id=f"enhance#{request_id or uuid.uuid4()}",
        call_id=call_id(model, 1, 1),
        owner=owner,
        model=model,
        kind="text",
        reserved=text_call_bound(spec, prompt=prompt, system=system, max_tokens=MAX_TOKENS),
        period=period_of(now),
        lease_until=int(now.timestamp()) + LEASE_SECONDS,
    )
    if not calls.reserve(call, limit=profile.monthly_budget_usd, now=now):
        spent, _ = calls.month(owner, call.period)
        raise MonthlyBudgetExceeded(
            f"this API key's monthly budget of ${profile.monthly_budget_usd} cannot cover this request "
            f"(spent ${spent:.6f}; it may cost up to ${call.reserved:.6f})",
            details={
                "monthlyBudgetUsd": float(profile.monthly_budget_usd),
                "spentUsd": float(spent),
                "estimatedUsd": float(call.reserved),
            },
        )
    try:
        generation = provider.generate(
            model,
            prompt,
            system=system,
            max_tokens=spec.output_limit(MAX_TOKENS),
            metadata={"genstackJobId": call.job_id, "genstackCallId": call.call_id},
        )
    except ModelCallError as exc:
        if exc.outcome_unknown:
            calls.unconfirm(call, now=now, reason=exc.code)
        else:
            calls.release(call, now=now)
        if exc.code == "ThrottlingException":
            raise ModelThrottled("the enhance model is throttled; retry in a few seconds") from exc
        if exc.code == "ValidationException":
            raise ModelRejected(f"the enhance model refused the prompt: {exc.public}") from exc
        raise ModelUnavailable(f"the enhance model failed ({exc.code}); retry later") from exc
    actual = spec.cost_usd(generation.input_tokens, generation.output_tokens)
    calls.settle(call, Usage(generation.input_tokens, generation.output_tokens), actual, now=now)
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
