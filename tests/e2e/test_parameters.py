"""Generation parameters and conversations through the emulator's API
Gateway and worker: what a job asks for is what its results report."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import call, wait_for_job

pytestmark = pytest.mark.e2e

MICRO, LITE = "amazon.nova-micro-v1:0", "amazon.nova-lite-v1:0"
CANVAS, SDXL = "amazon.nova-canvas-v1:0", "stability.stable-diffusion-xl-v1"


def test_a_text_job_with_system_temperature_and_max_tokens_completes_and_reports_them(deployment):
    body = {
        "prompt": "Name three queue systems.",
        "models": [MICRO, LITE],
        "parameters": {"system": "Answer in one line.", "temperature": 0.2, "maxTokens": 120},
        "modelParameters": {LITE: {"topP": 0.5, "stopSequences": ["END"]}},
    }
    accepted = call(deployment, "POST", "/generate", body)
    assert accepted.status == 202, accepted
    job = wait_for_job(deployment, accepted.body["jobId"])
    assert job["status"] == "COMPLETED", job
    by_model = {r["model"]: r for r in job["results"]}
    assert by_model[MICRO]["parameters"] == {"temperature": 0.2, "topP": 0.9, "maxTokens": 120}
    assert by_model[LITE]["parameters"] == {"temperature": 0.2, "topP": 0.5, "maxTokens": 120, "stopSequences": ["END"]}


def test_a_conversation_completes(deployment):
    body = {
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Name a prime number."},
            {"role": "assistant", "content": "7"},
            {"role": "user", "content": "Another one?"},
        ],
        "models": [MICRO],
        "parameters": {"maxTokens": 50},
    }
    accepted = call(deployment, "POST", "/generate", body)
    assert accepted.status == 202, accepted
    job = wait_for_job(deployment, accepted.body["jobId"])
    assert job["status"] == "COMPLETED", job
    (result,) = job["results"]
    assert result["text"]
    assert result["parameters"]["maxTokens"] == 50


def test_the_seed_plans_steps_and_guidance_are_accepted_where_a_model_has_them(deployment):
    plan = {"prompt": "test prompt", "steps": 25, "guidance": 7, "kind": "image"}
    accepted = call(deployment, "POST", "/generate", {**plan, "models": [SDXL]})
    assert accepted.status == 202, accepted
    # The emulator has no image models: the job ends, with a reason, as FAILED.
    job = wait_for_job(deployment, accepted.body["jobId"])
    assert job["status"] in ("COMPLETED", "FAILED"), job
    assert call(deployment, "DELETE", f"/jobs/{job['jobId']}").status == 200

    refused = call(deployment, "POST", "/generate", {**plan, "models": [CANVAS]})
    assert refused.status == 400, refused
    error = refused.body["error"]
    assert error["code"] == "INVALID_REQUEST"
    assert f"{CANVAS}: parameter 'steps' is not one it takes" in error["message"]
    assert "cfgScale" in error["details"]["accepts"]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"prompt": "x", "models": [MICRO], "parameters": {"temperature": 3}}, "'temperature' must be from 0 to 1"),
        ({"prompt": "x", "models": [MICRO], "parameters": {"seed": 1}}, "'seed' is not one it takes"),
        ({"prompt": "x", "models": [MICRO], "parameters": {"temp": 1}}, "not a generation parameter"),
        ({"messages": [{"role": "assistant", "content": "x"}], "models": [MICRO]}, "where a user turn belongs"),
    ],
)
def test_parameters_a_model_does_not_take_are_a_clear_400(deployment, body, fragment):
    reply = call(deployment, "POST", "/generate", body)
    assert reply.status == 400, reply
    assert fragment in reply.body["error"]["message"]


def test_enhance_takes_a_temperature(deployment):
    reply = call(deployment, "POST", "/enhance", {"prompt": "a cat", "parameters": {"temperature": 0.1, "maxTokens": 100}})
    assert reply.status == 200, reply
    assert reply.body["parameters"] == {"temperature": 0.1, "topP": 0.9, "maxTokens": 100}
