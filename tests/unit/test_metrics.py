"""The business metrics the dashboard and the spend alarm read: one EMF record
per model call, with the model as a dimension, in the deployment's namespace."""

from __future__ import annotations

import json

from shared.metrics import record_model_usage


def emf_records(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{") and "_aws" in line]


def test_a_call_is_one_emf_record_with_tokens_cost_and_outcome_by_model(capsys, monkeypatch):
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "genstack/test-stack")
    record_model_usage(
        {"model": "amazon.nova-lite-v1:0", "status": "SUCCEEDED", "inputTokens": 12, "outputTokens": 30, "costUsd": 7.92e-06}
    )
    (record,) = emf_records(capsys.readouterr().out)
    (directive,) = record["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "genstack/test-stack"
    assert sorted(directive["Dimensions"][0]) == ["model", "service"]
    assert {m["Name"] for m in directive["Metrics"]} == {
        "ModelCallsSucceeded",
        "ModelInputTokens",
        "ModelOutputTokens",
        "ModelCostUsd",
    }
    assert record["model"] == "amazon.nova-lite-v1:0"
    assert (record["ModelInputTokens"], record["ModelOutputTokens"], record["ModelCostUsd"]) == ([12.0], [30.0], [7.92e-06])


def test_a_failed_or_skipped_call_counts_under_its_own_outcome(capsys, monkeypatch):
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "genstack/test-stack")
    record_model_usage({"model": "m", "status": "FAILED", "costUsd": 0})
    record_model_usage({"model": "m", "status": "SKIPPED"})
    names = [set(r) & {"ModelCallsFailed", "ModelCallsSkipped"} for r in emf_records(capsys.readouterr().out)]
    assert names == [{"ModelCallsFailed"}, {"ModelCallsSkipped"}]
