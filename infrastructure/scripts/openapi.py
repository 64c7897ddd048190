"""The API's OpenAPI description, generated from the handlers themselves (each
function's Powertools resolver knows its routes and pydantic models), merged
into one document with the API-key scheme and the error contract, and written to
docs/openapi.json. One source of truth: a unit test fails when the file is
stale, or when a route of template.yaml is missing from it.

Usage: python openapi.py [--check] [--out docs/openapi.json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "backend"))
# The handlers read their settings at import; none of them matters here.
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "genstack")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "genstack")

OUT = ROOT / "docs" / "openapi.json"
ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string", "description": "What went wrong, e.g. INVALID_REQUEST, JOB_NOT_FOUND."},
                "message": {"type": "string", "description": "What was wrong; validation messages name the field."},
                "details": {"description": "Machine-readable details (fields, limits, amounts)."},
            },
        }
    },
}
PUBLIC = {"/health"}
# The OpenAI-compatible routes: their own REST API (output OpenAiBaseUrl),
# bearer keys, OpenAI's error shape.
OPENAI_SERVER = {
    "url": "https://{openAiApiId}.execute-api.{region}.amazonaws.com/openai",
    "variables": {"openAiApiId": {"default": "def456"}, "region": {"default": "us-east-1"}},
}
OPENAI_ERROR = {
    "type": "object",
    "required": ["error"],
    "description": "The OpenAI API's error object (ErrorResponse of github.com/openai/openai-openapi).",
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string", "description": "invalid_request_error, insufficient_quota, requests, server_error."},
                "param": {"type": ["string", "null"], "description": "The request field at fault, if one is."},
                "code": {"type": ["string", "null"], "description": "model_not_found, unsupported_parameter, timeout, ..."},
            },
        }
    },
}
SUCCESS = {("post", "/generate"): "202", ("post", "/templates"): "201"}


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


def camel_path(path: str) -> str:
    return "/".join(f"{{{camel(part[1:-1])}}}" if part.startswith("{") else part for part in path.split("/"))


def openai_errors_of(method: str, path: str) -> list[tuple[str, str]]:
    """The error statuses a /v1 route answers, as OpenAI's API answers them."""
    errors = [("401", "No bearer key, or one this deployment does not know"), ("500", "A bug; the message quotes the request id")]
    errors.append(("429", "Throttled (rate_limit_exceeded), or over the daily quota or monthly budget (insufficient_quota)"))
    if "{" in path:
        errors.append(("404", "Not one of this deployment's models (model_not_found)"))
    if method == "post":
        errors += [
            ("400", "Invalid request; an unsupported field is named (unsupported_parameter)"),
            ("404", "Not one of this deployment's models (model_not_found)"),
            ("413", "The body is larger than 256 KB"),
            ("415", "The body is not sent as application/json"),
            ("502", "The model's provider failed"),
            ("504", "The model did not answer within OpenAiApiTimeoutSeconds (charged at its reservation)"),
        ]
    return errors


def errors_of(method: str, path: str) -> list[tuple[str, str]]:
    """The error statuses a route answers (README "Errors")."""
    errors = [("400", "Invalid request: the message names the field"), ("500", "A bug; the message quotes the request id")]
    if path in PUBLIC:
        return errors
    errors += [
        ("403", "Missing or unknown API key"),
        ("429", "Throttled, over the daily quota, or over the key's monthly budget"),
    ]
    if "{" in path:
        errors.append(("404", "No such job or template for this key"))
    if method == "post":
        errors.append(("415", "The body is not sent as application/json"))
    if path == "/enhance":
        errors += [
            ("422", "The deployment's guardrail blocked the prompt or the answer (still billed)"),
            ("502", "The enhance model's provider failed or denied the call"),
            ("503", "The enhance model's provider has no API key in this deployment"),
        ]
    if path == "/generate":
        errors += [("402", "The job's worst-case cost exceeds its budget"), ("409", "Idempotency-Key reused while in flight")]
        errors.append(("422", "Idempotency-Key reused with a different body"))
    return errors


def build() -> dict[str, Any]:
    from enhance.app import app as enhance
    from generate.app import app as generate
    from openai_api.app import app as openai_api
    from prompt_templates.app import app as templates
    from status.app import app as status

    spec: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "genstack",
            "version": "1",
            "description": (
                "Multi-model generation API on Amazon Bedrock. Every route but /health needs the x-api-key header. "
                "Errors are {\"error\": {\"code\", \"message\", \"details\"?}}."
            ),
        },
        "servers": [{"url": "https://{apiId}.execute-api.{region}.amazonaws.com/v1", "variables": {
            "apiId": {"default": "abc123"}, "region": {"default": "us-east-1"}}}],
        "paths": {},
        "components": {
            "schemas": {"Error": ERROR, "OpenAiError": OPENAI_ERROR},
            "securitySchemes": {
                "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
                "bearerKey": {"type": "http", "scheme": "bearer", "description": "An API key, as OpenAI clients send it (/v1)."},
            },
        },
    }  # fmt: skip
    for app in (generate, status, enhance, templates, openai_api):
        part = json.loads(app.get_openapi_json_schema(title="genstack", version="1"))
        for path, operations in part.get("paths", {}).items():
            spec["paths"].setdefault(path, {}).update(operations)
        spec["components"]["schemas"].update(part.get("components", {}).get("schemas", {}))
    # The handlers name path parameters in snake case; the API (template.yaml) in camel case.
    spec["paths"] = {camel_path(path): operations for path, operations in spec["paths"].items()}
    # One route in the API ({model+}): a model id may hold a slash (openai/gpt-4.1-mini).
    spec["paths"].pop("/v1/models/{provider}/{model}")
    for path, operations in spec["paths"].items():
        if path.startswith("/v1/"):
            document_openai(path, operations)
            continue
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "path":
                    parameter["name"] = camel(parameter["name"])
            if path not in PUBLIC:
                operation["security"] = [{"apiKey": []}]
            responses = operation.setdefault("responses", {})
            success = SUCCESS.get((method, path))
            if success and "200" in responses:
                responses[success] = responses.pop("200")
            # Powertools describes its own 422 and 500; the API answers both in the error contract.
            responses.pop("422", None)
            for code, meaning in errors_of(method, path):
                responses[code] = {
                    "description": meaning,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                }
    for name in ("HTTPValidationError", "ValidationError"):
        spec["components"]["schemas"].pop(name, None)
    return spec


def document_openai(path: str, operations: dict[str, Any]) -> None:
    """A /v1 route: its server, bearer keys, and OpenAI's errors; its
    bodies are the OpenAI API's (CreateChatCompletionRequest and so on)."""
    operations["servers"] = [OPENAI_SERVER]
    for method, operation in operations.items():
        if method == "servers":
            continue
        operation["security"] = [{"bearerKey": []}]
        operation["tags"] = ["OpenAI-compatible"]
        responses = operation.setdefault("responses", {})
        responses.pop("422", None)
        if path == "/v1/chat/completions":
            responses["200"] = {
                "description": "A chat.completion object; with stream: true, chat.completion.chunk server-sent events "
                "(a usage chunk last with stream_options.include_usage), then data: [DONE]",
                "content": {
                    "application/json": {"schema": {"type": "object"}},
                    "text/event-stream": {"schema": {"type": "string"}},
                },
            }
        for code, meaning in openai_errors_of(method, path):
            responses[code] = {
                "description": meaning,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OpenAiError"}}},
            }


def render() -> str:
    return json.dumps(build(), indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the file is stale; change nothing")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    text = render()
    if args.out.exists() and args.out.read_text(encoding="utf-8") == text:
        return 0
    if args.check:
        print(f"{args.out}: stale; run `make docs`", file=sys.stderr)
        return 1
    args.out.write_text(text, encoding="utf-8")
    print(f"{args.out}: written ({len(json.loads(text)['paths'])} paths)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
