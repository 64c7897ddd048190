"""make bench's cold start: each function's init against its boto3 baseline,
three ways, all on the built packages with the emulator's interpreter:

  wall clock     seconds, in fresh interpreters, handler and baseline runs
                 alternated (and which goes first alternates), medians of at
                 least MIN_RUNS; refused unless both imported from bytecode
  instructions   the same two runs counted by callgrind (instructions.py): the
                 same count whatever the machine is doing
  where it goes  -X importtime of the handler, less the baseline's imports,
                 by package (importcost.py)

`measure(build)` does all three for one build; with `--before DIR` make bench
also measures an earlier build in the same run, and keeps that in
bench/before.json for later runs to show beside their own.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
from pathlib import Path

import importcost
import instructions
from coldstart import invocation

ROOT = Path(__file__).resolve().parents[1]
MINISTACK_PY = ROOT / ".tools" / "ministack" / "bin" / "python"
BEFORE = ROOT / "bench" / "before.json"
MIN_RUNS = 9
FUNCTIONS = {
    # function: (handler module, the clients it creates)
    "GenerateFunction": ("generate.app", "dynamodb,sqs"),
    "StatusFunction": ("status.app", "dynamodb"),
    "EnhanceFunction": ("enhance.app", "dynamodb,bedrock-runtime"),
    "TemplatesFunction": ("prompt_templates.app", "dynamodb"),
    "WorkerFunction": ("worker.app", "dynamodb,s3,bedrock-runtime"),
    "DeadLetterFunction": ("worker.dead_letter", "dynamodb"),
    "SweeperFunction": ("worker.sweeper", "dynamodb,sqs"),
    "OpenAiFunction": ("openai_api.app", "dynamodb,bedrock-runtime"),
    "ChartRendererFunction": ("chart_renderer.app", ""),  # no boto3: no baseline to compare with
}
API = ("GenerateFunction", "StatusFunction", "EnhanceFunction", "TemplatesFunction", "OpenAiFunction")
LAMBDA_ENV = {
    # As in Lambda, with LAMBDA_TASK_ROOT set per function.
    "AWS_LAMBDA_FUNCTION_NAME": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "POWERTOOLS_SERVICE_NAME": "genstack",
    "POWERTOOLS_METRICS_NAMESPACE": "genstack/bench",
    "ENABLED_MODELS": "amazon.nova-micro-v1:0,amazon.nova-lite-v1:0",
    "PYDANTIC_DISABLE_PLUGINS": "__all__",  # as template.yaml's Globals set it
}


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | LAMBDA_ENV


def wall_clock(build: Path, runs: int) -> dict[str, dict]:
    """Each function's init and its baseline's, alternated, medians."""
    rows = {}
    for function, (module, clients) in functions_in(build).items():
        samples: dict[bool, list[dict]] = {False: [], True: []}
        kinds = (True, False) if clients else (False,)
        for run in range(max(runs, MIN_RUNS)):
            for baseline in kinds if run % 2 == 0 else kinds[::-1]:
                command, run_env = invocation(str(MINISTACK_PY), build / function, module, clients, env(), baseline=baseline)
                if function == "ChartRendererFunction":
                    command.append("--chart")  # after the timing: the peak of a chart's rendering
                done = subprocess.run(command, env=run_env, capture_output=True, text=True, check=True, timeout=120)
                sample = json.loads(done.stdout.strip().splitlines()[-1])
                if not all(sample["bytecode"].values()):
                    raise SystemExit(
                        f"{function}: imported without bytecode ({sample['bytecode']}): like is not compared with like. "
                        "Rebuild (make build) and reinstall the emulator's environment (rm -rf .tools/ministack; make install)."
                    )
                samples[baseline].append(sample)
        handler = statistics.median(s["seconds"] for s in samples[False])
        floor = statistics.median(s["seconds"] for s in samples[True]) if clients else None
        rows[function] = {
            "initMs": handler * 1000,
            "baselineMs": floor * 1000 if floor else None,
            "ratio": handler / floor if floor else None,
            "rssMb": statistics.median(s["rssMb"] for s in samples[False]),
            "chartRssMb": statistics.median(s.get("chartRssMb", 0) for s in samples[False]) or None,
        }
    return rows


def functions_in(build: Path) -> dict[str, tuple[str, str]]:
    return {f: spec for f, spec in FUNCTIONS.items() if (build / f).is_dir()}


def measure(build: Path, runs: int) -> dict[str, dict]:
    """Wall clock, instructions and top import costs of every function in `build`."""
    functions = functions_in(build)
    rows = wall_clock(build, runs)
    counted = instructions.ratios(str(MINISTACK_PY), build, functions, env())
    for function, (module, clients) in functions.items():
        rows[function] |= {"instructions": counted.get(function, {})}
        if clients:
            costs = importcost.top_costs(str(MINISTACK_PY), build / function, module, clients, env())
            rows[function] |= {"importMs": costs["extraMs"], "top": costs["groups"][:6]}
    return rows


def measure_before(build: Path, runs: int) -> dict:
    """An earlier build, measured in this run, and kept in bench/before.json."""
    commit = subprocess.run(["git", "-C", str(build), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    before = {"commit": commit.stdout.strip() or "?", "functions": measure(build, runs)}
    BEFORE.write_text(json.dumps(before, indent=1) + "\n", encoding="utf-8")
    return before


def saved_before() -> dict | None:
    return json.loads(BEFORE.read_text()) if BEFORE.is_file() else None


def environment() -> dict[str, str]:
    """What the cold starts were measured with, printed beside them."""
    probe = (
        "import sys, platform, os, boto3, botocore; "
        "print(sys.version.split()[0], platform.machine(), boto3.__version__, botocore.__version__, "
        "os.path.isfile(botocore.__cached__))"
    )
    version, machine, boto3_version, botocore_version, compiled = subprocess.run(
        [str(MINISTACK_PY), "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()
    cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
    cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "?")
    return {
        "interpreter": f"{MINISTACK_PY.relative_to(ROOT)}, Python {version} ({machine}), the emulator's",
        "boto3": f"boto3 {boto3_version}, botocore {botocore_version}, from bytecode: {'yes' if compiled == 'True' else 'NO'}",
        "machine": f"{cpu}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at the start",
        "PYTHONDONTWRITEBYTECODE": os.environ.get("PYTHONDONTWRITEBYTECODE", "(unset)"),
    }


def _ratio(value: float | None) -> str:
    return f"{value:.2f}" if value else "–"


def _beyond(row: dict) -> str:
    counted = row.get("instructions") or {}
    if not counted.get("baselineM"):
        return "–"
    return f"{counted['handlerM'] - counted['baselineM']:.0f}"


def _shares(row: dict) -> str:
    if not row.get("top") or not row.get("importMs"):
        return "–"
    return ", ".join(f"{name} {ms / row['importMs']:.0%}" for name, ms in row["top"])


def section(now: dict, before: dict | None, sizes: dict, in_use: dict, memory: dict, measured_with: dict) -> list[str]:
    """The cold start part of docs/performance.md."""
    was = (before or {}).get("functions", {})
    label = f"before ({before['commit']})" if before else "before"
    lines = [
        "## Cold start, memory and package size",
        "",
        "Init is the import of the handler module plus creating its clients, in a fresh interpreter, as in Lambda;",
        "the baseline imports boto3 and creates the same clients (what any Python function on boto3 pays). Both",
        "come from bytecode (the local build carries it as the AWS build does, backend/precompile.py; the",
        "emulator's boto3 is installed with it), are run by the same interpreter with Lambda's LAMBDA_TASK_ROOT,",
        f"alternately, and the wall-clock figures are medians of at least {MIN_RUNS} runs. The instruction ratio counts",
        'the same two runs with callgrind (valgrind; "–" without it): it does not move with the machine\'s load,',
        "which moves wall-clock medians by up to a quarter here from one run to the next.",
        "",
        *[f"- {name}: {value}" for name, value in measured_with.items()],
        "",
        "Goals: API functions 1.20 or less, the worker 1.15 or less (the instruction ratio); API packages 5 MB",
        "or less zipped, the worker under 10 MB; Lambda's limits are 50 MB zipped, 250 MB unzipped.",
        f"{label}: the same measures of the earlier build, from bench/before.json.",
        "Package: the AWS build (Python 3.13, arm64). Peak RSS in use: the function's process in the local stack",
        "after the benchmark's jobs and requests; for the chart renderer, a chart's rendering (its render process",
        "included). The memory setting is prod's; Lambda gives CPU in proportion to it.",
        "",
        f"| function | init (ms) | baseline (ms) | ratio | instruction ratio | {label}: instruction ratio "
        "| peak RSS after init (MB) | peak RSS in use (MB) | memory setting (MB) | zipped (MB) | unzipped (MB) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for function, row in now.items():
        size, old = sizes[function], was.get(function, {})
        used = f"{in_use[function]:.0f}" if function in in_use else "n/a"
        if row.get("chartRssMb"):
            used = f"{row['chartRssMb']:.0f} (a chart)"
        baseline = f"{row['baselineMs']:.0f}" if row["baselineMs"] else "–"
        lines.append(
            f"| {function} | {row['initMs']:.0f} | {baseline} | {_ratio(row['ratio'])} | "
            f"{_ratio(row['instructions'].get('ratio'))} | {_ratio(old.get('instructions', {}).get('ratio'))} | "
            f"{row['rssMb']:.0f} | {used} | {memory[function]} | {size['zippedMb']:.2f} | {size['unzippedMb']:.1f} |"
        )
    lines += [
        "",
        "### Where init goes",
        "",
        "Beyond the baseline: the handler's init less the baseline's, in millions of instructions (callgrind). The",
        "shares: `python -X importtime` of the handler from its built package, each module's own time summed by",
        "package (genstack's code by module), for the modules the baseline does not import, as a share of their",
        "sum (medians of 3 runs; shares, because the milliseconds move with the machine). A module's own time",
        "includes what runs while it executes: building pydantic models and dataclasses, garbage collection.",
        "",
        f"| function | beyond the baseline (M instructions) | {label} | largest shares now | largest shares {label} |",
        "|---|---:|---:|---|---|",
    ]
    for function, row in now.items():
        if "top" not in row:
            continue
        old = was.get(function, {})
        lines.append(f"| {function} | {_beyond(row)} | {_beyond(old)} | {_shares(row)} | {_shares(old)} |")
    return lines
