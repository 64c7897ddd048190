"""POST /enhance through the real handler, with Bedrock stubbed (Stubber)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from botocore.stub import ANY

from enhance import app as enhance_app
from enhance.service import SYSTEM_PROMPTS
from shared import clients
from shared.jobs import utc_now
from shared.settings import get_settings
from shared.usage import is_month
from tests.unit.conftest import body_of, load_event


@pytest.fixture
def bedrock(stub_bedrock):
    return stub_bedrock("bedrock_runtime_sync")


def reply(text):
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 100, "outputTokens": 50, "totalTokens": 150},
        "metrics": {"latencyMs": 200},
    }


def test_improves_a_prompt_with_the_kind_specific_system_prompt(aws, bedrock, context):
    bedrock.add_response(
        "converse",
        reply("  A tabby cat curled on a green velvet sofa, soft window light.  "),
        expected_params={
            "modelId": "amazon.nova-lite-v1:0",
            "messages": [{"role": "user", "content": [{"text": "a cat on a sofa"}]}],
            "system": [{"text": SYSTEM_PROMPTS["image"]}],
            "inferenceConfig": ANY,
            "requestMetadata": ANY,  # the call's id: checked against its record below
        },
    )
    sent = {}
    clients.bedrock_runtime_sync().meta.events.register(
        "provide-client-params.bedrock-runtime.Converse", lambda params, **_: sent.update(params)
    )
    response = enhance_app.handler(load_event("enhance.json"), context)
    assert response["statusCode"] == 200
    body = body_of(response)
    assert body["prompt"] == "A tabby cat curled on a green velvet sofa, soft window light."
    assert body["original"] == "a cat on a sofa"
    assert body["kind"] == "image"
    assert body["model"] == "amazon.nova-lite-v1:0"
    # 100 x 0.00006/1k + 50 x 0.00024/1k
    assert body["costUsd"] == pytest.approx(0.000018)
    # Metered like a job's call: one record, settled, and the month and the model's line agree.
    (record,) = aws.cost_table.scan()["Items"]
    assert record["jobId"].startswith("enhance#")
    assert (record["status"], record["costUsd"], record["owner"]) == ("BILLED", Decimal("0.000018"), "k1a2b3c4d5")
    assert sent["requestMetadata"] == {"genstackJobId": record["jobId"], "genstackCallId": record["callId"]}
    items = {i["period"]: i for i in aws.ledger_table.scan()["Items"] if not i["period"].startswith("inflight")}
    month = items[record["period"]]
    assert (month["spentUsd"], month["reservedUsd"]) == (Decimal("0.000018"), 0)
    line = items[f"{record['period']}#amazon.nova-lite-v1:0"]
    assert (line["costUsd"], line["inputTokens"], line["outputTokens"], line["calls"]) == (Decimal("0.000018"), 100, 50, 1)


@pytest.mark.parametrize(
    ("code", "status", "error_code"),
    [
        ("ThrottlingException", 429, "MODEL_THROTTLED"),
        ("ValidationException", 400, "MODEL_REJECTED_REQUEST"),
        ("AccessDeniedException", 502, "MODEL_UNAVAILABLE"),
    ],
)
def test_bedrock_errors_map_to_clear_statuses(aws, bedrock, context, code, status, error_code):
    bedrock.add_client_error("converse", service_error_code=code, service_message="upstream said no")
    response = enhance_app.handler(load_event("enhance.json"), context)
    assert response["statusCode"] == status
    assert body_of(response)["error"]["code"] == error_code
    (record,) = aws.cost_table.scan()["Items"]
    assert (record["status"], record["costUsd"]) == ("RELEASED", 0)  # a failed call costs nothing
    months = [i for i in aws.ledger_table.scan()["Items"] if is_month(i["period"])]
    assert [(m["spentUsd"], m["reservedUsd"]) for m in months] == [(0, 0)]


def test_invalid_body_is_refused_before_any_model_call(aws, bedrock, context):
    event = load_event("enhance.json")
    event["body"] = json.dumps({"prompt": "", "kind": "image"})
    response = enhance_app.handler(event, context)
    assert response["statusCode"] == 400
    assert "prompt" in body_of(response)["error"]["message"]


def test_a_spent_monthly_budget_refuses_before_calling_the_model(aws, bedrock, context, monkeypatch):
    monkeypatch.setenv("MONTHLY_KEY_BUDGET_USD", "0.0001")
    get_settings.cache_clear()
    aws.ledger_table.put_item(Item={"owner": "k1a2b3c4d5", "period": utc_now().strftime("%Y-%m"), "spentUsd": Decimal("0.0001")})
    response = enhance_app.handler(load_event("enhance.json"), context)
    assert response["statusCode"] == 429
    assert body_of(response)["error"]["code"] == "MONTHLY_BUDGET_EXCEEDED"
