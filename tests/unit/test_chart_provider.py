"""Charts: a text model's Vega-Lite spec, parsed, checked against the bounds,
validated and rendered to PNG and SVG by the chart renderer function (its real
handler, run in this process where Lambda would run it, and the real
vl-convert in its render process), repaired once; and spec bombs, refused or
killed. The worker's Invoke request is checked against Lambda's API model."""

from __future__ import annotations

import io
import json
import resource
import subprocess
import time

import boto3
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber

import chart_renderer.app
from chart_renderer.sandbox import RENDER_SECONDS, SandboxedRenderer
from shared.providers import ChartProvider, ConverseTextProvider, Generation, ModelCallError
from shared.providers.chart import (
    MAX_ROWS,
    MAX_SPEC_BYTES,
    MAX_VIEWS,
    RENDER_LIMITS,
    REPAIR_QUOTE_BYTES,
    SYSTEM,
    InvalidSpec,
    LambdaRenderer,
    RenderFailed,
    chart_request,
    parse_spec,
)
from tests.chart_renderer_function import ARN as RENDERER
from tests.chart_renderer_function import RendererFunction, payload

MODEL = "amazon.nova-lite-v1:0"
SPEC = {
    "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
    "title": "Sales",
    "data": {"values": [{"month": "Jan", "sales": 3}, {"month": "Feb", "sales": 5}]},
    "mark": "bar",
    "encoding": {"x": {"field": "month", "type": "nominal"}, "y": {"field": "sales", "type": "quantitative"}},
}


def renderer() -> LambdaRenderer:
    return LambdaRenderer(RendererFunction, RENDERER)


def charts(text) -> ChartProvider:
    return ChartProvider(text, renderer=renderer())


class ScriptedText:
    """A text model that answers from a script, one reply per call."""

    def __init__(self, *replies: str) -> None:
        self.replies = list(replies)
        self.prompts: list[str] = []

    def generate(self, model, prompt, *, system=None, max_tokens):
        assert system == SYSTEM
        self.prompts.append(prompt)
        text = self.replies.pop(0)
        return Generation(model, text.encode(), "text/plain", "txt", 100, 50, 10, text=text)


def test_a_valid_spec_renders_to_png_and_svg_with_the_spec_kept():
    text = ScriptedText("```json\n" + json.dumps(SPEC) + "\n```")
    generation = charts(text).generate(MODEL, "Monthly sales", max_tokens=1000)
    assert generation.content.startswith(b"\x89PNG")
    assert generation.content_type == "image/png"
    files = {ext: (ctype, body) for ext, ctype, body in generation.attachments}
    assert files["svg"][0] == "image/svg+xml"
    assert b"<svg" in files["svg"][1]
    assert json.loads(files["vl.json"][1]) == SPEC
    assert (generation.input_tokens, generation.output_tokens) == (100, 50)


def test_an_invalid_reply_is_repaired_once_with_the_reason():
    text = ScriptedText("Sure! Here is your chart.", json.dumps(SPEC))
    generation = charts(text).generate(MODEL, "Monthly sales", max_tokens=1000)
    assert generation.content.startswith(b"\x89PNG")
    assert len(text.prompts) == 2
    assert "Sure! Here is your chart." in text.prompts[1]
    assert "no JSON object" in text.prompts[1]
    assert (generation.input_tokens, generation.output_tokens) == (200, 100)  # both calls are billed


def test_a_reply_still_invalid_after_the_repair_fails_with_its_tokens():
    text = ScriptedText('{"mark": "bar", "encoding": {"x": {"field": "a", "type": "wrong"}}}', "still not a chart")
    with pytest.raises(ModelCallError) as raised:
        charts(text).generate(MODEL, "Monthly sales", max_tokens=1000)
    assert raised.value.code == "InvalidChartSpec"
    assert not raised.value.retryable
    assert "no JSON object" in raised.value.message
    assert (raised.value.input_tokens, raised.value.output_tokens) == (200, 100)
    assert 'field type "wrong"' in text.prompts[1] or "Vega-Lite rejected" in text.prompts[1]


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        ("no json here", "no JSON object"),
        ("{not json}", "not valid JSON"),
        ('{"foo": 1}', "not a Vega-Lite spec"),
        ('{"mark": "bar", "data": {"url": "https://example.com/secrets.csv"}}', "data must be inline"),
        ('{"layer": [{"mark": "line", "data": {"url": "file:///etc/passwd"}}]}', "data must be inline"),
    ],
)
def test_what_is_not_a_renderable_spec_is_refused_with_the_reason(reply, reason):
    with pytest.raises(InvalidSpec, match=reason):
        parse_spec(reply)


def test_the_request_carries_the_data_as_json_records():
    assert chart_request("Plot it", [{"x": 1}]) == 'Plot it\n\nThe data, as JSON records:\n[{"x":1}]'
    assert chart_request("Plot it", None) == "Plot it"


def test_the_chart_request_goes_through_converse_with_the_chart_system_prompt():
    client = boto3.client("bedrock-runtime", region_name="us-east-1")
    with Stubber(client) as stubber:
        stubber.add_response(
            "converse",
            {
                "output": {"message": {"role": "assistant", "content": [{"text": json.dumps(SPEC)}]}},
                "stopReason": "end_turn",
                "usage": {"inputTokens": 300, "outputTokens": 120, "totalTokens": 420},
                "metrics": {"latencyMs": 800},
            },
            expected_params={
                "modelId": MODEL,
                "messages": [{"role": "user", "content": [{"text": "Monthly sales"}]}],
                "system": [{"text": SYSTEM}],
                "inferenceConfig": {"maxTokens": 1000, "temperature": 0.7},
            },
        )
        generation = charts(ConverseTextProvider(client)).generate(MODEL, "Monthly sales", max_tokens=1000)
    assert generation.input_tokens == 300


# ------------------------------------------------------------------- bombs
# Specs a model (or a prompt steering it) can write that would exhaust the
# worker. Each is refused before rendering, or killed in the render process;
# the worker's own memory never grows with them.


def point(rows: int, **extra):
    return {
        "data": {"values": [{"a": i, "b": i % 7} for i in range(rows)]},
        "mark": "point",
        "encoding": {"x": {"field": "a", "type": "quantitative"}, "y": {"field": "b", "type": "quantitative"}},
        **extra,
    }


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        (point(MAX_ROWS + 1), f"at most {MAX_ROWS}"),
        ({"data": {"sequence": {"start": 0, "stop": 10**9}}, "mark": "point"}, "data rows"),
        ({"data": {"sequence": {"start": 0, "stop": 10, "step": 0}}, "mark": "point"}, "non-zero step"),
        ({"data": {"graticule": {"step": [0.001, 0.001]}}, "mark": "geoshape"}, "graticule"),
        ({"datasets": {"d": [{"a": 1}] * (MAX_ROWS + 1)}, "data": {"name": "d"}, "mark": "point"}, "data rows"),
        (point(10, width=30000, height=30000), "at most 2000 pixels"),
        ({"layer": [{"mark": "point"}] * (MAX_VIEWS + 1)}, "views"),
        (
            {"data": {"values": [{"a": i} for i in range(3000)]}, "facet": {"row": {"field": "a"}}, "spec": {"mark": "point"}},
            "3000 facet rows.*at most 2000x2000",
        ),
        (
            {
                "data": {"values": [{"a": i % 30} for i in range(3000)]},
                "facet": {"column": {"field": "a"}},
                "spec": {"mark": "point", "width": 100},
            },
            "30 facet columns",
        ),
        (point(1, title="x" * (MAX_SPEC_BYTES + 1)), "bytes"),
    ],
)
def test_specs_beyond_the_bounds_are_refused_before_rendering(spec, reason):
    with pytest.raises(InvalidSpec, match=reason):
        parse_spec(json.dumps(spec))


def test_a_deeply_nested_reply_is_refused_not_a_recursion_crash():
    reply = '{"mark": "point", "x": ' + "[" * 5000 + "]" * 5000 + "}"
    with pytest.raises(InvalidSpec, match="nests"):
        parse_spec(reply)


RENDER_BOMBS = {
    # pass every static check, explode inside Vega
    "an expression that builds a huge array": (
        {
            "data": {"values": [{"a": 1}]},
            "transform": [{"calculate": "length(sequence(0, 300000000))", "as": "n"}],
            "mark": "point",
            "encoding": {"x": {"field": "n", "type": "quantitative"}},
        },
        RenderFailed,
        "MB to render",
    ),
    "an expression that builds a huge string": (
        {
            "data": {"values": [{"a": 1}]},
            "transform": [{"calculate": 'length(pad("x", 1000000000))', "as": "n"}],
            "mark": "point",
            "encoding": {"x": {"field": "n", "type": "quantitative"}},
        },
        RenderFailed,
        "MB to render",
    ),
    # Generated rows: no static count of the facets (inline ones are counted before rendering).
    "a facet canvas of 300 generated rows": (
        {
            "data": {"sequence": {"start": 0, "stop": 300, "as": "a"}},
            "facet": {"row": {"field": "a"}},
            "spec": {"mark": "point", "width": 100, "height": 100},
        },
        InvalidSpec,
        "at most 2000x2000",
    ),
    "a step width over 5000 categories": (
        {
            "data": {"values": [{"a": str(i)} for i in range(5000)]},
            "mark": "bar",
            "encoding": {"x": {"field": "a", "type": "nominal"}},
            "width": {"step": 300},
        },
        InvalidSpec,
        "at most 2000x2000",
    ),
}


@pytest.mark.parametrize("name", list(RENDER_BOMBS))
def test_render_bombs_are_stopped_in_the_render_process(name):
    spec, error, reason = RENDER_BOMBS[name]
    parse_spec(json.dumps(spec))  # nothing static gives them away
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.monotonic()
    with pytest.raises(error, match=reason):
        renderer().render(spec)
    assert time.monotonic() - started < RENDER_SECONDS
    # The test process (as the worker) did not grow: the child took the memory.
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50 * 1024


def test_a_render_that_runs_out_of_time_is_killed(monkeypatch):
    slow = point(MAX_ROWS)  # within the bounds, about 2 s to render
    monkeypatch.setattr(chart_renderer.app, "renderer", SandboxedRenderer(seconds=0.5))
    with pytest.raises(RenderFailed, match=r"longer than 0\.5 s"):
        renderer().render(slow)


def test_a_chart_model_whose_spec_explodes_fails_with_the_reason_and_its_tokens():
    bomb = json.dumps(RENDER_BOMBS["an expression that builds a huge array"][0])
    text = ScriptedText(bomb)  # no repair: a spec that passed every check but could not render is not retried
    with pytest.raises(ModelCallError) as raised:
        charts(text).generate(MODEL, "a chart", max_tokens=1000)
    assert raised.value.code == "ChartRenderFailed"
    assert "MB to render" in raised.value.public
    assert (raised.value.input_tokens, raised.value.output_tokens) == (100, 50)
    assert len(text.prompts) == 1


def test_a_spec_over_the_bounds_is_repaired_with_the_bound_named():
    text = ScriptedText(json.dumps(point(MAX_ROWS + 1)), json.dumps(SPEC))
    generation = charts(text).generate(MODEL, "a chart", max_tokens=1000)
    assert generation.content.startswith(b"\x89PNG")
    assert f"at most {MAX_ROWS}" in text.prompts[1]
    assert len(text.prompts[1]) < len("a chart") + REPAIR_QUOTE_BYTES + 1000  # the quoted reply is cut


def test_the_render_process_gets_no_credentials(monkeypatch, tmp_path):
    """The child sees PYTHONPATH, PATH and LANG only: no AWS credentials."""
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "must-not-leak")
    seen = {}
    real = subprocess.Popen

    def spy(*args, **kwargs):
        seen.update(kwargs["env"])
        return real(*args, **kwargs)

    monkeypatch.setattr(subprocess, "Popen", spy)
    renderer().render(SPEC)
    assert set(seen) == {"PYTHONPATH", "PATH", "LANG"}


def test_a_facet_of_few_distinct_values_over_many_rows_passes_the_static_check():
    spec = {
        "data": {"values": [{"a": i % 5, "b": i} for i in range(3000)]},
        "facet": {"row": {"field": "a"}},
        "spec": {"mark": "point"},
    }
    assert parse_spec(json.dumps(spec)) == spec


# ------------------------------------------------------ the renderer function
# The worker's side of it: the Invoke request as Lambda's API model defines it,
# and Lambda's own failures (the function's timeout or memory) as reasons.


def lambda_client():
    return boto3.client("lambda", region_name="us-east-1")


def test_the_worker_invokes_the_renderer_with_the_spec_and_its_limits_and_waits():
    answer = chart_renderer.app.handler({"spec": SPEC, "limits": RENDER_LIMITS}, None)
    client = lambda_client()
    with Stubber(client) as stubber:
        stubber.add_response(
            "invoke",
            {"StatusCode": 200, "Payload": payload(answer)},
            expected_params={
                "FunctionName": RENDERER,
                "InvocationType": "RequestResponse",
                "Payload": json.dumps({"spec": SPEC, "limits": RENDER_LIMITS}, separators=(",", ":")).encode(),
            },
        )
        png, svg = LambdaRenderer(lambda: client, RENDERER).render(SPEC)
    assert png.startswith(b"\x89PNG")
    assert svg.startswith("<svg")
    assert "Sales" in svg


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        ({"errorType": "Sandbox.Timedout", "errorMessage": "Task timed out after 30.00 seconds"}, "Task timed out"),
        ({"errorType": "Runtime.OutOfMemory", "errorMessage": "Runtime exited with error: signal: killed"}, "OutOfMemory"),
        ({"errorMessage": "Response payload size exceeded maximum allowed payload size (6291556 bytes)."}, "payload size"),
    ],
)
def test_lambdas_own_failure_of_the_renderer_fails_the_chart_with_its_reason(error, reason):
    client = lambda_client()
    with Stubber(client) as stubber:
        stubber.add_response("invoke", {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": payload(error)})
        text = ScriptedText(json.dumps(SPEC))
        with pytest.raises(ModelCallError) as raised:
            ChartProvider(text, renderer=LambdaRenderer(lambda: client, RENDERER)).generate(MODEL, "a chart", max_tokens=1000)
    assert raised.value.code == "ChartRenderFailed"
    assert reason in raised.value.public
    assert "the chart renderer failed" in raised.value.public
    assert (raised.value.input_tokens, raised.value.output_tokens) == (100, 50)  # the model's call is still charged


@pytest.mark.parametrize(
    "answer",
    [b"not json", b"[1, 2]", json.dumps({"ok": True, "png": "@@", "svgGzip": "bm90IGd6aXA="}).encode(), b'{"ok": false}'],
)
def test_an_unreadable_answer_fails_the_render_not_the_worker(answer):
    client = lambda_client()
    with Stubber(client) as stubber:
        stubber.add_response("invoke", {"StatusCode": 200, "Payload": StreamingBody(io.BytesIO(answer), len(answer))})
        with pytest.raises(RenderFailed, match="chart renderer"):
            LambdaRenderer(lambda: client, RENDERER).render(SPEC)


@pytest.mark.parametrize(
    ("code", "status"), [("TooManyRequestsException", 429), ("ResourceNotFoundException", 404), ("AccessDeniedException", 403)]
)
def test_a_renderer_lambda_refuses_to_invoke_fails_the_chart_with_the_reason(code, status):
    client = lambda_client()
    with Stubber(client) as stubber:
        stubber.add_client_error("invoke", service_error_code=code, http_status_code=status)
        with pytest.raises(RenderFailed, match=f"could not be invoked.*{code}"):
            LambdaRenderer(lambda: client, RENDERER).render(SPEC)


def test_without_a_renderer_configured_a_chart_fails_with_the_reason_and_no_call():
    def no_client():
        raise AssertionError("no Lambda client without a renderer")

    with pytest.raises(RenderFailed, match="CHART_RENDERER_FUNCTION"):
        LambdaRenderer(no_client, "").render(SPEC)


def test_text_and_image_jobs_never_create_the_lambda_client():
    created = []
    LambdaRenderer(lambda: created.append(1), RENDERER)
    assert created == []


@pytest.mark.parametrize(
    ("event", "key", "reason"),
    [
        ({}, "invalid", "no spec object"),
        ({"spec": [1], "limits": RENDER_LIMITS}, "invalid", "no spec object"),
        ({"spec": SPEC}, "failed", "limits must give"),
        ({"spec": SPEC, "limits": {**RENDER_LIMITS, "scale": "2"}}, "failed", "limits must give"),
        ("a string", "invalid", "no spec object"),
    ],
)
def test_the_renderer_refuses_a_malformed_request_with_the_reason(event, key, reason):
    answer = chart_renderer.app.handler(event, None)
    assert answer["ok"] is False
    assert reason in answer[key]


def test_the_renderer_refuses_an_answer_lambda_could_not_return(monkeypatch):
    monkeypatch.setattr(chart_renderer.app, "MAX_ANSWER_BYTES", 1000)
    answer = chart_renderer.app.handler({"spec": SPEC, "limits": RENDER_LIMITS}, None)
    assert answer["ok"] is False
    assert "more than a renderer answer holds" in answer["failed"]
