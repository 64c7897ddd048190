"""Instructions, not seconds: cold starts counted by valgrind (callgrind), which
gives the same count for the same code and inputs whatever else the machine
is doing. On a shared, noisy machine the wall-clock medians of run.py move by
a quarter from one run to the next; these do not.

Each function's init is the instructions of coldstart.py importing its handler
and creating its clients, less those of coldstart.py importing nothing (the
interpreter's start and the script's own imports); its baseline's likewise.
PYTHONHASHSEED is fixed, so that dict and set orders, and so the counts,
repeat. User-space instructions only: the kernel's work (file lookups, reads)
is not counted, and a cache miss costs as much as a hit.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from coldstart import invocation

REFS = re.compile(r"Collected : (\d+)")


def count(python: str, package: Path, module: str, clients: str, env: dict, *, baseline: bool) -> int:
    """Instructions of one run of coldstart.py (see its usage)."""
    command, run_env = invocation(python, package, module, clients, env | {"PYTHONHASHSEED": "0"}, baseline=baseline)
    with tempfile.TemporaryDirectory(prefix="genstack-callgrind-") as scratch:
        valgrind = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={scratch}/out"]
        done = subprocess.run(valgrind + command, env=run_env, capture_output=True, text=True, check=False, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"{module} under callgrind exited {done.returncode}: {done.stderr[-1500:]}")
    found = REFS.search(done.stderr)
    if not found:
        raise RuntimeError(f"callgrind printed no count: {done.stderr[-500:]}")
    return int(found.group(1))


def ratios(python: str, build: Path, functions: dict[str, tuple[str, str]], env: dict) -> dict[str, dict]:
    """Per function: its init's and its baseline's instructions (millions) and their ratio;
    none without valgrind (Debian's valgrind package), which make bench then says."""
    if shutil.which("valgrind") is None:
        return {}
    jobs: dict[tuple[str, str], tuple] = {}
    # A baseline without clients imports nothing: the interpreter and the script alone.
    jobs[("", "empty")] = (python, build / next(iter(functions)), "", "", env)
    for function, (module, clients) in functions.items():
        jobs[(function, "handler")] = (python, build / function, module, clients, env)
        if clients:
            jobs[(function, "baseline")] = (python, build / function, module, clients, env)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        futures = {key: pool.submit(count, *args, baseline=key[1] != "handler") for key, args in jobs.items()}
        counts = {key: future.result() for key, future in futures.items()}
    empty = counts[("", "empty")]
    found = {}
    for function, (_, clients) in functions.items():
        handler = counts[(function, "handler")] - empty
        baseline = counts[(function, "baseline")] - empty if clients else None
        found[function] = {
            "handlerM": handler / 1e6,
            "baselineM": baseline / 1e6 if baseline else None,
            "ratio": handler / baseline if baseline else None,
        }
    return found
