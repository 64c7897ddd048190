"""A synchronous model call metered like a job's (POST /enhance, the /v1
routes): its worst case reserved on the key's month first, then settled to
what the provider billed, released if it billed nothing, or charged at the
reservation (UNCONFIRMED) when its outcome is unknown. One cost record per
call (shared.costs), so GET /usage counts it with the key's jobs."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from shared.budgets import KeyProfile
from shared.costs import Call, CallLedger, Usage, call_id, period_of
from shared.errors import MonthlyBudgetExceeded
from shared.providers.base import Generation, ModelCallError
from shared.registry import ModelSpec

ZERO = Decimal(0)


def generation_cost(spec: ModelSpec, params: dict[str, Any], generation: Generation) -> Decimal:
    """A model call's cost: its tokens, its images at their size and quality,
    and its guardrail's checks. A model that bills images as tokens
    (gpt-image-1) is charged its tokens only."""
    per_image = spec.image_price(params) if generation.images else None
    if spec.billing == "tokens" and (generation.input_tokens or generation.output_tokens):
        per_image = ZERO  # the images are in its output tokens
    return spec.cost_usd(generation.input_tokens, generation.output_tokens, generation.images, per_image) + (
        generation.guardrail_usd
    )


def sync_call(
    *,
    prefix: str,
    owner: str,
    model: str,
    kind: str,
    reserved: Decimal,
    now: datetime,
    lease_seconds: int,
    request_id: str | None = None,
) -> Call:
    """The record of one synchronous call; its job id names the route
    (`enhance#<uuid>`, `v1#<uuid>`), so GET /usage and the sweeper see it."""
    return Call(
        job_id=f"{prefix}#{request_id or uuid.uuid4()}",
        call_id=call_id(model, 1, 1),
        owner=owner,
        model=model,
        kind=kind,
        reserved=reserved,
        period=period_of(now),
        lease_until=int(now.timestamp()) + lease_seconds,
    )


def reserve(calls: CallLedger, call: Call, profile: KeyProfile, *, now: datetime) -> None:
    """Reserve the call's worst case on the key's month, or refuse it (429)."""
    if calls.reserve(call, limit=profile.monthly_budget_usd, now=now):
        return
    spent, _ = calls.month(call.owner, call.period)
    raise MonthlyBudgetExceeded(
        f"this API key's monthly budget of ${profile.monthly_budget_usd} cannot cover this request "
        f"(spent ${spent:.6f}; it may cost up to ${call.reserved:.6f})",
        details={
            "monthlyBudgetUsd": float(profile.monthly_budget_usd),
            "spentUsd": float(spent),
            "estimatedUsd": float(call.reserved),
        },
    )


def settle(calls: CallLedger, call: Call, generation: Generation, cost: Decimal, *, now: datetime) -> None:
    calls.settle(call, Usage(generation.input_tokens, generation.output_tokens, generation.images), cost, now=now)


def account_failure(
    calls: CallLedger, call: Call, spec: ModelSpec, exc: ModelCallError, *, now: datetime, checked: Decimal = ZERO
) -> Decimal | None:
    """Close a failed call's record: settled when the provider billed it
    although nothing came of it (a guardrail's block, an empty reply) or a
    guardrail check before it was paid for (`checked`); charged at its
    reservation (UNCONFIRMED) when its outcome is unknown; released
    otherwise. Returns what was settled, or None."""
    if exc.outcome_unknown:
        calls.unconfirm(call, now=now, reason=exc.code)
        return None
    if exc.billed_usd is not None or checked:
        cost = spec.cost_usd(exc.input_tokens, exc.output_tokens) + (exc.billed_usd or ZERO) + checked
        calls.settle(call, Usage(exc.input_tokens, exc.output_tokens), cost, now=now)
        return cost
    calls.release(call, now=now)
    return None
