"""`make bench`: genstack's performance and cost figures in one table, written
to docs/performance.md.

  cold start     import + init of each handler (its clients included) in a fresh
                 interpreter, as a ratio to importing boto3 and creating the same
                 clients: wall clock (alternated runs, medians of at least 9),
                 instructions (callgrind) and where the imports go (cold.py)
  memory         peak RSS after init, and the memory setting the template gives
  package size   each function's AWS package, zipped and unzipped
  fan-out        a job of N = 1, 4, 8 models at simulated latency L: wall / L, and the overhead
                 (fanout.py: the real JobRunner in-process on moto)
  local stack    submit-to-COMPLETED latency p50/p95 of a text job, and requests
                 per second at a fixed concurrency (emulator-bound: one process)
  idle cost      per environment (infrastructure/scripts/cost.py)
  overhead       what API Gateway, Lambda, SQS, DynamoDB, S3 and CloudFront cost
                 for a typical job, as a share of its model cost (prices.json)

Usage: python bench/run.py [--runs 9] [--skip-local] [--before DIR] [--out docs/performance.md]
  --before DIR   also measure an earlier build's cold starts (e.g. a worktree's
                 .aws-sam/local/build) in this run, and keep them in bench/before.json
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import ssl
import statistics
import subprocess
import sys
import time
import urllib.request
import zipfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "infrastructure" / "scripts"), str(ROOT / "bench")]

import cold  # noqa: E402
from coldstart import function_rss  # noqa: E402

import cost  # noqa: E402
from cfn_render import load  # noqa: E402

LOCAL_BUILD = ROOT / ".aws-sam" / "local" / "build"
AWS_BUILD = ROOT / ".aws-sam" / "aws" / "build"
FUNCTIONS = cold.FUNCTIONS


def template_memory() -> dict[str, int]:
    """Each function's memory in prod: its own MemorySize, or the mapping's."""
    template = load("template.yaml")
    prod = template["Mappings"]["EnvironmentConfig"]["prod"]
    own = {f: template["Resources"][f]["Properties"].get("MemorySize") for f in FUNCTIONS}
    mapped = {f: prod["WorkerMemorySize"] if f == "WorkerFunction" else prod["ApiMemorySize"] for f in FUNCTIONS}
    return {f: own[f] if isinstance(own[f], int) else mapped[f] for f in FUNCTIONS}


def package_sizes() -> list[dict]:
    rows = []
    for function in FUNCTIONS:
        folder = AWS_BUILD / function
        buffer = io.BytesIO()
        unzipped = 0
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(folder.rglob("*")):
                if path.is_file():
                    archive.write(path, path.relative_to(folder))
                    unzipped += path.stat().st_size
        rows.append({"function": function, "zippedMb": len(buffer.getvalue()) / 1e6, "unzippedMb": unzipped / 1e6})
    return rows


# The simulated model latency: a short Bedrock text call (a few hundred output
# tokens take one to a few seconds). The overhead in ms does not depend on it.
FANOUT_LATENCY = 2.0


def fanout(runs: int) -> list[dict]:
    import fanout as fan

    rows = []
    for n in (1, 4, 8):
        ratio = statistics.median(fan.measure(n, FANOUT_LATENCY, runs))
        rows.append({"models": n, "ratio": ratio, "overheadMs": (ratio - 1) * FANOUT_LATENCY * 1000})
    return rows


def local_stack(jobs: int, requests: int, concurrency: int) -> dict:
    port, stack = "4577", "genstack-bench"
    out = ROOT / ".local" / "bench-outputs.json"
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_PROFILE", "AWS_ENDPOINT_URL")}
    local = ["bash", str(ROOT / "infrastructure/scripts/local.sh")]
    subprocess.run(
        [*local, "up", "--port", port, "--stack-name", stack, "--outputs", str(out)], env=env, check=True, capture_output=True
    )
    try:
        info = json.loads(out.read_text())
        tls = ssl.create_default_context(cafile=info["caBundle"])

        def call(method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
            data = json.dumps(body).encode() if body else None
            headers = {"x-api-key": info["apiKey"], "content-type": "application/json"}
            request = urllib.request.Request(info["apiUrl"] + path, data=data, method=method, headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=30, context=tls) as response:
                    return response.status, json.loads(response.read())
            except urllib.error.HTTPError as error:
                return error.code, {}

        latencies = []
        for index in range(jobs):
            started = time.perf_counter()
            _, accepted = call("POST", "/generate", {"prompt": f"bench {index}", "models": ["amazon.nova-micro-v1:0"]})
            while call("GET", f"/status/{accepted['jobId']}")[1].get("status") in ("QUEUED", "RUNNING"):
                time.sleep(0.05)
            latencies.append(time.perf_counter() - started)

        def unthrottled(method: str, path: str, body: dict | None = None) -> int:
            """The answer once the key's rate limit (the polling above spends it) lets the request through."""
            for _ in range(20):
                status, _ = call(method, path, body)
                if status != 429:
                    return status
                time.sleep(0.5)
            return status

        enhanced = unthrottled("POST", "/enhance", {"prompt": "a poster for a jazz night"})
        listed = unthrottled("GET", "/templates")
        if (enhanced, listed) != (200, 200):
            raise RuntimeError(f"POST /enhance answered {enhanced}, GET /templates {listed}")
        in_use = function_rss(stack, FUNCTIONS)
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            statuses = list(pool.map(lambda _: call("GET", "/health")[0], range(requests)))
        elapsed = time.perf_counter() - started
        answers = Counter(statuses)
        latencies.sort()
        return {
            "jobs": jobs,
            "p50": statistics.median(latencies),
            "p95": latencies[max(0, round(0.95 * len(latencies)) - 1)],
            "requests": requests,
            "concurrency": concurrency,
            "rps": requests / elapsed,
            "okRps": answers[200] / elapsed,
            "statuses": dict(sorted(answers.items())),
            "rssMb": in_use,
        }
    finally:
        subprocess.run([*local, "down", "--port", port], env=env, check=False, capture_output=True)


def overhead() -> list[dict]:
    """Platform cost of one typical job, from the published per-use prices."""
    prices = json.loads((ROOT / "infrastructure" / "prices.json").read_text())["perUse"]
    registry = {m["id"]: m for m in json.loads((ROOT / "backend/shared/registry.json").read_text())["models"]}
    polls, worker_seconds, tokens_in, tokens_out, output_kb = 5, 3.0, 500, 500, 2
    # A chart adds a render: one invocation of the chart renderer (1024 MB) of
    # about a second, and three objects (PNG, SVG, the spec) instead of one.
    render_gb_seconds, chart_files = 1.024 * 1.0, 3
    rows = []
    for label, models, chart in (
        ("2 small text models", ["amazon.nova-micro-v1:0", "amazon.nova-lite-v1:0"], False),
        ("2 mid text models", ["anthropic.claude-3-5-haiku-20241022-v1:0", "amazon.nova-pro-v1:0"], False),
        ("1 image model", ["amazon.nova-canvas-v1:0"], False),
        ("1 chart (a small text model)", ["amazon.nova-lite-v1:0"], True),
    ):
        n = len(models)
        files = n * (chart_files if chart else 1)
        model_cost = sum(
            registry[m].get("perImage", 0)
            or (registry[m]["inputPer1k"] * tokens_in + registry[m]["outputPer1k"] * tokens_out) / 1000
            for m in models
        )
        requests = 1 + polls  # POST /generate, then GET /status polls
        api = requests * prices["apiGatewayRestPerMillion"] / 1e6
        gb_seconds = 0.256 * 0.1 + polls * 0.256 * 0.05 + 0.512 * worker_seconds  # generate, status, worker
        gb_seconds += n * render_gb_seconds if chart else 0
        invocations = requests + 1 + (n if chart else 0)
        lam = gb_seconds * prices["lambdaArmGbSecond"] + invocations * prices["lambdaPerMillionRequests"] / 1e6
        sqs = 3 * prices["sqsPerMillionRequests"] / 1e6  # send, receive, delete
        writes, reads = 4 + 3 * n, polls + 2  # job put/claim/finish + ledger; per model: result, cost record, settle
        ddb = writes * prices["dynamodbPerMillionWriteUnits"] / 1e6 + reads * prices["dynamodbPerMillionReadUnits"] / 1e6
        s3 = files * prices["s3PutPer1000"] / 1000 + files * prices["s3GetPer1000"] / 1000
        # Outputs are read straight from S3 through their presigned links (one GET each, above).
        delivery = files * (output_kb / 1e6) * prices["s3DataTransferOutPerGb"]
        platform_cost = api + lam + sqs + ddb + s3 + delivery
        rows.append({"job": label, "modelUsd": model_cost, "platformUsd": platform_cost, "share": platform_cost / model_cost})
    return rows


def render(data: dict) -> str:
    lines = [
        "# Performance",
        "",
        f"Generated by `make bench` on {data['date']}: {data['machine']}; medians of {data['runs']} runs.",
        "Ratios are measured within one run so that machine noise cancels out.",
        "",
    ]
    sizes = {row["function"]: row for row in data["packages"]}
    in_use = (data.get("local") or {}).get("rssMb", {})
    memory = template_memory()
    lines += cold.section(data["coldstart"], data["before"], sizes, in_use, memory, data["environment"])
    lines += ["", *memory_choice(data["coldstart"], in_use, memory)]
    lines += [
        "",
        "## Fan-out",
        "",
        f"Wall time of a job of N models that each take L = {FANOUT_LATENCY:g} s, as a ratio to L.",
        "1.0 is the limit, and N would be serial calls. Goal: 1.15 or less.",
        "The overhead is the rest of the wall time: claiming the job, budgets, and per model its output",
        "(S3), cost record and result (DynamoDB). It is measured on moto, in the worker's own interpreter,",
        "where those requests take turns (moto is not thread-safe, and Python runs one thread at a time);",
        "in AWS each model's requests run beside the others'.",
        "",
        "| models N | wall / L | overhead (ms) |",
        "|---:|---:|---:|",
    ]
    lines += [f"| {row['models']} | {row['ratio']:.3f} | {row['overheadMs']:.0f} |" for row in data["fanout"]]
    if data.get("local"):
        local = data["local"]
        answers = ", ".join(f"{n} x {status}" for status, n in local["statuses"].items())
        if 429 in local["statuses"]:
            answers += "; the 429s are the dev stage's throttle, 20 requests/s with a burst of 40, at work"
        lines += [
            "",
            "## The local stack (emulator-bound)",
            "",
            "On ministack, one process on this machine: its figures measure the emulator, not AWS.",
            "",
            "| measure | value |",
            "|---|---:|",
            f"| submit-to-COMPLETED, one-model text job, p50 / p95 ({local['jobs']} jobs) "
            f"| {local['p50']:.2f} s / {local['p95']:.2f} s |",
            f"| GET /health, {local['requests']} requests at concurrency {local['concurrency']} | "
            f"{local['rps']:.0f} answers/s, {local['okRps']:.0f}/s of them 200 ({answers}) |",
        ]
    lines += ["", "## Idle cost per environment", "", "| environment | per month |", "|---|---:|"]
    lines += [f"| {env} | ${value['total']:.2f} |" for env, value in data["idle"]["environments"].items()]
    lines += [
        "",
        f"Line by line in the README's Cost section (prices of {data['idle']['pricesDate']}).",
        "",
        "## Platform overhead per job",
        "",
        "What API Gateway, Lambda, SQS, DynamoDB, S3 and CloudFront cost for one job, next to its model cost.",
        "Published prices: `infrastructure/prices.json`.",
        "The job: 500 input and 500 output tokens per text model, 5 status polls,",
        "a 3 s worker run at 512 MB, 2 KB outputs fetched once; a chart adds a 1 s render at 1024 MB and two more files.",
        "",
        "| job | model cost | platform cost | platform / model |",
        "|---|---:|---:|---:|",
    ]
    lines += [
        f"| {row['job']} | ${row['modelUsd']:.6f} | ${row['platformUsd']:.6f} | {row['share']:.1%} |" for row in data["overhead"]
    ]
    lines += [
        "",
        "The worker's run time is the largest platform line: it waits for the models.",
        "With the cheapest models the platform is a visible share; with larger models it is noise.",
    ]
    return "\n".join(lines) + "\n"


def memory_choice(rows: dict[str, dict], in_use: dict[str, float], memory: dict[str, int]) -> list[str]:
    """Why the templates' memory settings follow from the measured peaks."""
    api = [f for f in rows if f in cold.API]
    api_peak = max([rows[f]["rssMb"] for f in api] + [in_use.get(f, 0) for f in api])
    worker_peak = max(rows["WorkerFunction"]["rssMb"], in_use.get("WorkerFunction", 0))
    chart_peak = rows["ChartRendererFunction"].get("chartRssMb") or 0
    return [
        f"The settings leave room above the peaks: the API functions peak at {api_peak:.0f} MB and get "
        f"{memory[api[0]]} MB, not 128,",
        "because Lambda's CPU share is proportional to memory and init is CPU-bound (128 MB would halve it);",
        f"the worker peaks at {worker_peak:.0f} MB and gets {memory['WorkerFunction']} MB for image outputs held in memory",
        f"before upload and its model threads; the chart renderer peaks at {chart_peak:.0f} MB drawing a chart",
        f"and gets {memory['ChartRendererFunction']} MB (its render process may use 300 MB; more CPU ends a render sooner).",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=cold.MIN_RUNS)
    parser.add_argument("--skip-local", action="store_true", help="leave out the local-stack measures")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "performance.md")
    parser.add_argument("--before", type=Path, help="an earlier build's .aws-sam/local/build, measured in this run")
    args = parser.parse_args(argv)
    started = time.monotonic()
    data = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
        "runs": max(args.runs, cold.MIN_RUNS),
        "environment": cold.environment(),
        "coldstart": cold.measure(LOCAL_BUILD, args.runs),
        "before": cold.measure_before(args.before, args.runs) if args.before else cold.saved_before(),
        "packages": package_sizes(),
        "fanout": fanout(min(args.runs, 5)),
        "local": None if args.skip_local else local_stack(jobs=20, requests=200, concurrency=4),
        "idle": cost.report(),
        "overhead": overhead(),
    }
    text = render(data)
    args.out.write_text(text, encoding="utf-8")
    print(text)
    print(f"written to {args.out} in {time.monotonic() - started:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
