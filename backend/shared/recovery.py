"""Ending the jobs no worker will finish, with their money settled: the
dead-letter consumer, the worker (when a job's claims are used up) and the
sweeper all end an abandoned job the same way."""

from __future__ import annotations

from datetime import datetime

from shared.costs import CallLedger
from shared.jobs import JobRepository


def abandon(job_id: str, *, jobs: JobRepository, calls: CallLedger, now: datetime, reason: str) -> bool:
    """QUEUED or RUNNING -> FAILED with `reason` and the cost of every call
    its workers made: the reservations of dead workers become UNCONFIRMED
    (charged at their worst case) first. False if the job had ended already."""
    calls.resolve_dead(job_id, now=now, reason="the worker that reserved it died (the job was abandoned)")
    return jobs.abandon(job_id, reason=reason, now=now, cost_usd=calls.spent_on(job_id))
