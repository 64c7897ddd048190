"""Validates and renders one Vega-Lite spec, in a process of its own.

Run as a script by chart_renderer.sandbox.SandboxedRenderer (never imported by
the function): the spec arrives as JSON on stdin, the answer leaves as one JSON
object on stdout:
  {"ok": true, "png": <base64>, "svg": <text>}
  {"ok": false, "invalid": <why the spec is not usable>}   (the model may repair it)
A spec that exhausts memory or time is killed by the parent (it watches this
process's resident memory and the clock); the CPU limit below is a second
stop. Nothing here reads the network (allowed_base_urls=[]) or AWS: the parent
starts it without credentials.

Standard library and vl_convert only, so that starting it costs an
interpreter and vl_convert's import (about 60 ms)."""

from __future__ import annotations

import base64
import json
import re
import resource
import sys

_SIZE = re.compile(r'<svg[^>]*?\swidth="([\d.]+)"[^>]*?\sheight="([\d.]+)"')


def main() -> int:
    limits = json.loads(sys.argv[1])
    cpu = int(limits["cpuSeconds"])
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    spec = json.load(sys.stdin)

    import vl_convert

    def answer(**body: object) -> int:
        sys.stdout.write(json.dumps(body))
        sys.stdout.flush()
        return 0

    try:  # compiling validates: what Vega-Lite rejects, the model may repair
        svg = vl_convert.vegalite_to_svg(spec, allowed_base_urls=[])
    except ValueError as exc:
        lines = str(exc).splitlines()
        return answer(ok=False, invalid=f"Vega-Lite rejected the spec: {(lines[1:2] or lines[:1] or ['?'])[0][:300]}")
    if len(svg) > limits["maxSvgBytes"]:
        return answer(ok=False, invalid=f"the chart draws more than {limits['maxSvgBytes']} bytes of SVG; aggregate the data")
    size = _SIZE.search(svg[:2000])
    width, height = (float(size.group(1)), float(size.group(2))) if size else (0.0, 0.0)
    side = limits["maxSide"]
    if not size or width > side or height > side:
        return answer(
            ok=False,
            invalid=f"the chart is {width:.0f}x{height:.0f} pixels; at most {side}x{side} (use fewer categories or facets)",
        )
    # The raster from the SVG just checked, not a second Vega run.
    png = vl_convert.svg_to_png(svg, scale=limits["scale"])
    return answer(ok=True, png=base64.b64encode(png).decode("ascii"), svg=svg)


if __name__ == "__main__":
    sys.exit(main())
