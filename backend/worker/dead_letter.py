"""Consumer of the job queue's dead-letter queue. A message lands there after
every delivery failed (the worker crashed, timed out or ran out of memory each
time); no worker will run its job again, so the job is marked FAILED with the
reason and the cost of every call its runs made (a dead run's open
reservations are charged first, shared.recovery), and counted (metric
JobsDeadLettered, which has its own alarm)."""

from __future__ import annotations

import gc

gc.disable()  # while this module loads: on again at its end (shared.gc_init)

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared import clients
from shared.costs import CallLedger
from shared.gc_init import loaded
from shared.jobs import JobRepository, utc_now
from shared.recovery import abandon
from shared.settings import get_settings
from worker.app import job_id_of

logger = Logger()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)


def abandon_job(record: SQSRecord, jobs: JobRepository, calls: CallLedger) -> bool:
    """Fail the record's job; False for a malformed message or a finished job."""
    deliveries = record.attributes.approximate_receive_count
    try:
        job_id = job_id_of(record)
    except (ValueError, KeyError, TypeError):
        # Nothing to fail. Logged in full (it is not a job request, so it holds
        # no prompt) and dropped: retrying it here would change nothing.
        logger.error("malformed message dead-lettered", extra={"messageId": record.message_id, "body": record.body[:1000]})
        return False
    reason = f"abandoned: every delivery of the job failed ({deliveries}); the worker crashed or timed out each time"
    failed = abandon(job_id, jobs=jobs, calls=calls, now=utc_now(), reason=reason)
    logger.warning("dead-lettered job", extra={"jobId": job_id, "deliveries": deliveries, "markedFailed": failed})
    return failed


def record_handler(record: SQSRecord) -> None:
    settings = get_settings()
    abandon_job(record, JobRepository(clients.dynamodb_table(settings.jobs_table)), clients.call_ledger())
    metrics.add_metric(name="JobsDeadLettered", unit=MetricUnit.Count, value=1)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)


loaded()  # init's objects frozen, the collector on again (shared.gc_init)
