"""The OpenAI-compatible /v1 API on the local stack, driven by the official
`openai` Python package as its users drive it: base URL the stack's /v1, key
an API key the stack issued. Every call is metered: after them, GET /usage of
the key holds exactly what they cost, and another key sees none of it.

The emulator (ministack 1.5.33) reads an API key from x-api-key only, where
AWS takes the one the /v1 authorizer makes of `Authorization: Bearer`: the
client sends both (default_headers); the authorizer still runs, and refuses
a request without a bearer key.

(This file is named to run after test_providers.py, which first checks that
an empty provider secret fails its model; here the OpenAI secret holds the
fake provider's key.)"""

from __future__ import annotations

import time
from decimal import Decimal

import openai
import pytest

from tests.e2e.conftest import E2E_MODELS, Deployment, call, new_key
from tests.e2e.fake_providers import OPENAI_KEY

pytestmark = pytest.mark.e2e


def client_for(deployment: Deployment, key: str, *, bearer: str | None = None) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=deployment.openai_url,
        api_key=bearer or key,
        default_headers={"x-api-key": key},  # the emulator's key source (above)
        # The SDK's own HTTP client, trusting the emulator's certificate.
        http_client=openai.DefaultHttpxClient(verify=deployment.ca_bundle, timeout=60),
        max_retries=0,  # each call once: the usage below must equal what was sent
    )


def month_of(deployment: Deployment, key: str) -> dict:
    reply = call(deployment, "GET", "/usage", key=key)
    assert reply.status == 200, reply
    return reply.body["months"][-1]


@pytest.fixture(scope="module", autouse=True)
def openai_key(deployment: Deployment, fake_providers) -> None:
    """The fake OpenAI's key in the stack's secret (as test_providers.py puts it)."""
    secrets = deployment.client("secretsmanager")
    secrets.put_secret_value(SecretId=deployment.outputs["OpenAiApiKeySecretArn"], SecretString=OPENAI_KEY)


@pytest.fixture(scope="module")
def key(deployment: Deployment) -> str:
    return new_key(deployment)  # its own month: the usage checks below see these calls alone


@pytest.fixture(scope="module")
def client(deployment: Deployment, key: str) -> openai.OpenAI:
    return client_for(deployment, key)


def test_the_sdk_lists_the_deployments_callable_models(client):
    ids = [m.id for m in client.models.list()]
    # Stability AI's model is enabled without a key: not callable, not listed.
    assert ids == [*E2E_MODELS, "openai/gpt-4.1-mini", "google/gemini-2.5-flash"]
    model = client.models.retrieve("openai/gpt-4.1-mini")  # a slash in the id
    assert (model.id, model.owned_by, model.object) == ("openai/gpt-4.1-mini", "openai", "model")
    assert client.models.retrieve("amazon.nova-lite-v1:0").owned_by == "bedrock"


def test_chat_completions_plain_streamed_and_beyond_bedrock_cost_exactly_what_usage_says(deployment, client, key):
    costs = []
    raw = client.chat.completions.with_raw_response.create(
        model="amazon.nova-lite-v1:0",
        messages=[{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "What is a haiku?"}],
        max_tokens=100,
        temperature=0.2,
    )
    completion = raw.parse()
    costs.append(Decimal(raw.headers["x-genstack-cost-usd"]))
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content
    assert completion.choices[0].finish_reason in ("stop", "length")
    assert completion.usage.prompt_tokens > 0
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens

    # Streamed: read chunk by chunk, the usage last.
    with client.chat.completions.with_streaming_response.create(
        model="amazon.nova-micro-v1:0",
        messages=[{"role": "user", "content": "Write two sentences about tides."}],
        stream=True,
        stream_options={"include_usage": True},
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        costs.append(Decimal(response.headers["x-genstack-cost-usd"]))
        chunks = list(response.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] in (["stop"], ["length"])
    assert chunks[-1].choices == []
    assert chunks[-1].usage.completion_tokens > 0
    assert len({c.id for c in chunks}) == 1

    # A model beyond Bedrock, through the same route (the fake OpenAI on this host answers).
    raw = client.chat.completions.with_raw_response.create(
        model="openai/gpt-4.1-mini", messages=[{"role": "user", "content": "Hello"}], max_completion_tokens=50
    )
    costs.append(Decimal(raw.headers["x-genstack-cost-usd"]))
    assert raw.parse().choices[0].message.content

    month = month_of(deployment, key)
    assert Decimal(str(month["spentUsd"])) == sum(costs) > 0
    assert month["reservedUsd"] == 0
    lines = {m["model"]: m for m in month["models"]}
    assert {m: lines[m]["calls"] for m in lines} == {
        "amazon.nova-lite-v1:0": 1,
        "amazon.nova-micro-v1:0": 1,
        "openai/gpt-4.1-mini": 1,
    }


def test_an_image_request_gets_the_documented_error_on_the_emulator(client):
    # ministack has no image models: the call fails at the model (502,
    # model_error), and nothing is charged; unit tests cover the success path.
    with pytest.raises(openai.InternalServerError) as failed:
        client.images.generate(model="amazon.nova-canvas-v1:0", prompt="a lighthouse at dusk", size="1024x1024")
    assert failed.value.status_code == 502
    assert failed.value.code == "model_error"
    assert "amazon.nova-canvas-v1:0" in failed.value.message
    # A model whose provider has no key in this deployment: refused before any call.
    with pytest.raises(openai.BadRequestError) as refused:
        client.images.generate(model="stability/stable-image-core", prompt="a lighthouse")
    assert refused.value.code == "model_not_available"


def test_errors_arrive_as_the_sdks_typed_exceptions_with_genstacks_message(deployment, client):
    with pytest.raises(openai.NotFoundError) as unknown:
        client.chat.completions.create(model="gpt-5", messages=[{"role": "user", "content": "hi"}])
    assert unknown.value.code == "model_not_found"
    assert "GET /v1/models lists this deployment's models" in unknown.value.message
    with pytest.raises(openai.BadRequestError) as bad:
        client.chat.completions.create(model="amazon.nova-lite-v1:0", messages=[{"role": "user", "content": "hi"}], logprobs=True)
    assert bad.value.code == "unsupported_parameter"
    assert bad.value.param == "logprobs"
    assert "Unrecognized request argument supplied: logprobs" in bad.value.message
    with pytest.raises(openai.BadRequestError) as too_many:
        client.chat.completions.create(model="amazon.nova-lite-v1:0", messages=[{"role": "user", "content": "hi"}], n=3)
    assert too_many.value.param == "n"

    # A key whose month is spent: insufficient_quota, which the SDK is told not to retry.
    poor = new_key(deployment, budget_usd=Decimal("0.000001"))
    with pytest.raises(openai.RateLimitError) as spent:
        client_for(deployment, poor).chat.completions.create(
            model="amazon.nova-lite-v1:0", messages=[{"role": "user", "content": "hi"}]
        )
    assert spent.value.code == "insufficient_quota"
    assert "monthly budget of $0.000001" in spent.value.message
    assert spent.value.response.headers["x-should-retry"] == "false"
    assert month_of(deployment, poor)["calls"] == 0

    # No bearer key: the authorizer refuses it (401) before any function runs.
    with pytest.raises(openai.AuthenticationError) as anonymous:
        client_for(deployment, deployment.api_key, bearer="short").models.list()
    assert anonymous.value.status_code == 401  # (its body: as the throttle's below)


def test_another_key_cannot_see_a_calls_cost_and_a_free_key_is_throttled_on_v1(deployment, key):
    other = new_key(deployment)
    assert month_of(deployment, other)["models"] == []  # none of the first key's calls
    before = month_of(deployment, key)
    raw = client_for(deployment, other).chat.completions.with_raw_response.create(
        model="amazon.nova-micro-v1:0", messages=[{"role": "user", "content": "one word"}], max_tokens=10
    )
    assert month_of(deployment, key) == before  # the other key's call is not on this bill
    assert Decimal(str(month_of(deployment, other)["spentUsd"])) == Decimal(raw.headers["x-genstack-cost-usd"])

    free = client_for(deployment, new_key(deployment, tier="free"))
    refusals = []
    for _ in range(8):  # the free tier: 1 request a second, a burst of 2, across both APIs
        try:
            free.models.list()
        except openai.RateLimitError as exc:
            refusals.append(exc.code or exc.message)
    assert len(refusals) >= 4
    # AWS answers through the API's THROTTLED gateway response (rate_limit_exceeded,
    # tests/unit/test_openai_api.py renders it); the emulator answers its own
    # {"message": "Too Many Requests"}, which the SDK raises as the same RateLimitError.
    assert all(r == "rate_limit_exceeded" or "Too Many Requests" in r for r in refusals), refusals
    time.sleep(1.5)
    assert free.models.list().data  # the bucket refills


def test_the_printed_openai_curl_line_answers_a_chat_completion(deployment):
    import json
    import subprocess

    lines = deployment.quickstart.splitlines()
    setup = next(line for line in lines if line.strip().startswith("URL="))  # KEY and CA
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("BASE="))
    end = next(i for i, line in enumerate(lines) if i > start and not line.strip())
    script = "set -euo pipefail\n" + setup + "\n" + "\n".join(lines[start:end])
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    completion = json.loads(result.stdout)
    assert completion["object"] == "chat.completion"
    assert completion["choices"][0]["message"]["content"]
