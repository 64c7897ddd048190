"""The OpenAI-compatible /v1 routes through their real handler: Bedrock under
botocore Stubber (request shapes checked against the service model), DynamoDB
and S3 from moto, and every body they take or answer checked against the
OpenAI API's published OpenAPI description (tests/data/providers/
openai-openapi-subset.json: github.com/openai/openai-openapi, commit f85dbe2 of
2026-08-21, taken 2026-12-03). Then the /v1 API's authorizer."""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.exceptions import ReadTimeoutError
from botocore.stub import ANY, Stubber

from authorizer import app as authorizer
from openai_api import app as openai_app
from openai_api import service
from openai_api.wire import CHAT_FIELDS, IMAGE_FIELDS, ChatCompletionRequest, ImageRequest
from shared import clients
from shared.errors import InvalidRequest
from shared.jobs import utc_now
from shared.registry import spec_for
from shared.settings import get_settings
from shared.usage import is_month
from tests.unit.conftest import body_of, invoke_model_reply, load_event
from tests.unit.test_external_providers import openai_properties, openai_schema, valid

OWNER = "k1a2b3c4d5"  # the events' apiKeyId
PNG = b"\x89PNG\r\n\x1a\n" + b"1" * 64


@pytest.fixture
def bedrock(monkeypatch):
    """The /v1 routes' Bedrock client, under a Stubber."""
    client = boto3.client("bedrock-runtime", region_name="us-east-1")
    monkeypatch.setattr(clients, "bedrock_runtime_within", lambda read_timeout: client)
    openai_app._bedrock_providers.cache_clear()
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()
    openai_app._bedrock_providers.cache_clear()


@pytest.fixture
def enabled(monkeypatch):
    monkeypatch.setenv(
        "ENABLED_MODELS", "amazon.nova-micro-v1:0,amazon.nova-lite-v1:0,amazon.nova-canvas-v1:0,openai/gpt-4.1-mini"
    )
    get_settings.cache_clear()


def converse_reply(text: str, stop: str = "end_turn", tokens: tuple[int, int] = (120, 40)) -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": stop,
        "usage": {"inputTokens": tokens[0], "outputTokens": tokens[1], "totalTokens": sum(tokens)},
        "metrics": {"latencyMs": 300},
    }


def event(name: str, **body: Any) -> dict[str, Any]:
    e = load_event(name)
    if body:
        e["body"] = json.dumps({**json.loads(e["body"]), **body})
    return e


def months(aws) -> list[dict[str, Any]]:
    return [i for i in aws.ledger_table.scan()["Items"] if is_month(i["period"])]


def openai_error(response: dict[str, Any], status: int) -> dict[str, Any]:
    assert response["statusCode"] == status, response["body"]
    body = valid(openai_schema("ErrorResponse"), body_of(response))
    return body["error"]


# ------------------------------------------------------------ wire format
def test_every_field_the_routes_take_is_one_the_openai_api_declares():
    assert set(ChatCompletionRequest.model_fields) == set(CHAT_FIELDS)
    assert set(CHAT_FIELDS) <= openai_properties("CreateChatCompletionRequest")
    assert set(ImageRequest.model_fields) == set(IMAGE_FIELDS)
    assert set(IMAGE_FIELDS) <= openai_properties("CreateImageRequest")


def test_a_request_with_every_field_is_a_valid_openai_request():
    chat = {
        "model": "amazon.nova-lite-v1:0",
        "messages": [
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Hello"}]},
            {"role": "assistant", "content": "Hi."},
            {"role": "user", "content": "Again"},
        ],
        "temperature": 0.5,
        "top_p": 0.9,
        "max_tokens": 100,
        "max_completion_tokens": 100,
        "stop": ["\n\n"],
        "n": 1,
        "user": "team-a",
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    valid(openai_schema("CreateChatCompletionRequest"), chat)
    ChatCompletionRequest.model_validate(chat)
    image = {
        "model": "amazon.nova-canvas-v1:0",
        "prompt": "a lighthouse",
        "n": 2,
        "size": "1024x1024",
        "quality": "standard",
        "response_format": "b64_json",
        "style": "vivid",
        "user": "team-a",
    }
    valid(openai_schema("CreateImageRequest"), image)
    ImageRequest.model_validate(image)


def test_the_sample_events_are_what_the_openai_sdk_sends():
    samples = {
        "openai-chat-completions.json": "CreateChatCompletionRequest",
        "openai-chat-stream.json": "CreateChatCompletionRequest",
        "openai-images.json": "CreateImageRequest",
    }
    for name, schema in samples.items():
        e = load_event(name)
        valid(openai_schema(schema), json.loads(e["body"]))
        assert e["headers"]["Authorization"].startswith("Bearer ")


# ------------------------------------------------------------------ models
def test_models_lists_the_enabled_models_a_call_can_reach(aws, enabled, context):
    body = body_of(openai_app.handler(load_event("openai-models.json"), context))
    valid(openai_schema("ListModelsResponse"), body)
    # openai/gpt-4.1-mini is enabled but its provider has no key secret here.
    assert [m["id"] for m in body["data"]] == ["amazon.nova-micro-v1:0", "amazon.nova-lite-v1:0", "amazon.nova-canvas-v1:0"]
    assert {m["owned_by"] for m in body["data"]} == {"bedrock"}


def test_one_model_by_id_with_a_slash_or_a_colon(aws, enabled, context, monkeypatch):
    response = openai_app.handler(load_event("openai-model.json"), context)
    assert valid(openai_schema("Model"), body_of(response))["id"] == "amazon.nova-lite-v1:0"
    monkeypatch.setenv("PROVIDER_SECRETS", "openai=arn:aws:secretsmanager:us-east-1:123456789012:secret:k")
    get_settings.cache_clear()
    e = load_event("openai-model.json")
    e["path"], e["pathParameters"] = "/v1/models/openai/gpt-4.1-mini", {"model": "openai/gpt-4.1-mini"}
    assert body_of(openai_app.handler(e, context))["owned_by"] == "openai"
    e["path"] = "/v1/models/gpt-5"
    error = openai_error(openai_app.handler(e, context), 404)
    assert (error["code"], error["param"]) == ("model_not_found", "model")
    assert "gpt-5" in error["message"]


# ------------------------------------------------------- chat completions
def test_a_chat_completion_is_metered_like_enhance_and_answered_as_openai_does(aws, enabled, bedrock, context):
    bedrock.add_response(
        "converse",
        converse_reply("A haiku is a three-line poem of 5, 7 and 5 syllables."),
        expected_params={
            "modelId": "amazon.nova-lite-v1:0",
            "messages": [{"role": "user", "content": [{"text": "What is a haiku?"}]}],
            "system": [{"text": "You answer in one sentence."}],
            "inferenceConfig": {"maxTokens": 200, "temperature": 0.2, "topP": 0.9},
            "requestMetadata": ANY,
        },
    )
    response = openai_app.handler(load_event("openai-chat-completions.json"), context)
    assert response["statusCode"] == 200
    body = valid(openai_schema("CreateChatCompletionResponse"), body_of(response))
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"] == {
        "role": "assistant",
        "content": "A haiku is a three-line poem of 5, 7 and 5 syllables.",
        "refusal": None,
    }
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"] == {"prompt_tokens": 120, "completion_tokens": 40, "total_tokens": 160}
    # 120 x 0.00006/1k + 40 x 0.00024/1k: one record, settled; the month and the header agree.
    (record,) = aws.cost_table.scan()["Items"]
    assert (record["status"], record["costUsd"], record["owner"]) == ("BILLED", Decimal("0.0000168"), OWNER)
    assert record["jobId"].startswith("v1#")
    assert body["id"] == "chatcmpl-" + record["jobId"].removeprefix("v1#")
    headers = response["multiValueHeaders"] if "multiValueHeaders" in response else response["headers"]
    flat = {k.lower(): (v[0] if isinstance(v, list) else v) for k, v in headers.items()}
    assert flat["x-genstack-cost-usd"] == "0.00001680"
    assert flat["x-genstack-call"] == record["jobId"]
    assert [(m["spentUsd"], m["reservedUsd"]) for m in months(aws)] == [(Decimal("0.0000168"), 0)]


def header(response: dict[str, Any], name: str) -> str | None:
    for key, value in (response.get("multiValueHeaders") or {}).items():
        if key.lower() == name:
            return value[0]
    for key, value in (response.get("headers") or {}).items():
        if key.lower() == name:
            return value
    return None


def sse_events(body: str) -> list[Any]:
    assert body.endswith("data: [DONE]\n\n")
    events = []
    for block in body.split("\n\n")[:-1]:
        assert block.startswith("data: "), block
        data = block.removeprefix("data: ")
        events.append(data if data == "[DONE]" else json.loads(data))
    return events


def test_a_streamed_completion_is_server_sent_chunks_then_usage_then_done(aws, enabled, bedrock, context):
    text = "Grey waves fold and break / salt wind combs the sleeping dunes / the tide keeps its time. " * 2
    bedrock.add_response("converse", converse_reply(text, stop="max_tokens"))
    response = openai_app.handler(load_event("openai-chat-stream.json"), context)
    assert response["statusCode"] == 200
    assert header(response, "content-type") == "text/event-stream"
    events = sse_events(response["body"])
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    for chunk in chunks:
        valid(openai_schema("CreateChatCompletionStreamResponse"), chunk)
        assert chunk["object"] == "chat.completion.chunk"
        assert chunk["id"] == chunks[0]["id"]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"]) == text
    assert len(chunks) > 4  # the content in pieces
    finish = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert finish == ["length"]  # Converse's max_tokens
    assert chunks[-1]["choices"] == []
    assert chunks[-1]["usage"] == {"prompt_tokens": 120, "completion_tokens": 40, "total_tokens": 160}


def test_without_include_usage_a_stream_has_no_usage_chunk(aws, enabled, bedrock, context):
    bedrock.add_response("converse", converse_reply("Short."))
    e = event("openai-chat-stream.json", stream_options={"include_usage": False})
    chunks = sse_events(openai_app.handler(e, context)["body"])[:-1]
    assert all("usage" not in c for c in chunks)
    assert all(c["choices"] for c in chunks)


def test_a_conversation_keeps_its_turns_and_its_system_and_developer_messages(aws, enabled, bedrock, context):
    bedrock.add_response(
        "converse",
        converse_reply("Paris."),
        expected_params={
            "modelId": "amazon.nova-micro-v1:0",
            "messages": [
                {"role": "user", "content": [{"text": "Capital of Italy?"}]},
                {"role": "assistant", "content": [{"text": "Rome."}]},
                {"role": "user", "content": [{"text": "And of France?"}]},
            ],
            "system": [{"text": "Be terse.\n\nOne word."}],
            "inferenceConfig": {"maxTokens": ANY, "temperature": 0.7, "topP": 0.9, "stopSequences": ["\n"]},
            "requestMetadata": ANY,
        },
    )
    messages = [
        {"role": "system", "content": "Be terse."},
        {"role": "developer", "content": [{"type": "text", "text": "One word."}]},
        {"role": "user", "content": "Capital of Italy?"},
        {"role": "assistant", "content": "Rome."},
        {"role": "user", "content": "And of France?"},
    ]
    e = event("openai-chat-completions.json", model="amazon.nova-micro-v1:0", messages=messages, stop="\n")
    e["body"] = json.dumps({k: v for k, v in json.loads(e["body"]).items() if k not in ("max_tokens", "temperature")})
    assert openai_app.handler(e, context)["statusCode"] == 200


def test_max_tokens_defaults_to_what_fits_in_the_timeout(aws, enabled, bedrock, context, monkeypatch):
    monkeypatch.setenv("SYNC_TIMEOUT_SECONDS", "29")
    get_settings.cache_clear()
    assert service.default_max_tokens(get_settings()) == (29 - 10) * 40
    bedrock.add_response(
        "converse",
        converse_reply("ok"),
        expected_params={
            "modelId": "amazon.nova-lite-v1:0",
            "messages": ANY,
            "inferenceConfig": {"maxTokens": 760, "temperature": 0.7, "topP": 0.9},
            "requestMetadata": ANY,
        },
    )
    e = event("openai-chat-completions.json")
    e["body"] = json.dumps({"model": "amazon.nova-lite-v1:0", "messages": [{"role": "user", "content": "hi"}]})
    assert openai_app.handler(e, context)["statusCode"] == 200


@pytest.mark.parametrize(
    ("change", "param", "code", "says"),
    [
        (
            {"tools": [{"type": "function", "function": {"name": "f"}}]},
            "tools",
            "unsupported_parameter",
            "Unrecognized request argument supplied: tools",
        ),
        ({"logprobs": True}, "logprobs", "unsupported_parameter", "Unrecognized request argument supplied: logprobs"),
        ({"response_format": {"type": "json_object"}}, "response_format", "unsupported_parameter", "response_format"),
        ({"n": 2}, "n", None, "n must be 1"),
        ({"temperature": 3}, "temperature", "invalid_value", "temperature"),
        ({"top_p": 0.5, "max_tokens": 0}, "max_tokens", "invalid_value", "max_tokens"),
        ({"max_completion_tokens": 10}, "max_tokens", None, "not both"),
        ({"stream_options": {"include_usage": True}}, "stream_options", None, "only allowed when stream is true"),
        ({"stop": ["a", "b", "c", "d", "e"]}, "stop", "invalid_value", "more than 4"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x"}}]}]},
            "messages",
            "unsupported_parameter",
            "messages.0.content.0.image_url",
        ),
        (
            {"messages": [{"role": "tool", "content": "42", "tool_call_id": "c1"}]},
            "messages",
            "unsupported_parameter",
            "tool_call_id",
        ),
        (
            {"messages": [{"role": "user", "content": "a"}, {"role": "system", "content": "late"}]},
            "messages",
            None,
            "system and developer messages come first",
        ),
        ({"messages": [{"role": "assistant", "content": "hi"}]}, "messages", None, "user turn"),
        ({"messages": [{"role": "user", "content": "   "}]}, "messages", None, "empty"),
        ({"model": "amazon.nova-canvas-v1:0"}, "model", None, "/v1/images/generations"),
        ({"model": "openai/gpt-4.1-mini"}, "model", "model_not_available", "no API key"),
    ],
)
def test_bad_requests_are_openai_400s_naming_the_field(aws, enabled, bedrock, context, change, param, code, says):
    error = openai_error(openai_app.handler(event("openai-chat-completions.json", **change), context), 400)
    assert error["param"] == param
    assert error["code"] == code
    assert error["type"] == "invalid_request_error"
    assert says in error["message"]
    assert aws.cost_table.scan()["Items"] == []  # nothing reserved, nothing called


def test_an_unknown_model_is_a_404_model_not_found(aws, enabled, bedrock, context):
    error = openai_error(openai_app.handler(event("openai-chat-completions.json", model="gpt-4o"), context), 404)
    assert (error["code"], error["param"]) == ("model_not_found", "model")


def test_a_parameter_the_model_does_not_take_is_named_by_its_openai_name(aws, enabled, bedrock, context):
    error = openai_error(openai_app.handler(event("openai-chat-completions.json", top_p=1.5), context), 400)
    assert error["param"] == "top_p"


def test_refusals_before_parsing_are_openai_errors(aws, enabled, context):
    e = load_event("openai-chat-completions.json")
    e["headers"]["Content-Type"] = "application/x-www-form-urlencoded"
    response = openai_app.handler(e, context)
    assert openai_error(response, 415)["code"] == "unsupported_media_type"
    e["headers"]["Content-Type"] = "application/json"
    e["body"] = json.dumps({"model": "m", "messages": [{"role": "user", "content": "x" * 300_000}]})
    assert openai_error(openai_app.handler(e, context), 413)["code"] == "payload_too_large"
    e["body"] = "{not json"
    assert openai_error(openai_app.handler(e, context), 400)["param"] is None
    e["body"] = None
    assert "required" in openai_error(openai_app.handler(e, context), 400)["message"]
    e["path"] = "/v1/completions"
    assert openai_error(openai_app.handler(e, context), 404)["code"] == "unknown_url"


def test_a_spent_budget_is_insufficient_quota_and_not_retried(aws, enabled, bedrock, context, monkeypatch):
    monkeypatch.setenv("MONTHLY_KEY_BUDGET_USD", "0.0001")
    get_settings.cache_clear()
    aws.ledger_table.put_item(Item={"owner": OWNER, "period": utc_now().strftime("%Y-%m"), "spentUsd": Decimal("0.0001")})
    response = openai_app.handler(load_event("openai-chat-completions.json"), context)
    error = openai_error(response, 429)
    assert (error["type"], error["code"]) == ("insufficient_quota", "insufficient_quota")
    assert "monthly budget of $0.0001" in error["message"]
    assert header(response, "x-should-retry") == "false"  # the SDK would otherwise retry a 429


def test_a_throttled_model_is_a_retryable_rate_limit_and_costs_nothing(aws, enabled, bedrock, context):
    bedrock.add_client_error("converse", service_error_code="ThrottlingException", service_message="slow down")
    response = openai_app.handler(load_event("openai-chat-completions.json"), context)
    assert openai_error(response, 429)["code"] == "rate_limit_exceeded"
    assert header(response, "x-should-retry") == "true"
    (record,) = aws.cost_table.scan()["Items"]
    assert (record["status"], record["costUsd"]) == ("RELEASED", 0)
    assert [(m["spentUsd"], m["reservedUsd"]) for m in months(aws)] == [(0, 0)]


def test_a_model_that_outlasts_the_timeout_is_a_504_charged_at_its_reservation(aws, enabled, context, monkeypatch):
    class Slow:
        def converse(self, **request):
            raise ReadTimeoutError(endpoint_url="https://bedrock-runtime.us-east-1.amazonaws.com")

    monkeypatch.setattr(clients, "bedrock_runtime_within", lambda read_timeout: Slow())
    openai_app._bedrock_providers.cache_clear()
    response = openai_app.handler(load_event("openai-chat-completions.json"), context)
    openai_app._bedrock_providers.cache_clear()
    error = openai_error(response, 504)
    assert (error["type"], error["code"]) == ("server_error", "timeout")
    assert "OpenAiApiTimeoutSeconds" in error["message"]
    assert header(response, "x-should-retry") == "false"  # it may have been billed: no silent second charge
    (record,) = aws.cost_table.scan()["Items"]
    assert record["status"] == "UNCONFIRMED"
    assert record["costUsd"] == record["reservedUsd"] > 0
    assert [m["spentUsd"] for m in months(aws)] == [record["reservedUsd"]]


def test_another_key_cannot_pay_for_or_see_a_call(aws, enabled, bedrock, context):
    bedrock.add_response("converse", converse_reply("one"))
    bedrock.add_response("converse", converse_reply("two"))
    first = load_event("openai-chat-completions.json")
    second = load_event("openai-chat-completions.json")
    second["requestContext"]["identity"]["apiKeyId"] = "other12345"
    assert openai_app.handler(first, context)["statusCode"] == 200
    assert openai_app.handler(second, context)["statusCode"] == 200
    owners = sorted(r["owner"] for r in aws.cost_table.scan()["Items"])
    assert owners == [OWNER, "other12345"]
    assert sorted(m["owner"] for m in months(aws)) == [OWNER, "other12345"]


# ------------------------------------------------------------------ images
def canvas_reply(count: int = 1) -> dict[str, Any]:
    return invoke_model_reply({"images": [base64.b64encode(PNG).decode()] * count})


def test_an_image_is_stored_privately_and_answered_as_a_link(aws, enabled, bedrock, context):
    bedrock.add_response(
        "invoke_model",
        canvas_reply(),
        expected_params={
            "modelId": "amazon.nova-canvas-v1:0",
            "body": ANY,
            "contentType": "application/json",
            "accept": "application/json",
        },
    )
    response = openai_app.handler(load_event("openai-images.json"), context)
    assert response["statusCode"] == 200, response["body"]
    body = valid(openai_schema("ImagesResponse"), body_of(response))
    (image,) = body["data"]
    assert "X-Amz-Signature=" in image["url"]  # a presigned, expiring link
    (record,) = aws.cost_table.scan()["Items"]
    key = f"jobs/{record['jobId'].replace('#', '-')}/outputs/1.png"
    assert f"/{key}?" in image["url"]
    assert aws.s3.get_object(Bucket="outputs", Key=key)["Body"].read() == PNG
    assert (record["status"], record["costUsd"], record["images"]) == ("BILLED", Decimal("0.04"), 1)


def test_images_as_base64_with_their_count_and_size(aws, enabled, bedrock, context):
    sent = {}

    def capture(params, **_):
        sent.update(json.loads(params["body"]))

    bedrock.add_response("invoke_model", canvas_reply(2))
    clients.bedrock_runtime_within(19).meta.events.register("provide-client-params.bedrock-runtime.InvokeModel", capture)
    e = event("openai-images.json", n=2, size="1280x720", response_format="b64_json", quality="standard")
    body = valid(openai_schema("ImagesResponse"), body_of(openai_app.handler(e, context)))
    assert [base64.b64decode(d["b64_json"]) for d in body["data"]] == [PNG, PNG]
    config = sent["imageGenerationConfig"]
    assert (config["numberOfImages"], config["width"], config["height"]) == (2, 1280, 720)
    (record,) = aws.cost_table.scan()["Items"]
    spec = spec_for("amazon.nova-canvas-v1:0")
    price = spec.image_price({"width": 1280, "height": 720, "quality": "standard"})
    assert record["costUsd"] == spec.cost_usd(0, 0, 2, price) == 2 * price  # two images at their size's price
    assert list(aws.s3.list_objects_v2(Bucket="outputs").get("Contents", [])) == []  # nothing stored


def test_a_size_the_model_does_not_take_is_an_openai_400(aws, enabled, bedrock, context):
    error = openai_error(openai_app.handler(event("openai-images.json", size="100x100"), context), 400)
    assert error["param"] == "size"
    assert "amazon.nova-canvas-v1:0" in error["message"]
    error = openai_error(openai_app.handler(event("openai-images.json", size="big"), context), 400)
    assert error["param"] == "size"
    error = openai_error(openai_app.handler(event("openai-images.json", model="amazon.nova-lite-v1:0"), context), 400)
    assert "/v1/chat/completions" in error["message"]
    assert aws.cost_table.scan()["Items"] == []


def test_a_ratio_sized_model_takes_the_size_as_its_aspect_ratio():
    spec = spec_for("stability.sd3-5-large-v1:0")
    for size, ratio in (("1024x1024", "1:1"), ("1920x1080", "16:9"), ("1080x1920", "9:16")):
        assert service.image_parameters(spec, ImageRequest(model=spec.id, prompt="p", size=size))["aspectRatio"] == ratio
    with pytest.raises(InvalidRequest) as refused:  # 7:4, which SD3.5 does not take
        service.image_parameters(spec, ImageRequest(model=spec.id, prompt="p", size="1792x1024"))
    assert refused.value.details == {"param": "size"}
    assert "16:9" in refused.value.message  # the ratios it takes


# -------------------------------------------------------------- authorizer
METHOD_ARN = "arn:aws:execute-api:us-east-1:123456789012:def456/openai/POST/v1/chat/completions"


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_the_authorizer_hands_the_bearer_key_to_api_gateway_for_the_whole_stage(scheme):
    key = "Zx8dK2mQ9vLp4RtY7wNc3bHf6jSa1uEg5oIqTkVy"
    answer = authorizer.handler(
        {"type": "REQUEST", "methodArn": METHOD_ARN, "headers": {"authorization": f"{scheme} {key}"}}, None
    )
    assert answer["usageIdentifierKey"] == key
    (statement,) = answer["policyDocument"]["Statement"]
    assert statement == {
        "Action": "execute-api:Invoke",
        "Effect": "Allow",
        # Cached per token for every method: the stage, not this method.
        "Resource": "arn:aws:execute-api:us-east-1:123456789012:def456/openai/*/*",
    }
    assert key not in json.dumps({k: v for k, v in answer.items() if k != "usageIdentifierKey"})


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer short"},
        {"Authorization": "Bearer " + "x" * 129},
        {"Authorization": "Bearer two words-0123456789abcdef"},
        {"x-api-key": "Zx8dK2mQ9vLp4RtY7wNc3bHf6jSa1uEg5oIqTkVy"},
    ],
)
def test_the_authorizer_refuses_anything_but_a_bearer_key_with_401(headers, capsys):
    with pytest.raises(authorizer.Unauthorized) as raised:
        authorizer.handler({"type": "REQUEST", "methodArn": METHOD_ARN, "headers": headers, "path": "/v1/models"}, None)
    assert str(raised.value) == "Unauthorized"  # exactly: API Gateway answers 401 for this message
    logged = capsys.readouterr().out
    assert "bearer token refused" in logged
    for value in headers.values():
        assert not value or value not in logged  # never the header's value


# --------------------------------------------------------------- guardrail
def test_a_guardrail_block_is_a_content_filter_400_with_its_cost_recorded(aws, enabled, bedrock, context, monkeypatch):
    from tests.unit.test_generation_parameters import BLOCKED_TRACE, GUARD

    monkeypatch.setenv("GUARDRAIL_ID", GUARD.id)
    monkeypatch.setenv("GUARDRAIL_VERSION", GUARD.version)
    get_settings.cache_clear()
    blocked = {**converse_reply("This request was blocked.", stop="guardrail_intervened"), "trace": BLOCKED_TRACE}
    bedrock.add_response(
        "converse",
        blocked,
        expected_params={
            "modelId": "amazon.nova-lite-v1:0",
            "messages": ANY,
            "system": ANY,
            "inferenceConfig": ANY,
            "requestMetadata": ANY,
            "guardrailConfig": {"guardrailIdentifier": GUARD.id, "guardrailVersion": GUARD.version, "trace": "enabled"},
        },
    )
    response = openai_app.handler(load_event("openai-chat-completions.json"), context)
    error = openai_error(response, 400)
    assert (error["code"], error["param"]) == ("content_filter", "messages")
    assert "VIOLENCE" in error["message"]
    assert header(response, "x-should-retry") == "false"
    (record,) = aws.cost_table.scan()["Items"]
    assert record["status"] == "BILLED"
    assert record["costUsd"] > 0  # the model's tokens and the guardrail's units are billed
    assert f"${record['costUsd']}" in error["message"]


# ------------------------------------------------------ gateway responses
# What API Gateway substitutes in a gateway response template (the emulator
# does not apply these templates: README "What the emulator cannot do").
CONTEXT = {
    "$context.error.messageString": '"Forbidden"',
    "$context.error.responseType": "DEFAULT_4XX",
    "$context.httpMethod": "POST",
    "$context.path": "/openai/v1/completions",
}
GATEWAY_STATUS = {
    "BAD_REQUEST_BODY": "400",
    "UNAUTHORIZED": "401",
    "INVALID_API_KEY": "401",
    "ACCESS_DENIED": "403",
    "MISSING_AUTHENTICATION_TOKEN": "404",
    "THROTTLED": None,  # API Gateway's own 429
    "QUOTA_EXCEEDED": None,
    "INTEGRATION_TIMEOUT": None,  # 504
    "DEFAULT_4XX": None,
    "DEFAULT_5XX": None,
}


def test_the_openai_apis_own_refusals_render_as_openai_errors():
    from tests.templates import root

    responses = root()["Resources"]["OpenAiApi"]["Properties"]["GatewayResponses"]
    assert set(responses) == set(GATEWAY_STATUS)
    codes = {}
    for kind, response in responses.items():
        template = response["ResponseTemplates"]["application/json"]
        for variable, value in CONTEXT.items():
            template = template.replace(variable, value)
        body = valid(openai_schema("ErrorResponse"), json.loads(template))
        codes[kind] = body["error"]["code"]
        assert response.get("StatusCode") == GATEWAY_STATUS[kind], kind
        retry = response.get("ResponseParameters", {}).get("Headers", {}).get("x-should-retry")
        assert retry == (None if kind in ("THROTTLED", "DEFAULT_4XX", "DEFAULT_5XX") else "'false'"), kind
    assert codes["INVALID_API_KEY"] == "invalid_api_key"
    assert codes["THROTTLED"] == "rate_limit_exceeded"  # retried by the SDKs, as it should be
    assert codes["QUOTA_EXCEEDED"] == "insufficient_quota"
    assert codes["INTEGRATION_TIMEOUT"] == "timeout"
    assert codes["MISSING_AUTHENTICATION_TOKEN"] == "unknown_url"
