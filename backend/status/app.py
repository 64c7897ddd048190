"""GET /status/{jobId}: a job as its owner sees it. GET /jobs: the caller's jobs,
newest first, a page at a time. GET /usage: the caller's spend, reservations
and budget left, by month and model. GET /models: the deployment's models.
GET /health: liveness."""

from __future__ import annotations

import gc

gc.disable()  # while this module loads: on again at its end (shared.gc_init)

import base64
import binascii
import json
from typing import Annotated, Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared import clients
from shared.api import caller_id, make_resolver, resolve
from shared.errors import InvalidRequest
from shared.gc_init import loaded
from shared.jobs import JobRepository, listing_view, public_view, utc_now
from shared.outputs import OutputLinks
from shared.settings import get_settings
from shared.usage import usage_view

logger = Logger()
app = make_resolver(cors_origins=get_settings().cors_allowed_origins)


def find_job(job_id: str, *, owner: str, jobs: JobRepository, links: OutputLinks) -> dict[str, Any]:
    """The owner's job, its result URLs signed afresh (they expire)."""
    return public_view(jobs.get_owned(job_id, owner), links=links)


@app.get("/status/<job_id>")
def status(job_id: str) -> dict[str, Any]:
    settings = get_settings()
    return find_job(
        job_id,
        owner=caller_id(app.current_event),
        jobs=JobRepository(clients.dynamodb_table(settings.jobs_table)),
        links=OutputLinks(clients.s3(), bucket=settings.outputs_bucket, lifetime_seconds=settings.output_link_seconds),
    )


_PAGE_KEYS = frozenset({"jobId", "owner", "createdAt"})


def encode_token(last_key: dict[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(last_key, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_token(token: str, *, owner: str) -> dict[str, str]:
    """The page key a nextToken carries; it must be one of the caller's own."""
    try:
        key = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError):
        key = None
    valid = isinstance(key, dict) and set(key) == _PAGE_KEYS and all(isinstance(v, str) for v in key.values())
    if not valid or key["owner"] != owner:
        raise InvalidRequest("nextToken is not a token this API returned to this key", details={"field": "nextToken"})
    return key


def list_jobs_page(owner: str, *, limit: int, token: str | None, jobs: JobRepository, index: str) -> dict[str, Any]:
    start = decode_token(token, owner=owner) if token else None
    items, last_key = jobs.list_for_owner(owner, index=index, limit=limit, start_key=start)
    page: dict[str, Any] = {"jobs": [listing_view(item) for item in items]}
    if last_key:
        page["nextToken"] = encode_token(last_key)
    return page


@app.get("/jobs")
def list_jobs(
    limit: Annotated[int, Query(ge=1, le=100, description="Jobs per page.")] = 20,
    next_token: Annotated[str | None, Query(alias="nextToken", max_length=2048, description="From the previous page.")] = None,
) -> dict[str, Any]:
    settings = get_settings()
    return list_jobs_page(
        caller_id(app.current_event),
        limit=limit,
        token=next_token,
        jobs=JobRepository(clients.dynamodb_table(settings.jobs_table)),
        index=settings.jobs_owner_index,
    )


@app.get("/usage")
def usage(
    from_: Annotated[
        str | None, Query(alias="from", max_length=7, description="First month, YYYY-MM (default: this month).")
    ] = None,
    to: Annotated[str | None, Query(max_length=7, description="Last month, YYYY-MM (default: from, or this month).")] = None,
) -> dict[str, Any]:
    owner = caller_id(app.current_event)
    return usage_view(
        owner, calls=clients.call_ledger(), profile=clients.key_profiles().of(owner), first=from_, last=to, now=utc_now()
    )


@app.get("/models")
def models() -> dict[str, Any]:
    from shared.catalog import catalog

    return catalog(get_settings())


@app.get("/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return resolve(app, event, context)


loaded()  # init's objects frozen, the collector on again (shared.gc_init)
