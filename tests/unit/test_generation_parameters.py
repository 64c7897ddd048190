"""Generation parameters, conversations and the guardrail: each parameter in
each model family's real request body (botocore Stubber checks every request
against the Bedrock service model), every unsupported parameter or range a
clear 400, worst cases that follow the parameters, and a guarded deployment
that blocks, records the guardrail's cost and grants ApplyGuardrail on that
guardrail alone."""

from __future__ import annotations

import base64
import json
import random
from decimal import Decimal

import pytest

from cfn_render import Unresolved, render
from enhance import app as enhance_app
from generate import app as generate_app
from shared.budgets import JobInput, KeyProfiles, work_bound
from shared.costs import CallLedger
from shared.guardrails import Guardrail, usage_cost
from shared.jobs import JobRepository
from shared.parameters import accepted, resolve
from shared.providers import ConverseTextProvider, InvokeImageProvider
from shared.providers.guardrail import GuardrailCheck
from shared.registry import load_registry, spec_for
from shared.settings import get_settings
from tests.templates import role_statements
from tests.unit.conftest import body_of, invoke_model_reply, load_event
from worker.service import JobRunner

NOVA_LITE, CLAUDE, LLAMA, MISTRAL = (
    "amazon.nova-lite-v1:0",
    "anthropic.claude-3-haiku-20240307-v1:0",
    "meta.llama3-1-8b-instruct-v1:0",
    "mistral.mistral-large-2402-v1:0",
)
CANVAS, TITAN, SD35, SDXL = (
    "amazon.nova-canvas-v1:0",
    "amazon.titan-image-generator-v2:0",
    "stability.sd3-5-large-v1:0",
    "stability.stable-diffusion-xl-v1",
)
ALL = ",".join(["amazon.nova-micro-v1:0", NOVA_LITE, CLAUDE, LLAMA, MISTRAL, CANVAS, TITAN, SD35, SDXL])
PNG = b"\x89PNG\r\n\x1a\nfake"
GUARD = Guardrail("gr1abc2def3g", "3")


@pytest.fixture(autouse=True)
def every_model(monkeypatch):
    monkeypatch.setenv("ENABLED_MODELS", ALL)
    get_settings.cache_clear()


def params_of(model: str, kind: str, given: dict, seed: int = 7) -> dict:
    return resolve(spec_for(model), kind, given, deployment_max_tokens=2048, rng=random.Random(seed))


def converse_reply(text="ok", stop="end_turn", **extra) -> dict:
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": stop,
        "usage": {"inputTokens": 12, "outputTokens": 5, "totalTokens": 17},
        "metrics": {"latencyMs": 40},
        **extra,
    }


# ----------------------------------------------------------- text families
@pytest.mark.parametrize(
    ("model", "given", "inference"),
    [
        (
            NOVA_LITE,
            {"temperature": 0.2, "topP": 0.5, "maxTokens": 300, "stopSequences": ["END"]},
            {"maxTokens": 300, "temperature": 0.2, "topP": 0.5, "stopSequences": ["END"]},
        ),
        (CLAUDE, {"temperature": 1, "maxTokens": 4096}, {"maxTokens": 4096, "temperature": 1}),
        (
            CLAUDE,
            {"topP": 0.3, "stopSequences": ["\n\nHuman:"]},
            {"maxTokens": 2048, "temperature": 0.7, "topP": 0.3, "stopSequences": ["\n\nHuman:"]},
        ),
        (LLAMA, {"temperature": 0, "maxTokens": 2048}, {"maxTokens": 2048, "temperature": 0, "topP": 0.9}),
        (
            MISTRAL,
            {"maxTokens": 8192, "stopSequences": ["###", "---"]},
            {"maxTokens": 8192, "temperature": 0.7, "topP": 1, "stopSequences": ["###", "---"]},
        ),
    ],
)
def test_text_parameters_reach_the_converse_request_of_each_family(bedrock_stub, model, given, inference):
    client, stubber = bedrock_stub
    params = params_of(model, "text", {**given, "system": "Answer in French."})
    stubber.add_response(
        "converse",
        converse_reply(),
        {
            "modelId": model,
            "messages": [{"role": "user", "content": [{"text": "hello"}]}],
            "inferenceConfig": inference,
            "system": [{"text": "Answer in French."}],
        },
    )
    ConverseTextProvider(client).generate(model, "hello", system=params["system"], max_tokens=params["maxTokens"], params=params)


def test_a_conversation_goes_to_converse_as_its_turns(bedrock_stub):
    client, stubber = bedrock_stub
    turns = [
        {"role": "user", "content": "Name a prime."},
        {"role": "assistant", "content": "7"},
        {"role": "user", "content": "Another?"},
    ]
    stubber.add_response(
        "converse",
        converse_reply("11"),
        {
            "modelId": NOVA_LITE,
            "messages": [{"role": t["role"], "content": [{"text": t["content"]}]} for t in turns],
            "inferenceConfig": {"maxTokens": 100, "temperature": 0.7, "topP": 0.9},
        },
    )
    params = params_of(NOVA_LITE, "text", {"maxTokens": 100})
    generation = ConverseTextProvider(client).generate(NOVA_LITE, "Another?", max_tokens=100, params=params, messages=turns)
    assert generation.text == "11"


# ---------------------------------------------------------- image families
@pytest.mark.parametrize(
    ("model", "given", "body"),
    [
        (
            CANVAS,
            {
                "width": 1280,
                "height": 720,
                "count": 2,
                "seed": 42,
                "negativePrompt": "text",
                "cfgScale": 8,
                "quality": "premium",
                "style": "PHOTOREALISM",
            },
            {
                "taskType": "TEXT_IMAGE",
                "textToImageParams": {"text": "a fox", "negativeText": "text", "style": "PHOTOREALISM"},
                "imageGenerationConfig": {
                    "numberOfImages": 2,
                    "width": 1280,
                    "height": 720,
                    "quality": "premium",
                    "cfgScale": 8.0,
                    "seed": 42,
                },
            },
        ),
        (
            TITAN,
            {"width": 768, "height": 1152, "seed": 1, "guidance": 9.5},
            {
                "taskType": "TEXT_IMAGE",
                "textToImageParams": {"text": "a fox"},
                "imageGenerationConfig": {
                    "numberOfImages": 1,
                    "width": 768,
                    "height": 1152,
                    "quality": "standard",
                    "cfgScale": 9.5,
                    "seed": 1,
                },
            },
        ),
        (
            SD35,
            {"aspectRatio": "16:9", "seed": 99, "negativePrompt": "blur"},
            {
                "prompt": "a fox",
                "mode": "text-to-image",
                "aspect_ratio": "16:9",
                "output_format": "png",
                "seed": 99,
                "negative_prompt": "blur",
            },
        ),
        (
            SDXL,
            {"steps": 25, "guidance": 7, "seed": 5, "width": 1152, "height": 896, "style": "cinematic", "negativePrompt": "rain"},
            {
                "text_prompts": [{"text": "a fox", "weight": 1.0}, {"text": "rain", "weight": -1.0}],
                "width": 1152,
                "height": 896,
                "samples": 1,
                "cfg_scale": 7.0,
                "steps": 25,
                "seed": 5,
                "style_preset": "cinematic",
            },
        ),
    ],
)
def test_image_parameters_reach_each_familys_invoke_model_body(bedrock_stub, model, given, body):
    client, stubber = bedrock_stub
    from shared.models import GenerationParameters

    params = params_of(model, "image", GenerationParameters.model_validate(given).given())
    count = body.get("imageGenerationConfig", {}).get("numberOfImages", 1)
    if model == SDXL:
        answer = {
            "result": "success",
            "artifacts": [{"seed": 5, "base64": base64.b64encode(PNG).decode(), "finishReason": "SUCCESS"}],
        }
    else:
        answer = {"images": [base64.b64encode(PNG).decode()] * count}
    stubber.add_response(
        "invoke_model",
        invoke_model_reply(answer),
        {"modelId": model, "body": json.dumps(body).encode(), "contentType": "application/json", "accept": "application/json"},
    )
    generation = InvokeImageProvider(client).generate(model, "a fox", params=params)
    assert generation.images == count
    assert [a[0] for a in generation.attachments] == [f"{n}.png" for n in range(2, count + 1)]


def test_a_seed_left_out_is_drawn_within_the_models_range_and_reported():
    for model, top in ((CANVAS, 858993459), (TITAN, 2147483646), (SD35, 4294967294), (SDXL, 4294967295)):
        seeds = {params_of(model, "image", {}, seed=s)["seed"] for s in range(20)}
        assert len(seeds) > 15, model
        assert all(0 <= s <= top for s in seeds), model
    assert "seed" not in params_of(NOVA_LITE, "text", {})


# ---------------------------------------------------------------- refusals
def generate(context, body):
    event = load_event("generate.json")
    event["body"] = json.dumps(body)
    return generate_app.handler(event, context)


@pytest.mark.parametrize(
    ("body", "fragments"),
    [
        (
            {"kind": "image", "models": [CANVAS], "steps": 25, "guidance": 7},
            [CANVAS, "'steps' is not one it takes", "cfgScale (1.1 to 10)"],
        ),
        ({"models": [NOVA_LITE], "parameters": {"temperature": 1.5}}, [NOVA_LITE, "'temperature' must be from 0 to 1"]),
        ({"models": [NOVA_LITE], "parameters": {"maxTokens": 6000}}, ["'maxTokens' must be from 1 to 5000"]),
        ({"models": [LLAMA], "parameters": {"stopSequences": ["x"]}}, [LLAMA, "'stopSequences' is not one it takes"]),
        ({"models": [NOVA_LITE], "parameters": {"stopSequences": ["a", "b", "c", "d", "e"]}}, ["at most 4 strings"]),
        ({"models": [NOVA_LITE], "parameters": {"seed": 3}}, ["'seed' is not one it takes", "temperature (0 to 1)"]),
        (
            {"kind": "image", "models": [TITAN], "parameters": {"width": 1000, "height": 1000}},
            [TITAN, "1000x1000, not a size it takes", "1024x1024"],
        ),
        ({"kind": "image", "models": [CANVAS], "parameters": {"width": 1000}}, ["a multiple of 16"]),
        ({"kind": "image", "models": [CANVAS], "parameters": {"width": 4096, "height": 4096}}, ["more than 4194304"]),
        ({"kind": "image", "models": [CANVAS], "parameters": {"width": 4096, "height": 512}}, ["aspect ratio outside 0.25 to 4"]),
        ({"kind": "image", "models": [SD35], "parameters": {"count": 2}}, [SD35, "'count' must be from 1 to 1"]),
        (
            {"kind": "image", "models": [TITAN], "parameters": {"aspectRatio": "16:9"}},
            ["'aspectRatio' is not one it takes", "width"],
        ),
        (
            {"kind": "image", "models": [CANVAS], "parameters": {"quality": "ultra"}},
            ["'quality' must be one of standard, premium"],
        ),
        ({"kind": "image", "models": [SDXL], "parameters": {"steps": 200}}, ["'steps' must be from 10 to 150"]),
        ({"kind": "image", "models": [CANVAS, SDXL], "steps": 30}, [CANVAS, "'steps'"]),
        ({"kind": "chart", "models": [NOVA_LITE], "parameters": {"width": 5000}}, ["'width' must be from 50 to 2000"]),
        ({"models": [NOVA_LITE, CLAUDE], "modelParameters": {CLAUDE: {"system": "x"}}}, ["give it in parameters.system"]),
        (
            {"models": [NOVA_LITE], "modelParameters": {CLAUDE: {"temperature": 0.1}}},
            ["modelParameters for models it does not run"],
        ),
        (
            {"models": [NOVA_LITE], "parameters": {"temprature": 0.1}},
            ["parameters.temprature is not a generation parameter", "topP"],
        ),
        ({"models": [NOVA_LITE], "parameters": {"temperature": "hot"}}, ["parameters.temperature"]),
        ({"kind": "image", "models": [SDXL], "steps": 20, "parameters": {"steps": 30}}, ["gives steps twice"]),
    ],
)
def test_what_a_model_does_not_take_is_a_400_naming_it(aws, context, body, fragments):
    response = generate(context, {"prompt": "test prompt", **body})
    assert response["statusCode"] == 400, body_of(response)
    error = body_of(response)["error"]
    for fragment in fragments:
        assert fragment in error["message"], error["message"]
    assert aws.jobs_table.scan()["Count"] == 0


def test_the_refusal_lists_what_the_model_takes(aws, context):
    error = body_of(generate(context, {"prompt": "x", "kind": "image", "models": [CANVAS], "steps": 25}))["error"]
    assert error["details"]["model"] == CANVAS
    assert error["details"]["parameter"] == "steps"
    assert error["details"]["accepts"] == accepted(spec_for(CANVAS), "image")
    assert set(error["details"]["accepts"]) == {
        "width",
        "height",
        "count",
        "seed",
        "negativePrompt",
        "cfgScale",
        "quality",
        "style",
    }


@pytest.mark.parametrize(
    ("messages", "fragment"),
    [
        ([{"role": "assistant", "content": "hi"}], "an assistant turn where a user turn belongs"),
        ([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}], "a user turn where an assistant turn belongs"),
        ([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}], "end with an assistant turn"),
        (
            [{"role": "user", "content": "a"}, {"role": "system", "content": "b"}, {"role": "user", "content": "c"}],
            "a system turn where",
        ),
        ([{"role": "system", "content": "s"}], "no user turn"),
        ([{"role": "user", "content": "   "}], "more than whitespace"),
        ([{"role": "tool", "content": "x"}], "messages.0.role"),
        ([{"role": "user", "content": "x"}] * 51, "at most 50"),
        ([{"role": "user", "content": "x" * 20_001}], "the limit is 20000"),
    ],
)
def test_a_malformed_conversation_is_a_400(aws, context, messages, fragment):
    response = generate(context, {"messages": messages, "models": [NOVA_LITE]})
    assert response["statusCode"] == 400
    assert fragment in body_of(response)["error"]["message"]


def test_a_conversation_is_for_text_jobs_and_excludes_a_prompt(aws, context):
    turns = [{"role": "user", "content": "hi"}]
    for body in (
        {"messages": turns, "prompt": "x", "models": [NOVA_LITE]},
        {"messages": turns, "kind": "chart", "models": [NOVA_LITE]},
    ):
        assert generate(context, body)["statusCode"] == 400
    both = {"messages": [{"role": "system", "content": "s"}, *turns], "parameters": {"system": "t"}, "models": [NOVA_LITE]}
    assert "give one" in body_of(generate(context, both))["error"]["message"]


# ------------------------------------------------------- the job and money
def test_a_job_stores_what_each_model_runs_with(aws, context):
    body = {
        "prompt": "test prompt",
        "kind": "image",
        "models": [SDXL, CANVAS],
        "parameters": {"seed": 11},
        "modelParameters": {SDXL: {"steps": 25, "guidance": 7}, CANVAS: {"cfgScale": 3, "count": 2}},
    }
    response = generate(context, body)
    assert response["statusCode"] == 202, body_of(response)
    job = aws.jobs_table.get_item(Key={"jobId": body_of(response)["jobId"]})["Item"]
    sdxl, canvas = job["parameters"][SDXL], job["parameters"][CANVAS]
    assert (sdxl["steps"], sdxl["cfgScale"], sdxl["seed"], sdxl["width"]) == (25, 7, 11, 1024)
    assert (canvas["cfgScale"], canvas["count"], canvas["seed"], canvas["quality"]) == (3, 2, 11, "standard")
    assert float(job["estimatedUsd"]) == pytest.approx(0.04 + 2 * 0.04)


def test_the_seed_plans_request_is_accepted_for_a_model_with_steps(aws, context):
    response = generate(context, {"prompt": "test prompt", "steps": 25, "guidance": 7, "kind": "image", "models": [SDXL]})
    assert response["statusCode"] == 202


def test_worst_cases_follow_the_parameters():
    canvas, titan, sdxl, lite = (spec_for(m) for m in (CANVAS, TITAN, SDXL, NOVA_LITE))
    job = JobInput("a fox")

    def image(spec, **given):
        return work_bound(spec, "image", job, params_of(spec.id, "image", given))

    assert image(canvas) == Decimal("0.04")
    assert image(canvas, count=3) == Decimal("0.12")
    assert image(canvas, quality="premium") == Decimal("0.06")
    assert image(canvas, width=2048, height=2048, quality="premium", count=5) == Decimal("0.40")
    assert image(titan, width=512, height=512) == Decimal("0.008")
    assert image(sdxl, steps=50) == Decimal("0.04") < image(sdxl, steps=51) == Decimal("0.08")
    small = work_bound(lite, "text", job, params_of(NOVA_LITE, "text", {"maxTokens": 10}))
    large = work_bound(lite, "text", job, params_of(NOVA_LITE, "text", {"maxTokens": 5000}))
    assert large - small == lite.cost_usd(0, 4990)
    with_system = work_bound(lite, "text", job, {**params_of(NOVA_LITE, "text", {"maxTokens": 10}), "system": "s" * 1000})
    assert with_system - small == lite.cost_usd(1000, 0)
    talk = JobInput(
        "c",
        messages=(
            {"role": "user", "content": "a" * 500},
            {"role": "assistant", "content": "b"},
            {"role": "user", "content": "c"},
        ),
    )
    assert work_bound(lite, "text", talk, params_of(NOVA_LITE, "text", {"maxTokens": 10})) >= lite.cost_usd(502 + 64 + 32, 10)


# ------------------------------------------------------------- the worker
def put_job(aws, job_id, models, kind, parameters, **extra):
    JobRepository(aws.jobs_table).create(
        {
            "jobId": job_id,
            "owner": "k1",
            "status": "QUEUED",
            "kind": kind,
            "prompt": "a fox",
            "models": models,
            "parameters": parameters,
            "results": {},
            "costUsd": 0,
            "createdAt": "2026-12-02T12:00:00.000Z",
            **extra,
        }
    )


def runner(aws, client, monkeypatch, guardrail=None):
    if guardrail:
        monkeypatch.setenv("GUARDRAIL_ID", guardrail.id)
        monkeypatch.setenv("GUARDRAIL_VERSION", guardrail.version)
    get_settings.cache_clear()
    settings = get_settings()
    return JobRunner(
        jobs=JobRepository(aws.jobs_table),
        calls=CallLedger(aws.cost_table, aws.ledger_table, retention_days=400),
        profiles=KeyProfiles(aws.ledger_table, tier_budgets=settings.tier_budgets()),
        providers={"converse": ConverseTextProvider(client), "invoke-image": InvokeImageProvider(client)},
        s3=aws.s3,
        settings=settings,
        guardrail_check=lambda g: GuardrailCheck(client, g),
    )


JOB = "0d6f4a51-6b1e-4a0c-9a55-3c9a0e2f7b11"


def records(aws):
    return sorted(aws.cost_table.scan()["Items"], key=lambda r: r["callId"])


def month_spent(aws):
    return sum(
        Decimal(str(i["spentUsd"]))
        for i in aws.ledger_table.scan()["Items"]
        if i["period"].count("-") == 1 and "#" not in i["period"]
    )


def test_a_result_shows_the_parameters_it_ran_with(aws, bedrock_stub, monkeypatch):
    client, stubber = bedrock_stub
    params = params_of(SDXL, "image", {"steps": 25, "cfgScale": 7, "seed": 1234})
    put_job(aws, JOB, [SDXL], "image", {SDXL: params})
    body = {
        "text_prompts": [{"text": "a fox", "weight": 1.0}],
        "width": 1024,
        "height": 1024,
        "samples": 1,
        "cfg_scale": 7,
        "steps": 25,
        "seed": 1234,
    }
    stubber.add_response(
        "invoke_model",
        invoke_model_reply(
            {
                "result": "success",
                "artifacts": [{"seed": 1234, "base64": base64.b64encode(PNG).decode(), "finishReason": "SUCCESS"}],
            }
        ),
        {"modelId": SDXL, "body": json.dumps(body).encode(), "contentType": "application/json", "accept": "application/json"},
    )
    assert runner(aws, client, monkeypatch).run(JOB).status == "COMPLETED"
    result = aws.jobs_table.get_item(Key={"jobId": JOB})["Item"]["results"][SDXL]
    assert {k: int(v) for k, v in result["parameters"].items()} == {
        "width": 1024,
        "height": 1024,
        "count": 1,
        "seed": 1234,
        "cfgScale": 7,
        "steps": 25,
    }


def test_a_conversation_job_runs_its_turns_with_its_system_prompt(aws, bedrock_stub, monkeypatch):
    client, stubber = bedrock_stub
    turns = [
        {"role": "user", "content": "Name a prime."},
        {"role": "assistant", "content": "7"},
        {"role": "user", "content": "a fox"},
    ]
    put_job(
        aws, JOB, [CLAUDE], "text", {CLAUDE: params_of(CLAUDE, "text", {"temperature": 0.1})}, messages=turns, system="Be terse."
    )
    stubber.add_response(
        "converse",
        converse_reply("11"),
        {
            "modelId": CLAUDE,
            "messages": [{"role": t["role"], "content": [{"text": t["content"]}]} for t in turns],
            "inferenceConfig": {"maxTokens": 2048, "temperature": 0.1},
            "system": [{"text": "Be terse."}],
            "requestMetadata": {"genstackJobId": JOB, "genstackCallId": f"{CLAUDE}#001#01"},
        },
    )
    assert runner(aws, client, monkeypatch).run(JOB).status == "COMPLETED"
    result = aws.jobs_table.get_item(Key={"jobId": JOB})["Item"]["results"][CLAUDE]
    assert result["text"] == "11"
    assert "system" not in result["parameters"]


# -------------------------------------------------------------- guardrail
BLOCKED_TRACE = {
    "guardrail": {
        "inputAssessment": {
            GUARD.id: {
                "contentPolicy": {"filters": [{"type": "VIOLENCE", "confidence": "HIGH", "action": "BLOCKED"}]},
                "invocationMetrics": {
                    "guardrailProcessingLatency": 80,
                    "usage": {
                        "topicPolicyUnits": 1,
                        "contentPolicyUnits": 1,
                        "wordPolicyUnits": 1,
                        "sensitiveInformationPolicyUnits": 1,
                        "sensitiveInformationPolicyFreeUnits": 0,
                        "contextualGroundingPolicyUnits": 0,
                    },
                    "guardrailCoverage": {"textCharacters": {"guarded": 5, "total": 5}},
                },
            }
        }
    }
}


def guarded_converse(model, text, max_tokens, params):
    inference = {"maxTokens": max_tokens, "temperature": params["temperature"]}
    if "topP" in params:
        inference["topP"] = params["topP"]
    return {
        "modelId": model,
        "messages": [{"role": "user", "content": [{"text": text}]}],
        "inferenceConfig": inference,
        "requestMetadata": {"genstackJobId": JOB, "genstackCallId": f"{model}#001#01"},
        "guardrailConfig": {"guardrailIdentifier": GUARD.id, "guardrailVersion": GUARD.version, "trace": "enabled"},
    }


def test_a_guarded_text_call_blocked_on_input_is_blocked_with_its_reason_and_cost(aws, bedrock_stub, monkeypatch):
    client, stubber = bedrock_stub
    params = params_of(NOVA_LITE, "text", {})
    put_job(aws, JOB, [NOVA_LITE], "text", {NOVA_LITE: params})
    blocked = converse_reply("This request was blocked.", stop="guardrail_intervened", trace=BLOCKED_TRACE)
    blocked["usage"] = {"inputTokens": 0, "outputTokens": 0, "totalTokens": 0}
    stubber.add_response("converse", blocked, guarded_converse(NOVA_LITE, "a fox", 2048, params))
    outcome = runner(aws, client, monkeypatch, GUARD).run(JOB)
    job = aws.jobs_table.get_item(Key={"jobId": JOB})["Item"]
    result = job["results"][NOVA_LITE]
    assert outcome.status == "FAILED"
    assert job["error"].startswith("blocked by the guardrail")
    assert result["status"] == "BLOCKED"
    assert result["error"] == {
        "code": "GUARDRAIL_INTERVENED",
        "message": "the guardrail blocked the input (content filter VIOLENCE)",
    }
    assert result["guardrail"]["reasons"] == ["content filter VIOLENCE"]
    guardrail_cost = Decimal("0.00015") + Decimal("0.00015") + Decimal("0.0001")
    (record,) = records(aws)
    assert record["status"] == "BILLED"
    assert Decimal(str(record["costUsd"])) == guardrail_cost
    assert Decimal(str(result["costUsd"])) == guardrail_cost == month_spent(aws) == Decimal(str(job["costUsd"]))


def test_a_guarded_text_call_that_passes_adds_the_guardrails_units_to_its_cost(aws, bedrock_stub, monkeypatch):
    client, stubber = bedrock_stub
    params = params_of(NOVA_LITE, "text", {})
    put_job(aws, JOB, [NOVA_LITE], "text", {NOVA_LITE: params})
    usage = units(contentPolicyUnits=2)
    trace = {
        "guardrail": {
            "inputAssessment": {
                GUARD.id: {"invocationMetrics": {"guardrailProcessingLatency": 5, "usage": usage, "guardrailCoverage": {}}}
            }
        }
    }
    stubber.add_response("converse", converse_reply("a haiku", trace=trace), guarded_converse(NOVA_LITE, "a fox", 2048, params))
    assert runner(aws, client, monkeypatch, GUARD).run(JOB).status == "COMPLETED"
    result = aws.jobs_table.get_item(Key={"jobId": JOB})["Item"]["results"][NOVA_LITE]
    expected = spec_for(NOVA_LITE).cost_usd(12, 5) + Decimal("0.0003")
    assert Decimal(str(result["costUsd"])) == expected == month_spent(aws)
    assert result["guardrail"] == {"id": GUARD.id, "version": GUARD.version, "action": "NONE"}


def units(**given):
    """A GuardrailUsage as Bedrock answers it (every field; the service model requires them)."""
    names = ("topicPolicyUnits", "contentPolicyUnits", "wordPolicyUnits", "sensitiveInformationPolicyUnits")
    rest = ("sensitiveInformationPolicyFreeUnits", "contextualGroundingPolicyUnits")
    return {**dict.fromkeys(names + rest, 0), **given}


def apply_guardrail_response(action, assessments, usage=None, outputs=None):
    every_policy_once = units(topicPolicyUnits=1, contentPolicyUnits=1, wordPolicyUnits=1, sensitiveInformationPolicyUnits=1)
    return {"usage": usage or every_policy_once, "action": action, "outputs": outputs or [], "assessments": assessments}


APPLY = {
    "guardrailIdentifier": GUARD.id,
    "guardrailVersion": GUARD.version,
    "source": "INPUT",
    "content": [{"text": {"text": "a fox"}}],
}


def test_an_image_prompt_the_guardrail_blocks_is_never_sent_to_the_model(aws, bedrock_stub, monkeypatch):
    client, stubber = bedrock_stub
    put_job(aws, JOB, [CANVAS], "image", {CANVAS: params_of(CANVAS, "image", {})})
    topic = {"topicPolicy": {"topics": [{"name": "Weapons", "type": "DENY", "action": "BLOCKED"}]}}
    stubber.add_response("apply_guardrail", apply_guardrail_response("GUARDRAIL_INTERVENED", [topic]), APPLY)
    assert runner(aws, client, monkeypatch, GUARD).run(JOB).status == "FAILED"  # and no invoke_model: the Stubber has none
    result = aws.jobs_table.get_item(Key={"jobId": JOB})["Item"]["results"][CANVAS]
    assert result["status"] == "BLOCKED"
    assert "denied topic Weapons" in result["error"]["message"]
    image, check = records(aws)  # by call id: the model's own, then its guardrail check
    assert (check["model"], check["status"]) == ("bedrock-guardrail", "BILLED")
    assert Decimal(str(check["costUsd"])) == Decimal("0.0004") == month_spent(aws)
    assert (image["model"], image["status"], Decimal(str(image["costUsd"]))) == (CANVAS, "RELEASED", 0)


def test_an_image_prompt_the_guardrail_masks_is_sent_masked_and_both_calls_are_charged(aws, bedrock_stub, monkeypatch):
    client, stubber = bedrock_stub
    params = params_of(CANVAS, "image", {"seed": 3})
    put_job(aws, JOB, [CANVAS], "image", {CANVAS: params})
    pii = {
        "sensitiveInformationPolicy": {
            "piiEntities": [{"type": "EMAIL", "match": "a@b.c", "action": "ANONYMIZED"}],
            "regexes": [],
        }
    }
    stubber.add_response(
        "apply_guardrail", apply_guardrail_response("GUARDRAIL_INTERVENED", [pii], outputs=[{"text": "a fox {EMAIL}"}]), APPLY
    )
    body = {
        "taskType": "TEXT_IMAGE",
        "textToImageParams": {"text": "a fox {EMAIL}"},
        "imageGenerationConfig": {
            "numberOfImages": 1,
            "width": 1024,
            "height": 1024,
            "quality": "standard",
            "cfgScale": 6.5,
            "seed": 3,
        },
    }
    stubber.add_response(
        "invoke_model",
        invoke_model_reply({"images": [base64.b64encode(PNG).decode()]}),
        {"modelId": CANVAS, "body": json.dumps(body).encode(), "contentType": "application/json", "accept": "application/json"},
    )
    assert runner(aws, client, monkeypatch, GUARD).run(JOB).status == "COMPLETED"
    assert month_spent(aws) == Decimal("0.04") + Decimal("0.0004")
    result = aws.jobs_table.get_item(Key={"jobId": JOB})["Item"]["results"][CANVAS]
    assert result["guardrail"] == {"id": GUARD.id, "version": GUARD.version, "action": "MASKED"}
    assert sum(Decimal(str(r["costUsd"])) for r in records(aws)) == month_spent(aws)


def test_a_blocked_enhance_is_a_422_with_the_reason_and_its_cost_recorded(aws, context, stub_bedrock, monkeypatch):
    monkeypatch.setenv("GUARDRAIL_ID", GUARD.id)
    monkeypatch.setenv("GUARDRAIL_VERSION", GUARD.version)
    get_settings.cache_clear()
    stubber = stub_bedrock("bedrock_runtime_sync")
    blocked = converse_reply("blocked", stop="guardrail_intervened", trace=BLOCKED_TRACE)
    stubber.add_response("converse", blocked)
    event = load_event("enhance.json")
    response = enhance_app.handler(event, context)
    assert response["statusCode"] == 422
    error = body_of(response)["error"]
    assert error["code"] == "GUARDRAIL_INTERVENED"
    assert error["details"]["reasons"] == ["content filter VIOLENCE"]
    (record,) = aws.cost_table.scan()["Items"]
    assert record["status"] == "BILLED"
    assert Decimal(str(record["costUsd"])) == Decimal(str(error["details"]["costUsd"])) > 0


def test_enhance_takes_sampling_parameters_only(aws, context, stub_bedrock):
    stubber = stub_bedrock("bedrock_runtime_sync")
    stubber.add_response("converse", converse_reply("better"))
    event = load_event("enhance.json")
    event["body"] = json.dumps({"prompt": "a fox", "parameters": {"temperature": 0.1, "maxTokens": 200}})
    response = enhance_app.handler(event, context)
    assert response["statusCode"] == 200
    assert body_of(response)["parameters"] == {"temperature": 0.1, "topP": 0.9, "maxTokens": 200}
    for bad in ({"system": "x"}, {"maxTokens": 2000}, {"stopSequences": ["x"]}):
        event["body"] = json.dumps({"prompt": "a fox", "parameters": bad})
        assert enhance_app.handler(event, context)["statusCode"] == 400


def test_guardrail_units_are_priced_from_the_registry():
    assert usage_cost({"contentPolicyUnits": 3, "wordPolicyUnits": 9, "sensitiveInformationPolicyUnits": 2}) == Decimal("0.00065")
    # Every policy priced (0.0005 a unit together): 3 units of input, 100 tokens x 32 characters of output.
    assert GUARD.converse_bound(2500, 100) == Decimal("0.0005") * 3 + Decimal("0.0005") * 4


# --------------------------------------------------------- the templates
def apply_statements(rendered):
    found = {}
    iam = rendered.children["IamStack"]
    for logical_id, statement in role_statements(iam):
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if any("ApplyGuardrail" in a or a in ("bedrock:*", "*") for a in actions):
            found[logical_id] = statement["Resource"]
    return found


def test_a_created_guardrail_is_applied_by_the_model_callers_alone():
    rendered = render(parameters={"Environment": "prod", "AlarmEmail": "ops@example.com", "CreateGuardrail": "true"})
    guardrail = rendered.props("Guardrail")
    filters = {f["Type"]: f for f in guardrail["ContentPolicyConfig"]["FiltersConfig"]}
    assert filters["PROMPT_ATTACK"]["OutputStrength"] == "NONE"
    assert filters["VIOLENCE"]["InputStrength"] == "HIGH"
    actions = {e["Type"]: e["Action"] for e in guardrail["SensitiveInformationPolicyConfig"]["PiiEntitiesConfig"]}
    assert actions["EMAIL"] == "ANONYMIZE"
    assert actions["AWS_SECRET_KEY"] == "BLOCK"
    assert "GuardrailVersionOne" in rendered.resources
    grants = apply_statements(rendered)
    assert set(grants) == {"WorkerRole", "EnhanceRole", "OpenAiRole"}
    assert all(isinstance(r, Unresolved) and "Guardrail.GuardrailArn" in r for r in grants.values())
    env = rendered.props("WorkerFunction")["Environment"]["Variables"]
    assert "Guardrail.GuardrailId" in env["GUARDRAIL_ID"]
    assert "GuardrailVersionOne.Version" in env["GUARDRAIL_VERSION"]


def test_a_given_guardrail_is_granted_by_its_arn_alone():
    rendered = render(parameters={"Environment": "dev", "GuardrailId": "gr1abc2def3g", "GuardrailVersion": "4"})
    assert "Guardrail" not in rendered.resources
    arn = "arn:aws:bedrock:us-east-1:123456789012:guardrail/gr1abc2def3g"
    assert apply_statements(rendered) == {"WorkerRole": arn, "EnhanceRole": arn, "OpenAiRole": arn}
    env = rendered.props("EnhanceFunction")["Environment"]["Variables"]
    assert (env["GUARDRAIL_ID"], env["GUARDRAIL_VERSION"]) == ("gr1abc2def3g", "4")


@pytest.mark.parametrize(
    "parameters",
    [{"Environment": "dev"}, {"Environment": "dev", "DeployTarget": "local-emulator", "CreateGuardrail": "true"}],
    ids=["none", "created-on-the-emulator"],
)
def test_without_a_guardrail_no_role_may_apply_one_and_the_emulator_gets_no_bedrock_resource(parameters):
    rendered = render(parameters=parameters)
    assert apply_statements(rendered) == {}
    assert not [r for _, r, res in rendered.walk() if res["Type"].startswith("AWS::Bedrock::")]
    assert rendered.props("WorkerFunction")["Environment"]["Variables"]["GUARDRAIL_ID"] == ""


def test_the_rules_refuse_two_guardrails_or_one_without_a_version():
    both = render(parameters={"Environment": "dev", "CreateGuardrail": "true", "GuardrailId": "abc", "GuardrailVersion": "1"})
    assert any("either" in f for f in both.rule_failures)
    unversioned = render(parameters={"Environment": "dev", "GuardrailId": "abc"})
    assert any("GuardrailVersion is empty" in f for f in unversioned.rule_failures)


def test_every_registry_model_has_a_parameter_set_its_family_can_send():
    for spec in load_registry().values():
        kinds = ("text", "chart") if spec.kind == "text" else ("image",)
        for kind in kinds:
            params = resolve(spec, kind, {}, deployment_max_tokens=2048, rng=random.Random(1))
            if spec.kind == "image":
                from shared.providers import external
                from shared.providers.image import request_body

                bodies = {
                    "invoke-image": request_body,
                    "openai-image": external.openai_image_body,
                    "stability-image": external.stability_fields,
                    "imagen": external.imagen_body,
                }
                assert bodies[spec.api](spec, "x", params)  # every family has a body
                assert spec.image_price(params) > 0
            else:
                assert params["maxTokens"] == min(2048, spec.max_output_tokens)


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("generate-parameters.json", 202),
        ("generate-conversation.json", 202),
        ("generate-image-parameters.json", 202),
        ("generate-steps-guidance.json", 202),
        ("generate-parameter-refused.json", 400),
    ],
)
def test_the_sample_events_of_each_request_shape(aws, context, name, status):
    response = generate_app.handler(load_event(name), context)
    assert response["statusCode"] == status, body_of(response)


def test_the_enhance_sample_with_parameters(aws, context, stub_bedrock):
    stub_bedrock("bedrock_runtime_sync").add_response("converse", converse_reply("a cat skateboarding, golden hour"))
    response = enhance_app.handler(load_event("enhance-parameters.json"), context)
    assert response["statusCode"] == 200
    assert body_of(response)["parameters"] == {"temperature": 0.3, "topP": 0.9, "maxTokens": 300}


@pytest.mark.parametrize("raw", ['{"temperature": NaN}', '{"temperature": Infinity}', '{"cfgScale": -Infinity}'])
def test_non_finite_numbers_are_a_400_not_a_crash(aws, context, raw):
    event = load_event("generate.json")
    event["body"] = '{"prompt": "x", "models": ["amazon.nova-lite-v1:0"], "parameters": ' + raw + "}"
    assert generate_app.handler(event, context)["statusCode"] == 400
    event["body"] = '{"prompt": "x", "kind": "image", "models": ["stability.stable-diffusion-xl-v1"], "guidance": NaN}'
    assert generate_app.handler(event, context)["statusCode"] == 400


def test_an_empty_answer_is_failed_but_its_tokens_are_charged(aws, bedrock_stub, monkeypatch):
    """The model answered (and billed 12 + 5 tokens) with no text: the call is
    settled at its cost, not released as if it had cost nothing."""
    client, stubber = bedrock_stub
    params = params_of(NOVA_LITE, "text", {})
    put_job(aws, JOB, [NOVA_LITE], "text", {NOVA_LITE: params})
    stubber.add_response("converse", converse_reply("", stop="max_tokens"))
    assert runner(aws, client, monkeypatch).run(JOB).status == "FAILED"
    (record,) = records(aws)
    assert record["status"] == "BILLED"
    assert Decimal(str(record["costUsd"])) == spec_for(NOVA_LITE).cost_usd(12, 5) == month_spent(aws)
