"""POST /generate through the real handler, on moto."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from generate import app as generate_app
from shared.jobs import JobRepository, utc_now
from shared.models import GenerateRequest
from shared.settings import get_settings
from tests.unit.conftest import body_of, load_event


def invoke(event, context):
    return generate_app.handler(event, context)


def with_body(body, **changes):
    event = load_event("generate.json")
    event["body"] = body if isinstance(body, str) else json.dumps(body)
    event.update(changes)
    return event


def test_accepts_job_records_it_and_queues_it(aws, context):
    response = invoke(load_event("generate.json"), context)

    assert response["statusCode"] == 202
    body = body_of(response)
    assert body["status"] == "QUEUED"
    assert body["statusUrl"] == f"status/{body['jobId']}"
    assert response["multiValueHeaders"]["Location"] == [body["statusUrl"]]

    item = aws.jobs_table.get_item(Key={"jobId": body["jobId"]})["Item"]
    assert item["status"] == "QUEUED"
    assert item["owner"] == "k1a2b3c4d5"  # requestContext.identity.apiKeyId
    assert item["models"] == ["amazon.nova-micro-v1:0", "amazon.nova-lite-v1:0"]
    assert item["prompt"] == "Write a haiku about message queues"
    assert item["results"] == {}

    messages = aws.sqs.receive_message(QueueUrl=aws.queue_url, MaxNumberOfMessages=10)["Messages"]
    assert [json.loads(m["Body"]) for m in messages] == [{"jobId": body["jobId"]}]


def test_owner_falls_back_to_key_hash_when_gateway_gives_no_key_id(aws, context):
    event = load_event("generate.json")
    del event["requestContext"]["identity"]["apiKeyId"]
    body = body_of(invoke(event, context))
    owner = aws.jobs_table.get_item(Key={"jobId": body["jobId"]})["Item"]["owner"]
    assert owner.startswith("keyhash-")
    assert "local-test-key-0001" not in owner


@pytest.mark.parametrize(
    ("event_name", "code", "fragment"),
    [
        ("generate-unknown-model.json", "UNKNOWN_MODEL", "acme.not-a-model-v9"),
        ("generate-empty-prompt.json", "INVALID_REQUEST", "prompt must contain more than whitespace"),
        ("generate-malformed-json.json", "INVALID_REQUEST", "not valid JSON"),
    ],
)
def test_sample_bad_requests_get_a_clear_400(aws, context, event_name, code, fragment):
    response = invoke(load_event(event_name), context)
    assert response["statusCode"] == 400
    error = body_of(response)["error"]
    assert error["code"] == code
    assert fragment in error["message"]
    assert aws.jobs_table.scan()["Count"] == 0


def test_unknown_model_lists_the_enabled_ones(aws, context):
    error = body_of(invoke(load_event("generate-unknown-model.json"), context))["error"]
    assert error["details"]["enabledModels"] == ["amazon.nova-micro-v1:0", "amazon.nova-lite-v1:0"]
    assert "amazon.nova-micro-v1:0" in error["message"]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"models": ["amazon.nova-micro-v1:0"]}, "needs exactly one of prompt, template and messages"),
        ({"prompt": "hi"}, "models is required"),
        ({"prompt": "hi", "models": []}, "models"),
        ({"prompt": "hi", "models": "amazon.nova-micro-v1:0"}, "models"),
        ({"prompt": 42, "models": ["amazon.nova-micro-v1:0"]}, "prompt"),
        ({"prompt": "hi", "models": ["amazon.nova-micro-v1:0", "amazon.nova-micro-v1:0"]}, "must not repeat a model"),
        ({"prompt": "hi", "models": ["amazon.nova-micro-v1:0"], "kind": "video"}, "kind"),
        ({"prompt": "hi", "models": ["amazon.nova-micro-v1:0"], "budgetUsd": 0}, "budgetUsd"),
        ({"prompt": "hi", "models": ["amazon.nova-micro-v1:0"], "modles": ["x"]}, "modles is not a known field"),
        ([1, 2, 3], "body"),
        ("", "the request body is required"),
    ],
)
def test_invalid_bodies_name_the_field(aws, context, body, fragment):
    response = invoke(with_body(body), context)
    assert response["statusCode"] == 400, response
    error = body_of(response)["error"]
    assert error["code"] == "INVALID_REQUEST"
    assert fragment in error["message"]


def test_oversized_prompt_is_refused_with_the_limit(aws, context, monkeypatch):
    monkeypatch.setenv("MAX_PROMPT_CHARS", "100")
    get_settings.cache_clear()
    response = invoke(with_body({"prompt": "x" * 101, "models": ["amazon.nova-micro-v1:0"]}), context)
    assert response["statusCode"] == 400
    assert body_of(response)["error"]["details"] == {"field": "prompt", "maxChars": 100}


def test_too_many_models_is_refused(aws, context, monkeypatch):
    monkeypatch.setenv("MAX_MODELS_PER_JOB", "1")
    get_settings.cache_clear()
    response = invoke(with_body({"prompt": "hi", "models": ["amazon.nova-micro-v1:0", "amazon.nova-lite-v1:0"]}), context)
    assert response["statusCode"] == 400
    assert "at most 1 models" in body_of(response)["error"]["message"]


def test_form_encoded_body_gets_415_naming_the_fix(aws, context):
    response = invoke(load_event("generate-form-encoded.json"), context)
    assert response["statusCode"] == 415
    assert "Content-Type: application/json" in body_of(response)["error"]["message"]


def test_queue_failure_fails_the_job_and_answers_503(aws, context, monkeypatch):
    monkeypatch.setenv("JOB_QUEUE_URL", aws.queue_url + "-missing")
    get_settings.cache_clear()
    response = invoke(load_event("generate.json"), context)
    assert response["statusCode"] == 503
    assert body_of(response)["error"]["code"] == "QUEUE_UNAVAILABLE"
    (item,) = aws.jobs_table.scan()["Items"]
    assert item["status"] == "FAILED"
    assert "could not be queued" in item["error"]


def test_unexpected_failure_is_a_500_without_internals(aws, context, monkeypatch):
    def explode(*_args, **_kwargs):
        raise RuntimeError("secret internal detail")

    monkeypatch.setattr(JobRepository, "create", explode)
    response = invoke(load_event("generate.json"), context)
    assert response["statusCode"] == 500
    error = body_of(response)["error"]
    assert error["code"] == "INTERNAL_ERROR"
    assert "secret" not in response["body"]
    assert "c6af9ac6-7b61-11e6-9a41-93e8deadbeef" in error["message"]


def test_request_model_accepts_budget_alias():
    request = GenerateRequest.model_validate({"prompt": "p", "models": ["m"], "budgetUsd": 0.5})
    assert request.budget_usd == 0.5


# ------------------------------------------------------------------ budgets


def test_the_job_gets_the_default_budget_and_its_worst_case_estimate(aws, context):
    job_id = body_of(invoke(load_event("generate.json"), context))["jobId"]
    item = aws.jobs_table.get_item(Key={"jobId": job_id})["Item"]
    assert item["budgetUsd"] == Decimal("1")
    # 34 bytes + 64 template tokens -> at most 98 tokens in; 2048 out; Nova Micro + Nova Lite
    expected = (98 * 0.000035 + 2048 * 0.00014 + 98 * 0.00006 + 2048 * 0.00024) / 1000
    assert float(item["estimatedUsd"]) == pytest.approx(expected)


def test_a_budget_too_small_for_the_worst_case_is_a_402(aws, context):
    response = invoke(with_body({"prompt": "hi", "models": ["amazon.nova-micro-v1:0"], "budgetUsd": 0.0001}), context)
    assert response["statusCode"] == 402
    error = body_of(response)["error"]
    assert error["code"] == "JOB_BUDGET_TOO_SMALL"
    assert error["details"]["budgetUsd"] == 0.0001
    assert error["details"]["estimatedUsd"] > 0.0001
    assert aws.jobs_table.scan()["Count"] == 0


def test_a_budget_above_the_deployment_maximum_is_a_400(aws, context):
    response = invoke(with_body({"prompt": "hi", "models": ["amazon.nova-micro-v1:0"], "budgetUsd": 5}), context)
    assert response["statusCode"] == 400
    assert body_of(response)["error"]["details"] == {"field": "budgetUsd", "max": 1.0}


def test_a_spent_monthly_budget_is_a_429_before_anything_is_queued(aws, context, monkeypatch):
    monkeypatch.setenv("MONTHLY_KEY_BUDGET_USD", "0.01")
    get_settings.cache_clear()
    aws.ledger_table.put_item(Item={"owner": "k1a2b3c4d5", "period": utc_now().strftime("%Y-%m"), "spentUsd": Decimal("0.0095")})
    response = invoke(load_event("generate.json"), context)
    assert response["statusCode"] == 429
    error = body_of(response)["error"]
    assert error["code"] == "MONTHLY_BUDGET_EXCEEDED"
    assert error["details"]["spentUsd"] == 0.0095
    assert aws.jobs_table.scan()["Count"] == 0


def test_image_jobs_need_image_models_and_respect_their_prompt_limits(aws, context, monkeypatch):
    monkeypatch.setenv("ENABLED_MODELS", "amazon.nova-micro-v1:0,amazon.titan-image-generator-v2:0")
    get_settings.cache_clear()
    ok = invoke(with_body({"prompt": "a fox", "models": ["amazon.titan-image-generator-v2:0"], "kind": "image"}), context)
    assert ok["statusCode"] == 202
    text_model = invoke(with_body({"prompt": "a fox", "models": ["amazon.nova-micro-v1:0"], "kind": "image"}), context)
    assert text_model["statusCode"] == 400
    assert "do not produce 'image' output" in body_of(text_model)["error"]["message"]
    too_long = invoke(with_body({"prompt": "x" * 513, "models": ["amazon.titan-image-generator-v2:0"], "kind": "image"}), context)
    assert too_long["statusCode"] == 400
    assert body_of(too_long)["error"]["details"] == {"field": "prompt", "maxChars": {"amazon.titan-image-generator-v2:0": 512}}


def test_chart_jobs_take_text_models_and_inline_data(aws, context):
    body = {"prompt": "Sales by month", "models": ["amazon.nova-lite-v1:0"], "kind": "chart", "data": [{"m": "Jan", "v": 3}]}
    response = invoke(with_body(body), context)
    assert response["statusCode"] == 202
    item = aws.jobs_table.get_item(Key={"jobId": body_of(response)["jobId"]})["Item"]
    assert item["data"] == [{"m": "Jan", "v": 3}]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"prompt": "p", "models": ["amazon.nova-lite-v1:0"], "data": [{"a": 1}]}, "only a chart job takes"),
        (
            {"prompt": "p", "models": ["amazon.nova-lite-v1:0"], "kind": "chart", "data": [{"a": "x" * 100_001}]},
            "bytes of chart data",
        ),
        ({"prompt": "p", "models": ["amazon.nova-lite-v1:0"], "kind": "chart", "data": [{"a": {"nested": 1}}]}, "data"),
    ],
)
def test_chart_data_is_checked(aws, context, body, fragment):
    response = invoke(with_body(body), context)
    assert response["statusCode"] == 400
    assert fragment in body_of(response)["error"]["message"]
