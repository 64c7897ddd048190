"""Charts: a text model writes a Vega-Lite spec of the user's prompt (and the
request's inline data); the reply is parsed and checked against the bounds
below, then validated and rendered to SVG and PNG by the chart renderer
function (LambdaRenderer, chart_renderer.app), which kills a render that
outgrows its memory or time; an unusable spec is repaired once by the same
model.

Rendering uses vl-convert (about 80 MB installed), in that function only: the
worker's package stays small for the text and image jobs that never draw, and
what evaluates a model's spec runs with no AWS permissions. A bad spec fails
its model, not the whole delivery."""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import re
import zlib
from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from shared.providers.base import Generation, ModelCallError, Provider

SYSTEM = (
    "You write Vega-Lite v5 chart specifications. Answer with one JSON object only: a "
    "complete, valid Vega-Lite spec, with no prose and no code fences. Put the data inline "
    'under "data": {"values": [...]}; never use a data URL. Give the chart a title. '
    "Keep the chart at most 2000 pixels wide and high."
)


def chart_system(user_system: str | None) -> str:
    """The chart's system prompt, with the request's own instructions after it."""
    return SYSTEM if not user_system else f"{SYSTEM}\n\nFurther instructions from the user:\n{user_system}"


_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$", re.MULTILINE)
_COMPOSITIONS = ("mark", "layer", "concat", "hconcat", "vconcat", "facet", "repeat")

# Bounds a spec must keep before anything renders it. Measured with vl-convert
# 1.9 on 2 cores (a scatter plot): 5,000 rows take 1.6 s and 125 MB, 20,000
# rows 3.9 s and 203 MB, 200,000 rows 29 s and 933 MB.
MAX_SPEC_BYTES = 256 * 1024
MAX_ROWS = 10_000  # inline rows (data.values, datasets) and generated ones (sequence)
MAX_SIDE = 2_000  # pixels, width and height, as drawn (before the PNG's 2x scale)
MAX_VIEWS = 50  # marks in layers, concatenations and repeats
MAX_DEPTH = 40  # nesting of the spec's JSON
MAX_SVG_BYTES = 8 * 1024 * 1024
PNG_SCALE = 2
# What the renderer is told to keep to (the function holds its own memory and
# time limits: chart_renderer.sandbox).
RENDER_LIMITS = {"maxSide": MAX_SIDE, "maxSvgBytes": MAX_SVG_BYTES, "scale": PNG_SCALE}
# How much of a first answer (and of the reason it failed) the repair request
# quotes, in UTF-8 bytes: enough to correct a spec, and a bound on what the
# repair call is sent, so its worst case is known before the first call
# (shared.budgets.repair_call_bound).
REPAIR_QUOTE_BYTES = 16_000
REPAIR_PROBLEM_BYTES = 1_000
REPAIR_TEMPLATE = (
    "{request}\n\nYour previous answer was:\n{quoted}\n\nIt is not usable: {problem}. "
    "Answer again with the corrected Vega-Lite JSON spec only."
)


class InvalidSpec(ValueError):
    """The text is not a Vega-Lite spec genstack will render; the message says why."""


class RenderFailed(Exception):
    """The spec passed every check but its rendering outgrew its memory or time."""


def chart_request(prompt: str, data: list[dict[str, Any]] | None) -> str:
    if not data:
        return prompt
    return f"{prompt}\n\nThe data, as JSON records:\n{json.dumps(data, separators=(',', ':'))}"


def _cut(text: str, limit: int) -> str:
    """At most `limit` bytes of UTF-8 (never half a character)."""
    encoded = text.encode("utf-8")
    return text if len(encoded) <= limit else encoded[:limit].decode("utf-8", errors="ignore")


def repair_request(request: str, reply: str, problem: str) -> str:
    """What the model is sent when its first spec was not usable."""
    return REPAIR_TEMPLATE.format(
        request=request, quoted=_cut(reply, REPAIR_QUOTE_BYTES), problem=_cut(problem, REPAIR_PROBLEM_BYTES)
    )


def _walk(node: Any, depth: int = 0) -> Any:
    """Every (key, value) pair of a JSON document, refusing documents nested deeper than MAX_DEPTH."""
    if depth > MAX_DEPTH:
        raise InvalidSpec(f"the spec nests more than {MAX_DEPTH} levels deep")
    if isinstance(node, dict):
        for key, value in node.items():
            yield key, value
            yield from _walk(value, depth + 1)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value, depth + 1)


def _generated_rows(sequence: Any) -> float:
    if not isinstance(sequence, dict):
        raise InvalidSpec("a sequence generator must be an object with start, stop and step")
    start, stop, step = sequence.get("start", 0), sequence.get("stop"), sequence.get("step", 1)
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (start, stop, step)) or step == 0:
        raise InvalidSpec("a sequence generator needs numeric start, stop and a non-zero step")
    return max(0.0, (stop - start) / step)


def check_bounds(spec: dict[str, Any]) -> None:
    """Refuse, before any rendering, a spec bigger than genstack renders."""
    size = len(json.dumps(spec, separators=(",", ":")))
    if size > MAX_SPEC_BYTES:
        raise InvalidSpec(f"the spec is {size} bytes; at most {MAX_SPEC_BYTES} (aggregate the data)")
    rows, views = 0.0, 0
    for key, value in _walk(spec):
        if key == "url":
            raise InvalidSpec("the spec loads data from a URL; data must be inline (data.values)")
        if key == "values" and isinstance(value, list):
            rows += len(value)
        elif key == "datasets" and isinstance(value, dict):
            rows += sum(len(v) for v in value.values() if isinstance(v, list))
        elif key == "sequence":
            rows += _generated_rows(value)
        elif key == "graticule":
            raise InvalidSpec("graticule generators are not rendered")
        elif key == "mark":
            views += 1
        elif key in ("width", "height") and isinstance(value, int | float) and not isinstance(value, bool) and value > MAX_SIDE:
            raise InvalidSpec(f"the spec sets {key} {value}; at most {MAX_SIDE} pixels")
    if rows > MAX_ROWS:
        raise InvalidSpec(f"the spec has {int(rows)} data rows; at most {MAX_ROWS} (aggregate the data)")
    if views > MAX_VIEWS:
        raise InvalidSpec(f"the spec draws {views} views; at most {MAX_VIEWS}")
    _check_facet_canvas(spec)


DEFAULT_VIEW_SIDE = 200  # Vega-Lite's default width and height of a continuous view


def _check_facet_canvas(spec: dict[str, Any]) -> None:
    """A facet of inline data draws one cell per distinct value of its row
    (column) field: known before rendering, so a canvas past MAX_SIDE is
    refused here rather than after the renderer has built it (3,000 facet
    rows outgrow the render process's memory before its own canvas check)."""
    facet, inner, data = spec.get("facet"), spec.get("spec"), spec.get("data")
    values = data.get("values") if isinstance(data, dict) else None
    if not isinstance(facet, dict) or not isinstance(values, list):
        return
    inner = inner if isinstance(inner, dict) else {}
    for channel, side in (("row", "height"), ("column", "width")):
        definition = facet.get(channel)
        field = definition.get("field") if isinstance(definition, dict) else None
        if not isinstance(field, str):
            continue
        cells = len({json.dumps(r.get(field), sort_keys=True) for r in values if isinstance(r, dict)})
        cell = inner.get(side)
        cell = cell if isinstance(cell, int | float) and not isinstance(cell, bool) else DEFAULT_VIEW_SIDE
        if cells * cell > MAX_SIDE:
            raise InvalidSpec(
                f"the chart is at least {cells * cell:.0f} pixels {'high' if side == 'height' else 'wide'} "
                f"({cells} facet {channel}s); at most {MAX_SIDE}x{MAX_SIDE} (use fewer categories or facets)"
            )


def sized(spec: dict[str, Any], width: int, height: int) -> dict[str, Any]:
    """The spec drawn at width x height. Only a single view or a layer takes
    a size: a composition (concat, facet, repeat) keeps the model's own view
    sizes, within MAX_SIDE (Vega-Lite sizes each of its views, not the whole)."""
    if any(k in spec for k in ("hconcat", "vconcat", "concat", "facet", "repeat")):
        return spec
    return {**spec, "width": width, "height": height}


def parse_spec(reply: str) -> dict[str, Any]:
    """The spec in a model's reply: JSON (code fences tolerated), an object, a
    Vega-Lite view or composition, with no external data, within the bounds."""
    text = _FENCE.sub("", reply.strip())
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end < start:
        raise InvalidSpec("the reply contains no JSON object")
    if end + 1 - start > MAX_SPEC_BYTES:
        raise InvalidSpec(f"the spec is longer than {MAX_SPEC_BYTES} bytes (aggregate the data)")
    try:
        spec = json.loads(text[start : end + 1])
    except json.JSONDecodeError as exc:
        raise InvalidSpec(f"the reply is not valid JSON ({exc.msg} at position {exc.pos})") from exc
    except RecursionError as exc:
        raise InvalidSpec(f"the spec nests more than {MAX_DEPTH} levels deep") from exc
    if not isinstance(spec, dict) or not any(key in spec for key in _COMPOSITIONS):
        raise InvalidSpec(f"the JSON is not a Vega-Lite spec (it has none of {', '.join(_COMPOSITIONS)})")
    check_bounds(spec)
    return spec


def read_answer(answer: Any) -> tuple[bytes, str]:
    """PNG and SVG from the renderer's answer (chart_renderer.app), or its reason
    as InvalidSpec (the model may repair the spec) or RenderFailed."""
    if not isinstance(answer, dict):
        raise RenderFailed("the chart renderer gave no answer")
    if not answer.get("ok"):
        if isinstance(answer.get("invalid"), str):
            raise InvalidSpec(answer["invalid"])
        raise RenderFailed(str(answer.get("failed") or "the chart renderer gave no reason"))
    try:
        return base64.b64decode(answer["png"]), gzip.decompress(base64.b64decode(answer["svgGzip"])).decode("utf-8")
    except (KeyError, TypeError, binascii.Error, OSError, EOFError, zlib.error, UnicodeDecodeError) as exc:
        raise RenderFailed(f"the chart renderer's answer is unreadable ({exc.__class__.__name__})") from None


class LambdaRenderer:
    """Validates and renders a spec in the chart renderer function, invoked
    and waited for. `client` makes the Lambda client, at the first chart only
    (text and image jobs never create it); `function` is the renderer's name
    or ARN with its alias. Lambda's own failures (the function's timeout or
    memory, an answer over 6 MB) end as RenderFailed with Lambda's reason."""

    def __init__(self, client: Callable[[], Any], function: str) -> None:
        self._client = client
        self._function = function

    def render(self, spec: dict[str, Any]) -> tuple[bytes, str]:
        if not self._function:
            raise RenderFailed("no chart renderer is configured (CHART_RENDERER_FUNCTION)")
        try:
            response = self._client().invoke(
                FunctionName=self._function,
                InvocationType="RequestResponse",
                Payload=json.dumps({"spec": spec, "limits": RENDER_LIMITS}, separators=(",", ":")).encode("utf-8"),
            )
            payload = response["Payload"].read()
        except (BotoCoreError, ClientError) as exc:  # throttled past its retries, unreachable, not allowed
            raise RenderFailed(f"the chart renderer could not be invoked: {exc}"[:400]) from None
        if response.get("FunctionError"):
            raise RenderFailed(f"the chart renderer failed: {_lambda_error(payload)}")
        try:
            answer = json.loads(payload)
        except ValueError:
            raise RenderFailed("the chart renderer's answer is not JSON") from None
        return read_answer(answer)


def _lambda_error(payload: bytes) -> str:
    """Lambda's error document ({"errorType", "errorMessage"}), in a sentence."""
    try:
        error = json.loads(payload)
        return f"{error.get('errorType', 'error')}: {str(error.get('errorMessage', ''))[:300]}"
    except (ValueError, AttributeError):
        return payload[:300].decode("utf-8", errors="replace")


class ChartProvider:
    """A chart from a text model: a spec, checked and rendered; one repair if
    it is not usable. `call`, when given, makes each text call (the worker
    meters each one); by default the text provider is called directly."""

    def __init__(self, text: Provider, renderer: Any) -> None:
        self._text = text
        self._renderer = renderer  # LambdaRenderer: render(spec) -> (png, svg)

    def generate(
        self,
        model: str,
        prompt: str,
        *,
        system: str | None = None,
        max_tokens: int,
        call: Any | None = None,
        size: tuple[int, int] | None = None,
    ) -> Generation:
        """`size`: the chart's drawing width and height (the request's
        parameters), set on the spec whatever the model wrote."""

        def direct(request: str) -> Generation:
            return self._text.generate(model, request, system=SYSTEM, max_tokens=max_tokens)

        call = call or direct
        calls: list[Generation] = []

        def attempt(request: str) -> tuple[dict[str, Any], bytes, str]:
            reply = call(request)
            calls.append(reply)
            spec = parse_spec(reply.text or "")
            if size:
                spec = sized(spec, *size)
            png, svg = self._renderer.render(spec)
            return spec, png, svg

        def failed(code: str, message: str, cause: Exception) -> ModelCallError:
            error = ModelCallError(
                code,
                message,
                retryable=False,
                public=True,
                input_tokens=sum(c.input_tokens for c in calls),
                output_tokens=sum(c.output_tokens for c in calls),
            )
            error.__cause__ = cause
            return error

        try:
            try:
                spec, png, svg = attempt(prompt)
            except InvalidSpec as problem:
                try:
                    spec, png, svg = attempt(repair_request(prompt, calls[-1].text or "", str(problem)))
                except InvalidSpec as still:
                    raise failed("InvalidChartSpec", f"no valid Vega-Lite spec after one repair: {still}", still) from still
        except RenderFailed as exc:
            raise failed("ChartRenderFailed", str(exc), exc) from exc
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
