"""GET /usage: what a key spent, has reserved and has left, month by month,
with tokens and cost by model, read from its ledger items (shared.costs)."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Any

from shared.budgets import KeyProfile
from shared.costs import CallLedger, period_of
from shared.errors import InvalidRequest

MAX_MONTHS = 12
_PERIOD = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def is_month(period: str) -> bool:
    """Whether a ledger item's period is a month's (not a model line, the profile or a slot)."""
    return bool(_PERIOD.match(period))


def _month_index(period: str, field: str) -> int:
    match = _PERIOD.match(period)
    if not match:
        raise InvalidRequest(f"{field} must be a month as YYYY-MM (got '{period[:20]}')", details={"field": field})
    return int(match.group(1)) * 12 + int(match.group(2)) - 1


def month_range(first: str | None, last: str | None, now: datetime) -> list[str]:
    """The months from `first` to `last` (both YYYY-MM; default: this month), at most MAX_MONTHS."""
    current = _month_index(period_of(now), "now")
    end = _month_index(last, "to") if last else None
    start = _month_index(first, "from") if first else None
    if end is None:
        end = current if start is None else max(start, current)
    if start is None:
        start = end
    if end < start:
        raise InvalidRequest("to must not be before from", details={"field": "to"})
    if end - start >= MAX_MONTHS:
        raise InvalidRequest(f"a usage query covers at most {MAX_MONTHS} months", details={"field": "from"})
    return [f"{i // 12:04d}-{i % 12 + 1:02d}" for i in range(start, end + 1)]


def _number(value: Any) -> int | float:
    number = Decimal(str(value or 0))
    return int(number) if number == number.to_integral_value() else float(number)


def usage_view(
    owner: str, *, calls: CallLedger, profile: KeyProfile, first: str | None, last: str | None, now: datetime
) -> dict[str, Any]:
    periods = month_range(first, last, now)
    items = calls.months(owner, periods[0], periods[-1])
    months: dict[str, dict[str, Any]] = {
        p: {"period": p, "spentUsd": 0, "reservedUsd": 0, "calls": 0, "unconfirmedCalls": 0, "models": []} for p in periods
    }
    for item in items:
        period, _, model = item["period"].partition("#")
        if period not in months:
            continue
        month = months[period]
        if model:
            line = {
                "model": model,
                "calls": _number(item.get("calls")),
                "inputTokens": _number(item.get("inputTokens")),
                "outputTokens": _number(item.get("outputTokens")),
                "images": _number(item.get("images")),
                "costUsd": _number(item.get("costUsd")),
                "unconfirmedCalls": _number(item.get("unconfirmedCalls")),
            }
            month["models"].append(line)
            month["calls"] += line["calls"]
            month["unconfirmedCalls"] += line["unconfirmedCalls"]
        else:
            reserved = Decimal(str(item.get("reservedUsd", 0)))
            month["spentUsd"] = _number(Decimal(str(item.get("spentUsd", 0))) - reserved)
            month["reservedUsd"] = _number(reserved)
    budget = profile.monthly_budget_usd
    for month in months.values():
        month["models"].sort(key=lambda line: line["model"])
        left = budget - Decimal(str(month["spentUsd"])) - Decimal(str(month["reservedUsd"]))
        month["remainingUsd"] = _number(max(left, Decimal(0)))
    current = months.get(period_of(now))
    view: dict[str, Any] = {
        "tier": profile.tier,
        "monthlyBudgetUsd": _number(budget),
        "budgetSetForThisKey": profile.own_budget,
        "months": list(months.values()),
    }
    if current is not None:
        view.update(
            period=current["period"],
            spentUsd=current["spentUsd"],
            reservedUsd=current["reservedUsd"],
            remainingUsd=current["remainingUsd"],
        )
    return view
