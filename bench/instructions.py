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

REFS = re.compile(r"Collected : (\d+)")


def count(python: str, coldstart: Path, package: Path, module: str, clients: str, env: dict, *, baseline: bool) -> int:
    """Instructions of one run of coldstart.py (see its usage)."""
    with tempfile.TemporaryDirectory(prefix="genstack-callgrind-") as scratch:
        command = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={scratch}/out", python, str(coldstart)]
        command += ["--package", str(package), "--module", module, "--clients", clients]
        command += ["--baseline"] if baseline else []
        run_env = env | {"LAMBDA_TASK_ROOT": str(package), "PYTHONHASHSEED": "0"}
        done = subprocess.run(command, env=run_env, capture_output=True, text=True, check=False, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"{module} under callgrind exited {done.returncode}: {done.stderr[-1500:]}")
    found = REFS.search(done.stderr)
    if not found:
        raise RuntimeError(f"callgrind printed no count: {done.stderr[-500:]}")
    return int(found.group(1))


def ratios(python: str, root: Path, build: Path, functions: dict[str, tuple[str, str]], env: dict) -> dict[str, dict]:
    """Per function: its init's and its baseline's instructions (millions) and their ratio;
    none without valgrind (Debian's valgrind package), which make bench then says."""
    if shutil.which("valgrind") is None:
        return {}
    coldstart = root / "bench" / "coldstart.py"
    jobs: dict[tuple[str, str], tuple] = {}
    any_package = build / next(iter(functions))
    jobs[("", "empty")] = (python, coldstart, any_package, "json", "", env)
    for function, (module, clients) in functions.items():
        jobs[(function, "handler")] = (python, coldstart, build / function, module, clients, env)
        if clients:
            jobs[(function, "baseline")] = (python, coldstart, build / function, module, clients, env)
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
