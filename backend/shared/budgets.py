"""Budgets: what a job may spend, and what an API key may spend per month.

The job budget is kept by the one worker that holds the job's lease (in
memory, thread-safe). The monthly key budget is shared by every worker and
API function, so it lives in the BudgetLedger table and changes only by atomic
conditional ADDs: a call reserves its worst-case cost first and is settled to
its actual cost after."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from shared.dynamo import if_condition, plain
from shared.providers.chart import chart_request
from shared.registry import ModelSpec

ZERO = Decimal(0)
LEDGER_RETENTION = timedelta(days=400)  # a year of history, then TTL removes it


def call_estimate(spec: ModelSpec, kind: str, prompt: str, data: list | None, max_tokens: int) -> Decimal:
    """The worst case of one model's work in a job: a chart may take two calls
    (the spec, and one repair that quotes the first answer) and its prompt
    carries the data."""
    if kind == "chart":
        return spec.estimate_usd(len(chart_request(prompt, data)) * 2, max_tokens, calls=2)
    return spec.estimate_usd(len(prompt), max_tokens)


def period_of(now: datetime) -> str:
    return now.strftime("%Y-%m")


class JobBudget:
    """Reservations against one job's budget; `spent` carries what earlier runs
    of the job already spent (a takeover resumes with it)."""

    def __init__(self, budget: Decimal, spent: Decimal = ZERO) -> None:
        self.budget = budget
        self.spent = spent
        self._reserved = ZERO
        self._lock = threading.Lock()

    def try_reserve(self, amount: Decimal) -> bool:
        with self._lock:
            if self.spent + self._reserved + amount > self.budget:
                return False
            self._reserved += amount
            return True

    def settle(self, reserved: Decimal, actual: Decimal) -> None:
        with self._lock:
            self._reserved -= reserved
            self.spent += actual


class BudgetLedger:
    def __init__(self, table: Any, *, monthly_limit: Decimal) -> None:
        self._table = table
        self.monthly_limit = monthly_limit

    def spent(self, owner: str, now: datetime) -> Decimal:
        item = self._table.get_item(Key={"owner": owner, "period": period_of(now)}, ConsistentRead=True).get("Item")
        return Decimal(item["spentUsd"]) if item else ZERO

    def try_reserve(self, owner: str, amount: Decimal, now: datetime) -> bool:
        """Add `amount` unless that would take the month past the limit."""
        if amount > self.monthly_limit:
            return False
        written = if_condition(
            self._table.update_item,
            Key={"owner": owner, "period": period_of(now)},
            UpdateExpression="ADD spentUsd :amount SET expiresAt = if_not_exists(expiresAt, :expires)",
            ConditionExpression="attribute_not_exists(spentUsd) OR spentUsd <= :ceiling",
            ExpressionAttributeValues={
                ":amount": plain(amount),
                ":ceiling": plain(self.monthly_limit - amount),
                ":expires": int((now + LEDGER_RETENTION).timestamp()),
            },
        )
        return written is not None

    def adjust(self, owner: str, delta: Decimal, now: datetime) -> None:
        """Settle a reservation to the actual cost (or release it: a negative delta)."""
        if delta == ZERO:
            return
        self._table.update_item(
            Key={"owner": owner, "period": period_of(now)},
            UpdateExpression="ADD spentUsd :delta SET expiresAt = if_not_exists(expiresAt, :expires)",
            ExpressionAttributeValues={":delta": plain(delta), ":expires": int((now + LEDGER_RETENTION).timestamp())},
        )
