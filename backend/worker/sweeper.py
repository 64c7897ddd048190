"""The sweeper: a scheduled function that finishes what no one else will.

Every few minutes (template: SweeperFunction's schedule) it reads the jobs
whose sweep time has passed (the Jobs sweep index holds unfinished jobs only)
and the call reservations whose lease has passed (the CostTracking open index
holds RESERVED records only), and:
- a QUEUED job never marked queued after its grace period (its queue message
  was never sent: the generate function died or timed out around the send)
  gets its message now;
- a QUEUED job older than the queue's retention (its message expired unread)
  is failed;
- a RUNNING job whose lease has expired (its worker died) gets a new message,
  so that a worker takes it over at once instead of when SQS's visibility
  timeout ends; once its claims are used up, it is failed with its cost;
- a RESERVED call record whose maker's lease has expired (a worker or an
  /enhance request died with the call open) is charged at its reservation
  (UNCONFIRMED).
Each action is a metric (SweeperJobsRequeued, SweeperJobsFailed,
SweeperReservationsCharged) and the last two make up SweeperRecoveries, which
has an alarm: docs/runbooks/sweeper.md. Every action is a conditional write,
so two sweeps at once, or a sweep racing a worker, do no harm."""

from __future__ import annotations

import gc

gc.disable()  # while this module loads: on again at its end (shared.gc_init)

import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared import clients
from shared.costs import CallLedger
from shared.gc_init import loaded
from shared.job_status import JobStatus
from shared.jobs import MAX_CLAIMS, JobRepository, utc_now
from shared.recovery import abandon
from shared.settings import Settings, get_settings

logger = Logger()
metrics = Metrics()


@dataclass
class Sweeper:
    jobs: JobRepository
    calls: CallLedger
    sqs: Any
    settings: Settings

    def sweep(self, now: datetime) -> Counter:
        actions: Counter = Counter()
        for key in self.jobs.due(now=now):
            job = self.jobs.get(key["jobId"])
            if job is not None:
                actions[self._job(job, now)] += 1
        for call in self.calls.expired_reservations(now=now):
            if self.calls.unconfirm(call, now=now, reason="its maker's lease expired (it died with the call open)"):
                logger.warning("reservation charged", extra={"jobId": call.job_id, "callId": call.call_id})
                actions["reservationCharged"] += 1
        actions.pop("none", None)
        return actions

    def _requeue(self, job_id: str, now: datetime, next_look: int) -> None:
        self.sqs.send_message(QueueUrl=self.settings.job_queue_url, MessageBody=json.dumps({"jobId": job_id}))
        self.jobs.requeued(job_id, now=now, next_look=next_look)

    def _job(self, job: dict[str, Any], now: datetime) -> str:
        job_id, epoch = job["jobId"], int(now.timestamp())
        if job["status"] == JobStatus.QUEUED.value:
            if "queuedAt" not in job:
                self._requeue(job_id, now, epoch + self.settings.queue_grace_seconds)
                logger.warning("job had no queue message; sent one", extra={"jobId": job_id})
                return "jobRequeued"
            reason = "abandoned: its queue message expired before any worker ran it"
            return "jobFailed" if abandon(job_id, jobs=self.jobs, calls=self.calls, now=now, reason=reason) else "none"
        if job["status"] == JobStatus.RUNNING.value and int(job.get("leaseUntil", 0)) < epoch:
            if int(job.get("attempts", 0)) >= MAX_CLAIMS:
                reason = f"abandoned: all {MAX_CLAIMS} runs of the job died (timed out, out of memory or killed)"
                failed = abandon(job_id, jobs=self.jobs, calls=self.calls, now=now, reason=reason)
                return "jobFailed" if failed else "none"
            # A takeover now; look again once the new run's lease could have passed.
            self._requeue(job_id, now, epoch + self.settings.job_lease_seconds)
            logger.warning(
                "job's worker died; sent it to another", extra={"jobId": job_id, "attempts": int(job.get("attempts", 0))}
            )
            return "jobRequeued"
        return "none"


def sweeper() -> Sweeper:
    settings = get_settings()
    return Sweeper(
        jobs=JobRepository(clients.dynamodb_table(settings.jobs_table)),
        calls=clients.call_ledger(),
        sqs=clients.sqs(),
        settings=settings,
    )


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    actions = sweeper().sweep(utc_now())
    requeued, failed, charged = actions["jobRequeued"], actions["jobFailed"], actions["reservationCharged"]
    metrics.add_metric(name="SweeperJobsRequeued", unit=MetricUnit.Count, value=requeued)
    metrics.add_metric(name="SweeperJobsFailed", unit=MetricUnit.Count, value=failed)
    metrics.add_metric(name="SweeperReservationsCharged", unit=MetricUnit.Count, value=charged)
    # What the alarm watches: jobs that ended only because the sweeper ended
    # them, and money charged without an answer.
    metrics.add_metric(name="SweeperRecoveries", unit=MetricUnit.Count, value=failed + charged)
    logger.info("sweep done", extra=dict(actions))
    return {"jobsRequeued": requeued, "jobsFailed": failed, "reservationsCharged": charged}


loaded()  # init's objects frozen, the collector on again (shared.gc_init)
