"""Charts: a text model's Vega-Lite spec, parsed, checked against the bounds,
validated and rendered to PNG and SVG by the real vl-convert in its render
process, repaired once; and spec bombs, refused or killed."""

from __future__ import annotations

import json
import resource
import subprocess
import time

import boto3
import pytest
from botocore.stub import Stubber

from shared.providers import ChartProvider, ConverseTextProvider, Generation, ModelCallError
from shared.providers.chart import (
    MAX_ROWS,
    MAX_SPEC_BYTES,
    MAX_VIEWS,
    RENDER_SECONDS,
    REPAIR_QUOTE_BYTES,
    SYSTEM,
    InvalidSpec,
    RenderFailed,
    SandboxedRenderer,
    chart_request,
    parse_spec,
)

MODEL = "amazon.nova-lite-v1:0"
SPEC = {
    "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
    "title": "Sales",
    "data": {"values": [{"month": "Jan", "sales": 3}, {"month": "Feb", "sales": 5}]},
    "mark": "bar",
    "encoding": {"x": {"field": "month", "type": "nominal"}, "y": {"field": "sales", "type": "quantitative"}},
}


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
    generation = ChartProvider(text).generate(MODEL, "Monthly sales", max_tokens=1000)
    assert generation.content.startswith(b"\x89PNG")
    assert generation.content_type == "image/png"
    files = {ext: (ctype, body) for ext, ctype, body in generation.attachments}
    assert files["svg"][0] == "image/svg+xml"
    assert b"<svg" in files["svg"][1]
    assert json.loads(files["vl.json"][1]) == SPEC
    assert (generation.input_tokens, generation.output_tokens) == (100, 50)


def test_an_invalid_reply_is_repaired_once_with_the_reason():
    text = ScriptedText("Sure! Here is your chart.", json.dumps(SPEC))
    generation = ChartProvider(text).generate(MODEL, "Monthly sales", max_tokens=1000)
    assert generation.content.startswith(b"\x89PNG")
    assert len(text.prompts) == 2
    assert "Sure! Here is your chart." in text.prompts[1]
    assert "no JSON object" in text.prompts[1]
    assert (generation.input_tokens, generation.output_tokens) == (200, 100)  # both calls are billed


def test_a_reply_still_invalid_after_the_repair_fails_with_its_tokens():
    text = ScriptedText('{"mark": "bar", "encoding": {"x": {"field": "a", "type": "wrong"}}}', "still not a chart")
    with pytest.raises(ModelCallError) as raised:
        ChartProvider(text).generate(MODEL, "Monthly sales", max_tokens=1000)
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
        generation = ChartProvider(ConverseTextProvider(client)).generate(MODEL, "Monthly sales", max_tokens=1000)
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
        SandboxedRenderer().render(spec)
    assert time.monotonic() - started < RENDER_SECONDS
    # The test process (as the worker) did not grow: the child took the memory.
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50 * 1024


def test_a_render_that_runs_out_of_time_is_killed():
    slow = point(MAX_ROWS)  # within the bounds, about 2 s to render
    with pytest.raises(RenderFailed, match=r"longer than 0\.5 s"):
        SandboxedRenderer(seconds=0.5).render(slow)


def test_a_chart_model_whose_spec_explodes_fails_with_the_reason_and_its_tokens():
    bomb = json.dumps(RENDER_BOMBS["an expression that builds a huge array"][0])
    text = ScriptedText(bomb)  # no repair: a spec that passed every check but could not render is not retried
    with pytest.raises(ModelCallError) as raised:
        ChartProvider(text).generate(MODEL, "a chart", max_tokens=1000)
    assert raised.value.code == "ChartRenderFailed"
    assert "MB to render" in raised.value.public
    assert (raised.value.input_tokens, raised.value.output_tokens) == (100, 50)
    assert len(text.prompts) == 1


def test_a_spec_over_the_bounds_is_repaired_with_the_bound_named():
    text = ScriptedText(json.dumps(point(MAX_ROWS + 1)), json.dumps(SPEC))
    generation = ChartProvider(text).generate(MODEL, "a chart", max_tokens=1000)
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
    SandboxedRenderer().render(SPEC)
    assert set(seen) == {"PYTHONPATH", "PATH", "LANG"}


def test_a_facet_of_few_distinct_values_over_many_rows_passes_the_static_check():
    spec = {
        "data": {"values": [{"a": i % 5, "b": i} for i in range(3000)]},
        "facet": {"row": {"field": "a"}},
        "spec": {"mark": "point"},
    }
    assert parse_spec(json.dumps(spec)) == spec
