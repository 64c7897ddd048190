"""Charts: a text model's Vega-Lite spec, parsed, validated by compiling it,
repaired once, rendered to PNG and SVG by the real vl-convert."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import Stubber

from shared.providers import ChartProvider, ConverseTextProvider, Generation, ModelCallError
from shared.providers.chart import SYSTEM, InvalidSpec, chart_request, parse_spec

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
