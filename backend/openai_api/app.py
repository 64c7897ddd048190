"""The OpenAI-compatible routes (the OpenAI API's own REST API, stage
"openai"): GET /v1/models, GET /v1/models/{model}, POST /v1/chat/completions
(stream: true answered as buffered server-sent events) and POST
/v1/images/generations, for every enabled model of the registry. Errors
answer OpenAI's {"error": {"message", "type", "param", "code"}}; those that
a retry would pay for again say `x-should-retry: false`, which the OpenAI
SDKs obey instead of retrying 5xx and 429 on their own."""

from __future__ import annotations

import gc

gc.disable()  # while this module loads: on again at its end (shared.gc_init)

import json
import re
from functools import cache
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
    ResponseValidationError,
)
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import BotoCoreError, ClientError

from openai_api import service
from openai_api.wire import (
    CHAT_FIELDS,
    IMAGE_FIELDS,
    ChatCompletionRequest,
    ImageRequest,
    completion_chunks,
    error_object,
    server_sent_events,
)
from shared import clients
from shared.api import MAX_BODY_BYTES, body_too_large, caller_id, describe_validation_errors, not_json
from shared.errors import GenstackError, ModelUnavailable
from shared.gc_init import loaded
from shared.jobs import utc_now
from shared.limits import InFlightSlots
from shared.metrics import record_model_usage
from shared.models import build
from shared.outputs import OutputLinks
from shared.providers import ConverseTextProvider, InvokeImageProvider, Provider
from shared.providers.guardrail import GuardrailCheck
from shared.registry import ModelSpec
from shared.settings import get_settings

logger = Logger()
metrics = Metrics()
app = APIGatewayRestResolver(enable_validation=True, response_validation_error_http_code=HTTPStatus.INTERNAL_SERVER_ERROR)
build(ChatCompletionRequest)  # the main route's body, at init; the images route's at its first request

# genstack's error codes as OpenAI's (HTTP status, type, code); whether the
# SDK may retry on its own is decided by the status below.
OPENAI_ERRORS = {
    "INVALID_REQUEST": (400, "invalid_request_error", None),
    "UNKNOWN_MODEL": (404, "invalid_request_error", "model_not_found"),
    "MODEL_NOT_FOUND": (404, "invalid_request_error", "model_not_found"),
    "PROVIDER_NOT_CONFIGURED": (400, "invalid_request_error", "model_not_available"),
    "MISSING_API_KEY": (401, "invalid_request_error", "invalid_api_key"),
    "MONTHLY_BUDGET_EXCEEDED": (429, "insufficient_quota", "insufficient_quota"),
    "CONCURRENCY_LIMIT": (429, "requests", "rate_limit_exceeded"),
    "MODEL_THROTTLED": (429, "requests", "rate_limit_exceeded"),
    "GUARDRAIL_INTERVENED": (400, "invalid_request_error", "content_filter"),
    "MODEL_UNAVAILABLE": (502, "server_error", "model_error"),
    "TIMEOUT": (504, "server_error", "timeout"),
}
# Worth the SDK's own retry: nothing was charged and a later call may pass.
RETRYABLE = frozenset({"CONCURRENCY_LIMIT", "MODEL_THROTTLED"})


def openai_error(status: int, message: str, *, type_: str, code: str | None, param: str | None, retry: bool) -> Response:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(error_object(message, type_=type_, code=code, param=param)),
        headers={"x-should-retry": "true" if retry else "false"},
    )


def refused() -> None:
    metrics.add_metric(name="RequestsRefused", unit=MetricUnit.Count, value=1)


def _param(field: str) -> str | None:
    return field.split(".")[0] if field and field != "body" else None


@app.exception_handler(RequestValidationError)
def _validation(exc: RequestValidationError) -> Response:
    errors = list(exc.errors())
    if app.current_event.body in (None, ""):
        errors = [{"loc": ("body",), "type": "missing", "msg": "is required"}]
    extra = [e for e in errors if e.get("type") == "extra_forbidden"]
    if extra:  # OpenAI's own wording, for a field genstack does not implement
        # (without pydantic's names of union members: "list[TextPart]")
        where = [str(p) for p in extra[0].get("loc", ())[1:] if not re.fullmatch(r"\w+\[.*\]|str", str(p))]
        name = ".".join(where)
        fields = IMAGE_FIELDS if app.current_event.path.endswith("/images/generations") else CHAT_FIELDS
        message = f"Unrecognized request argument supplied: {name} (this API takes: {', '.join(fields)})"
        refused()
        param = where[0] if where else None
        return openai_error(400, message, type_="invalid_request_error", code="unsupported_parameter", param=param, retry=False)
    message, details = describe_validation_errors(errors)
    refused()
    param = _param(details[0]["field"]) if details else None
    return openai_error(400, message, type_="invalid_request_error", code="invalid_value", param=param, retry=False)


@app.exception_handler(GenstackError)
def _domain(exc: GenstackError) -> Response:
    status, type_, code = OPENAI_ERRORS.get(exc.code, (exc.status_code, "server_error", exc.code.lower()))
    logger.info("request refused", extra={"code": exc.code, "status": status})
    if status < 500:
        refused()
    param = exc.details.get("param") or _param(str(exc.details.get("field", "")))
    return openai_error(status, exc.message, type_=type_, code=code, param=param, retry=exc.code in RETRYABLE)


@app.exception_handler(RequestUnsupportedContentType)
def _unsupported_media_type(exc: RequestUnsupportedContentType) -> Response:
    # (handler() refuses non-JSON bodies first; this is an empty body sent with a non-JSON Content-Type.)
    refused()
    message = not_json(app.current_event.headers.get("content-type", ""))
    return openai_error(415, message, type_="invalid_request_error", code="unsupported_media_type", param=None, retry=False)


def _internal() -> Response:
    request_id = app.current_event.request_context.request_id
    message = f"internal error; quote request id {request_id} when reporting it"
    return openai_error(500, message, type_="server_error", code=None, param=None, retry=False)


@app.exception_handler(ResponseValidationError)
def _bad_response(exc: ResponseValidationError) -> Response:
    logger.error("response failed validation", extra={"errors": str(exc.errors())[:2000]})
    return _internal()


@app.not_found
def _not_found(exc: NotFoundError) -> Response:
    event = app.current_event
    message = f"Unknown request URL: {event.http_method} {event.path}."
    return openai_error(404, message, type_="invalid_request_error", code="unknown_url", param=None, retry=False)


@app.exception_handler(Exception)
def _unexpected(exc: Exception) -> Response:
    logger.exception("unhandled error")
    return _internal()


# ------------------------------------------------------------------ routes
@app.get("/v1/models")
def models() -> dict[str, Any]:
    return service.list_models(get_settings())


@app.get("/v1/models/<model>")
def model(model: str) -> dict[str, Any]:
    return service.get_model(get_settings(), model)


@app.get("/v1/models/<provider>/<model>")
def namespaced_model(provider: str, model: str) -> dict[str, Any]:
    """A model beyond Bedrock: its id is provider/model (openai/gpt-4.1-mini)."""
    return service.get_model(get_settings(), f"{provider}/{model}")


@cache
def _bedrock_providers() -> dict[str, Provider]:
    client = clients.bedrock_runtime_within(service.model_timeout(get_settings()))
    return {"converse": ConverseTextProvider(client), "invoke-image": InvokeImageProvider(client)}


def provider_for(spec: ModelSpec) -> Provider:
    if spec.external:
        return clients.external_providers(read_timeout=service.model_timeout(get_settings()))[spec.api]
    return _bedrock_providers()[spec.api]


def _context() -> service.CallContext:
    settings = get_settings()
    owner = caller_id(app.current_event)
    return service.CallContext(
        owner=owner,
        settings=settings,
        calls=clients.call_ledger(),
        profile=clients.key_profiles().of(owner),
        now=utc_now(),
        provider_for=provider_for,
        guardrail_check=lambda guardrail: GuardrailCheck(
            clients.bedrock_runtime_within(service.model_timeout(settings)), guardrail
        ),
    )


def _metered(ctx: service.CallContext, run: Any) -> service.Outcome:
    """One call under one of the key's in-flight slots (by tier, as /enhance)."""
    settings = ctx.settings
    slots = InFlightSlots(
        clients.dynamodb_table(settings.budget_table), route="v1", lease_seconds=service.lease_seconds(settings)
    )
    with slots.hold(ctx.owner, slots=dict(settings.enhance_concurrency)[ctx.profile.tier]):
        outcome = run()
    generation = outcome.generation
    record_model_usage(
        {
            "model": generation.model,
            "status": "SUCCEEDED",
            "inputTokens": generation.input_tokens,
            "outputTokens": generation.output_tokens,
            "costUsd": float(outcome.cost),
        }
    )
    if outcome.cost:
        metrics.add_metric(name="SpendUsd", unit=MetricUnit.NoUnit, value=float(outcome.cost))
    return outcome


def _json(outcome: service.Outcome) -> Response[dict[str, Any]]:
    return Response(
        status_code=200, content_type=content_types.APPLICATION_JSON, body=outcome.body, headers=_cost_headers(outcome)
    )


def _cost_headers(outcome: service.Outcome) -> dict[str, str]:
    """What the call cost and the record it is under (GET /usage counts it)."""
    return {"x-genstack-cost-usd": f"{outcome.cost:f}", "x-genstack-call": outcome.record}


@app.post("/v1/chat/completions")
def chat_completions(request: ChatCompletionRequest) -> Response[dict[str, Any] | str]:
    ctx = _context()
    outcome = _metered(ctx, lambda: service.chat(request, ctx))
    metrics.add_metric(name="ChatCompletions", unit=MetricUnit.Count, value=1)
    if request.stream:
        include_usage = bool(request.stream_options and request.stream_options.include_usage)
        return Response(
            status_code=200,
            content_type="text/event-stream",
            body=server_sent_events(completion_chunks(outcome.body, include_usage=include_usage)),
            headers={**_cost_headers(outcome), "cache-control": "no-cache"},
        )
    return _json(outcome)


@app.post("/v1/images/generations")
def image_generations(request: ImageRequest) -> Response[dict[str, Any]]:
    ctx = _context()
    settings = ctx.settings
    links = OutputLinks(clients.s3(), bucket=settings.outputs_bucket, lifetime_seconds=settings.output_link_seconds)

    def store(record: str, pngs: list[bytes]) -> list[str]:
        """Private objects under jobs/ (the outputs' lifecycle), read through expiring links."""
        prefix = f"jobs/{record.replace('#', '-')}/outputs"
        keys = []
        for n, png in enumerate(pngs, start=1):
            key = f"{prefix}/{n}.png"
            try:
                clients.s3().put_object(Bucket=settings.outputs_bucket, Key=key, Body=png, ContentType="image/png")
            except (ClientError, BotoCoreError) as exc:
                logger.exception("image not stored")
                raise ModelUnavailable(
                    "the images were made (and billed) but could not be stored; ask for response_format b64_json"
                ) from exc
            keys.append(links.url(key))
        return keys

    outcome = _metered(ctx, lambda: service.images(request, ctx, store=store))
    metrics.add_metric(name="ImagesGenerated", unit=MetricUnit.Count, value=len(outcome.body["data"]))
    return _json(outcome)


def _refusal(status: int, message: str, code: str) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json", "x-should-retry": "false"},
        "body": json.dumps(error_object(message, type_="invalid_request_error", code=code)),
        "isBase64Encoded": False,
    }


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    body = event.get("body")
    if body_too_large(body):
        return _refusal(
            413, f"the request body is larger than {MAX_BODY_BYTES} bytes, the most this API takes", "payload_too_large"
        )
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    content_type = (headers.get("content-type") or "").strip().lower()
    if body and content_type and not content_type.startswith("application/json"):
        return _refusal(415, not_json(content_type), "unsupported_media_type")
    return app.resolve(event, context)


loaded()  # init's objects frozen, the collector on again (shared.gc_init)
