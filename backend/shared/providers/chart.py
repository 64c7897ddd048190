"""Charts: a text model writes a Vega-Lite spec of the user's prompt (and the
request's inline data); the reply is parsed and validated, repaired once by
the same model if it is not a valid spec, and rendered to PNG and SVG.

Rendering uses vl-convert (about 80 MB installed), imported only here and only
when a chart is rendered, so it ships in the worker's package alone."""

from __future__ import annotations

import json
import re
from typing import Any

from shared.providers.base import Generation, ModelCallError, Provider

SYSTEM = (
    "You write Vega-Lite v5 chart specifications. Answer with one JSON object only: a "
    "complete, valid Vega-Lite spec, with no prose and no code fences. Put the data inline "
    'under "data": {"values": [...]}; never use a data URL. Give the chart a title.'
)
_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.MULTILINE)
_COMPOSITIONS = ("mark", "layer", "concat", "hconcat", "vconcat", "facet", "repeat")


class InvalidSpec(ValueError):
    """The text is not a Vega-Lite spec genstack will render; the message says why."""


def chart_request(prompt: str, data: list[dict[str, Any]] | None) -> str:
    if not data:
        return prompt
    return f"{prompt}\n\nThe data, as JSON records:\n{json.dumps(data, separators=(',', ':'))}"


def _has_url(node: Any) -> bool:
    if isinstance(node, dict):
        return "url" in node or any(_has_url(v) for v in node.values())
    if isinstance(node, list):
        return any(_has_url(v) for v in node)
    return False


def parse_spec(reply: str) -> dict[str, Any]:
    """The spec in a model's reply: JSON (code fences tolerated), an object, a
    Vega-Lite view or composition, with no external data."""
    text = _FENCE.sub("", reply.strip())
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        raise InvalidSpec("the reply contains no JSON object")
    try:
        spec = json.loads(text[start : end + 1])
    except json.JSONDecodeError as exc:
        raise InvalidSpec(f"the reply is not valid JSON ({exc.msg} at position {exc.pos})") from exc
    if not isinstance(spec, dict) or not any(key in spec for key in _COMPOSITIONS):
        raise InvalidSpec(f"the JSON is not a Vega-Lite spec (it has none of {', '.join(_COMPOSITIONS)})")
    if _has_url(spec):
        raise InvalidSpec("the spec loads data from a URL; data must be inline (data.values)")
    return spec


class VlConvertRenderer:
    """Compiles (which validates) and renders with vl-convert, with every
    external request refused."""

    def validate(self, spec: dict[str, Any]) -> None:
        import vl_convert

        try:
            vl_convert.vegalite_to_vega(spec)
        except ValueError as exc:
            first_line = str(exc).splitlines()[1:2] or [str(exc)]
            raise InvalidSpec(f"Vega-Lite rejected the spec: {first_line[0][:300]}") from exc

    def render(self, spec: dict[str, Any]) -> tuple[bytes, str]:
        import vl_convert

        png = vl_convert.vegalite_to_png(spec, scale=2, allowed_base_urls=[])
        svg = vl_convert.vegalite_to_svg(spec, allowed_base_urls=[])
        return png, svg


class ChartProvider:
    def __init__(self, text: Provider, renderer: Any | None = None) -> None:
        self._text = text
        self._renderer = renderer or VlConvertRenderer()

    def _spec_from(self, reply: str) -> dict[str, Any]:
        spec = parse_spec(reply)
        self._renderer.validate(spec)
        return spec

    def generate(self, model: str, prompt: str, *, system: str | None = None, max_tokens: int) -> Generation:
        first = self._text.generate(model, prompt, system=SYSTEM, max_tokens=max_tokens)
        calls = [first]
        try:
            spec = self._spec_from(first.text or "")
        except InvalidSpec as problem:
            repair = (
                f"{prompt}\n\nYour previous answer was:\n{first.text}\n\nIt is not usable: {problem}. "
                "Answer again with the corrected Vega-Lite JSON spec only."
            )
            second = self._text.generate(model, repair, system=SYSTEM, max_tokens=max_tokens)
            calls.append(second)
            try:
                spec = self._spec_from(second.text or "")
            except InvalidSpec as still:
                raise ModelCallError(
                    "InvalidChartSpec",
                    f"no valid Vega-Lite spec after one repair: {still}",
                    retryable=False,
                    input_tokens=sum(c.input_tokens for c in calls),
                    output_tokens=sum(c.output_tokens for c in calls),
                ) from still
        png, svg = self._renderer.render(spec)
        return Generation(
            model=model,
            content=png,
            content_type="image/png",
            extension="png",
            input_tokens=sum(c.input_tokens for c in calls),
            output_tokens=sum(c.output_tokens for c in calls),
            latency_ms=sum(c.latency_ms for c in calls),
            attachments=(
                ("svg", "image/svg+xml", svg.encode("utf-8")),
                ("vl.json", "application/json", json.dumps(spec, indent=2).encode("utf-8")),
            ),
        )
