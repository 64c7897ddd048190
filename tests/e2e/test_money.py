"""Money on the deployed local stack: GET /usage against what the key's jobs
and /enhance cost, a free-tier key refused at its own budget, an operator
setting one key's budget with api_key.py, and the ledger's invariant read
back from the emulator's tables."""

from __future__ import annotations

import subprocess
import sys
import time
from decimal import Decimal

import pytest

from shared.usage import is_month
from tests.e2e.conftest import call, new_key, wait_for_job
from tests.templates import ROOT

pytestmark = pytest.mark.e2e

MODELS = ["amazon.nova-micro-v1:0", "amazon.nova-lite-v1:0"]


def money(value) -> Decimal:
    return Decimal(str(value))


def test_usage_equals_what_the_keys_jobs_and_enhance_cost(deployment):
    key = new_key(deployment)
    costs = []
    for prompt in ("one line about queues", "one line about leases", "one line about ledgers"):
        accepted = call(deployment, "POST", "/generate", {"prompt": prompt, "models": MODELS}, key=key)
        assert accepted.status == 202, accepted
        job = wait_for_job(deployment, accepted.body["jobId"], key=key)
        assert job["status"] == "COMPLETED", job
        costs.append(money(job["costUsd"]))
        assert money(job["costUsd"]) == sum(money(r["costUsd"]) for r in job["results"])
    enhanced = call(deployment, "POST", "/enhance", {"prompt": "a cat"}, key=key)
    assert enhanced.status == 200, enhanced
    costs.append(money(enhanced.body["costUsd"]))

    usage = call(deployment, "GET", "/usage", key=key)
    assert usage.status == 200, usage
    assert money(usage.body["spentUsd"]) == sum(costs) > 0
    assert usage.body["reservedUsd"] == 0
    assert usage.body["tier"] == "standard"
    assert money(usage.body["remainingUsd"]) == money(usage.body["monthlyBudgetUsd"]) - sum(costs)
    (month,) = usage.body["months"]
    by_model = {line["model"]: line for line in month["models"]}
    assert by_model["amazon.nova-micro-v1:0"]["calls"] == 3
    assert by_model["amazon.nova-lite-v1:0"]["calls"] == 4  # three jobs and /enhance
    assert sum(money(line["costUsd"]) for line in month["models"]) == sum(costs)
    # Another key's usage holds none of it.
    other = call(deployment, "GET", "/usage", key=new_key(deployment))
    assert (other.body["spentUsd"], other.body["months"][0]["models"]) == (0, [])


def paced(deployment, *args, **kwargs):
    """A free-tier key may make one request a second (its usage plan): keep to it,
    so that a 429 below is the budget's, not the throttle's."""
    time.sleep(1.1)
    return call(deployment, *args, **kwargs)


def test_a_free_tier_key_has_its_tiers_budget_and_is_refused_at_its_own(deployment):
    free = new_key(deployment, tier="free")
    usage = paced(deployment, "GET", "/usage", key=free).body
    assert (usage["tier"], usage["monthlyBudgetUsd"]) == ("free", 1)  # FreeKeyMonthlyBudgetUsd, not the standard $50
    tiny = new_key(deployment, tier="free", budget_usd=Decimal("0.0001"))
    refused = paced(deployment, "POST", "/generate", {"prompt": "anything", "models": MODELS}, key=tiny)
    assert refused.status == 429, refused
    error = refused.body["error"]
    assert error["code"] == "MONTHLY_BUDGET_EXCEEDED"
    assert error["details"]["monthlyBudgetUsd"] == 0.0001
    enhance = paced(deployment, "POST", "/enhance", {"prompt": "a cat"}, key=tiny)
    assert (enhance.status, enhance.body["error"]["code"]) == (429, "MONTHLY_BUDGET_EXCEEDED")
    assert paced(deployment, "GET", "/usage", key=tiny).body["spentUsd"] == 0


def test_an_operator_sets_one_keys_budget_with_the_script(deployment):
    key_value = new_key(deployment)
    apigw = deployment.client("apigateway")
    key_id = next(k["id"] for k in apigw.get_api_keys(includeValues=True)["items"] if k.get("value") == key_value)
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "infrastructure" / "scripts" / "api_key.py"),
            "set-budget",
            "--stack-name",
            deployment.stack_name,
            "--key-id",
            key_id,
            "--budget-usd",
            "7.5",
            "--endpoint",
            deployment.endpoint,
            "--ca-bundle",
            deployment.ca_bundle,
            "--region",
            "us-east-1",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "PATH": "/usr/bin:/bin"},
    )
    assert run.returncode == 0, run.stderr
    # The functions cache a profile for up to a minute: a fresh key's first read is after the change.
    usage = call(deployment, "GET", "/usage", key=key_value).body
    assert (usage["monthlyBudgetUsd"], usage["budgetSetForThisKey"]) == (7.5, True)


def test_the_ledger_equals_the_records_after_the_runs(deployment):
    """Read back from the emulator's tables: for every key, its months' spend
    equals the sum of its call records, nothing is left reserved, and no record
    is still RESERVED past its lease."""
    dynamodb = deployment.client("dynamodb")
    paginator = dynamodb.get_paginator("scan")
    records: dict[str, Decimal] = {}
    for page in paginator.paginate(TableName=deployment.outputs["CostTrackingTableName"]):
        for item in page["Items"]:
            records[item["owner"]["S"]] = records.get(item["owner"]["S"], Decimal(0)) + Decimal(item["costUsd"]["N"])
            assert item["status"]["S"] != "RESERVED", item
    months: dict[str, Decimal] = {}
    for page in paginator.paginate(TableName=deployment.outputs["BudgetLedgerTableName"]):
        for item in page["Items"]:
            period = item["period"]["S"]
            if is_month(period):
                months[item["owner"]["S"]] = months.get(item["owner"]["S"], Decimal(0)) + Decimal(item["spentUsd"]["N"])
                assert Decimal(item.get("reservedUsd", {"N": "0"})["N"]) == 0
    assert records
    assert {o: v for o, v in months.items() if v} == {o: v for o, v in records.items() if v}
