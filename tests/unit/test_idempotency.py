"""POST /generate with an Idempotency-Key header (Powertools idempotency on moto)."""

from __future__ import annotations

import json

import pytest

from generate import app as generate_app
from tests.unit.conftest import body_of, load_event


def request(key: str | None, body: dict | None = None, owner: str = "k1a2b3c4d5"):
    event = load_event("generate.json")
    if key is not None:
        event["headers"]["Idempotency-Key"] = key
    if body is not None:
        event["body"] = json.dumps(body)
    event["requestContext"]["identity"]["apiKeyId"] = owner
    return event


def test_a_replay_returns_the_same_job_and_queues_it_once(aws, context):
    first = generate_app.handler(request("order-42"), context)
    second = generate_app.handler(request("order-42"), context)
    assert first["statusCode"] == second["statusCode"] == 202
    assert body_of(first) == body_of(second)
    assert aws.jobs_table.scan()["Count"] == 1
    messages = aws.sqs.receive_message(QueueUrl=aws.queue_url, MaxNumberOfMessages=10).get("Messages", [])
    assert len(messages) == 1


def test_the_same_key_with_another_body_is_refused(aws, context):
    generate_app.handler(request("order-42"), context)
    other = request("order-42", {"prompt": "something else", "models": ["amazon.nova-micro-v1:0"]})
    response = generate_app.handler(other, context)
    assert response["statusCode"] == 422
    assert body_of(response)["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert aws.jobs_table.scan()["Count"] == 1


def test_keys_belong_to_their_caller(aws, context):
    mine = body_of(generate_app.handler(request("same-key", owner="alice"), context))
    theirs = body_of(generate_app.handler(request("same-key", owner="bob"), context))
    assert mine["jobId"] != theirs["jobId"]


def test_without_a_key_every_request_is_a_new_job(aws, context):
    first = body_of(generate_app.handler(request(None), context))
    second = body_of(generate_app.handler(request(None), context))
    assert first["jobId"] != second["jobId"]


def test_a_refused_first_attempt_leaves_the_key_free(aws, context):
    bad = generate_app.handler(request("retry-me", {"prompt": "x", "models": ["acme.unknown"]}), context)
    assert bad["statusCode"] == 400
    good = generate_app.handler(request("retry-me"), context)
    assert good["statusCode"] == 202


@pytest.mark.parametrize("key", ["has space", "", "x" * 256, "naïve"])
def test_a_malformed_key_is_a_400(aws, context, key):
    response = generate_app.handler(request(key), context)
    assert response["statusCode"] == 400
    assert "Idempotency-Key" in body_of(response)["error"]["message"]
