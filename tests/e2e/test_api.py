"""The API through the emulator's real API Gateway data plane: submit a job,
poll it to COMPLETED, read its output object; and every error case."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import uuid
from decimal import Decimal

import pytest

import api_key
from shared.identity import key_hash_owner
from shared.usage import is_month
from tests.e2e.conftest import call, new_key, wait_for_job

pytestmark = pytest.mark.e2e

MODELS = ["amazon.nova-micro-v1:0", "amazon.nova-lite-v1:0"]
FORM = "application/x-www-form-urlencoded"


def test_health_needs_no_key(deployment):
    reply = call(deployment, "GET", "/health", key=None)
    assert (reply.status, reply.body) == (200, {"status": "ok"})


@pytest.mark.parametrize("key", [None, "not-a-real-key"])
def test_routes_refuse_a_missing_or_unknown_key(deployment, key):
    for method, path, body in (
        ("POST", "/generate", {"prompt": "x", "models": MODELS}),
        ("GET", f"/status/{uuid.uuid4()}", None),
    ):
        assert call(deployment, method, path, body, key=key).status == 403


def test_a_multi_model_job_completes_with_outputs_in_s3(deployment):
    accepted = call(deployment, "POST", "/generate", {"prompt": "Write a haiku about message queues", "models": MODELS})
    assert accepted.status == 202, accepted
    job_id = accepted.body["jobId"]
    assert accepted.body["status"] == "QUEUED"
    assert accepted.body["statusUrl"] == f"status/{job_id}"

    job = wait_for_job(deployment, job_id)
    assert job["status"] == "COMPLETED", job
    assert job["costUsd"] > 0
    assert [r["model"] for r in job["results"]] == MODELS

    s3 = deployment.client("s3")
    bucket = deployment.outputs["OutputsBucketName"]
    for result in job["results"]:
        assert result["status"] == "SUCCEEDED"
        assert result["inputTokens"] > 0
        assert result["outputTokens"] > 0
        # A presigned link to the object (read without a key in test_hostile.py).
        path = urllib.parse.urlsplit(result["url"]).path
        assert path.startswith(f"/{bucket}/jobs/{job_id}/outputs/")
        stored = s3.get_object(Bucket=bucket, Key=path.removeprefix(f"/{bucket}/"))
        assert stored["Body"].read().decode() == result["text"]
        assert result["model"] in result["text"]  # the emulator's mock reply names the model

    # One cost record per model call, matching the job's results.
    table = deployment.client("dynamodb")
    records = table.query(
        TableName=deployment.outputs["CostTrackingTableName"],
        KeyConditionExpression="jobId = :j",
        ExpressionAttributeValues={":j": {"S": job_id}},
    )["Items"]
    assert sorted(r["callId"]["S"] for r in records) == sorted(f"{m}#001#01" for m in MODELS)  # model, run, call
    assert {r["status"]["S"] for r in records} == {"BILLED"}
    assert sum(float(r["costUsd"]["N"]) for r in records) == pytest.approx(job["costUsd"])


def test_enhance_returns_an_improved_prompt(deployment):
    reply = call(deployment, "POST", "/enhance", {"prompt": "a cat", "kind": "image"})
    assert reply.status == 200, reply
    assert reply.body["original"] == "a cat"
    assert reply.body["prompt"]
    assert reply.body["model"] == "amazon.nova-lite-v1:0"


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code", "fragment"),
    [
        ({"prompt": "hi", "models": ["acme.unknown-v1"]}, "application/json", 400, "UNKNOWN_MODEL", "amazon.nova-micro-v1:0"),
        ({"prompt": "  ", "models": MODELS}, "application/json", 400, "INVALID_REQUEST", "prompt"),
        ({"models": MODELS}, "application/json", 400, "INVALID_REQUEST", "exactly one of prompt, template and messages"),
        ('{"prompt": "hi", "models": [', "application/json", 400, "INVALID_REQUEST", "not valid JSON"),
        ({"prompt": "x" * 20001, "models": MODELS}, "application/json", 400, "INVALID_REQUEST", "limit is 20000"),
        (
            {"prompt": "hi", "models": MODELS},
            "application/x-www-form-urlencoded",
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            "application/json",
        ),
    ],
)
def test_bad_generate_requests_get_a_clear_4xx(deployment, body, content_type, status, code, fragment):
    reply = call(deployment, "POST", "/generate", body, content_type=content_type)
    assert reply.status == status, reply
    assert reply.body["error"]["code"] == code
    assert fragment in reply.body["error"]["message"]


def test_unknown_and_malformed_job_ids(deployment):
    unknown = call(deployment, "GET", f"/status/{uuid.uuid4()}")
    assert (unknown.status, unknown.body["error"]["code"]) == (404, "JOB_NOT_FOUND")
    malformed = call(deployment, "GET", "/status/not-a-job")
    assert (malformed.status, malformed.body["error"]["code"]) == (400, "INVALID_REQUEST")


def test_a_job_is_visible_only_to_the_key_that_created_it(deployment, second_key):
    job_id = call(deployment, "POST", "/generate", {"prompt": "private", "models": MODELS[:1]}).body["jobId"]
    other = call(deployment, "GET", f"/status/{job_id}", key=second_key)
    assert (other.status, other.body["error"]["code"]) == (404, "JOB_NOT_FOUND")
    assert wait_for_job(deployment, job_id)["status"] == "COMPLETED"


def test_the_printed_quickstart_runs_to_completed(deployment):
    lines = deployment.quickstart.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("URL="))
    end = next(i for i, line in enumerate(lines) if i > start and not line.strip())
    script = "set -euo pipefail\n" + "\n".join(lines[start:end])
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    *_, status_line, object_line = result.stdout.strip().splitlines()
    final = json.loads(status_line)
    assert final["status"] == "COMPLETED"
    assert len(final["results"]) == 2
    assert object_line == final["results"][0]["text"]  # the output object, read from S3


def test_jobs_lists_the_callers_jobs_newest_first(deployment, second_key):
    first = call(deployment, "POST", "/generate", {"prompt": "one", "models": MODELS[:1]}, key=second_key).body["jobId"]
    second = call(deployment, "POST", "/generate", {"prompt": "two", "models": MODELS[:1]}, key=second_key).body["jobId"]
    page = call(deployment, "GET", "/jobs?limit=1", key=second_key)
    assert page.status == 200, page
    assert [j["jobId"] for j in page.body["jobs"]] == [second]
    rest = call(deployment, "GET", f"/jobs?limit=100&nextToken={page.body['nextToken']}", key=second_key)
    assert first in [j["jobId"] for j in rest.body["jobs"]]
    mine = call(deployment, "GET", "/jobs?limit=100")
    assert not {first, second} & {j["jobId"] for j in mine.body["jobs"]}


def test_an_idempotent_replay_returns_the_same_job(deployment):
    headers = {"Idempotency-Key": f"e2e-{uuid.uuid4()}"}
    body = {"prompt": "only once", "models": MODELS[:1]}
    first = call(deployment, "POST", "/generate", body, headers=headers)
    second = call(deployment, "POST", "/generate", body, headers=headers)
    assert first.status == second.status == 202
    assert first.body["jobId"] == second.body["jobId"]
    reused = call(deployment, "POST", "/generate", {**body, "prompt": "another"}, headers=headers)
    assert (reused.status, reused.body["error"]["code"]) == (422, "IDEMPOTENCY_KEY_REUSED")


def test_the_keys_monthly_ledger_meters_jobs_and_enhance(deployment):
    key = new_key(deployment)
    owner = key_hash_owner(key)  # the emulator gives no apiKeyId
    job_id = call(deployment, "POST", "/generate", {"prompt": "metered", "models": MODELS}, key=key).body["jobId"]
    job = wait_for_job(deployment, job_id, key=key)
    enhanced = call(deployment, "POST", "/enhance", {"prompt": "metered too"}, key=key)
    assert enhanced.status == 200

    ledger = deployment.client("dynamodb").query(
        TableName=deployment.outputs["BudgetLedgerTableName"],
        KeyConditionExpression="#o = :o",
        ExpressionAttributeNames={"#o": "owner"},
        ExpressionAttributeValues={":o": {"S": owner}},
    )["Items"]
    (month,) = [i for i in ledger if is_month(i["period"]["S"])]
    # Reservations were settled to the actual costs: nothing more, nothing less.
    spent = Decimal(month["spentUsd"]["N"])
    assert spent == Decimal(str(job["costUsd"])) + Decimal(str(enhanced.body["costUsd"]))
    assert Decimal(month["reservedUsd"]["N"]) == 0
    # And the per-model lines, one per model, sum to it.
    lines = [i for i in ledger if i["period"]["S"].startswith(month["period"]["S"] + "#")]
    assert sorted(line["model"]["S"] for line in lines) == sorted(MODELS)
    assert sum(Decimal(line["costUsd"]["N"]) for line in lines) == spent


def test_a_dead_lettered_job_ends_failed(deployment):
    """What the dead-letter queue receives (here sent to it directly, as after three
    crashed deliveries) is consumed, and its job no longer stays RUNNING."""
    job_id = str(uuid.uuid4())
    dynamodb = deployment.client("dynamodb")
    dynamodb.put_item(
        TableName=deployment.outputs["JobsTableName"],
        Item={
            "jobId": {"S": job_id},
            "owner": {"S": "crashed"},
            "status": {"S": "RUNNING"},
            "models": {"L": [{"S": MODELS[0]}]},
            "results": {"M": {}},
            "createdAt": {"S": "2026-11-22T12:00:00.000Z"},
        },
    )
    deployment.client("sqs").send_message(
        QueueUrl=deployment.outputs["DeadLetterQueueUrl"], MessageBody=json.dumps({"jobId": job_id})
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        item = dynamodb.get_item(TableName=deployment.outputs["JobsTableName"], Key={"jobId": {"S": job_id}})["Item"]
        if item["status"]["S"] != "RUNNING":
            break
        time.sleep(0.5)
    assert item["status"]["S"] == "FAILED"
    assert "every delivery of the job failed" in item["error"]["S"]


def test_a_job_from_a_stored_template(deployment):
    template_id = f"e2e-{uuid.uuid4().hex[:8]}"
    created = call(
        deployment, "POST", "/templates", {"templateId": template_id, "template": "Summarise {{ subject }} in one line."}
    )
    assert created.status == 201, created
    listed = call(deployment, "GET", "/templates")
    assert template_id in [t["templateId"] for t in listed.body["templates"]]
    accepted = call(
        deployment, "POST", "/generate", {"template": {"id": template_id}, "variables": {"subject": "SQS"}, "models": MODELS[:1]}
    )
    assert accepted.status == 202, accepted
    assert wait_for_job(deployment, accepted.body["jobId"])["status"] == "COMPLETED"
    missing = call(deployment, "POST", "/generate", {"template": {"id": template_id}, "models": MODELS[:1]})
    assert (missing.status, missing.body["error"]["details"]["missing"]) == (400, ["subject"])


def test_a_chart_job_whose_model_writes_no_spec_fails_after_one_repair(deployment):
    """The emulator's mock model answers prose, never a Vega-Lite spec: the worker
    asks once more with the reason, then fails the job, billing both calls."""
    body = {"prompt": "Sales by month", "models": MODELS[:1], "kind": "chart", "data": [{"month": "Jan", "sales": 3}]}
    accepted = call(deployment, "POST", "/generate", body)
    assert accepted.status == 202, accepted
    job = wait_for_job(deployment, accepted.body["jobId"])
    assert job["status"] == "FAILED"
    (result,) = job["results"]
    assert result["error"]["code"] == "InvalidChartSpec"
    assert "after one repair" in result["error"]["message"]
    assert result["costUsd"] > 0
    assert job["costUsd"] == pytest.approx(result["costUsd"])


def test_cancel_is_for_unfinished_jobs_of_the_caller(deployment, second_key):
    job_id = call(deployment, "POST", "/generate", {"prompt": "done soon", "models": MODELS[:1]}).body["jobId"]
    other = call(deployment, "POST", f"/jobs/{job_id}/cancel", key=second_key)
    assert (other.status, other.body["error"]["code"]) == (404, "JOB_NOT_FOUND")
    wait_for_job(deployment, job_id)
    finished = call(deployment, "POST", f"/jobs/{job_id}/cancel")
    assert (finished.status, finished.body["error"]["code"]) == (409, "JOB_ALREADY_FINISHED")


def test_operators_issue_list_and_revoke_keys_with_the_script(deployment):
    """infrastructure/scripts/api_key.py end to end: a free-tier key works at
    once, shows in the listing under its tier, and is refused once revoked."""
    apigw = deployment.client("apigateway")
    issued = api_key.issue(apigw, deployment.outputs, "free", f"e2e-{uuid.uuid4().hex[:6]}", deployment.stack_name)
    assert issued["usagePlanId"] == deployment.outputs["FreeUsagePlanId"]
    assert call(deployment, "GET", "/jobs", key=issued["value"]).status == 200
    listed = {k["keyId"]: k for k in api_key.list_keys(apigw, deployment.outputs)}
    assert listed[issued["keyId"]]["tier"] == "free"
    assert listed[issued["keyId"]]["enabled"] is True
    api_key.revoke(apigw, issued["keyId"], delete=False)
    assert apigw.get_api_key(apiKey=issued["keyId"])["enabled"] is False  # (the emulator still accepts a disabled key)
    api_key.revoke(apigw, issued["keyId"], delete=True)
    assert call(deployment, "GET", "/jobs", key=issued["value"]).status == 403
