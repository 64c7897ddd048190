"""Property-based bad input (hypothesis) for every route, through the real
handlers on moto: arbitrary JSON and non-JSON bodies, path parameters, query
strings, content types and Idempotency-Key headers. Whatever arrives, the
answer is never a 5xx, and every 4xx carries the error contract
{"error": {"code", "message"}}. (The same property is checked over HTTP against
the local stack by schemathesis, tests/e2e/test_schemathesis.py.)"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from enhance import app as enhance_app
from generate import app as generate_app
from prompt_templates import app as templates_app
from shared import clients
from shared.settings import get_settings
from status import app as status_app
from tests.unit.conftest import load_event

EXAMPLES = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
MODELS = ["amazon.nova-micro-v1:0", "amazon.nova-lite-v1:0", "anthropic.claude-3-haiku-20240307-v1:0", "", "x" * 300]


def near_valid(fields: dict[str, st.SearchStrategy[Any]]) -> st.SearchStrategy[dict[str, Any]]:
    """Objects with the route's real field names (and stray ones), each value
    of any JSON type: closer to the code's branches than random objects."""
    return st.fixed_dictionaries({}, optional={**fields, "extra": json_values})


generate_bodies = near_valid(
    {
        "prompt": st.text(max_size=200) | json_values,
        "models": st.lists(st.sampled_from(MODELS) | st.text(max_size=20), max_size=5) | json_values,
        "kind": st.sampled_from(["text", "image", "chart", "video", ""]) | json_values,
        "budgetUsd": st.floats(allow_nan=False, allow_infinity=True) | st.integers() | json_values,
        "template": st.fixed_dictionaries({"id": st.text(max_size=70)}, optional={"version": st.integers() | json_values})
        | json_values,
        "variables": st.dictionaries(st.text(max_size=10), json_values, max_size=3) | json_values,
        "data": st.lists(st.dictionaries(st.text(max_size=5), json_scalars, max_size=3), max_size=3) | json_values,
    }
)
bodies = st.one_of(
    json_values.map(json.dumps),
    st.text(max_size=100),  # not JSON at all
    st.binary(max_size=60).map(lambda b: b.decode("latin-1")),
    st.just(""),
)
content_types = st.sampled_from(
    ["application/json", "application/json; charset=utf-8", "text/plain", "", "application/x-www-form-urlencoded"]
)


def event(base: str, method: str, path: str, resource: str, *, body: str | None, path_params=None, query=None, headers=None):
    built = copy.deepcopy(load_event(base))
    built.update(
        httpMethod=method, path=path, resource=resource, body=body, pathParameters=path_params, queryStringParameters=query
    )
    built["requestContext"] = {**built["requestContext"], "httpMethod": method, "resourcePath": resource}
    merged = {**built.get("headers", {}), **(headers or {})}
    built["headers"] = merged
    built["multiValueHeaders"] = {k: [v] for k, v in merged.items()}
    return built


def check(response: dict[str, Any]) -> None:
    assert response["statusCode"] < 500, response
    if response["statusCode"] >= 400:
        error = json.loads(response["body"])["error"]
        assert isinstance(error["code"], str)
        assert error["code"]
        assert isinstance(error["message"], str)
        assert error["message"]


class FakeBedrock:
    """Answers every Converse call (the shapes are Stubber-checked in test_enhance.py)."""

    def converse(self, **_: Any) -> dict[str, Any]:
        return {
            "output": {"message": {"role": "assistant", "content": [{"text": "A better prompt."}]}},
            "stopReason": "end_turn",
            "usage": {"inputTokens": 10, "outputTokens": 5, "totalTokens": 15},
            "metrics": {"latencyMs": 1},
        }


@pytest.fixture
def fake_bedrock(monkeypatch):
    monkeypatch.setattr(clients, "bedrock_runtime_sync", FakeBedrock)


@EXAMPLES
@given(body=generate_bodies.map(json.dumps) | bodies, content_type=content_types, key=st.none() | st.text(max_size=300))
def test_generate_never_answers_5xx(aws, context, body, content_type, key):
    headers = {"Content-Type": content_type}
    if key is not None:
        headers["Idempotency-Key"] = key
    check(generate_app.handler(event("generate.json", "POST", "/generate", "/generate", body=body, headers=headers), context))


@EXAMPLES
@given(
    body=near_valid(
        {"prompt": st.text(max_size=300) | json_values, "kind": st.sampled_from(["text", "image", "chart", "x"]) | json_values}
    ).map(json.dumps)
    | bodies,
    content_type=content_types,
)
def test_enhance_never_answers_5xx(aws, context, fake_bedrock, body, content_type):
    built = event("enhance.json", "POST", "/enhance", "/enhance", body=body, headers={"Content-Type": content_type})
    check(enhance_app.handler(built, context))


@EXAMPLES
@given(
    body=near_valid(
        {
            "templateId": st.text(max_size=70) | json_values,
            "template": st.text(max_size=200) | json_values,
            "description": st.text(max_size=600) | json_values,
            "kind": st.sampled_from(["text", "chart", "x"]) | json_values,
            "shared": st.booleans() | json_values,
        }
    ).map(json.dumps)
    | bodies,
    template_id=st.text(max_size=80),
    version=st.none() | st.text(max_size=12),
    owner=st.none() | st.text(max_size=80),
    scope=st.none() | st.text(max_size=10),
    share_body=near_valid({"shared": st.booleans() | json_values}).map(json.dumps) | bodies,
)
def test_templates_never_answer_5xx(aws, context, body, template_id, version, owner, scope, share_body):
    check(
        templates_app.handler(
            event("generate.json", "POST", "/templates", "/templates", body=body, headers={"Content-Type": "application/json"}),
            context,
        )
    )
    query = None if version is None else {"version": version}
    got = event(
        "status.json",
        "GET",
        f"/templates/{template_id}",
        "/templates/{templateId}",
        body=None,
        path_params={"templateId": template_id},
        query=query,
    )
    check(templates_app.handler(got, context))
    query = {k: v for k, v in (("owner", owner), ("version", version)) if v is not None} or None
    for method, payload in (("GET", None), ("PATCH", share_body), ("DELETE", None)):
        headers = {"Content-Type": "application/json"} if payload is not None else None
        routed = event(
            "status.json",
            method,
            f"/templates/{template_id}",
            "/templates/{templateId}",
            body=payload,
            path_params={"templateId": template_id},
            query=query if method == "GET" else None,
            headers=headers,
        )
        check(templates_app.handler(routed, context))
    listed = {"scope": scope} if scope is not None else None
    check(templates_app.handler(event("status.json", "GET", "/templates", "/templates", body=None, query=listed), context))


@EXAMPLES
@given(job_id=st.text(max_size=80), limit=st.none() | st.text(max_size=8), token=st.none() | st.text(max_size=200))
def test_status_jobs_cancel_and_delete_never_answer_5xx(aws, context, job_id, limit, token):
    check(
        status_app.handler(
            event("status.json", "GET", f"/status/{job_id}", "/status/{jobId}", body=None, path_params={"jobId": job_id}), context
        )
    )
    query = {k: v for k, v in (("limit", limit), ("nextToken", token)) if v is not None} or None
    check(status_app.handler(event("status.json", "GET", "/jobs", "/jobs", body=None, query=query), context))
    cancel = event(
        "generate.json", "POST", f"/jobs/{job_id}/cancel", "/jobs/{jobId}/cancel", body=None, path_params={"jobId": job_id}
    )
    check(generate_app.handler(cancel, context))
    delete = event("generate.json", "DELETE", f"/jobs/{job_id}", "/jobs/{jobId}", body=None, path_params={"jobId": job_id})
    check(generate_app.handler(delete, context))


# ------------------------------------------------------------------ /v1
class FakeBedrockV1(FakeBedrock):
    """Converse as above; InvokeModel answers one image."""

    def invoke_model(self, **_: Any) -> dict[str, Any]:
        import base64
        import io

        from botocore.response import StreamingBody

        raw = json.dumps({"images": [base64.b64encode(b"\x89PNG\r\n\x1a\n").decode()]}).encode()
        return {"body": StreamingBody(io.BytesIO(raw), len(raw)), "contentType": "application/json"}


@pytest.fixture
def v1_bedrock(monkeypatch):
    from openai_api import app as openai_app

    monkeypatch.setattr(clients, "bedrock_runtime_within", lambda read_timeout: FakeBedrockV1())
    monkeypatch.setenv("ENABLED_MODELS", "amazon.nova-micro-v1:0,amazon.nova-lite-v1:0,amazon.nova-canvas-v1:0")
    get_settings.cache_clear()
    openai_app._bedrock_providers.cache_clear()
    yield openai_app
    openai_app._bedrock_providers.cache_clear()


V1_MODELS = ["amazon.nova-micro-v1:0", "amazon.nova-canvas-v1:0", "gpt-4o", "", "x" * 300]
messages = st.lists(
    st.fixed_dictionaries(
        {"role": st.sampled_from(["system", "developer", "user", "assistant", "tool"]) | json_values},
        optional={
            "content": st.text(max_size=100)
            | st.lists(st.fixed_dictionaries({"type": st.just("text"), "text": st.text(max_size=20)}), max_size=2)
            | json_values,
            "name": st.text(max_size=5),
        },
    ),
    max_size=4,
)
chat_bodies = near_valid(
    {
        "model": st.sampled_from(V1_MODELS) | json_values,
        "messages": messages | json_values,
        "temperature": st.floats(allow_nan=False, allow_infinity=True) | json_values,
        "max_tokens": st.integers() | json_values,
        "stop": st.text(max_size=5) | st.lists(st.text(max_size=5), max_size=6) | json_values,
        "n": st.integers(min_value=-1, max_value=3) | json_values,
        "stream": st.booleans() | json_values,
        "stream_options": st.fixed_dictionaries({}, optional={"include_usage": st.booleans() | json_values}) | json_values,
        "tools": json_values,
    }
)
image_bodies = near_valid(
    {
        "model": st.sampled_from(V1_MODELS) | json_values,
        "prompt": st.text(max_size=100) | json_values,
        "n": st.integers(min_value=-1, max_value=12) | json_values,
        "size": st.sampled_from(["1024x1024", "256x256", "auto", "1x1", "big"]) | json_values,
        "quality": st.sampled_from(["standard", "hd", "low", "ultra"]) | json_values,
        "response_format": st.sampled_from(["url", "b64_json", "png"]) | json_values,
    }
)


def check_openai(response: dict[str, Any]) -> None:
    """Never a 5xx (the fake model always answers); every refusal OpenAI's error object."""
    assert response["statusCode"] < 500, response
    if response["statusCode"] >= 400:
        error = json.loads(response["body"])["error"]
        assert isinstance(error["message"], str)
        assert error["message"]
        assert isinstance(error["type"], str)
        assert set(error) == {"message", "type", "param", "code"}


@EXAMPLES
@given(body=chat_bodies.map(json.dumps) | bodies, content_type=content_types)
def test_chat_completions_never_answer_5xx(aws, context, v1_bedrock, body, content_type):
    built = event(
        "openai-chat-completions.json",
        "POST",
        "/v1/chat/completions",
        "/v1/chat/completions",
        body=body,
        headers={"Content-Type": content_type},
    )
    check_openai(v1_bedrock.handler(built, context))


@EXAMPLES
@given(body=image_bodies.map(json.dumps) | bodies, content_type=content_types)
def test_image_generations_never_answer_5xx(aws, context, v1_bedrock, body, content_type):
    built = event(
        "openai-images.json",
        "POST",
        "/v1/images/generations",
        "/v1/images/generations",
        body=body,
        headers={"Content-Type": content_type},
    )
    check_openai(v1_bedrock.handler(built, context))


@EXAMPLES
@given(model=st.text(max_size=300))
def test_model_lookups_never_answer_5xx(aws, context, v1_bedrock, model):
    built = event(
        "openai-model.json", "GET", f"/v1/models/{model}", "/v1/models/{model+}", body=None, path_params={"model": model}
    )
    check_openai(v1_bedrock.handler(built, context))
