"""The providers beyond Bedrock (shared.providers.external, http, keys).

Request bodies are checked against each provider's published API description
(tests/data/providers/: OpenAI's OpenAPI document, an extract; the Gemini API's
and Stability AI's, transcribed; each file names its source and date), and
every field genstack sends must be one the description defines. Responses are
first checked against the same descriptions, then parsed. The HTTP transport
is exercised for real against a server on 127.0.0.1; keys come through a real
Secrets Manager client under a botocore Stubber."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import boto3
import pytest
from botocore.stub import Stubber
from jsonschema import Draft202012Validator
from pytest_socket import enable_socket, socket_allow_hosts
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from generate import app as generate_app  # imported before sockets are off (the X-Ray SDK opens one)
from shared.costs import CallLedger
from shared.jobs import JobRepository
from shared.providers import external
from shared.providers.base import Generation, ModelCallError
from shared.providers.http import Http, HttpResponse, check_base_url
from shared.providers.keys import ProviderKeys
from shared.registry import load_registry, spec_for
from tests.templates import role_statements
from worker.service import JobRunner

DATA = Path(__file__).resolve().parents[1] / "data" / "providers"
PNG = b"\x89PNG\r\n\x1a\n" + b"0" * 32
B64 = base64.b64encode(PNG).decode()
KEY = "sk-test-0123456789abcdef"


# ------------------------------------------------------------ descriptions
def _document(name: str) -> dict[str, Any]:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def _nullable(schema: Any) -> Any:
    """OpenAPI 3.0's `nullable: true` in JSON Schema's terms (null is one more
    type, and one more enum value), as the OpenAI document means it: a JSON
    Schema validator knows no `nullable`."""
    if isinstance(schema, list):
        return [_nullable(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _nullable(v) for k, v in schema.items() if k != "nullable"}
    if schema.get("nullable") is True:
        if isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        if "enum" in out and None not in out["enum"]:
            out["enum"] = [*out["enum"], None]
        if "type" not in out and "$ref" in out:  # a nullable reference
            out = {"anyOf": [{"$ref": out.pop("$ref")}, {"type": "null"}], **out}
    return out


OPENAI = _nullable(_document("openai-openapi-subset.json"))
GEMINI = _document("gemini-v1beta-subset.json")
STABILITY = _document("stability-v2beta-subset.json")


def _validator(document: dict[str, Any], uri: str, pointer: str) -> Draft202012Validator:
    registry = Registry().with_resource(uri, Resource.from_contents(document, default_specification=DRAFT202012))
    return Draft202012Validator({"$ref": f"{uri}{pointer}"}, registry=registry)


def openai_schema(name: str) -> Draft202012Validator:
    return _validator(OPENAI, "urn:openai", f"#/components/schemas/{name}")


def gemini_schema(name: str) -> Draft202012Validator:
    return _validator(GEMINI, "urn:gemini", f"#/$defs/{name}")


def stability_schema(name: str) -> Draft202012Validator:
    return _validator(STABILITY, "urn:stability", f"#/$defs/{name}")


def valid(validator: Draft202012Validator, instance: Any) -> Any:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(instance)]
    assert not errors, errors
    return instance


def openai_properties(name: str) -> set[str]:
    """Every property a schema of the OpenAI document declares, through allOf and $ref."""
    schemas = OPENAI["components"]["schemas"]
    found: set[str] = set()

    def walk(schema: dict[str, Any]) -> None:
        if "$ref" in schema:
            walk(schemas[schema["$ref"].rsplit("/", 1)[-1]])
        found.update(schema.get("properties", {}))
        for part in schema.get("allOf", []):
            walk(part)

    walk(schemas[name])
    return found


def test_the_descriptions_name_their_source_and_date():
    for document in (OPENAI, GEMINI, STABILITY):
        assert "2026-12-03" in document["_source"]
        assert "https://" in document["_source"]


# ------------------------------------------------------------------- fakes
class FakeHttp:
    """Answers each POST with the next scripted reply and records the request."""

    def __init__(self, *replies: HttpResponse | Exception) -> None:
        self.replies = list(replies)
        self.requests: list[dict[str, Any]] = []

    def post(self, url, *, headers, json_body=None, fields=None):
        check_base_url(url)
        self.requests.append({"url": url, "headers": headers, "json": json_body, "fields": fields})
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply


class FixedKeys(ProviderKeys):
    def __init__(self, keys: dict[str, str]) -> None:
        super().__init__({p: f"arn:{p}" for p in keys})
        self._keys = keys

    def _read(self, provider: str, arn: str) -> str:
        return self._keys[provider]


def ok(body: dict[str, Any]) -> HttpResponse:
    return HttpResponse(200, {"content-type": "application/json"}, json.dumps(body).encode())


def failed(status: int, body: dict[str, Any]) -> HttpResponse:
    return HttpResponse(status, {"content-type": "application/json"}, json.dumps(body).encode())


def provider(cls, *replies, provider_name="openai"):
    http = FakeHttp(*replies)
    return cls(http, FixedKeys({provider_name: KEY}), "https://api.example.com/v1"), http


def chat_reply(text="hello", prompt_tokens=12, completion_tokens=7, finish="stop", **message) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1764700000,
        "model": "gpt-4.1-mini-2025-04-14",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None, "annotations": [], **message},
                "finish_reason": finish,
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


# ------------------------------------------------------------------ OpenAI
def test_the_chat_request_is_one_the_openai_description_accepts_with_every_parameter_mapped():
    spec = spec_for("openai/gpt-4.1-mini")
    turns = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "More"}]
    params = {"temperature": 0.2, "topP": 0.9, "stopSequences": ["END"], "seed": 42, "maxTokens": 300}
    body = external.openai_chat_body(spec, turns, system="Be brief.", max_tokens=300, params=params)
    valid(openai_schema("CreateChatCompletionRequest"), body)
    assert set(body) <= openai_properties("CreateChatCompletionRequest")
    assert body["model"] == "gpt-4.1-mini"
    assert body["max_completion_tokens"] == 300
    assert body["store"] is False
    assert (body["temperature"], body["top_p"], body["stop"], body["seed"]) == (0.2, 0.9, ["END"], 42)
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "user"]


def test_a_chat_answer_as_the_description_has_it_gives_its_text_and_tokens():
    reply = valid(openai_schema("CreateChatCompletionResponse"), chat_reply("A haiku.", 12, 7))
    chat, http = provider(external.OpenAiChatProvider, ok(reply))
    generation = chat.generate("openai/gpt-4.1-mini", "Write a haiku", max_tokens=100, params={"temperature": 0.7})
    assert (generation.text, generation.input_tokens, generation.output_tokens) == ("A haiku.", 12, 7)
    request = http.requests[0]
    assert request["url"] == "https://api.example.com/v1/chat/completions"
    assert request["headers"]["authorization"] == f"Bearer {KEY}"
    # Priced from the answer's usage: 12 x $0.0004/1k + 7 x $0.0016/1k
    assert spec_for("openai/gpt-4.1-mini").cost_usd(12, 7) == Decimal("0.00001600")


def test_a_filtered_or_refused_chat_answer_is_billed_for_its_tokens_and_fails_the_model():
    for reply, code in (
        (chat_reply(None, 9, 0, finish="content_filter"), "ContentFiltered"),
        (chat_reply(None, 9, 3, refusal="I can't help with that."), "ModelRefused"),
    ):
        valid(openai_schema("CreateChatCompletionResponse"), reply)
        chat, _ = provider(external.OpenAiChatProvider, ok(reply))
        with pytest.raises(ModelCallError) as caught:
            chat.generate("openai/gpt-4.1-mini", "x", max_tokens=10)
        assert caught.value.code == code
        assert caught.value.billed_usd == 0
        assert caught.value.input_tokens == 9
        assert not caught.value.retryable


@pytest.mark.parametrize(
    ("model", "params"),
    [
        ("openai/gpt-image-1", {"width": 1536, "height": 1024, "count": 2, "quality": "high"}),
        ("openai/gpt-image-1", {"width": 1024, "height": 1024, "count": 1, "quality": "low"}),
        ("openai/dall-e-3", {"width": 1792, "height": 1024, "count": 1, "quality": "hd", "style": "natural"}),
    ],
)
def test_the_image_requests_are_ones_the_openai_description_accepts(model, params):
    body = external.openai_image_body(spec_for(model), "a lighthouse at dusk", params)
    valid(openai_schema("CreateImageRequest"), body)
    assert set(body) <= openai_properties("CreateImageRequest")
    assert body["size"] == f"{params['width']}x{params['height']}"
    assert body["n"] == params["count"]


def test_gpt_image_1_is_charged_by_the_tokens_its_answer_reports_not_by_the_image(aws, settings):
    reply = {
        "created": 1764700000,
        "data": [{"b64_json": B64}, {"b64_json": B64}],
        "usage": {
            "total_tokens": 2100,
            "input_tokens": 20,
            "output_tokens": 2080,
            "input_tokens_details": {"text_tokens": 20, "image_tokens": 0},
        },
    }
    valid(openai_schema("ImagesResponse"), reply)
    images, http = provider(external.OpenAiImageProvider, ok(reply))
    put_job(aws, ["openai/gpt-image-1"], kind="image", parameters={"openai/gpt-image-1": {"count": 2, "quality": "medium"}})
    outcome = job_runner(aws, settings, {"openai-image": images}).run("job-ext")
    assert outcome.status == "COMPLETED"
    record = only_record(aws)
    # 20 x $0.005/1k + 2080 x $0.04/1k; the reservation was 2 x $0.042 plus the prompt's tokens
    assert record["costUsd"] == Decimal("0.08330000")
    assert record["images"] == 2
    assert http.requests[0]["json"]["quality"] == "medium"


# --------------------------------------------------------------- Stability
@pytest.mark.parametrize(
    ("model", "schema", "params"),
    [
        (
            "stability/stable-image-core",
            "CoreRequest",
            {"aspectRatio": "16:9", "seed": 7, "style": "anime", "negativePrompt": "blur"},
        ),
        ("stability/stable-image-ultra", "UltraRequest", {"aspectRatio": "1:1", "seed": 4294967294}),
        ("stability/sd3.5-large", "SD3Request", {"aspectRatio": "9:16", "seed": 0, "negativePrompt": "text"}),
    ],
)
def test_the_stability_forms_are_ones_its_description_accepts(model, schema, params):
    spec = spec_for(model)
    fields = external.stability_fields(spec, "a red fox", params)
    valid(stability_schema(schema), fields)
    assert STABILITY["paths"][f"/v2beta/stable-image/generate/{spec.endpoint}"]["request"].endswith(schema)


def test_a_stability_image_is_read_and_a_filtered_one_is_billed_at_its_price():
    answer = valid(stability_schema("ImageJsonResponse"), {"image": B64, "finish_reason": "SUCCESS", "seed": 7})
    stability, http = provider(external.StabilityImageProvider, ok(answer), provider_name="stability")
    generation = stability.generate("stability/stable-image-core", "a fox", params={"aspectRatio": "1:1", "seed": 7})
    assert generation.content == PNG
    assert generation.images == 1
    assert http.requests[0]["url"] == "https://api.example.com/v1/v2beta/stable-image/generate/core"
    assert http.requests[0]["headers"]["accept"] == "application/json"
    filtered = valid(stability_schema("ImageJsonResponse"), {"image": B64, "finish_reason": "CONTENT_FILTERED", "seed": 1})
    stability, _ = provider(external.StabilityImageProvider, ok(filtered), provider_name="stability")
    with pytest.raises(ModelCallError) as caught:
        stability.generate("stability/stable-image-core", "a fox", params={})
    assert caught.value.code == "ContentFiltered"
    assert caught.value.billed_usd == Decimal("0.03")


# ------------------------------------------------------------------ Google
def test_the_gemini_request_is_one_its_description_accepts():
    spec = spec_for("google/gemini-2.5-flash")
    turns = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "More"}]
    params = {"temperature": 1.5, "topP": 0.5, "stopSequences": ["END"], "seed": 3}
    body = external.gemini_body(spec, turns, system="Be brief.", max_tokens=256, params=params)
    valid(gemini_schema("GenerateContentRequest"), body)
    assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]
    assert body["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 0}  # the registry's: thinking off
    assert body["systemInstruction"] == {"parts": [{"text": "Be brief."}]}


def test_a_gemini_answer_counts_thinking_tokens_as_output_and_skips_thought_parts():
    reply = {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"text": "plan", "thought": True}, {"text": "The answer."}]},
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {"promptTokenCount": 11, "candidatesTokenCount": 5, "thoughtsTokenCount": 4, "totalTokenCount": 20},
        "modelVersion": "gemini-2.5-flash",
    }
    valid(gemini_schema("GenerateContentResponse"), reply)
    gemini, http = provider(external.GeminiTextProvider, ok(reply), provider_name="google")
    generation = gemini.generate("google/gemini-2.5-flash", "Q?", max_tokens=64)
    assert (generation.text, generation.input_tokens, generation.output_tokens) == ("The answer.", 11, 9)
    assert http.requests[0]["url"].endswith("/v1beta/models/gemini-2.5-flash:generateContent")
    assert http.requests[0]["headers"] == {"x-goog-api-key": KEY}


def test_a_prompt_gemini_blocks_is_billed_for_its_prompt_tokens():
    reply = valid(
        gemini_schema("GenerateContentResponse"),
        {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 8, "totalTokenCount": 8}},
    )
    gemini, _ = provider(external.GeminiTextProvider, ok(reply), provider_name="google")
    with pytest.raises(ModelCallError) as caught:
        gemini.generate("google/gemini-2.5-flash", "x", max_tokens=64)
    assert (caught.value.code, caught.value.input_tokens, caught.value.billed_usd) == ("ContentFiltered", 8, 0)


def test_imagen_requests_and_a_partly_filtered_answer_bill_the_images_returned():
    spec = spec_for("google/imagen-4.0-generate-001")
    valid(gemini_schema("PredictRequest"), external.imagen_body(spec, "a castle", {"count": 3, "aspectRatio": "16:9"}))
    reply = valid(
        gemini_schema("PredictResponse"),
        {"predictions": [{"bytesBase64Encoded": B64, "mimeType": "image/png"}, {"raiFilteredReason": "filtered"}]},
    )
    imagen, http = provider(external.ImagenProvider, ok(reply), provider_name="google")
    generation = imagen.generate("google/imagen-4.0-generate-001", "a castle", params={"count": 2})
    assert generation.images == 1
    assert http.requests[0]["url"].endswith(":predict")
    none_left = valid(gemini_schema("PredictResponse"), {"predictions": [{"raiFilteredReason": "filtered"}]})
    imagen, _ = provider(external.ImagenProvider, ok(none_left), provider_name="google")
    with pytest.raises(ModelCallError) as caught:
        imagen.generate("google/imagen-4.0-generate-001", "a castle", params={})
    assert caught.value.code == "ContentFiltered"
    assert caught.value.billed_usd is None


# ------------------------------------------------------------------ errors
OPENAI_ERROR = {
    "error": {
        "message": f"Incorrect API key provided: {KEY}",
        "type": "invalid_request_error",
        "param": None,
        "code": "invalid_api_key",
    }
}


@pytest.mark.parametrize(
    ("status", "body", "code", "retryable", "unknown"),
    [
        (
            429,
            {"error": {"message": "Rate limit reached", "type": "requests", "param": None, "code": "rate_limit_exceeded"}},
            "ThrottlingException",
            True,
            False,
        ),
        (
            429,
            {
                "error": {
                    "message": "You exceeded your quota",
                    "type": "insufficient_quota",
                    "param": None,
                    "code": "insufficient_quota",
                }
            },
            "ServiceQuotaExceededException",
            False,
            False,
        ),
        (
            500,
            {"error": {"message": "server error", "type": "server_error", "param": None, "code": None}},
            "InternalServerException",
            True,
            False,
        ),
        (
            503,
            {"error": {"message": "overloaded", "type": "server_error", "param": None, "code": None}},
            "ServiceUnavailableException",
            True,
            False,
        ),
        (
            504,
            {"error": {"message": "timeout", "type": "server_error", "param": None, "code": None}},
            "ModelTimeoutException",
            True,
            True,
        ),
        (
            400,
            {"error": {"message": "bad stop", "type": "invalid_request_error", "param": "stop", "code": None}},
            "ValidationException",
            False,
            False,
        ),
        (401, OPENAI_ERROR, "PROVIDER_AUTH_FAILED", False, False),
        (
            400,
            {
                "error": {
                    "message": "safety system",
                    "type": "image_generation_user_error",
                    "param": None,
                    "code": "content_policy_violation",
                }
            },
            "ContentFiltered",
            False,
            False,
        ),
    ],
)
def test_openai_errors_map_to_the_codes_a_bedrock_call_would_raise(status, body, code, retryable, unknown):
    valid(openai_schema("ErrorResponse"), body)
    chat, _ = provider(external.OpenAiChatProvider, failed(status, body))
    with pytest.raises(ModelCallError) as caught:
        chat.generate("openai/gpt-4.1-mini", "x", max_tokens=10)
    error = caught.value
    assert (error.code, error.retryable, error.outcome_unknown) == (code, retryable, unknown)
    assert KEY not in error.message
    assert KEY not in error.public


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [
        (429, "ThrottlingException", True),
        (400, "ValidationException", False),
        (403, "ContentFiltered", False),
        (500, "InternalServerException", True),
    ],
)
def test_stability_and_google_errors_map_the_same_way(status, code, retryable):
    name = "content_moderation" if status == 403 else "rate_limit_exceeded" if status == 429 else "bad_request"
    body = valid(stability_schema("ErrorResponse"), {"id": "e1", "name": name, "errors": ["prompt: too long"]})
    stability, _ = provider(external.StabilityImageProvider, failed(status, body), provider_name="stability")
    with pytest.raises(ModelCallError) as caught:
        stability.generate("stability/stable-image-core", "x", params={})
    assert (caught.value.code, caught.value.retryable) == (code, retryable)
    google_status = {429: "RESOURCE_EXHAUSTED", 400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 500: "INTERNAL"}[status]
    body = valid(gemini_schema("Status"), {"error": {"code": status, "message": "m", "status": google_status}})
    gemini, _ = provider(external.GeminiTextProvider, failed(status, body), provider_name="google")
    with pytest.raises(ModelCallError) as caught:
        gemini.generate("google/gemini-2.5-flash", "x", max_tokens=10)
    assert caught.value.retryable == retryable
    assert caught.value.code == ("AccessDeniedException" if status == 403 else code)


def test_an_answer_that_is_not_json_is_of_unknown_outcome_so_its_reservation_is_charged():
    chat, _ = provider(external.OpenAiChatProvider, HttpResponse(200, {}, b"<html>proxy</html>"))
    with pytest.raises(ModelCallError) as caught:
        chat.generate("openai/gpt-4.1-mini", "x", max_tokens=10)
    assert caught.value.code == "InvalidResponse"
    assert caught.value.outcome_unknown


# -------------------------------------------------------------------- keys
def secrets_stub() -> tuple[Any, Stubber]:
    client = boto3.client("secretsmanager", region_name="us-east-1")
    return client, Stubber(client)


ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:genstack/providers/openai-AbCdEf"


def secret_value(value: str) -> dict[str, Any]:
    return {
        "ARN": ARN,
        "Name": "genstack/providers/openai",
        "VersionId": "v" * 32,
        "SecretString": value,
        "VersionStages": ["AWSCURRENT"],
    }


def test_a_key_is_read_from_its_secret_once_and_cached():
    client, stubber = secrets_stub()
    stubber.add_response("get_secret_value", secret_value(KEY), {"SecretId": ARN})
    with stubber:
        keys = ProviderKeys({"openai": ARN}, client=client)
        assert keys.key("openai") == KEY
        assert keys.key("openai") == KEY  # from the cache: one GetSecretValue
    stubber.assert_no_pending_responses()


@pytest.mark.parametrize(
    ("reply", "code", "retryable"),
    [
        (secret_value(" "), "PROVIDER_NOT_CONFIGURED", False),  # blank (AWS never returns ""; the emulator does)
        (secret_value('{"apiKey": ""}'), "PROVIDER_NOT_CONFIGURED", False),
        ("ResourceNotFoundException", "PROVIDER_NOT_CONFIGURED", False),
        ("AccessDeniedException", "PROVIDER_NOT_CONFIGURED", False),
        ("ThrottlingException", "ThrottlingException", True),
    ],
)
def test_an_empty_missing_or_unreadable_secret_fails_the_call_clearly(reply, code, retryable):
    client, stubber = secrets_stub()
    if isinstance(reply, dict):
        stubber.add_response("get_secret_value", reply, {"SecretId": ARN})
    else:
        stubber.add_client_error("get_secret_value", service_error_code=reply, service_message="no", http_status_code=400)
    with stubber, pytest.raises(ModelCallError) as caught:
        ProviderKeys({"openai": ARN}, client=client).key("openai")
    assert (caught.value.code, caught.value.retryable) == (code, retryable)
    if code == "PROVIDER_NOT_CONFIGURED":
        assert "OpenAI has no API key" in caught.value.public


def test_a_json_secret_gives_its_api_key_and_a_provider_without_a_secret_is_not_configured():
    client, stubber = secrets_stub()
    stubber.add_response("get_secret_value", secret_value(json.dumps({"apiKey": KEY})), {"SecretId": ARN})
    with stubber:
        assert ProviderKeys({"openai": ARN}, client=client).key("openai") == KEY
    with pytest.raises(ModelCallError) as caught:
        ProviderKeys({}, client=client).key("google")
    assert caught.value.code == "PROVIDER_NOT_CONFIGURED"
    assert "no secret" in caught.value.public


# -------------------------------------------------------- real transport
class _Server(BaseHTTPRequestHandler):
    seen: ClassVar[list[dict[str, Any]]] = []
    delay = 0.0
    size = 0

    def do_POST(self):
        body = self.rfile.read(int(self.headers["content-length"]))
        type(self).seen.append({"path": self.path, "headers": dict(self.headers), "body": body})
        time.sleep(type(self).delay)
        payload = b"x" * type(self).size if type(self).size else json.dumps({"ok": True}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def local_server():
    enable_socket()
    socket_allow_hosts(["127.0.0.1"])
    _Server.seen, _Server.delay, _Server.size = [], 0.0, 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Server)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_the_transport_posts_json_and_multipart_over_real_http(local_server):
    http = Http(connect_timeout=1, read_timeout=2)
    response = http.post(f"{local_server}/v1/chat/completions", headers={"authorization": "Bearer k"}, json_body={"a": 1})
    assert response.status == 200
    assert response.json() == {"ok": True}
    sent = _Server.seen[0]
    assert sent["headers"]["authorization"] == "Bearer k"
    assert json.loads(sent["body"]) == {"a": 1}
    http.post(f"{local_server}/v2beta/x", headers={}, fields={"prompt": "a fox", "seed": "7"})
    assert _Server.seen[1]["headers"]["content-type"].startswith("multipart/form-data; boundary=")
    assert b'name="prompt"' in _Server.seen[1]["body"]


def test_a_read_timeout_is_of_unknown_outcome_and_a_refused_connection_is_not(local_server):
    _Server.delay = 1.5
    with pytest.raises(ModelCallError) as caught:
        Http(connect_timeout=1, read_timeout=0.3).post(f"{local_server}/slow", headers={}, json_body={})
    assert (caught.value.code, caught.value.retryable, caught.value.outcome_unknown) == ("ReadTimeoutError", True, True)
    with pytest.raises(ModelCallError) as caught:
        Http(connect_timeout=1, read_timeout=1).post(f"http://127.0.0.1:{closed_port()}/", headers={}, json_body={})
    assert (caught.value.code, caught.value.retryable, caught.value.outcome_unknown) == ("EndpointConnectionError", True, False)


def test_an_answer_beyond_the_size_limit_is_refused(local_server):
    _Server.size = 4096
    with pytest.raises(ModelCallError) as caught:
        Http(connect_timeout=1, read_timeout=2, max_response_bytes=1024).post(f"{local_server}/big", headers={}, json_body={})
    assert caught.value.code == "InvalidResponse"
    assert caught.value.outcome_unknown


@pytest.mark.parametrize("url", ["http://api.openai.com/v1", "ftp://x", "http://10.0.0.1/v1", "https://"])
def test_only_https_leaves_the_function(url):
    with pytest.raises(ValueError, match="https"):
        check_base_url(url)
    assert check_base_url("https://api.openai.com/v1/") == "https://api.openai.com/v1"
    assert check_base_url("http://127.0.0.1:8080") == "http://127.0.0.1:8080"


# ------------------------------------------------------------- in a job
def put_job(aws, models, kind="text", parameters=None, prompt="Write a haiku", **extra):
    aws.jobs_table.put_item(
        Item={
            "jobId": "job-ext",
            "owner": "k1",
            "status": "QUEUED",
            "kind": kind,
            "prompt": prompt,
            "models": models,
            "results": {},
            "costUsd": 0,
            "createdAt": "2026-12-03T12:00:00.000Z",
            **({"parameters": parameters} if parameters else {}),
            **extra,
        }
    )


class FakeConverse:
    def generate(self, model, prompt, *, max_tokens, **_):
        return Generation(model, b"nova", "text/plain; charset=utf-8", "txt", 10, 20, 5, text="nova")


def job_runner(aws, settings, providers):
    return JobRunner(
        jobs=JobRepository(aws.jobs_table),
        calls=CallLedger(aws.cost_table, aws.ledger_table, retention_days=30),
        profiles=__import__("shared.budgets", fromlist=["KeyProfiles"]).KeyProfiles(
            aws.ledger_table, tier_budgets=settings.tier_budgets()
        ),
        providers={"converse": FakeConverse(), **providers},
        s3=aws.s3,
        settings=settings,
        sleep=lambda seconds: None,
    )


def records(aws):
    from boto3.dynamodb.conditions import Key

    return aws.cost_table.query(KeyConditionExpression=Key("jobId").eq("job-ext"))["Items"]


def only_record(aws):
    (record,) = records(aws)
    return record


ENABLED_EXTERNAL = "amazon.nova-micro-v1:0,openai/gpt-4.1-mini,google/gemini-2.5-flash,openai/gpt-image-1"


@pytest.fixture
def external_settings(monkeypatch, aws):
    from shared.settings import get_settings

    monkeypatch.setenv("ENABLED_MODELS", ENABLED_EXTERNAL)
    get_settings.cache_clear()
    return get_settings()


def test_one_job_fans_out_to_bedrock_openai_and_google_with_a_throttled_call_retried(aws, external_settings):
    throttled = failed(429, {"error": {"message": "slow down", "type": "requests", "param": None, "code": "rate_limit_exceeded"}})
    chat, chat_http = provider(external.OpenAiChatProvider, throttled, ok(chat_reply("openai says", 30, 40)))
    gemini_reply = {
        "candidates": [{"content": {"role": "model", "parts": [{"text": "gemini says"}]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 6, "totalTokenCount": 14},
    }
    gemini, _ = provider(external.GeminiTextProvider, ok(gemini_reply), provider_name="google")
    models = ["amazon.nova-micro-v1:0", "openai/gpt-4.1-mini", "google/gemini-2.5-flash"]
    put_job(aws, models)
    outcome = job_runner(aws, external_settings, {"openai-chat": chat, "gemini": gemini}).run("job-ext")
    assert outcome.status == "COMPLETED"
    job = aws.jobs_table.get_item(Key={"jobId": "job-ext"})["Item"]
    assert {m: job["results"][m]["text"] for m in models} == {
        "amazon.nova-micro-v1:0": "nova",
        "openai/gpt-4.1-mini": "openai says",
        "google/gemini-2.5-flash": "gemini says",
    }
    assert len(chat_http.requests) == 2  # the 429, then the answer
    by_model = {r["model"]: r for r in records(aws)}
    assert by_model["openai/gpt-4.1-mini"]["costUsd"] == Decimal("0.00007600")  # 30 x 0.0004/1k + 40 x 0.0016/1k
    assert by_model["google/gemini-2.5-flash"]["costUsd"] == Decimal("0.00001740")  # 8 x 0.0003/1k + 6 x 0.0025/1k
    assert {r["status"] for r in by_model.values()} == {"BILLED"}
    assert Decimal(str(job["costUsd"])) == sum(r["costUsd"] for r in by_model.values())


def test_a_provider_whose_secret_is_empty_fails_its_model_and_costs_nothing(aws, external_settings):
    empty = ProviderKeys({"openai": ARN}, client=None)
    empty._read = lambda provider, arn: ""  # an empty secret, as the stack creates it
    chat = external.OpenAiChatProvider(FakeHttp(), empty, "https://api.example.com/v1")
    put_job(aws, ["amazon.nova-micro-v1:0", "openai/gpt-4.1-mini"])
    outcome = job_runner(aws, external_settings, {"openai-chat": chat}).run("job-ext")
    assert outcome.status == "PARTIAL"
    result = aws.jobs_table.get_item(Key={"jobId": "job-ext"})["Item"]["results"]["openai/gpt-4.1-mini"]
    assert result["status"] == "FAILED"
    assert result["error"]["code"] == "PROVIDER_NOT_CONFIGURED"
    assert "OpenAI has no API key" in result["error"]["message"]
    released = [r for r in records(aws) if r["model"] == "openai/gpt-4.1-mini"]
    assert [(r["status"], r["costUsd"]) for r in released] == [("RELEASED", 0)]


def test_every_external_registry_model_names_a_provider_the_registry_knows():
    from shared.registry import provider_defaults

    externals = [s for s in load_registry().values() if s.external]
    assert {s.provider for s in externals} == set(provider_defaults()) == {"openai", "stability", "google"}
    assert all(s.id.startswith(f"{s.provider}/") and s.provider_model for s in externals)
    assert all(
        s.api
        in external.external_providers(
            FakeHttp(), FixedKeys({}), {"openai": "https://a", "stability": "https://b", "google": "https://c"}
        )
        for s in externals
    )


# ---------------------------------------------------------- at submit time
def submit_external(context, monkeypatch, secrets: str):
    from shared.settings import get_settings
    from tests.unit.conftest import load_event

    monkeypatch.setenv("ENABLED_MODELS", ENABLED_EXTERNAL)
    monkeypatch.setenv("PROVIDER_SECRETS", secrets)
    get_settings.cache_clear()
    return generate_app.handler(load_event("generate-external-models.json"), context)


def test_a_job_naming_a_provider_without_a_key_is_refused_with_a_clear_400(aws, context, monkeypatch):
    response = submit_external(context, monkeypatch, f"openai={ARN}")  # Google has no secret
    assert response["statusCode"] == 400
    error = json.loads(response["body"])["error"]
    assert error["code"] == "PROVIDER_NOT_CONFIGURED"
    assert "google/gemini-2.5-flash" in error["message"]
    assert "GoogleApiKeySecret" in error["message"]
    assert error["details"] == {"field": "models", "models": ["google/gemini-2.5-flash"], "providers": ["google"]}
    assert not aws.jobs_table.scan()["Items"]  # nothing was accepted


def test_the_same_job_is_accepted_once_each_provider_has_its_secret(aws, context, monkeypatch):
    response = submit_external(context, monkeypatch, f"openai={ARN},google={ARN.replace('openai', 'google')}")
    assert response["statusCode"] == 202, response["body"]


# ------------------------------------------------------------- templates
def secret_grants(rendered) -> dict[str, list]:
    iam = rendered.children["IamStack"]
    found = {}
    for logical_id, statement in role_statements(iam):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if any(a.startswith("secretsmanager:") or a == "*" for a in actions):
            found[logical_id] = (actions, statement["Resource"])
    return found


GIVEN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:team/google-key-AbCdEf"


def test_secrets_are_created_empty_or_referenced_and_readable_by_the_model_callers_alone():
    from cfn_render import render

    rendered = render(parameters={"Environment": "staging", "OpenAiApiKeySecret": "create", "GoogleApiKeySecret": GIVEN})
    secrets = rendered.of_type("AWS::SecretsManager::Secret")
    assert set(secrets) == {"OpenAiApiKey"}  # Google's is given; Stability has none
    props = secrets["OpenAiApiKey"]["Properties"]
    assert "SecretString" not in props
    assert "GenerateSecretString" not in props
    assert props["Name"] == "genstack/providers/openai"
    grants = secret_grants(rendered)
    assert set(grants) == {"WorkerRole", "EnhanceRole", "OpenAiRole"}
    for actions, resources in grants.values():
        assert actions == ["secretsmanager:GetSecretValue"]
        assert len(resources) == 2
        assert "OpenAiApiKey" in resources[0]
        assert resources[1] == GIVEN
    env = rendered.props("WorkerFunction")["Environment"]["Variables"]
    assert env["PROVIDER_SECRETS"].startswith("openai={GetAtt:OpenAiApiKey.Id}")
    assert env["PROVIDER_SECRETS"].endswith(f"google={GIVEN}")
    assert "sk-" not in json.dumps(rendered.resources, default=str)


@pytest.mark.parametrize(("environment", "without", "with_providers"), [("dev", 0, 0), ("staging", 0, 1), ("prod", 0, 3)])
def test_nat_egress_comes_with_a_provider_key_and_only_where_the_functions_are_in_a_vpc(environment, without, with_providers):
    from cfn_render import render

    def nat_count(extra):
        rendered = render(parameters={"Environment": environment, "AlarmEmail": "ops@example.com", **extra})
        network = rendered.children["NetworkStack"]
        assert not secret_grants(rendered) or extra
        return len(network.of_type("AWS::EC2::NatGateway")), network

    assert nat_count({})[0] == without
    count, network = nat_count({"StabilityApiKeySecret": "create"})
    assert count == with_providers
    # Egress stays HTTPS only.
    egress = network.props("FunctionSecurityGroup")["SecurityGroupEgress"]
    assert [(e["IpProtocol"], e["FromPort"], e["ToPort"]) for e in egress] == [("tcp", 443, 443)]


def test_without_a_provider_key_there_is_no_secret_and_no_grant():
    from cfn_render import render

    rendered = render(parameters={"Environment": "dev"})
    assert not rendered.of_type("AWS::SecretsManager::Secret")
    assert secret_grants(rendered) == {}
    assert rendered.props("WorkerFunction")["Environment"]["Variables"]["PROVIDER_SECRETS"] == ",,"


def test_a_key_put_in_after_an_empty_read_is_used_at_once_not_after_the_cache():
    client, stubber = secrets_stub()
    stubber.add_response("get_secret_value", secret_value(" "), {"SecretId": ARN})
    stubber.add_response("get_secret_value", secret_value(KEY), {"SecretId": ARN})
    with stubber:
        keys = ProviderKeys({"openai": ARN}, client=client)
        with pytest.raises(ModelCallError):
            keys.key("openai")
        assert keys.key("openai") == KEY  # read again, not the cached blank
    stubber.assert_no_pending_responses()


# ------------------------------------------------- guardrail and /enhance
GUARD_ID, GUARD_VERSION = "gr1abc2def3g", "3"


def guarded_runner(aws, monkeypatch, client, providers):
    from shared.budgets import KeyProfiles
    from shared.providers.guardrail import GuardrailCheck
    from shared.settings import get_settings

    monkeypatch.setenv("ENABLED_MODELS", ENABLED_EXTERNAL)
    monkeypatch.setenv("GUARDRAIL_ID", GUARD_ID)
    monkeypatch.setenv("GUARDRAIL_VERSION", GUARD_VERSION)
    get_settings.cache_clear()
    settings = get_settings()
    return JobRunner(
        jobs=JobRepository(aws.jobs_table),
        calls=CallLedger(aws.cost_table, aws.ledger_table, retention_days=30),
        profiles=KeyProfiles(aws.ledger_table, tier_budgets=settings.tier_budgets()),
        providers=providers,
        s3=aws.s3,
        settings=settings,
        sleep=lambda seconds: None,
        guardrail_check=lambda guardrail: GuardrailCheck(client, guardrail),
    )


def apply_request(*texts):
    return {
        "guardrailIdentifier": GUARD_ID,
        "guardrailVersion": GUARD_VERSION,
        "source": "INPUT",
        "content": [{"text": {"text": t}} for t in texts],
    }


def test_the_guardrail_checks_an_external_models_conversation_first_and_it_is_sent_masked(aws, monkeypatch, bedrock_stub):
    from tests.unit.test_generation_parameters import apply_guardrail_response

    client, stubber = bedrock_stub
    turns = [
        {"role": "user", "content": "mail a@b.c"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "again"},
    ]
    pii = {
        "sensitiveInformationPolicy": {
            "piiEntities": [{"type": "EMAIL", "match": "a@b.c", "action": "ANONYMIZED"}],
            "regexes": [],
        }
    }
    masked = [{"text": "mail {EMAIL}"}, {"text": "ok"}, {"text": "again"}]
    stubber.add_response(
        "apply_guardrail",
        apply_guardrail_response("GUARDRAIL_INTERVENED", [pii], outputs=masked),
        apply_request(*(t["content"] for t in turns)),
    )
    chat, http = provider(external.OpenAiChatProvider, ok(chat_reply("done", 30, 4)))
    put_job(aws, ["openai/gpt-4.1-mini"], prompt="again", messages=turns)
    outcome = guarded_runner(aws, monkeypatch, client, {"openai-chat": chat}).run("job-ext")
    assert outcome.status == "COMPLETED"
    sent = http.requests[0]["json"]["messages"]
    assert [m["content"] for m in sent] == ["mail {EMAIL}", "ok", "again"]
    result = aws.jobs_table.get_item(Key={"jobId": "job-ext"})["Item"]["results"]["openai/gpt-4.1-mini"]
    assert result["guardrail"]["action"] == "MASKED"
    by_model = {r["model"]: r for r in records(aws)}
    # The check (one unit of each policy: 0.00015 + 0.00015 + 0 + 0.0001) and the call, each with its own record.
    assert by_model["bedrock-guardrail"]["costUsd"] == Decimal("0.00040000")
    assert by_model["openai/gpt-4.1-mini"]["costUsd"] == Decimal("0.0004") * 30 / 1000 + Decimal("0.0016") * 4 / 1000
    job = aws.jobs_table.get_item(Key={"jobId": "job-ext"})["Item"]
    assert Decimal(str(job["costUsd"])) == sum(r["costUsd"] for r in by_model.values())


def test_an_input_the_guardrail_blocks_never_reaches_the_external_provider(aws, monkeypatch, bedrock_stub):
    from tests.unit.test_generation_parameters import apply_guardrail_response

    client, stubber = bedrock_stub
    topic = {"topicPolicy": {"topics": [{"name": "Weapons", "type": "DENY", "action": "BLOCKED"}]}}
    stubber.add_response(
        "apply_guardrail", apply_guardrail_response("GUARDRAIL_INTERVENED", [topic]), apply_request("Write a haiku")
    )
    gemini, http = provider(external.GeminiTextProvider, provider_name="google")
    put_job(aws, ["google/gemini-2.5-flash"])
    assert guarded_runner(aws, monkeypatch, client, {"gemini": gemini}).run("job-ext").status == "FAILED"
    assert http.requests == []
    result = aws.jobs_table.get_item(Key={"jobId": "job-ext"})["Item"]["results"]["google/gemini-2.5-flash"]
    assert result["status"] == "BLOCKED"
    assert (result["guardrail"]["blocked"], result["guardrail"]["reasons"]) == ("input", ["denied topic Weapons"])
    statuses = {r["model"]: (r["status"], r["costUsd"]) for r in records(aws)}
    assert statuses["bedrock-guardrail"] == ("BILLED", Decimal("0.00040000"))  # the check is billed
    assert statuses["google/gemini-2.5-flash"] == ("RELEASED", 0)  # the call never went out


def enhance_with(aws, monkeypatch, chat, *, guardrail_check=None, guarded=False):
    from enhance.service import enhance_prompt
    from shared.budgets import KeyProfiles
    from shared.jobs import utc_now
    from shared.settings import get_settings

    monkeypatch.setenv("ENABLED_MODELS", ENABLED_EXTERNAL)
    monkeypatch.setenv("ENHANCE_MODEL_ID", "openai/gpt-4.1-mini")
    if guarded:
        monkeypatch.setenv("GUARDRAIL_ID", GUARD_ID)
        monkeypatch.setenv("GUARDRAIL_VERSION", GUARD_VERSION)
    get_settings.cache_clear()
    settings = get_settings()
    calls = CallLedger(aws.cost_table, aws.ledger_table, retention_days=30)
    return enhance_prompt(
        "a cat",
        "image",
        owner="k1",
        settings=settings,
        provider=chat,
        calls=calls,
        profile=KeyProfiles(aws.ledger_table, tier_budgets=settings.tier_budgets()).of("k1"),
        now=utc_now(),
        request_id="r1",
        guardrail_check=guardrail_check,
    )


def enhance_records(aws):
    return aws.cost_table.scan()["Items"]


def test_enhance_can_use_an_external_model_metered_like_any_other(aws, monkeypatch):
    chat, http = provider(external.OpenAiChatProvider, ok(chat_reply("a tabby cat, golden hour", 40, 8)))
    result = enhance_with(aws, monkeypatch, chat)
    assert result["prompt"] == "a tabby cat, golden hour"
    assert http.requests[0]["json"]["messages"][0]["role"] == "system"
    (record,) = enhance_records(aws)
    assert record["status"] == "BILLED"
    assert record["costUsd"] == Decimal(str(result["costUsd"])) == Decimal("0.0004") * 40 / 1000 + Decimal("0.0016") * 8 / 1000


def test_enhance_with_an_external_model_and_no_key_is_a_503_that_costs_nothing(aws, monkeypatch):
    from shared.errors import ProviderNotConfigured

    chat = external.OpenAiChatProvider(FakeHttp(), ProviderKeys({}), "https://api.example.com/v1")
    with pytest.raises(ProviderNotConfigured) as caught:
        enhance_with(aws, monkeypatch, chat)
    assert caught.value.status_code == 503
    assert "OpenAI has no API key" in caught.value.message
    (record,) = enhance_records(aws)
    assert (record["status"], record["costUsd"]) == ("RELEASED", 0)


def test_enhance_with_an_external_model_checks_the_prompt_with_the_guardrail_and_charges_both(aws, monkeypatch, bedrock_stub):
    from shared.providers.guardrail import GuardrailCheck
    from tests.unit.test_generation_parameters import apply_guardrail_response

    client, stubber = bedrock_stub
    stubber.add_response("apply_guardrail", apply_guardrail_response("NONE", []), apply_request("a cat"))
    chat, _ = provider(external.OpenAiChatProvider, ok(chat_reply("a tabby cat", 40, 8)))
    result = enhance_with(aws, monkeypatch, chat, guardrail_check=lambda g: GuardrailCheck(client, g), guarded=True)
    (record,) = enhance_records(aws)
    model_cost = Decimal("0.0004") * 40 / 1000 + Decimal("0.0016") * 8 / 1000
    assert record["costUsd"] == Decimal(str(result["costUsd"])) == model_cost + Decimal("0.0004")


def test_a_plain_http_base_url_fails_its_model_with_the_reason_not_the_worker():
    chat = external.OpenAiChatProvider(
        Http(connect_timeout=1, read_timeout=1), FixedKeys({"openai": KEY}), "http://proxy.example.com/v1"
    )
    with pytest.raises(ModelCallError) as caught:
        chat.generate("openai/gpt-4.1-mini", "x", max_tokens=10)
    assert caught.value.code == "PROVIDER_NOT_CONFIGURED"
    assert "https" in caught.value.public


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("", True),
        ("openai=https://proxy.example.com/v1", True),
        ("openai=https://a.example.com/v1,google=https://b.example.com", True),
        ("openai=http://127.0.0.1:8080/v1,google=http://localhost:8080", True),
        ("openai=http://proxy.example.com/v1", False),  # plain HTTP leaves only to this host
        ("openai=http://127.0.0.1.example.com/v1", False),
        ("azure=https://x.example.com", False),
        ("openai=https://a b", False),
    ],
)
def test_the_template_accepts_https_base_urls_and_plain_http_to_this_host_only(value, accepted):
    import re

    from tests.templates import root

    pattern = root()["Parameters"]["ProviderBaseUrls"]["AllowedPattern"]
    assert bool(re.fullmatch(pattern, value)) is accepted


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        ({"created": 1, "data": [{"b64_json": "not base64!"}]}, "an image that is not base64"),
        ({"created": 1, "data": []}, "without an image"),
        ({"created": 1}, "without an image"),
    ],
)
def test_a_broken_image_answer_fails_the_model_and_is_charged_as_reserved(answer, why):
    images, _ = provider(external.OpenAiImageProvider, ok(answer))
    with pytest.raises(ModelCallError) as caught:
        images.generate("openai/dall-e-3", "a fox", params={"count": 1})
    assert caught.value.code == "InvalidResponse"
    assert why in caught.value.public
    assert caught.value.outcome_unknown  # it said 200: it may have been billed


def test_a_redirect_is_not_followed_and_fails_the_model():
    chat, http = provider(external.OpenAiChatProvider, HttpResponse(302, {"location": "https://elsewhere"}, b""))
    with pytest.raises(ModelCallError) as caught:
        chat.generate("openai/gpt-4.1-mini", "x", max_tokens=10)
    assert (caught.value.code, caught.value.retryable) == ("HTTP302", False)
    assert len(http.requests) == 1


def test_an_openai_call_carries_its_job_and_call_ids_as_the_client_request_id():
    chat, http = provider(external.OpenAiChatProvider, ok(chat_reply()))
    meta = {"genstackJobId": "job-1", "genstackCallId": "openai/gpt-4.1-mini#001#01"}
    chat.generate("openai/gpt-4.1-mini", "x", max_tokens=10, metadata=meta)
    assert http.requests[0]["headers"]["x-client-request-id"] == "job-1|openai/gpt-4.1-mini#001#01"
    chat, http = provider(external.OpenAiChatProvider, ok(chat_reply()))
    chat.generate("openai/gpt-4.1-mini", "x", max_tokens=10, metadata={"genstackJobId": "é" * 3, "genstackCallId": "c"})
    assert "x-client-request-id" not in http.requests[0]["headers"]  # not ASCII: left out, never mangled


# --------------------------------------------------------------- GET /models
def test_get_models_lists_each_enabled_model_with_its_provider_prices_parameters_and_availability(aws, context, monkeypatch):
    from shared.settings import get_settings
    from status import app as status_app
    from tests.unit.conftest import load_event

    monkeypatch.setenv("ENABLED_MODELS", ENABLED_EXTERNAL)
    monkeypatch.setenv("PROVIDER_SECRETS", f"openai={ARN}")  # Google has no key
    get_settings.cache_clear()
    response = status_app.handler(load_event("models.json"), context)
    assert response["statusCode"] == 200, response["body"]
    body = json.loads(response["body"])
    models = {m["id"]: m for m in body["models"]}
    assert list(models) == ENABLED_EXTERNAL.split(",")  # the deployment's order
    nova, gpt, gemini, image = (models[m] for m in ENABLED_EXTERNAL.split(","))
    assert (nova["provider"], nova["available"], nova["kinds"]) == ("bedrock", True, ["text", "chart"])
    assert (gpt["providerName"], gpt["available"]) == ("OpenAI", True)
    assert (gemini["provider"], gemini["available"]) == ("google", False)  # would be refused: no secret
    assert gpt["pricing"] == {"inputPer1kTokensUsd": 0.0004, "outputPer1kTokensUsd": 0.0016}
    assert image["kinds"] == ["image"]
    assert image["pricing"]["perImageUsd"] == 0.042
    assert "quality" in image["parameters"]["image"]
    assert "temperature" in gpt["parameters"]["text"]
    assert "width" in gpt["parameters"]["chart"]
    assert body["enhanceModel"] == get_settings().enhance_model_id
