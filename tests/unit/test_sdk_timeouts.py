"""Every AWS call a function makes, retries included, ends before the
function's own timeout (read from template.yaml), so that a slow dependency is
an error the code handles, not a function killed in the middle. The worker's
model calls, with genstack's own retries, end inside its 900 s too."""

from __future__ import annotations

import pytest

from openai_api import service
from shared import clients
from shared.settings import Settings
from tests.templates import FUNCTIONS, ROOT, root
from worker.service import RetryPolicy

GLOBAL_TIMEOUT = root()["Globals"]["Function"]["Timeout"]


def function(logical_id: str) -> dict:
    return root()["Resources"][logical_id]["Properties"]


def timeout_of(logical_id: str) -> int:
    """The function's timeout; one set by a parameter, at its smallest allowed value."""
    timeout = function(logical_id).get("Timeout", GLOBAL_TIMEOUT)
    if isinstance(timeout, dict):
        return min(int(v) for v in root()["Parameters"][timeout["Ref"]]["AllowedValues"])
    return timeout


def profile_of(logical_id: str) -> str:
    return function(logical_id).get("Environment", {}).get("Variables", {}).get("SDK_TIMEOUT_PROFILE", "api")


@pytest.mark.parametrize("logical_id", sorted(FUNCTIONS - {"AuthorizerFunction"}))
def test_one_aws_call_with_its_retries_ends_before_the_function_does(logical_id):
    worst = clients.worst_case_seconds(clients.SDK_PROFILES[profile_of(logical_id)])
    assert worst < timeout_of(logical_id), (logical_id, worst)


def test_the_api_functions_use_the_short_profile():
    for logical_id in ("GenerateFunction", "StatusFunction", "EnhanceFunction", "TemplatesFunction", "DeadLetterFunction"):
        assert profile_of(logical_id) == "api", logical_id


def test_the_queue_send_cannot_outlast_generate():
    """The finding: the SDK's retries of a queue send outlasted the function,
    leaving a QUEUED job with no message. Now the send gives up in time for
    the job to be marked FAILED and answered 503 (and if the function dies
    anyway, the sweeper sends the message)."""
    assert clients.worst_case_seconds(clients.SDK_PROFILES["api"]) + 1 < timeout_of("GenerateFunction")


def test_the_enhance_call_ends_within_the_api_gateway_timeout():
    config = clients.BEDROCK_SYNC_CONFIG
    assert config.retries["total_max_attempts"] == 1
    assert clients.worst_case_seconds(config) < timeout_of("EnhanceFunction") <= 29


def test_a_workers_model_call_with_every_retry_ends_inside_its_timeout():
    settings = Settings.from_env({})
    policy = RetryPolicy(attempts=settings.model_call_attempts)
    per_attempt = settings.model_call_timeout_seconds + clients.BEDROCK_WORKER_CONNECT_SECONDS
    waits = sum(min(policy.max_delay, policy.base_delay * 2 ** (n - 1)) for n in range(1, policy.attempts))
    assert policy.attempts * per_attempt + waits < timeout_of("WorkerFunction")
    # and the lease outlives the function, so a takeover only ever follows a dead run
    assert settings.job_lease_seconds > timeout_of("WorkerFunction")


def test_the_authorizer_makes_no_aws_call():
    """Its 3 s are for one header's check: it imports neither boto3 nor genstack's code."""
    source = (ROOT / "backend" / "authorizer" / "app.py").read_text()
    imports = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
    assert imports == ["from __future__ import annotations", "import json", "import re", "from typing import Any"]
    assert timeout_of("AuthorizerFunction") == 3


@pytest.mark.parametrize("seconds", root()["Parameters"]["OpenAiApiTimeoutSeconds"]["AllowedValues"])
def test_a_v1_model_call_and_its_metering_end_within_the_integration_timeout(seconds):
    """The /v1 function's timeout is the API's integration timeout: its model
    call (one attempt) leaves SYNC_MARGIN_SECONDS for the metering around it,
    which is more than one metering call at its worst, so the function answers
    its own 504 before API Gateway would."""
    settings = Settings.from_env({"SYNC_TIMEOUT_SECONDS": str(seconds)})
    read = service.model_timeout(settings)
    assert read > 0
    model_call = clients.BEDROCK_SYNC_CONFIG.connect_timeout + read
    assert model_call + clients.worst_case_seconds(clients.SDK_PROFILES["api"]) <= int(seconds)
    mapping = root()["Mappings"]["IntegrationTimeouts"][str(seconds)]
    assert mapping["Millis"] == int(seconds) * 1000
    assert service.default_max_tokens(settings) <= settings.model_max_tokens


def test_the_worker_waits_for_a_render_longer_than_the_renderer_may_take():
    """The chart renderer's own limit (its render process) ends before its
    function's Timeout, which the worker's read timeout outlasts: a slow render
    is the renderer's answer (or Lambda's timeout error), never the worker's
    read timeout and a second render."""
    from chart_renderer.sandbox import RENDER_SECONDS

    renderer = function("ChartRendererFunction")
    assert float(renderer["Environment"]["Variables"]["CHART_RENDER_SECONDS"]) == RENDER_SECONDS
    assert RENDER_SECONDS < timeout_of("ChartRendererFunction") == clients.CHART_RENDERER_TIMEOUT_SECONDS
    assert clients.CHART_RENDERER_CONFIG.read_timeout > timeout_of("ChartRendererFunction")
    # every render of a job's chart models, each with its retries, fits in the worker's run
    worst = clients.worst_case_seconds(clients.CHART_RENDERER_CONFIG)
    assert Settings.from_env({}).max_models_per_job * worst < timeout_of("WorkerFunction")


def test_the_chart_renderer_makes_no_aws_call():
    """It imports neither boto3 nor genstack's shared code: its role allows logs only."""
    for module in ("app", "sandbox", "render"):
        source = (ROOT / "backend" / "chart_renderer" / f"{module}.py").read_text()
        assert "boto3" not in source
        assert "from shared" not in source
