"""The monitoring layer as an on-call engineer meets it: every alarm notifies
the topic and links a runbook that exists, the dashboard body is valid JSON
showing every alarm, thresholds follow the environment, the budget exists only
where asked and possible, and the log metric filters match lines the code logs."""

from __future__ import annotations

import json
import re
from functools import cache

import pytest

from cfn_render import Rendered, render
from tests.templates import ROOT, root

CONFIG = root()["Mappings"]["EnvironmentConfig"]


@cache
def monitoring(environment: str = "prod", **extra: str) -> Rendered:
    rendered = render(parameters={"Environment": environment, "AlarmEmail": "ops@example.com", **extra})
    return rendered.children["MonitoringStack"]


def alarms(layer: Rendered) -> dict[str, dict]:
    return {k: v["Properties"] for k, v in layer.of_type("AWS::CloudWatch::Alarm").items()}


def test_every_alarm_notifies_the_topic_and_links_an_existing_runbook():
    for logical_id, alarm in alarms(monitoring()).items():
        assert alarm["AlarmActions"] == alarm["OKActions"] == ["{Ref:AlarmTopic}"], logical_id
        (runbook,) = re.findall(r"docs/runbooks/[\w-]+\.md", alarm["AlarmDescription"])
        assert (ROOT / runbook).is_file(), f"{logical_id}: {runbook} is missing"
        assert alarm["TreatMissingData"] == "notBreaching", logical_id


def test_the_alarm_set_covers_every_failure_signal_the_issue_names():
    names = {a["AlarmName"].removeprefix("genstack-MonitoringStack-") for a in alarms(monitoring()).values()}
    assert names >= {
        "api-5xx",
        "api-latency-p99",
        "function-throttles",
        "dlq-not-empty",
        "queue-oldest-message",
        "dynamodb-throttles",
        "daily-spend",
        "generate-errors",
        "worker-errors",
    }


def test_metric_math_alarms_stay_within_the_ten_metric_limit():
    for logical_id, alarm in alarms(monitoring()).items():
        metrics = [m for m in alarm.get("Metrics", []) if "MetricStat" in m]
        assert len(metrics) <= 10, logical_id


@pytest.mark.parametrize("environment", ["staging", "prod"])
def test_thresholds_follow_the_environment(environment):
    by_name = {a["AlarmName"].rsplit("-MonitoringStack-", 1)[-1]: a for a in alarms(monitoring(environment)).values()}
    row = CONFIG[environment]
    assert int(by_name["api-latency-p99"]["Threshold"]) == row["ApiLatencyP99Ms"]
    assert int(by_name["queue-oldest-message"]["Threshold"]) == row["QueueAgeAlarmSeconds"]
    assert int(by_name["api-5xx"]["Threshold"]) == row["Api5xxThreshold"]
    assert int(by_name["generate-errors"]["Threshold"]) == row["FunctionErrorsThreshold"]


def test_the_dashboard_body_is_valid_and_shows_every_alarm():
    layer = monitoring()
    body = layer.props("Dashboard")["DashboardBody"]
    assert "${" not in body, "every substitution is resolved"
    dashboard = json.loads(body)
    widgets = dashboard["widgets"]
    (alarm_widget,) = [w for w in widgets if w["type"] == "alarm"]
    shown = {a.removeprefix("{GetAtt:").removesuffix(".Arn}") for a in alarm_widget["properties"]["alarms"]}
    assert shown == set(alarms(layer))
    titles = " / ".join(w["properties"]["title"] for w in widgets)
    for topic in ("API requests", "latency", "queue", "Jobs by outcome", "throttles", "duration", "cost", "Tokens", "DynamoDB"):
        assert topic in titles, topic
    for widget in widgets:
        props = widget["properties"]
        assert widget["width"] <= 24
        if widget["type"] == "metric":
            assert props["region"] == "us-east-1"
            assert props["metrics"], props["title"]


def test_dev_has_neither_alarms_nor_dashboard():
    layer = monitoring("dev")
    assert not alarms(layer)
    assert "Dashboard" not in layer.resources


@pytest.mark.parametrize(
    ("extra", "created"),
    [
        ({}, False),
        ({"MonthlyBudgetUsd": "300"}, True),
        ({"MonthlyBudgetUsd": "300", "DeployTarget": "local-emulator"}, False),
    ],
)
def test_the_account_budget_exists_only_when_asked_and_on_aws(extra, created):
    layer = monitoring("prod", **extra)
    assert ("AccountBudget" in layer.resources) is created
    if created:
        budget = layer.props("AccountBudget")
        assert budget["Budget"]["BudgetLimit"] == {"Amount": "300", "Unit": "USD"}
        assert {n["Notification"]["NotificationType"] for n in budget["NotificationsWithSubscribers"]} == {"ACTUAL", "FORECASTED"}
        for notification in budget["NotificationsWithSubscribers"]:
            assert notification["Subscribers"] == [{"SubscriptionType": "EMAIL", "Address": "ops@example.com"}]


def test_a_budget_without_an_address_is_refused():
    failures = render(parameters={"MonthlyBudgetUsd": "300"}).rule_failures
    assert [f.split(":")[0] for f in failures] == ["BudgetNeedsAnEmail"]


def test_log_metric_filters_match_what_the_worker_logs():
    worker = (ROOT / "backend/worker/service.py").read_text()
    filters = {
        k: v["Properties"]
        for k, v in render(parameters={"Environment": "prod", "AlarmEmail": "a@b.co"}).of_type("AWS::Logs::MetricFilter").items()
    }
    retried = filters["BedrockRetriesMetricFilter"]
    logged = re.search(r'\$\.message = "([^"]+)"', retried["FilterPattern"]).group(1)
    assert f'logger.info("{logged}"' in worker
    assert filters["WorkerTimeoutsMetricFilter"]["FilterPattern"] == '"Task timed out"'
    for metric_filter in filters.values():
        assert metric_filter["LogGroupName"] == "{Ref:WorkerLogGroup}"
        assert metric_filter["MetricTransformations"][0]["MetricNamespace"] == "genstack/genstack"
