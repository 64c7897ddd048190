"""POST /generate: validate a job, record it and queue it; answer 202."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from generate.service import submit_job
from shared import clients
from shared.api import caller_id, make_resolver, resolve
from shared.jobs import JobRepository
from shared.models import GenerateRequest
from shared.settings import get_settings

logger = Logger()
metrics = Metrics()
app = make_resolver(metrics)


@app.post("/generate")
def generate(request: GenerateRequest) -> Response[dict[str, Any]]:
    settings = get_settings()
    job = submit_job(
        request,
        owner=caller_id(app.current_event),
        settings=settings,
        jobs=JobRepository(clients.dynamodb_table(settings.jobs_table)),
        sqs=clients.sqs(),
    )
    metrics.add_metric(name="JobsQueued", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="ModelsPerJob", unit=MetricUnit.Count, value=len(job["models"]))
    # A relative reference (RFC 3986): resolved against the URL of this
    # request it names the job's status route, on AWS and on local emulators.
    status_url = f"status/{job['jobId']}"
    return Response(
        status_code=202,
        content_type=content_types.APPLICATION_JSON,
        body={"jobId": job["jobId"], "status": job["status"], "statusUrl": status_url, "createdAt": job["createdAt"]},
        headers={"Location": status_url},
    )


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return resolve(app, event, context)
