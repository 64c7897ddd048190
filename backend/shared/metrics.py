"""Business metrics shared by the functions: per-model usage (tokens, cost,
outcome), with the model as a dimension, in the function's metrics namespace
(POWERTOOLS_METRICS_NAMESPACE). The dashboard and the spend alarm read them;
the CostTracking table stays the record of truth."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit


def record_model_usage(call: dict[str, Any]) -> None:
    """One EMF record per call: ModelCalls<Outcome>, ModelInputTokens,
    ModelOutputTokens and ModelCostUsd, by model. (An isolated metrics object:
    the function's own metrics keep their dimensions.)"""
    metrics = EphemeralMetrics()
    metrics.add_dimension(name="model", value=str(call.get("model", "unknown")))
    status = str(call.get("status", "UNKNOWN")).title()
    metrics.add_metric(name=f"ModelCalls{status}", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="ModelInputTokens", unit=MetricUnit.Count, value=int(call.get("inputTokens", 0) or 0))
    metrics.add_metric(name="ModelOutputTokens", unit=MetricUnit.Count, value=int(call.get("outputTokens", 0) or 0))
    metrics.add_metric(name="ModelCostUsd", unit=MetricUnit.NoUnit, value=float(call.get("costUsd", 0) or 0))
    metrics.flush_metrics()
