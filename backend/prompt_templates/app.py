"""/templates: each API key's library of versioned prompt templates, private
unless shared.

POST   /templates                     a new version of one of the caller's templates
GET    /templates?scope=&limit=&nextToken=   the caller's templates (scope=own) or every key's shared ones
GET    /templates/{templateId}?version=&owner=   one version: the caller's, or another key's shared one
PATCH  /templates/{templateId}        share or stop sharing one of the caller's templates
DELETE /templates/{templateId}        delete one of the caller's templates, every version"""

from __future__ import annotations

import gc

gc.disable()  # while this module loads: on again at its end (shared.gc_init)

from typing import Annotated, Any, Literal

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared import clients
from shared.api import caller_id, make_resolver, resolve
from shared.gc_init import loaded
from shared.jobs import utc_now
from shared.models import CreateTemplateRequest, OwnerId, ShareTemplateRequest, check_template_id
from shared.settings import get_settings
from shared.templates import TemplateStore

logger = Logger()
metrics = Metrics()
app = make_resolver(metrics, cors_origins=get_settings().cors_allowed_origins)


def store() -> TemplateStore:
    return TemplateStore(clients.dynamodb_table(get_settings().templates_table))


@app.post("/templates")
def create_template(request: CreateTemplateRequest) -> Response[dict[str, Any]]:
    created = store().create_version(
        request.template_id,
        owner=caller_id(app.current_event),
        text=request.template,
        description=request.description,
        kind=request.kind,
        shared=request.shared,
        now=utc_now(),
    )
    logger.info("template version created", extra={"templateId": created["templateId"], "version": created["version"]})
    return Response(status_code=201, content_type=content_types.APPLICATION_JSON, body=created)


@app.get("/templates")
def list_templates(
    scope: Annotated[
        Literal["own", "shared"], Query(description="own: the caller's templates; shared: every key's shared ones.")
    ] = "own",
    limit: Annotated[int, Query(ge=1, le=100, description="Templates per page.")] = 50,
    next_token: Annotated[str | None, Query(alias="nextToken", max_length=2048, description="From the previous page.")] = None,
) -> dict[str, Any]:
    owner = caller_id(app.current_event)
    if scope == "shared":
        return store().list_shared(limit=limit, token=next_token)
    return store().list_own(owner, limit=limit, token=next_token)


@app.get("/templates/<template_id>")
def get_template(
    template_id: str,
    version: Annotated[int | None, Query(ge=1, le=999_999, description="Omitted: the latest version.")] = None,
    owner: Annotated[OwnerId | None, Query(description="Another key's shared template; omitted: the caller's.")] = None,
) -> dict[str, Any]:
    check_template_id(template_id)
    return store().get(template_id, caller=caller_id(app.current_event), owner=owner, version=version)


@app.patch("/templates/<template_id>")
def share_template(template_id: str, request: ShareTemplateRequest) -> dict[str, Any]:
    check_template_id(template_id)
    updated = store().set_sharing(template_id, owner=caller_id(app.current_event), shared=request.shared, now=utc_now())
    logger.info("template sharing changed", extra={"templateId": template_id, "shared": request.shared})
    return updated


@app.delete("/templates/<template_id>")
def delete_template(template_id: str) -> dict[str, Any]:
    check_template_id(template_id)
    removed = store().delete(template_id, owner=caller_id(app.current_event))
    logger.info("template deleted", extra={"templateId": template_id, "versions": removed})
    return {"templateId": template_id, "deleted": True, "versions": removed}


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return resolve(app, event, context)


loaded()  # init's objects frozen, the collector on again (shared.gc_init)
