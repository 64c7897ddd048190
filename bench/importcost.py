"""Where a handler's init goes: `python -X importtime` of its built package, as
Lambda imports it, less what the boto3 baseline imports too.

Each module's own time (not its imports') is summed by where it comes from: a
top-level package (pydantic, asyncio), Powertools by sub-package
(aws_lambda_powertools.event_handler), genstack's own code by module
(shared.models). A module's own time includes what runs while it executes:
building pydantic models, dataclasses, and any garbage collection then.
Medians of `runs` runs, in milliseconds.
"""

from __future__ import annotations

import collections
import json
import re
import statistics
import subprocess
from pathlib import Path

from coldstart import invocation

LINE = re.compile(r"import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)")
OWN = ("shared", "generate", "status", "enhance", "prompt_templates", "worker", "openai_api", "chart_renderer")


def group(module: str) -> str:
    parts = module.split(".")
    if parts[0] == "aws_lambda_powertools":
        return ".".join(parts[:2])
    if parts[0] in OWN:
        return ".".join(parts[:2])
    return parts[0]


def imported(python: str, package: Path, module: str, clients: str, env: dict, baseline: bool) -> dict:
    command, run_env = invocation(python, package, module, clients, env, baseline=baseline, flags=("-X", "importtime"))
    done = subprocess.run(command, env=run_env, capture_output=True, text=True, check=True)
    times = {m.group(2): int(m.group(1)) for m in map(LINE.match, done.stderr.splitlines()) if m}
    return {"modules": times, "seconds": json.loads(done.stdout.splitlines()[-1])["seconds"]}


def top_costs(python: str, package: Path, module: str, clients: str, env: dict, runs: int = 3) -> dict:
    """The handler's imports beyond the baseline's, by group, largest first."""
    base_modules: set[str] = set()
    own: dict[str, list[int]] = collections.defaultdict(list)
    for _ in range(runs):
        if clients:
            base_modules |= set(imported(python, package, module, clients, env, baseline=True)["modules"])
        for name, micros in imported(python, package, module, clients, env, baseline=False)["modules"].items():
            own[name].append(micros)
    by_group: collections.Counter = collections.Counter()
    for name, samples in own.items():
        if name not in base_modules:
            by_group[group(name)] += statistics.median(samples) / 1000
    return {"extraMs": sum(by_group.values()), "groups": by_group.most_common()}


if __name__ == "__main__":  # python bench/importcost.py BUILD_DIR FUNCTION MODULE CLIENTS
    import sys

    import cold  # the environment make bench measures in

    build, function, module, clients = sys.argv[1:5]
    found = top_costs(str(cold.MINISTACK_PY), Path(build) / function, module, clients, cold.env())
    print(f"{function}: {found['extraMs']:.0f} ms beyond the baseline's imports")
    for name, ms in found["groups"][:15]:
        print(f"  {name:45} {ms:6.1f}")
