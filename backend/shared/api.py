"""What every API function shares: a Powertools REST resolver whose every error,
including validation and unexpected ones, answers `{"error": {"code", "message"}}`,
and the identity of the calling API key."""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
    ResponseValidationError,
)
from aws_lambda_powertools.metrics import MetricUnit

from shared.errors import GenstackError, MissingApiKey
from shared.identity import key_hash_owner

logger = Logger(child=True)


def error_body(code: str, message: str, details: Any = None) -> str:
    """The contract's error body: {"error": {"code", "message", "details"?}}."""
    error: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        error["details"] = details
    return json.dumps({"error": error})


def error_response(status_code: int, code: str, message: str, *, details: Any = None) -> Response:
    return Response(status_code=status_code, content_type=content_types.APPLICATION_JSON, body=error_body(code, message, details))


# Where Powertools says a value came from; the field name alone is clearer.
_LOCATIONS = frozenset({"body", "query", "path", "header", "cookie"})


def describe_validation_errors(errors: list[dict[str, Any]]) -> tuple[str, list[dict[str, str]]]:
    """Turn pydantic's error list into one readable sentence naming each field:
    "prompt is required; limit: input should be less than or equal to 100"."""
    details, parts = [], []
    for err in errors:
        loc = [str(part) for part in err.get("loc", ())]
        if loc and loc[0] in _LOCATIONS:
            loc = loc[1:]
        field = ".".join(loc) or "body"
        kind = err.get("type", "")
        if kind == "json_invalid":
            field, msg = "body", "is not valid JSON"
        elif kind == "missing":
            msg = "is required"
        elif kind == "extra_forbidden" and len(loc) > 1 and loc[0] in ("parameters", "modelParameters"):
            from shared.models import GenerationParameters  # only here: functions without it skip building it

            names = ", ".join(f.alias or n for n, f in GenerationParameters.model_fields.items())
            msg = f"is not a generation parameter (they are: {names}; each model takes some of them)"
        elif kind == "extra_forbidden":
            msg = "is not a known field"
        elif kind == "value_error":  # our own validators' phrasing: "must ..."
            msg = err.get("msg", "is invalid").removeprefix("Value error, ")
        else:  # pydantic's own sentence: "Input should be ..."
            msg = err.get("msg", "is invalid")
            msg = ": " + msg[:1].lower() + msg[1:]
        details.append({"field": field, "message": msg.removeprefix(": ")})
        subject = "the request body" if field == "body" else field
        parts.append(f"{subject}{msg}" if msg.startswith(":") else f"{subject} {msg}")
    sentence = "; ".join(parts)
    return sentence or "the request is invalid", details


def cors_config(origins: tuple[str, ...]) -> CORSConfig | None:
    """CORS for the configured browser origins, or none. Powertools answers the
    preflight (OPTIONS) and echoes an allowed Origin, never '*'."""
    if not origins:
        return None
    return CORSConfig(
        allow_origin=origins[0],
        extra_origins=list(origins[1:]),
        allow_headers=["x-api-key", "Idempotency-Key"],
        max_age=600,
    )


def make_resolver(metrics: Metrics | None = None, cors_origins: tuple[str, ...] = ()) -> APIGatewayRestResolver:
    """The resolver every API function uses. With `metrics`, each refused
    request (4xx) counts in the RequestsRefused metric; `cors_origins` are the
    browser origins allowed to call the API."""
    # Without response_validation_error_http_code, Powertools reports a bad
    # *response* as a RequestValidationError, i.e. blames the caller.
    app = APIGatewayRestResolver(
        enable_validation=True,
        response_validation_error_http_code=HTTPStatus.INTERNAL_SERVER_ERROR,
        cors=cors_config(cors_origins),
    )

    @app.exception_handler(RequestValidationError)
    def _validation(exc: RequestValidationError) -> Response:
        errors = list(exc.errors())
        body_errors = any(err.get("loc", ("",))[0] == "body" for err in errors)
        if body_errors and app.current_event.body in (None, ""):
            errors = [{"loc": ("body",), "type": "missing", "msg": "is required"}]
        message, details = describe_validation_errors(errors)
        logger.info("request refused", extra={"reason": "validation", "fields": [d["field"] for d in details]})
        refused()
        return error_response(400, "INVALID_REQUEST", message, details=details)

    def refused() -> None:
        if metrics is not None:
            metrics.add_metric(name="RequestsRefused", unit=MetricUnit.Count, value=1)

    def internal_error() -> Response:
        request_id = app.current_event.request_context.request_id
        return error_response(500, "INTERNAL_ERROR", f"internal error; quote request id {request_id} when reporting it")

    @app.exception_handler(RequestUnsupportedContentType)
    def _unsupported_media_type(exc: RequestUnsupportedContentType) -> Response:
        # (resolve() refuses non-JSON bodies first; this is the empty body sent
        # with a non-JSON Content-Type.)
        refused()
        return error_response(415, "UNSUPPORTED_MEDIA_TYPE", not_json(app.current_event.headers.get("content-type", "")))

    @app.exception_handler(ResponseValidationError)
    def _bad_response(exc: ResponseValidationError) -> Response:
        logger.error("response failed validation", extra={"errors": str(exc.errors())[:2000]})
        return internal_error()

    @app.exception_handler(GenstackError)
    def _domain(exc: GenstackError) -> Response:
        logger.info("request refused", extra={"code": exc.code, "status": exc.status_code})
        if exc.status_code < 500:
            refused()
        return error_response(exc.status_code, exc.code, exc.message, details=exc.details or None)

    @app.not_found
    def _not_found(exc: NotFoundError) -> Response:
        event = app.current_event
        return error_response(404, "ROUTE_NOT_FOUND", f"no route {event.http_method} {event.path}")

    @app.exception_handler(Exception)
    def _unexpected(exc: Exception) -> Response:
        # Logged with its traceback; the caller gets the request id only.
        logger.exception("unhandled error")
        return internal_error()

    return app


def _content_type(event: dict[str, Any]) -> str:
    headers = event.get("headers") or {}
    return next((v for k, v in headers.items() if k.lower() == "content-type"), "").strip().lower()


def not_json(content_type: str) -> str:
    """The 415 message, for a body declared as anything but JSON."""
    return f"the body must be JSON sent with Content-Type: application/json (got {content_type})"


# The largest request body any route takes: a 20,000-character prompt (up to
# 80 KB in UTF-8), 100 KB of chart data and template variables fit with room.
# Checked before the body is parsed: a 5.7 MB body once peaked at 327 MB while
# pydantic validated it, in a 256 MB function. In staging and prod the WAF
# refuses a larger Content-Length before any function runs (api.yaml).
MAX_BODY_BYTES = 256 * 1024


def _refusal(status: int, code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "application/json"},
        "body": error_body(code, message, details),
        "isBase64Encoded": False,
    }


def body_too_large(body: str | None) -> bool:
    """Whether a body is over MAX_BODY_BYTES (in UTF-8), without encoding a huge one."""
    if not body:
        return False
    return len(body) > MAX_BODY_BYTES or len(body.encode("utf-8", "surrogatepass")) > MAX_BODY_BYTES


def resolve(app: APIGatewayRestResolver, event: dict[str, Any], context: Any) -> dict[str, Any]:
    """`app.resolve`, after refusing what should never be parsed: a body over
    MAX_BODY_BYTES (413), and a body not declared as JSON (415).

    Powertools would parse a form-encoded body (what `curl -d` sends by default)
    as form fields and report every JSON field missing; a 415 that names the
    fix is clearer. A missing Content-Type is read as JSON.
    """
    body = event.get("body")
    if body_too_large(body):
        logger.info("request refused", extra={"reason": "body too large", "bodyChars": len(body)})
        return _refusal(
            413,
            "PAYLOAD_TOO_LARGE",
            f"the request body is larger than {MAX_BODY_BYTES} bytes, the most any route takes",
            {"maxBytes": MAX_BODY_BYTES},
        )
    content_type = _content_type(event)
    if body and content_type and not content_type.startswith("application/json"):
        return _refusal(415, "UNSUPPORTED_MEDIA_TYPE", not_json(content_type))
    return app.resolve(event, context)


def bearer_token(value: str | None) -> str | None:
    """The key of an `Authorization: Bearer <key>` header (what OpenAI clients send)."""
    scheme, _, token = (value or "").strip().partition(" ")
    return (token.strip() or None) if scheme.lower() == "bearer" else None


def caller_id(event: Any) -> str:
    """The API key the request came with: API Gateway's apiKeyId when it sets
    one (AWS always does on key-protected routes, the /v1 API's included,
    whose authorizer hands it the bearer token), otherwise a hash of the
    x-api-key header or of the bearer token (local emulators do not fill in
    apiKeyId). Jobs and call records belong to this id."""
    identity = event.request_context.identity
    key_id = getattr(identity, "api_key_id", None)
    if key_id:
        return key_id
    key = event.headers.get("x-api-key") or bearer_token(event.headers.get("authorization"))  # case-insensitive
    if not key:
        raise MissingApiKey("the x-api-key header is required")
    return key_hash_owner(key)
