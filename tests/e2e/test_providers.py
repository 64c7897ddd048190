"""Providers beyond Bedrock on the deployed local stack: one job across a
Bedrock model and two external models (OpenAI, Google) whose base URLs point
at a fake provider server on this host (tests/e2e/fake_providers.py). The
worker reads each key from the emulator's Secrets Manager (the secrets the
stack created empty) and calls the server over real HTTP. A provider with no
secret is refused at submit time; one whose secret is still empty fails its
model with PROVIDER_NOT_CONFIGURED and costs nothing."""

from __future__ import annotations

import json
import urllib.parse
import uuid
from decimal import Decimal

import pytest
from boto3.dynamodb.conditions import Key

from tests.e2e.conftest import call, fetch, new_key, wait_for_job
from tests.e2e.fake_providers import GEMINI_USAGE, GOOGLE_KEY, OPENAI_KEY, OPENAI_USAGE

pytestmark = pytest.mark.e2e

NOVA, OPENAI, GEMINI = "amazon.nova-micro-v1:0", "openai/gpt-4.1-mini", "google/gemini-2.5-flash"


def money(value) -> Decimal:
    return Decimal(str(value))


def cost_records(deployment, job_id):
    table = deployment.session.resource("dynamodb", endpoint_url=deployment.endpoint, verify=deployment.ca_bundle)
    costs = table.Table(deployment.outputs["CostTrackingTableName"])
    return costs.query(KeyConditionExpression=Key("jobId").eq(job_id))["Items"]


def test_a_model_whose_provider_has_no_key_is_refused_at_submit_time(deployment):
    reply = call(deployment, "POST", "/generate", {"prompt": "a fox", "kind": "image", "models": ["stability/stable-image-core"]})
    assert reply.status == 400, reply
    error = reply.body["error"]
    assert error["code"] == "PROVIDER_NOT_CONFIGURED"
    assert "StabilityApiKeySecret" in error["message"]
    assert error["details"]["models"] == ["stability/stable-image-core"]


def test_the_stack_made_one_empty_secret_per_provider_it_was_given(deployment):
    outputs = deployment.outputs
    assert {"OpenAiApiKeySecretArn", "GoogleApiKeySecretArn"} <= set(outputs)
    assert "StabilityApiKeySecretArn" not in outputs
    functions = deployment.client("lambda")
    worker = next(
        f for f in functions.list_functions()["Functions"] if f["FunctionName"].startswith(f"{deployment.stack_name}-Worker")
    )
    variables = functions.get_function_configuration(FunctionName=worker["FunctionName"])["Environment"]["Variables"]
    assert f"openai={outputs['OpenAiApiKeySecretArn']}" in variables["PROVIDER_SECRETS"]
    assert OPENAI_KEY not in str(variables)  # ARNs in the environment, never keys


def test_an_empty_secret_fails_the_model_with_provider_not_configured_and_costs_nothing(deployment, fake_providers):
    key = new_key(deployment)
    secrets = deployment.client("secretsmanager")
    if secrets.get_secret_value(SecretId=deployment.outputs["OpenAiApiKeySecretArn"]).get("SecretString"):
        pytest.skip("the OpenAI secret was filled in by an earlier test of this session")
    accepted = call(deployment, "POST", "/generate", {"prompt": "one line about queues", "models": [NOVA, OPENAI]}, key=key)
    assert accepted.status == 202, accepted
    job = wait_for_job(deployment, accepted.body["jobId"], key=key)
    assert job["status"] == "PARTIAL", job
    result = {r["model"]: r for r in job["results"]}[OPENAI]
    assert result["status"] == "FAILED"
    assert result["error"]["code"] == "PROVIDER_NOT_CONFIGURED"
    assert "OpenAI has no API key" in result["error"]["message"]
    records = [r for r in cost_records(deployment, job["jobId"]) if r["model"] == OPENAI]
    assert [(r["status"], r["costUsd"]) for r in records] == [("RELEASED", 0)]
    assert not [c for c in fake_providers.calls if c["path"] == "/v1/chat/completions" and c["keyOk"]]


def test_one_job_across_bedrock_openai_and_google_with_exact_costs(deployment, fake_providers):
    secrets = deployment.client("secretsmanager")
    secrets.put_secret_value(SecretId=deployment.outputs["OpenAiApiKeySecretArn"], SecretString=OPENAI_KEY)
    secrets.put_secret_value(SecretId=deployment.outputs["GoogleApiKeySecretArn"], SecretString=GOOGLE_KEY)
    key = new_key(deployment)
    prompt = f"one line about fan-out {uuid.uuid4().hex[:6]}"
    body = {"prompt": prompt, "models": [NOVA, OPENAI, GEMINI], "parameters": {"temperature": 0.3}}
    accepted = call(deployment, "POST", "/generate", body, key=key)
    assert accepted.status == 202, accepted
    job = wait_for_job(deployment, accepted.body["jobId"], key=key)
    assert job["status"] == "COMPLETED", job
    results = {r["model"]: r for r in job["results"]}
    assert results[OPENAI]["text"] == f"openai:{prompt[:24]}"
    assert results[GEMINI]["text"] == f"gemini:{prompt[:24]}"
    assert (results[OPENAI]["inputTokens"], results[OPENAI]["outputTokens"]) == OPENAI_USAGE
    assert (results[GEMINI]["inputTokens"], results[GEMINI]["outputTokens"]) == GEMINI_USAGE
    # What the fake provider was sent: our key, the prompt, the parameters mapped.
    sent = [c for c in fake_providers.calls if c["keyOk"] and prompt in str(c["body"])]
    assert {c["path"] for c in sent} == {"/v1/chat/completions", "/v1beta/models/gemini-2.5-flash:generateContent"}
    chat = next(c["body"] for c in sent if c["path"] == "/v1/chat/completions")
    assert (chat["model"], chat["temperature"], chat["store"]) == ("gpt-4.1-mini", 0.3, False)

    # Money to the last decimal: registry price x the tokens the provider reported.
    records = {r["model"]: r for r in cost_records(deployment, job["jobId"])}
    assert {m: r["status"] for m, r in records.items()} == {NOVA: "BILLED", OPENAI: "BILLED", GEMINI: "BILLED"}
    assert records[OPENAI]["costUsd"] == Decimal("0.0004") * 21 / 1000 + Decimal("0.0016") * 9 / 1000
    assert records[GEMINI]["costUsd"] == Decimal("0.0003") * 17 / 1000 + Decimal("0.0025") * 5 / 1000
    assert money(job["costUsd"]) == sum(r["costUsd"] for r in records.values())
    for model, record in records.items():
        assert money(results[model]["costUsd"]) == record["costUsd"]
    usage = call(deployment, "GET", "/usage", key=key).body
    assert money(usage["spentUsd"]) == money(job["costUsd"])
    by_model = {line["model"]: line for line in usage["months"][0]["models"]}
    assert set(by_model) == {NOVA, OPENAI, GEMINI}


def test_a_chart_job_is_drawn_by_the_chart_renderer_function(deployment, fake_providers):
    """The model (OpenAI, faked) writes a Vega-Lite spec; the worker invokes the
    stack's chart renderer function, which draws it: PNG, SVG and the spec."""
    secrets = deployment.client("secretsmanager")
    secrets.put_secret_value(SecretId=deployment.outputs["OpenAiApiKeySecretArn"], SecretString=OPENAI_KEY)
    records = [{"month": "Jan", "sales": 3}, {"month": "Feb", "sales": 5}]
    body = {"prompt": f"Sales by month {uuid.uuid4().hex[:6]}", "models": [OPENAI], "kind": "chart", "data": records}
    accepted = call(deployment, "POST", "/generate", body)
    assert accepted.status == 202, accepted
    job = wait_for_job(deployment, accepted.body["jobId"])
    assert job["status"] == "COMPLETED", job
    (result,) = job["results"]
    assert urllib.parse.urlsplit(result["url"]).path.endswith(".png")
    png, svg, spec = (fetch(deployment, url) for url in (result["url"], result["files"]["svg"], result["files"]["vl.json"]))
    assert png[0] == 200
    assert png[1].startswith(b"\x89PNG")
    assert b"<svg" in svg[1]
    assert b"e2e chart" in svg[1]
    assert json.loads(spec[1])["data"]["values"] == records
    # One model call, billed at what the provider reported; the render costs no model money.
    (record,) = cost_records(deployment, job["jobId"])
    assert record["costUsd"] == Decimal("0.0004") * 21 / 1000 + Decimal("0.0016") * 9 / 1000


def test_get_models_shows_which_providers_have_a_key(deployment):
    reply = call(deployment, "GET", "/models")
    assert reply.status == 200, reply
    models = {m["id"]: m for m in reply.body["models"]}
    assert set(models) == set(deployment.outputs["EnabledModelIds"].split(","))
    assert models[OPENAI]["available"]
    assert models[GEMINI]["available"]
    assert not models["stability/stable-image-core"]["available"]
    assert models[NOVA]["pricing"] == {"inputPer1kTokensUsd": 0.000035, "outputPer1kTokensUsd": 0.00014}
