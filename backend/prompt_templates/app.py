"""POST /templates, GET /templates, GET /templates/{templateId}: the deployment's
library of versioned prompt templates."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Query
from aws_lambda_powertools.utilities.typing import LambdaContext

from shared import clients
from shared.api import caller_id, make_resolver, resolve
from shared.jobs import utc_now
from shared.models import CreateTemplateRequest
from shared.settings import get_settings
from shared.templates import TemplateStore, view

logger = Logger()
tracer = clients.tracer()  # X-Ray
metrics = Metrics()
app = make_resolver(metrics, cors_origins=get_settings().cors_allowed_origins)


def store() -> TemplateStore:
    return TemplateStore(clients.dynamodb_table(get_settings().templates_table))


@app.post("/templates")
def create_template(request: CreateTemplateRequest) -> Response[dict[str, Any]]:
    created = store().create_version(
        request.template_id,
        text=request.template,
        description=request.description,
        kind=request.kind,
        owner=caller_id(app.current_event),
        now=utc_now(),
    )
    logger.info("template version created", extra={"templateId": created["templateId"], "version": created["version"]})
    return Response(status_code=201, content_type=content_types.APPLICATION_JSON, body=created)


@app.get("/templates")
def list_templates() -> dict[str, Any]:
    caller_id(app.current_event)
    return {"templates": store().list_latest()}


@app.get("/templates/<template_id>")
def get_template(
    template_id: str, version: Annotated[int | None, Query(ge=1, description="Omitted: the latest version.")] = None
) -> dict[str, Any]:
    caller_id(app.current_event)
    return view(store().get(template_id, version))


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)  # responses may hold prompts and outputs
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return resolve(app, event, context)
