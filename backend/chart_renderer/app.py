"""The chart renderer function: the worker invokes it (RequestResponse) with a
Vega-Lite spec that passed its static checks (shared.providers.chart) and gets
the PNG and SVG back, or why the spec is not usable, or why it failed:

  in:   {"spec": {...}, "limits": {"maxSide": 2000, "maxSvgBytes": 8388608, "scale": 2}}
  out:  {"ok": true, "png": <base64>, "svgGzip": <base64 of the gzipped SVG>}
        {"ok": false, "invalid": <why; the model may repair the spec>}
        {"ok": false, "failed": <why it could not render>}

A function of its own, so that vl-convert (about 32 MB zipped) ships here and
not in the worker, whose text and image jobs never draw; and so that what
evaluates a model's spec runs with no AWS permissions but its logs. It imports
the standard library only: vl-convert loads in the render process
(sandbox.py), which a spec bomb may exhaust without harming the function."""

from __future__ import annotations

import base64
import gzip
import json
import logging
import time
from typing import Any

from chart_renderer.sandbox import RenderFailed, SandboxedRenderer, SpecRejected

logger = logging.getLogger(__name__)
logger.setLevel(logging.INFO)
renderer = SandboxedRenderer()

# Lambda's limit on a synchronous invocation's answer is 6 MB; past it the
# caller would get Lambda's error instead of this function's reason.
MAX_ANSWER_BYTES = 6_000_000
_LIMITS = ("maxSide", "maxSvgBytes", "scale")


def render(event: Any) -> dict[str, Any]:
    spec, limits = (event.get("spec"), event.get("limits")) if isinstance(event, dict) else (None, None)
    if not isinstance(spec, dict):
        return {"ok": False, "invalid": "the request has no spec object"}
    if not isinstance(limits, dict) or not all(isinstance(limits.get(k), int) and limits[k] > 0 for k in _LIMITS):
        return {"ok": False, "failed": f"the request's limits must give {', '.join(_LIMITS)} as positive integers"}
    try:
        png, svg = renderer.render(spec, max_side=limits["maxSide"], max_svg_bytes=limits["maxSvgBytes"], scale=limits["scale"])
    except SpecRejected as exc:
        return {"ok": False, "invalid": str(exc)}
    except RenderFailed as exc:
        return {"ok": False, "failed": str(exc)}
    answer = {
        "ok": True,
        "png": base64.b64encode(png).decode("ascii"),
        "svgGzip": base64.b64encode(gzip.compress(svg.encode("utf-8"), compresslevel=6)).decode("ascii"),
    }
    size = sum(len(v) for v in answer.values() if isinstance(v, str))
    if size > MAX_ANSWER_BYTES:
        megabytes = size / 1e6
        return {
            "ok": False,
            "failed": f"the rendered chart is {megabytes:.1f} MB, more than a renderer answer holds; draw it smaller",
        }
    return answer


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    started = time.monotonic()
    answer = render(event)
    outcome = "rendered" if answer["ok"] else ("invalid" if "invalid" in answer else "failed")
    # One line per render; never the spec (it may carry the user's data).
    logger.info(
        json.dumps(
            {
                "message": "chart render",
                "outcome": outcome,
                "reason": answer.get("invalid") or answer.get("failed"),
                "ms": round((time.monotonic() - started) * 1000),
                "peakMb": round(renderer.last_peak_mb),
            }
        )
    )
    return answer
