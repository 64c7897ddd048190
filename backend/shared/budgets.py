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

from shared.guardrails import Guardrail, units_bound
from shared.providers.chart import REPAIR_PROBLEM_BYTES, REPAIR_QUOTE_BYTES, REPAIR_TEMPLATE, chart_request, chart_system
from shared.registry import ModelSpec

ZERO = Decimal(0)
TEMPLATE_TOKENS = 64  # a chat template's own tokens per request (role markers, BOS/EOS), generously
PROFILE = "profile"
TIERS = ("standard", "free")


TURN_TOKENS = 16  # the chat template's tokens around each turn of a conversation, generously


@dataclass(frozen=True)
class JobInput:
    """What a job sends its models: a prompt (rendered from its template, if
    any), or a conversation (user and assistant turns; `prompt` is then its
    last user turn), and a chart's records."""

    prompt: str
    data: list | None = None
    messages: tuple[dict[str, str], ...] = ()

    @classmethod
    def of(cls, job: dict[str, Any]) -> JobInput:
        return cls(prompt=job["prompt"], data=job.get("data"), messages=tuple(job.get("messages") or ()))

    def texts(self) -> list[str]:
        return [m["content"] for m in self.messages] if self.messages else [self.prompt]

    @property
    def chars(self) -> int:
        return sum(len(t) for t in self.texts())


def input_token_bound(*texts: str | None, turns: int = 1) -> int:
    """The most tokens a request made of these texts can count as input."""
    return sum(len(t.encode("utf-8")) for t in texts if t) + TEMPLATE_TOKENS + TURN_TOKENS * max(turns - 1, 0)


def text_call_bound(
    spec: ModelSpec,
    *,
    prompt: str | list[str],
    system: str | None,
    max_tokens: int,
    guardrail: Guardrail | None = None,
) -> Decimal:
    """The most one text call can cost: every byte a token, every output token
    used (max_tokens, within the model's limit), and its guardrail's checks."""
    texts = [prompt] if isinstance(prompt, str) else prompt
    output = spec.output_limit(max_tokens)
    cost = spec.cost_usd(input_token_bound(*texts, system, turns=len(texts)), output)
    if guardrail:
        cost += guardrail.converse_bound(sum(len(t) for t in texts) + len(system or ""), output)
    return cost


def repair_call_bound(
    spec: ModelSpec, *, request: str, system: str, max_tokens: int, guardrail: Guardrail | None = None
) -> Decimal:
    """The most a chart's repair call can cost: the request, the first reply
    as quoted (cut at REPAIR_QUOTE_BYTES), the reason (cut at
    REPAIR_PROBLEM_BYTES) and the repair's own words, before any of them is known."""
    repair_bytes = len(request.encode()) + REPAIR_QUOTE_BYTES + REPAIR_PROBLEM_BYTES + len(REPAIR_TEMPLATE.encode())
    cost = spec.cost_usd(repair_bytes + len(system.encode()) + TEMPLATE_TOKENS, spec.output_limit(max_tokens))
    if guardrail:
        cost += guardrail.converse_bound(repair_bytes + len(system), spec.output_limit(max_tokens))
    return cost


def image_bound(spec: ModelSpec, params: dict[str, Any], job_input: JobInput, guardrail: Guardrail | None) -> Decimal:
    """An image call's price (its count, at its size, quality and steps), and
    the guardrail's check of its prompts first. A model that bills tokens
    (gpt-image-1) adds its prompt's input tokens, every byte a token; its
    image prices bound the output tokens of each image."""
    cost = spec.cost_usd(0, 0, images=int(params.get("count", 1)), image_price=spec.image_price(params))
    if spec.billing == "tokens":
        cost += spec.cost_usd(input_token_bound(job_input.prompt), 0)
    return cost + (guardrail_check_bound(job_input.chars, params) if guardrail else ZERO)


def guardrail_check_bound(prompt_chars: int, params: dict[str, Any]) -> Decimal:
    """What ApplyGuardrail on a prompt (and its negative prompt) can cost."""
    return units_bound(prompt_chars) + units_bound(len(params.get("negativePrompt", "")))


def _in_call(spec: ModelSpec, guardrail: Guardrail | None) -> Guardrail | None:
    """The guardrail a model's own calls carry (Converse's guardrailConfig)."""
    return guardrail if spec.guardrail_in_call else None


def input_check_bound(spec: ModelSpec, kind: str, job_input: JobInput, guardrail: Guardrail | None) -> Decimal:
    """The ApplyGuardrail check of a text or chart job's input before a call
    to a model whose calls cannot carry the guardrail (providers beyond Bedrock)."""
    if guardrail is None or spec.guardrail_in_call or kind == "image":
        return ZERO
    return sum((units_bound(len(text)) for text in job_input.texts()), ZERO)


def work_bound(
    spec: ModelSpec, kind: str, job_input: JobInput, params: dict[str, Any], guardrail: Guardrail | None = None
) -> Decimal:
    """The worst case of one model's work in a job: one call; a chart may take
    two (the spec, and one repair that quotes the first answer), and its
    prompt carries the data; an image is its price. A model beyond Bedrock
    adds the guardrail's check of the input, if the deployment has one."""
    if kind == "image":
        return image_bound(spec, params, job_input, guardrail)
    return (
        first_call_bound(spec, kind, job_input, params, guardrail)
        + _later_calls_bound(spec, kind, job_input, params, guardrail)
        + input_check_bound(spec, kind, job_input, guardrail)
    )


def _later_calls_bound(
    spec: ModelSpec, kind: str, job_input: JobInput, params: dict[str, Any], guardrail: Guardrail | None
) -> Decimal:
    if kind != "chart":
        return ZERO
    request, system = chart_request(job_input.prompt, job_input.data), chart_system(params.get("system"))
    return repair_call_bound(
        spec, request=request, system=system, max_tokens=int(params["maxTokens"]), guardrail=_in_call(spec, guardrail)
    )


def first_call_bound(
    spec: ModelSpec, kind: str, job_input: JobInput, params: dict[str, Any], guardrail: Guardrail | None = None
) -> Decimal:
    """The worst case of a model's first call (what is reserved before it).
    A guardrail check by ApplyGuardrail (an image's prompts; the input of a
    model beyond Bedrock) is a call of its own (shared.guardrails)."""
    if kind == "image":
        return image_bound(spec, params, job_input, None)
    max_tokens, in_call = int(params["maxTokens"]), _in_call(spec, guardrail)
    if kind == "chart":
        request, system = chart_request(job_input.prompt, job_input.data), chart_system(params.get("system"))
        return text_call_bound(spec, prompt=request, system=system, max_tokens=max_tokens, guardrail=in_call)
    return text_call_bound(spec, prompt=job_input.texts(), system=params.get("system"), max_tokens=max_tokens, guardrail=in_call)


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
