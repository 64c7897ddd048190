"""Improving a prompt with the deployment's enhance model."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from shared.budgets import JobInput, KeyProfile, input_check_bound, text_call_bound
from shared.costs import CallLedger
from shared.errors import (
    BlockedByGuardrail,
    InvalidRequest,
    ModelRejected,
    ModelThrottled,
    ModelUnavailable,
    ProviderNotConfigured,
)
from shared.guardrails import Guardrail, guardrail_of
from shared.metering import account_failure, generation_cost, reserve, settle, sync_call
from shared.parameters import resolve
from shared.providers import GuardrailBlocked, ModelCallError, Provider
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
# What a request may set of the enhance call (the system prompt is genstack's).
ENHANCE_PARAMETERS = ("temperature", "topP", "maxTokens")


def enhance_parameters(spec: Any, given: dict[str, Any]) -> dict[str, Any]:
    """The enhance call's parameters: the model's defaults, with maxTokens at
    most MAX_TOKENS, and what the request set of ENHANCE_PARAMETERS."""
    others = [name for name in given if name not in ENHANCE_PARAMETERS]
    if others:
        raise InvalidRequest(
            f"/enhance takes the parameters {', '.join(ENHANCE_PARAMETERS)}; not {', '.join(others)}",
            details={"field": f"parameters.{others[0]}", "accepts": list(ENHANCE_PARAMETERS)},
        )
    params = resolve(spec, "text", given, deployment_max_tokens=MAX_TOKENS)
    if params["maxTokens"] > MAX_TOKENS:
        raise InvalidRequest(
            f"parameters.maxTokens may be at most {MAX_TOKENS} on /enhance", details={"field": "parameters.maxTokens"}
        )
    return {k: v for k, v in params.items() if k in ENHANCE_PARAMETERS}


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
    parameters: dict[str, Any] | None = None,
    guardrail_check: Callable[[Guardrail], Any] | None = None,
) -> dict[str, Any]:
    """One model call, metered like a job's: its worst case is reserved on the
    key's month as a call record first (429 if the month cannot take it), and
    settled to its real cost, released if it failed unbilled, or charged
    (UNCONFIRMED) if its outcome is unknown. A model beyond Bedrock cannot
    carry the guardrail in its call: `guardrail_check` (ApplyGuardrail) checks
    the prompt first, under the same record."""
    model = settings.enhance_model_id
    spec = enabled_specs((model,))[model]  # an unknown EnhanceModelId is a deployment error
    system = SYSTEM_PROMPTS[kind]
    params = enhance_parameters(spec, parameters or {})
    max_tokens = int(params["maxTokens"])
    guardrail = guardrail_of(settings.guardrail_id, settings.guardrail_version)
    in_call = guardrail if spec.guardrail_in_call else None
    check = guardrail_check(guardrail) if guardrail and not in_call and guardrail_check else None
    reserved = text_call_bound(spec, prompt=prompt, system=system, max_tokens=max_tokens, guardrail=in_call)
    if check:
        reserved += input_check_bound(spec, "text", JobInput(prompt=prompt), guardrail)
    call = sync_call(
        prefix="enhance",
        owner=owner,
        model=model,
        kind="text",
        reserved=reserved,
        now=now,
        lease_seconds=LEASE_SECONDS,
        request_id=request_id,
    )
    reserve(calls, call, profile, now=now)
    checked = Decimal(0)  # what the guardrail's check of the prompt cost
    try:
        sent = prompt
        if check:
            checked_generation, texts = check.check([prompt])
            checked, sent = checked_generation.guardrail_usd, texts[0]
        generation = provider.generate(
            model,
            sent,
            system=system,
            max_tokens=spec.output_limit(max_tokens),
            metadata={"genstackJobId": call.job_id, "genstackCallId": call.call_id},
            params=params,
            guardrail=guardrail,
        )
    except GuardrailBlocked as exc:  # answered and billed: its cost is recorded
        cost = account_failure(calls, call, spec, exc, now=now, checked=checked)
        raise BlockedByGuardrail(
            f"{exc.public}; this request cost ${cost}",
            details={"blocked": exc.where, "reasons": exc.reasons, "costUsd": float(cost or 0)},
        ) from exc
    except ModelCallError as exc:
        account_failure(calls, call, spec, exc, now=now, checked=checked)
        if exc.billed_usd is not None:  # answered and billed, unusable (an empty reply)
            raise ModelUnavailable(f"the enhance model failed ({exc.code}): {exc.public}") from exc
        if exc.code == "PROVIDER_NOT_CONFIGURED":
            raise ProviderNotConfigured(f"the enhance model {model} cannot be called: {exc.public}") from exc
        if exc.code == "ThrottlingException":
            raise ModelThrottled("the enhance model is throttled; retry in a few seconds") from exc
        if exc.code == "ValidationException":
            raise ModelRejected(f"the enhance model refused the prompt: {exc.public}") from exc
        raise ModelUnavailable(f"the enhance model failed ({exc.code}); retry later") from exc
    actual = generation_cost(spec, params, generation) + checked
    settle(calls, call, generation, actual, now=now)
    improved = (generation.text or "").strip()
    return {
        "prompt": improved,
        "original": prompt,
        "kind": kind,
        "model": model,
        "inputTokens": generation.input_tokens,
        "outputTokens": generation.output_tokens,
        "costUsd": float(actual),
        "parameters": params,
    }
