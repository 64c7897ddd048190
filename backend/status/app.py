"""GET /status/{jobId}: a job as its owner sees it. GET /health: liveness."""

from __future__ import annotations

import uuid
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared import clients
from shared.api import caller_id, make_resolver, resolve
from shared.errors import InvalidRequest, JobNotFound
from shared.jobs import JobRepository, public_view
from shared.settings import get_settings

logger = Logger()
app = make_resolver()


def find_job(job_id: str, *, owner: str, jobs: JobRepository, cdn_domain: str) -> dict[str, Any]:
    try:
        uuid.UUID(job_id)
    except ValueError:
        raise InvalidRequest(f"'{job_id}' is not a job id (job ids are UUIDs)", details={"field": "jobId"}) from None
    job = jobs.get(job_id)
    # Another key's job is indistinguishable from a missing one.
    if job is None or job.get("owner") != owner:
        raise JobNotFound(f"no job {job_id} for this API key")
    return public_view(job, cdn_domain=cdn_domain)


@app.get("/status/<job_id>")
def status(job_id: str) -> dict[str, Any]:
    settings = get_settings()
    return find_job(
        job_id,
        owner=caller_id(app.current_event),
        jobs=JobRepository(clients.dynamodb_table(settings.jobs_table)),
        cdn_domain=settings.cdn_domain,
    )


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return resolve(app, event, context)
