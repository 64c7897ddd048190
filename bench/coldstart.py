"""Cold start and memory of each function, measured in fresh interpreters.

Run as a script with a function's built package first on sys.path (what Lambda
does): prints JSON with the seconds to import and initialise the handler module and
create its clients, and the peak RSS after it; with --baseline, the same for
importing boto3 and creating those clients only (the floor any Python function
on boto3 pays); with --chart, also the peak RSS of then rendering a chart as the
chart renderer function does. It also says whether what was imported came from
bytecode (`bytecode`: the handler module and boto3's modules each have a .pyc
for this interpreter), so that make bench compares like with like.

  python coldstart.py --package DIR --module generate.app --clients dynamodb,sqs [--baseline]

The handler's figure includes creating its clients (it creates them lazily, at
its first request, so they are part of every cold start either way).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from collections.abc import Iterable
from pathlib import Path


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--package", required=True)
    parser.add_argument("--module", required=True)
    parser.add_argument("--clients", default="", help="comma-separated boto3 clients the function creates (none: no boto3)")
    parser.add_argument("--baseline", action="store_true", help="only boto3 and the clients, not the handler")
    parser.add_argument("--chart", action="store_true", help="then render a chart as the renderer does (vl-convert)")
    args = parser.parse_args()
    sys.path.insert(0, args.package)
    started = time.perf_counter()
    handler = None if args.baseline else importlib.import_module(args.module)
    services = [s for s in args.clients.split(",") if s]
    if services:
        import boto3

        for service in services:
            if service == "dynamodb":
                boto3.resource("dynamodb").Table("t")
            else:
                boto3.client(service)
    elapsed = time.perf_counter() - started
    result = {"seconds": elapsed, "rssMb": peak_rss_mb(), "bytecode": bytecode(handler)}
    if args.chart:
        result["chartRssMb"] = render_chart()
    print(json.dumps(result))
    return 0


# A chart job's rendering step: a bar chart of a year of monthly records, to
# PNG and SVG, with the worker's own renderer (the memory-heaviest thing it does).
CHART = {
    "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
    "title": "Sales by month",
    "data": {"values": [{"month": f"2026-{m:02d}", "sales": 100 + 7 * m} for m in range(1, 13)]},
    "mark": "bar",
    "encoding": {"x": {"field": "month", "type": "ordinal"}, "y": {"field": "sales", "type": "quantitative"}},
}


def render_chart() -> float:
    """What a chart's render holds at its peak: the renderer function's own
    memory and its render process's, which Lambda counts together."""
    from chart_renderer.app import handler, renderer

    answer = handler({"spec": CHART, "limits": {"maxSide": 2000, "maxSvgBytes": 8 * 1024 * 1024, "scale": 2}}, None)
    if not answer.get("ok"):
        raise RuntimeError(f"the chart did not render: {answer}")
    return peak_rss_mb() + renderer.last_peak_mb


def bytecode(handler: object) -> dict[str, bool]:
    """Whether the handler module and boto3's modules (when imported) were
    loaded from bytecode: a .pyc for this interpreter beside their source, or
    instead of it."""

    def compiled(module: object) -> bool:
        cached = getattr(module, "__cached__", None)
        origin = getattr(module, "__file__", "") or ""
        return origin.endswith(".pyc") or bool(cached and Path(cached).is_file())

    found = {}
    if handler is not None:
        found["handler"] = compiled(handler)
    if "botocore.client" in sys.modules:
        found["boto3"] = all(compiled(sys.modules[m]) for m in ("boto3", "botocore.client", "botocore.session"))
    return found


def invocation(
    python: str, package: Path, module: str, clients: str, env: dict[str, str], *, baseline: bool, flags: tuple[str, ...] = ()
) -> tuple[list[str], dict[str, str]]:
    """How make bench runs this script for one function (cold.py, instructions.py,
    importcost.py): the command, with the interpreter's `flags`, and its
    environment, with Lambda's LAMBDA_TASK_ROOT."""
    command = [python, *flags, __file__, "--package", str(package), "--module", module, "--clients", clients]
    return command + (["--baseline"] if baseline else []), env | {"LAMBDA_TASK_ROOT": str(package)}


def function_rss(stack: str, functions: Iterable[str]) -> dict[str, float]:
    """Peak RSS of each function's process in the emulator, which runs a function
    in a process of its own (as Lambda an execution environment) and keeps it warm:
    its VmHWM is the peak of init and the requests and jobs it ran. Processes of
    other users, or gone meanwhile, are skipped."""
    peaks: dict[str, float] = {}
    for proc in Path("/proc").iterdir():
        try:
            environ = dict(item.split("=", 1) for item in (proc / "environ").read_bytes().decode().split("\0") if "=" in item)
            name = environ.get("AWS_LAMBDA_FUNCTION_NAME", "")
            function = next((f for f in functions if name.startswith(stack) and f"-{f}-" in name), None)
            if function:
                peaks[function] = max(peaks.get(function, 0), peak_rss_mb(proc.name))
        except (OSError, ValueError):
            continue  # not a process, gone, or not ours
    return peaks


def peak_rss_mb(pid: str = "self") -> float:
    """A process's peak RSS since it started (VmHWM). Not getrusage's ru_maxrss:
    Linux keeps that across exec, so it would report the benchmark's own interpreter."""
    status = Path(f"/proc/{pid}/status")
    for line in status.read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM in {status}")


if __name__ == "__main__":
    sys.exit(main())
