"""The dead-letter consumer: jobs whose every delivery failed end FAILED."""

from __future__ import annotations

import json

import pytest

from shared.jobs import JobRepository
from tests.unit.conftest import load_event
from worker import dead_letter

JOB = "3f1c2d9e-8a4b-4c1d-9e2f-5a6b7c8d9e0f"


def put(aws, status: str) -> None:
    JobRepository(aws.jobs_table).create(
        {"jobId": JOB, "owner": "k1", "status": status, "models": ["m"], "results": {}, "createdAt": "2026-11-22T12:00:00.000Z"}
    )


def dead_letter_event(body: str | None = None):
    event = load_event("worker-sqs.json")
    event["Records"][0]["attributes"]["ApproximateReceiveCount"] = "3"
    if body is not None:
        event["Records"][0]["body"] = body
    return event


@pytest.mark.parametrize("status", ["QUEUED", "RUNNING"])
def test_an_abandoned_job_is_failed_with_the_reason(aws, context, status):
    put(aws, status)
    assert dead_letter.handler(dead_letter_event(), context) == {"batchItemFailures": []}
    job = aws.jobs_table.get_item(Key={"jobId": JOB})["Item"]
    assert job["status"] == "FAILED"
    assert "every delivery of the job failed (3)" in job["error"]


def test_a_finished_job_is_left_as_it_is(aws, context):
    put(aws, "COMPLETED")
    dead_letter.handler(dead_letter_event(), context)
    assert aws.jobs_table.get_item(Key={"jobId": JOB})["Item"]["status"] == "COMPLETED"


@pytest.mark.parametrize("body", ["not json", json.dumps({"nope": 1})])
def test_a_malformed_message_is_logged_and_dropped(aws, context, body):
    assert dead_letter.handler(dead_letter_event(body), context) == {"batchItemFailures": []}
