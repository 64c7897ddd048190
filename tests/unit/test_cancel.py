"""POST /jobs/{jobId}/cancel, and what the worker does with a cancelled job."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from generate import app as generate_app
from shared.jobs import JobRepository
from tests.unit.conftest import body_of, load_event
from tests.unit.test_worker import JOB, MICRO, FakeProvider, put_job, runner

OWNER = "k1a2b3c4d5"  # the apiKeyId of the sample events


def cancel_event(job_id: str = JOB, owner: str = OWNER):
    event = load_event("health.json")
    event.update(
        httpMethod="POST", resource="/jobs/{jobId}/cancel", path=f"/jobs/{job_id}/cancel", pathParameters={"jobId": job_id}
    )
    event["headers"]["x-api-key"] = "local-test-key-0001"
    event["requestContext"]["identity"]["apiKeyId"] = owner
    return event


def cancel(context, **kwargs):
    return generate_app.handler(cancel_event(**kwargs), context)


def test_a_queued_job_is_cancelled_and_never_run(aws, context, settings):
    put_job(aws, owner=OWNER)
    response = cancel(context)
    assert response["statusCode"] == 200
    assert body_of(response)["status"] == "CANCELLED"
    provider = FakeProvider({MICRO: "a"})
    assert runner(aws, settings, provider).run(JOB).status == "CANCELLED"
    assert provider.calls == []


def test_cancelling_a_running_job_keeps_it_cancelled_with_what_was_spent(aws, context, settings):
    put_job(aws, models=(MICRO,), owner=OWNER)

    class CancelledMeanwhile(FakeProvider):
        def generate(self, model, prompt, *, system=None, max_tokens, metadata=None, **_):
            assert cancel(context)["statusCode"] == 200  # the owner cancels while the call runs
            return super().generate(model, prompt, max_tokens=max_tokens)

    outcome = runner(aws, settings, CancelledMeanwhile({MICRO: "a"})).run(JOB)
    assert outcome.status == "CANCELLED"
    job = aws.jobs_table.get_item(Key={"jobId": JOB})["Item"]
    assert job["status"] == "CANCELLED"
    assert job["results"] == {}  # nothing recorded after the cancel
    assert float(job["costUsd"]) == pytest.approx(0.00000315)  # but the call in flight was paid for


def test_a_finished_job_cannot_be_cancelled(aws, context, settings):
    put_job(aws, models=(MICRO,), owner=OWNER)
    runner(aws, settings, FakeProvider({MICRO: "a"})).run(JOB)
    response = cancel(context)
    assert response["statusCode"] == 409
    assert body_of(response)["error"]["details"] == {"status": "COMPLETED"}


def test_cancelling_twice_is_harmless(aws, context):
    put_job(aws, owner=OWNER)
    assert cancel(context)["statusCode"] == 200
    assert cancel(context)["statusCode"] == 200


def test_another_keys_job_cannot_be_cancelled_or_seen(aws, context):
    put_job(aws, owner=OWNER)
    response = cancel(context, owner="someone-else")
    assert response["statusCode"] == 404
    assert aws.jobs_table.get_item(Key={"jobId": JOB})["Item"]["status"] == "QUEUED"


def test_cancel_validates_the_job_id(aws, context):
    assert cancel(context, job_id="nope")["statusCode"] == 400


def test_the_repository_refuses_to_cancel_a_finished_job(aws):
    put_job(aws, status="FAILED")
    assert not JobRepository(aws.jobs_table).cancel(JOB, owner="k1", now=datetime.now(UTC))
