"""POST /generate: validate a job, record it and queue it; answer 202.
POST /jobs/{jobId}/cancel: stop a job that has not finished.
DELETE /jobs/{jobId}: delete a job, its outputs (every version) and its record."""

from __future__ import annotations

import gc

gc.disable()  # while this module loads: on again at its end (shared.gc_init)

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from generate.idempotency import idempotency_key, idempotent_submission
from generate.service import cancel_job, delete_job, submit_job
from shared import clients
from shared.api import caller_id, make_resolver, resolve
from shared.gc_init import loaded
from shared.jobs import JobRepository, utc_now
from shared.models import GenerateRequest, build
from shared.outputs import OutputLinks
from shared.prompt_language import render
from shared.settings import get_settings
from shared.templates import TemplateStore

logger = Logger()
metrics = Metrics()
app = make_resolver(metrics, cors_origins=get_settings().cors_allowed_origins)
build(GenerateRequest)  # POST /generate's body, at init


def accept(request: GenerateRequest, owner: str) -> dict[str, Any]:
    """Submit the job (rendering its template, if it names one); what the 202 says about it."""
    settings = get_settings()
    template = None
    if request.template is not None:
        stored = TemplateStore(clients.dynamodb_table(settings.templates_table)).get(
            request.template.id, caller=owner, owner=request.template.owner, version=request.template.version
        )
        prompt = render(stored["template"], request.variables, max_chars=settings.max_prompt_chars)
        request = request.model_copy(update={"prompt": prompt})
        # The job records exactly which template ran: whose, and which version.
        template = {"id": stored["templateId"], "owner": stored["owner"], "version": int(stored["version"])}
    job = submit_job(
        request,
        template=template,
        owner=owner,
        settings=settings,
        jobs=JobRepository(clients.dynamodb_table(settings.jobs_table), queue_grace_seconds=settings.queue_grace_seconds),
        calls=clients.call_ledger(),
        profile=clients.key_profiles().of(owner),
        sqs=clients.sqs(),
    )
    metrics.add_metric(name="JobsQueued", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="ModelsPerJob", unit=MetricUnit.Count, value=len(job["models"]))
    # A relative reference (RFC 3986): resolved against the URL of this
    # request it names the job's status route, on AWS and on local emulators.
    return {"jobId": job["jobId"], "status": job["status"], "statusUrl": f"status/{job['jobId']}", "createdAt": job["createdAt"]}


@app.post("/generate")
def generate(request: GenerateRequest) -> Response[dict[str, Any]]:
    owner = caller_id(app.current_event)
    key = idempotency_key(app.current_event)
    if key is None:
        accepted = accept(request, owner)
    else:
        submit = idempotent_submission(get_settings().idempotency_table, app.lambda_context)
        accepted = submit(submission={"key": f"{owner}#{key}", "request": request.model_dump(by_alias=True)}, run=accept)
    return Response(
        status_code=202,
        content_type=content_types.APPLICATION_JSON,
        body=accepted,
        headers={"Location": accepted["statusUrl"]},
    )


@app.post("/jobs/<job_id>/cancel")
def cancel(job_id: str) -> dict[str, Any]:
    settings = get_settings()
    return cancel_job(
        job_id,
        owner=caller_id(app.current_event),
        jobs=JobRepository(clients.dynamodb_table(settings.jobs_table)),
        links=OutputLinks(clients.s3(), bucket=settings.outputs_bucket, lifetime_seconds=settings.output_link_seconds),
        now=utc_now(),
    )


@app.delete("/jobs/<job_id>")
def delete(job_id: str) -> dict[str, Any]:
    settings = get_settings()
    deleted = delete_job(
        job_id,
        owner=caller_id(app.current_event),
        jobs=JobRepository(clients.dynamodb_table(settings.jobs_table)),
        s3=clients.s3(),
        bucket=settings.outputs_bucket,
        now=utc_now(),
    )
    metrics.add_metric(name="JobsDeleted", unit=MetricUnit.Count, value=1)
    return deleted


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return resolve(app, event, context)


loaded()  # init's objects frozen, the collector on again (shared.gc_init)
