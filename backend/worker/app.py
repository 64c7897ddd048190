"""SQS consumer: each message names one job to run. Partial batch failures are
reported so that one failing message does not redeliver the others."""

from __future__ import annotations

import gc

gc.disable()  # while this module loads: on again at its end (shared.gc_init)

import json
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared import clients
from shared.gc_init import loaded
from shared.jobs import JobRepository
from shared.metrics import record_model_usage
from shared.providers import ChartProvider, ConverseTextProvider, InvokeImageProvider
from shared.providers.chart import LambdaRenderer
from shared.providers.guardrail import GuardrailCheck
from shared.settings import get_settings
from worker.service import JobRunner

logger = Logger()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS)


def job_id_of(record: SQSRecord) -> str:
    """The job id a message carries; a malformed message raises, so that it ends
    in the dead-letter queue for inspection instead of vanishing."""
    body = json.loads(record.body)
    job_id = body["jobId"]
    if not isinstance(job_id, str) or not job_id:
        raise ValueError("jobId must be a non-empty string")
    return job_id


def runner(context: LambdaContext | None = None) -> JobRunner:
    settings = get_settings()
    return JobRunner(
        jobs=JobRepository(clients.dynamodb_table(settings.jobs_table)),
        calls=clients.call_ledger(),
        profiles=clients.key_profiles(),
        # Lambda's own deadline: no retry is started that could not end before it.
        time_left=(lambda: context.get_remaining_time_in_millis() / 1000) if context else None,
        providers={
            "converse": ConverseTextProvider(clients.bedrock_runtime()),
            "invoke-image": InvokeImageProvider(clients.bedrock_runtime()),
            # Charts render in the chart renderer function (vl-convert lives there).
            "chart": ChartProvider(
                ConverseTextProvider(clients.bedrock_runtime()),
                renderer=LambdaRenderer(clients.lambda_client, settings.chart_renderer_function),
            ),
            # OpenAI, Stability AI, Google: over HTTPS, with keys from Secrets Manager.
            **clients.external_providers(),
        },
        s3=clients.s3(),
        settings=settings,
        guardrail_check=lambda guardrail: GuardrailCheck(clients.bedrock_runtime(), guardrail),
    )


def record_handler(record: SQSRecord, lambda_context: LambdaContext | None = None) -> None:
    """One job. Powertools passes the invocation's context (its remaining time)."""
    job_id = job_id_of(record)
    logger.append_keys(jobId=job_id)  # every line of the job's run, beside its xray_trace_id
    outcome = runner(lambda_context).run(job_id)
    metrics.add_metric(name=f"Jobs{outcome.status.title().replace('_', '')}", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="ModelCalls", unit=MetricUnit.Count, value=outcome.ran_models)
    for call in outcome.calls:
        record_model_usage(call)
    spent = sum(float(call.get("costUsd", 0)) for call in outcome.calls)
    if spent:
        metrics.add_metric(name="SpendUsd", unit=MetricUnit.NoUnit, value=spent)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return process_partial_response(event=event, record_handler=record_handler, processor=processor, context=context)


loaded()  # init's objects frozen, the collector on again (shared.gc_init)
