"""Bedrock Guardrails on every model call, when the deployment names one
(template parameters GuardrailId and GuardrailVersion, or CreateGuardrail).

- Text calls (jobs, charts, /enhance) pass it to Converse (guardrailConfig):
  Bedrock checks the input before the model runs and the output after; a
  blocked call answers with stopReason "guardrail_intervened".
- Image prompts (and the prompts of models outside Bedrock) are checked first
  with ApplyGuardrail (source INPUT): a blocked prompt is never sent.
A blocked input or output ends that model's result as BLOCKED with the
guardrail's reason (which policy, which filter or topic). Masking (PII set to
ANONYMIZE) is not a block: the call goes on with the masked text.

Money: a guardrail is billed per policy unit (a unit is up to 1,000
characters evaluated by one policy; prices in registry.json "guardrail").
Its worst case is reserved with the call it guards: every policy priced,
every text evaluated, the output at OUTPUT_CHARS_PER_TOKEN characters per
token; the units Bedrock reports are what is recorded."""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

from shared.registry import registry_data

UNIT_CHARS = 1000
# A bound on the characters of one output token, for the output check's units:
# the tokens of these vocabularies are word pieces, far shorter. (A longer
# reply is still recorded at what Bedrock reports.)
OUTPUT_CHARS_PER_TOKEN = 32
GUARDRAIL_MODEL = "bedrock-guardrail"  # the model name its own calls (ApplyGuardrail) are recorded under


@lru_cache(maxsize=1)
def unit_prices() -> dict[str, Decimal]:
    return {k: Decimal(str(v)) for k, v in registry_data()["guardrail"].items() if not k.startswith("_")}


def units(chars: int) -> int:
    return math.ceil(chars / UNIT_CHARS) if chars > 0 else 0


def units_bound(chars: int) -> Decimal:
    """The most evaluating `chars` characters can cost (every policy priced)."""
    return (sum(unit_prices().values(), Decimal(0)) * units(chars)).quantize(Decimal("0.00000001"))


def usage_cost(usage: dict[str, Any] | None) -> Decimal:
    """What the policy units Bedrock reported cost."""
    prices = unit_prices()
    total = sum((prices.get(k, Decimal(0)) * int(v) for k, v in (usage or {}).items() if isinstance(v, int)), Decimal(0))
    return total.quantize(Decimal("0.00000001"))


@dataclass(frozen=True)
class Guardrail:
    id: str
    version: str

    def converse_config(self) -> dict[str, str]:
        return {"guardrailIdentifier": self.id, "guardrailVersion": self.version, "trace": "enabled"}

    def converse_bound(self, input_chars: int, max_tokens: int) -> Decimal:
        """The guardrail's worst case within one Converse call: the input, and an output of max_tokens."""
        return units_bound(input_chars) + units_bound(max_tokens * OUTPUT_CHARS_PER_TOKEN)

    def view(self) -> dict[str, str]:
        return {"id": self.id, "version": self.version}


def guardrail_of(guardrail_id: str, version: str) -> Guardrail | None:
    return Guardrail(guardrail_id, version or "DRAFT") if guardrail_id else None


# ----------------------------------------------------------------- reasons
def _policy_findings(assessment: dict[str, Any]) -> tuple[list[str], bool]:
    """What one assessment blocked ("content filter VIOLENCE", "denied topic
    Investment advice"), and whether it masked anything."""
    found, masked = [], False
    for topic in assessment.get("topicPolicy", {}).get("topics", []):
        if topic.get("action") == "BLOCKED":
            found.append(f"denied topic {topic.get('name', '?')}")
    for item in assessment.get("contentPolicy", {}).get("filters", []):
        if item.get("action") == "BLOCKED":
            found.append(f"content filter {item.get('type', '?')}")
    words = assessment.get("wordPolicy", {})
    for item in words.get("customWords", []) + words.get("managedWordLists", []):
        if item.get("action") == "BLOCKED":
            found.append("word filter")
    pii = assessment.get("sensitiveInformationPolicy", {})
    for item in pii.get("piiEntities", []) + pii.get("regexes", []):
        if item.get("action") == "BLOCKED":
            found.append(f"sensitive information {item.get('type') or item.get('name', '?')}")
        elif item.get("action") == "ANONYMIZED":
            masked = True
    for item in assessment.get("contextualGroundingPolicy", {}).get("filters", []):
        if item.get("action") == "BLOCKED":
            found.append(f"grounding {item.get('type', '?')}")
    return sorted(set(found)), masked


def findings(assessments: list[dict[str, Any]]) -> tuple[list[str], bool]:
    blocked, masked = [], False
    for assessment in assessments:
        found, was_masked = _policy_findings(assessment)
        blocked += found
        masked = masked or was_masked
    return sorted(set(blocked)), masked


def assessment_usage(assessments: list[dict[str, Any]]) -> dict[str, int]:
    """The policy units of a Converse trace's assessments, added up."""
    total: dict[str, int] = {}
    for assessment in assessments:
        for k, v in assessment.get("invocationMetrics", {}).get("usage", {}).items():
            total[k] = total.get(k, 0) + int(v)
    return total


def converse_trace(response: dict[str, Any]) -> tuple[dict[str, list[dict[str, Any]]], dict[str, int] | None]:
    """A Converse response's guardrail assessments, by where (input, output),
    and their policy units (None when the trace did not report them)."""
    trace = response.get("trace", {}).get("guardrail", {})
    inputs = list(trace.get("inputAssessment", {}).values())
    outputs = [a for group in trace.get("outputAssessments", {}).values() for a in group]
    every = inputs + outputs
    usage = assessment_usage(every) if any("invocationMetrics" in a for a in every) else None
    return {"input": inputs, "output": outputs}, usage
