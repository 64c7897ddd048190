"""Budgets: what a call may cost at worst, what a job may spend, and what
each API key may spend per month.

Worst cases are bounds, not averages. A prompt of B bytes of UTF-8 is at most
B tokens: every tokenizer Bedrock's text models use splits text into pieces
of at least one byte (byte-level BPE; SentencePiece with byte fallback), so a
token never covers less than a byte, in any script. Chat templates add a few
tokens per message, bounded by TEMPLATE_TOKENS. The output is bounded by
max_tokens. (English averages about four bytes a token, Chinese or Japanese
about one and a half, so the bound is 1.5 to 4 times what a call usually
costs: a reservation refuses early, never overspends.)

The job budget is kept by the one worker that holds the job's lease (in
memory, thread-safe). The monthly key budget is shared by every worker and
API function; it lives in the BudgetLedger table (shared.costs). Each key's
budget is its tier's (template parameters MonthlyKeyBudgetUsd for standard,
FreeKeyMonthlyBudgetUsd for free) unless an operator set one for the key
(infrastructure/scripts/api_key.py set-budget); both live in the key's
profile item (owner, "profile"), which api_key.py writes when it issues a key.
A key without a profile (the stack's first key, keys made in the console) is
on the standard tier."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from shared.providers.chart import REPAIR_PROBLEM_BYTES, REPAIR_QUOTE_BYTES, REPAIR_TEMPLATE, SYSTEM, chart_request
from shared.registry import ModelSpec

ZERO = Decimal(0)
TEMPLATE_TOKENS = 64  # a chat template's own tokens per request (role markers, BOS/EOS), generously
PROFILE = "profile"
TIERS = ("standard", "free")


def input_token_bound(*texts: str | None) -> int:
    """The most tokens a request made of these texts can count as input."""
    return sum(len(t.encode("utf-8")) for t in texts if t) + TEMPLATE_TOKENS


def text_call_bound(spec: ModelSpec, *, prompt: str, system: str | None, max_tokens: int) -> Decimal:
    """The most one text call can cost: every byte a token, every output token used."""
    return spec.cost_usd(input_token_bound(prompt, system), spec.output_limit(max_tokens))


def repair_call_bound(spec: ModelSpec, *, request: str, max_tokens: int) -> Decimal:
    """The most a chart's repair call can cost: the request, the first reply
    as quoted (cut at REPAIR_QUOTE_BYTES), the reason (cut at
    REPAIR_PROBLEM_BYTES) and the repair's own words, before any of them is known."""
    repair_bytes = len(request.encode()) + REPAIR_QUOTE_BYTES + REPAIR_PROBLEM_BYTES + len(REPAIR_TEMPLATE.encode())
    return spec.cost_usd(repair_bytes + len(SYSTEM.encode()) + TEMPLATE_TOKENS, spec.output_limit(max_tokens))


def work_bound(spec: ModelSpec, kind: str, prompt: str, data: list | None, max_tokens: int) -> Decimal:
    """The worst case of one model's work in a job: one call; a chart may take
    two (the spec, and one repair that quotes the first answer), and its
    prompt carries the data; an image is its price."""
    if kind == "image":
        return spec.cost_usd(0, 0, images=1)
    if kind == "chart":
        request = chart_request(prompt, data)
        first = text_call_bound(spec, prompt=request, system=SYSTEM, max_tokens=max_tokens)
        return first + repair_call_bound(spec, request=request, max_tokens=max_tokens)
    return text_call_bound(spec, prompt=prompt, system=None, max_tokens=max_tokens)


def first_call_bound(spec: ModelSpec, kind: str, prompt: str, data: list | None, max_tokens: int) -> Decimal:
    """The worst case of a model's first call (what is reserved before it)."""
    if kind == "image":
        return spec.cost_usd(0, 0, images=1)
    if kind == "chart":
        return text_call_bound(spec, prompt=chart_request(prompt, data), system=SYSTEM, max_tokens=max_tokens)
    return text_call_bound(spec, prompt=prompt, system=None, max_tokens=max_tokens)


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


@dataclass(frozen=True)
class KeyProfile:
    tier: str
    monthly_budget_usd: Decimal
    own_budget: bool  # set for this key by an operator, not its tier's


class KeyProfiles:
    """Each key's tier and monthly budget, read from its profile item and
    kept for `ttl_seconds` per execution environment (a changed budget takes
    effect within that)."""

    def __init__(self, table: Any, *, tier_budgets: dict[str, Decimal], ttl_seconds: float = 60, clock: Any = time.monotonic):
        self._table = table
        self._tier_budgets = tier_budgets
        self._ttl = ttl_seconds
        self._clock = clock
        self._cache: dict[str, tuple[float, KeyProfile]] = {}

    def of(self, owner: str) -> KeyProfile:
        now = self._clock()
        cached = self._cache.get(owner)
        if cached and now - cached[0] < self._ttl:
            return cached[1]
        item = self._table.get_item(Key={"owner": owner, "period": PROFILE}).get("Item") or {}
        tier = item.get("tier") if item.get("tier") in TIERS else "standard"
        own = item.get("monthlyBudgetUsd")
        profile = KeyProfile(
            tier=tier,
            monthly_budget_usd=Decimal(str(own)) if own is not None else self._tier_budgets[tier],
            own_budget=own is not None,
        )
        self._cache[owner] = (now, profile)
        return profile
