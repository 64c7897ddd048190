"""The job state machine as conditional writes on the Jobs table (moto)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from shared.job_status import JobStatus
from shared.jobs import JobRepository, from_dynamo, public_view

T0 = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
JOB = "0b7e5c1e-1111-4222-8333-444455556666"


@pytest.fixture
def repo(aws) -> JobRepository:
    repo = JobRepository(aws.jobs_table)
    repo.create(
        {
            "jobId": JOB,
            "owner": "k1",
            "status": "QUEUED",
            "kind": "text",
            "prompt": "p",
            "models": ["a", "b"],
            "results": {},
            "costUsd": 0,
            "createdAt": "2026-11-22T12:00:00.000Z",
        }
    )
    return repo


def test_create_refuses_an_existing_id(repo):
    from botocore.exceptions import ClientError

    with pytest.raises(ClientError, match="ConditionalCheckFailed"):
        repo.create({"jobId": JOB, "status": "QUEUED"})


def test_claim_moves_queued_to_running_with_a_lease(repo):
    job = repo.claim(JOB, now=T0, lease_seconds=900)
    assert job["status"] == "RUNNING"
    assert job["leaseUntil"] == int(T0.timestamp()) + 900
    assert job["attempts"] == 1
    assert job["startedAt"] == "2026-11-22T12:00:00.000Z"


def test_a_live_lease_refuses_a_second_claim(repo):
    assert repo.claim(JOB, now=T0, lease_seconds=900)
    assert repo.claim(JOB, now=T0 + timedelta(seconds=899), lease_seconds=900) is None


def test_an_expired_lease_lets_a_redelivery_take_over(repo):
    assert repo.claim(JOB, now=T0, lease_seconds=900)
    job = repo.claim(JOB, now=T0 + timedelta(seconds=901), lease_seconds=900)
    assert job["attempts"] == 2
    assert job["startedAt"] == "2026-11-22T12:00:00.000Z"  # first start kept


def test_unknown_job_cannot_be_claimed(repo):
    assert repo.claim("00000000-0000-4000-8000-000000000000", now=T0, lease_seconds=900) is None


@pytest.mark.parametrize("terminal", [JobStatus.COMPLETED, JobStatus.PARTIAL, JobStatus.FAILED])
def test_finished_jobs_are_never_claimed_again(repo, terminal):
    repo.claim(JOB, now=T0, lease_seconds=900)
    assert repo.finish(JOB, terminal, cost_usd=Decimal("0.001"), now=T0)
    assert repo.claim(JOB, now=T0 + timedelta(days=1), lease_seconds=900) is None
    assert repo.get(JOB)["status"] == terminal.value


def test_a_result_is_recorded_once(repo):
    repo.claim(JOB, now=T0, lease_seconds=900)
    assert repo.record_result(JOB, "a", {"status": "SUCCEEDED", "costUsd": 0.5}, now=T0)
    assert not repo.record_result(JOB, "a", {"status": "FAILED"}, now=T0)
    assert repo.get(JOB)["results"]["a"]["status"] == "SUCCEEDED"


def test_results_are_refused_unless_running(repo):
    assert not repo.record_result(JOB, "a", {"status": "SUCCEEDED"}, now=T0)  # still QUEUED


def test_finish_requires_running_and_a_terminal_status(repo):
    assert not repo.finish(JOB, JobStatus.COMPLETED, cost_usd=Decimal(0), now=T0)  # QUEUED
    repo.claim(JOB, now=T0, lease_seconds=900)
    with pytest.raises(ValueError, match="not a terminal status"):
        repo.finish(JOB, JobStatus.RUNNING, cost_usd=Decimal(0), now=T0)
    assert repo.finish(JOB, JobStatus.FAILED, cost_usd=Decimal("0.25"), now=T0, error="boom")
    assert not repo.finish(JOB, JobStatus.COMPLETED, cost_usd=Decimal(0), now=T0)  # already FAILED
    job = repo.get(JOB)
    assert (job["status"], job["error"], job["costUsd"]) == ("FAILED", "boom", Decimal("0.25"))
    assert "leaseUntil" not in job


def test_fail_unqueued_only_from_queued(repo):
    assert repo.fail_unqueued(JOB, reason="no queue", now=T0)
    assert repo.get(JOB)["status"] == "FAILED"
    assert not repo.fail_unqueued(JOB, reason="again", now=T0)


def test_public_view_converts_decimals_and_hides_internals(repo):
    view = public_view(repo.get(JOB), links=None)  # no result stored: nothing to sign
    assert view["costUsd"] == 0
    assert isinstance(view["costUsd"], int)
    assert set(view) >= {"jobId", "status", "results", "costUsd", "createdAt", "updatedAt"}
    assert "owner" not in view
    assert "prompt" not in view


def test_from_dynamo_keeps_fractions():
    assert from_dynamo({"a": [Decimal("1.5"), Decimal("2")]}) == {"a": [1.5, 2]}
