"""Ship bytecode for what a function imports at init, compiled by the runtime's Python.

Lambda's /var/task is read-only, so a package without .pyc files makes every cold
start compile each module it imports, and throw the result away: about 40% of the
functions' init time (make bench). This step, run by the Makefile after vendoring:

1. imports the handler module once, in a fresh interpreter of the target Python
   version, with the package first on sys.path and boto3 after it (as Lambda's
   /var/task and /var/runtime), and records the package's files it loaded;
2. compiles exactly those files with that interpreter:
   - the function's own code (--keep-source folders) beside its source, in
     __pycache__, hash-checked (PEP 552): used only while the source is unchanged;
   - the dependencies' modules to bytecode only (the .pyc replaces the .py), as
     Datadog ships its Lambda layer: their source is the pinned wheel's, a
     traceback through them shows file and line without the line's text.

Only the imported modules, and dependencies without their source: an API package
is 4.2 MB zipped without bytecode; bytecode for every module would make it about
7 MB, for the imported ones beside their source 5.4 MB, and as done here 4.7 MB
(the goal is 5 MB). Hash-checked, not timestamped: SAM writes zip entries without
dates, so a timestamp .pyc would never be valid in Lambda.

When the target platform is not this machine's (arm64 packages built on x86_64),
the import runs on a twin of the package installed for this machine: the same
pinned versions, whose pure-Python files are the same. Without an interpreter of
the target version here, the package ships without bytecode and this says so.

  python3 precompile.py DIR --module status.app --keep-source shared --keep-source status \
      --python-version 3.13 --python-platform aarch64-manylinux2014 -r requirements.txt [-r ...]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

# The import, run by the target interpreter. Its environment is Lambda's as far
# as the handlers read it at import (LAMBDA_TASK_ROOT and the function's name).
TRACE = """
import importlib, json, sys
root, runtime, module = sys.argv[1:4]
sys.path[:0] = [root]
sys.path.append(runtime)
importlib.import_module(module)
files = sorted({
    m.__file__ for m in list(sys.modules.values())
    if isinstance(getattr(m, "__file__", None), str) and m.__file__.startswith(root + "/") and m.__file__.endswith(".py")
})
print(json.dumps([f[len(root) + 1:] for f in files]))
"""
LAMBDA_ENV = {
    "AWS_LAMBDA_FUNCTION_NAME": "precompile",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "POWERTOOLS_SERVICE_NAME": "genstack",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("package", type=Path, help="the function's artifacts directory")
    parser.add_argument("--module", required=True, help="the handler module, e.g. status.app")
    parser.add_argument("--python-version", required=True)
    parser.add_argument("--python-platform", required=True)
    parser.add_argument("-r", dest="requirements", action="append", default=[], type=Path)
    parser.add_argument("--keep-source", action="append", default=[], help="a folder of the function's own code (repeatable)")
    parser.add_argument("--runtime-path", type=Path, help="a folder with boto3 for the target Python (default: install one)")
    args = parser.parse_args()
    uv = os.environ.get("UV", "uv")
    package = args.package.resolve()

    python = find_python(uv, args.python_version)
    if python is None:
        print(
            f"precompile: no Python {args.python_version} on this machine; {package.name} ships without bytecode "
            f"(each cold start compiles it). Install one with: uv python install {args.python_version}",
            file=sys.stderr,
        )
        return 0

    host_platform = f"{platform.machine()}-manylinux2014"
    with tempfile.TemporaryDirectory(prefix="genstack-precompile-") as scratch:
        scratch_dir = Path(scratch)
        runtime = args.runtime_path or scratch_dir / "runtime"  # what the Lambda runtime provides: boto3
        if args.runtime_path is None:
            install(uv, ["boto3"], runtime, args.python_version, host_platform, with_deps=True)
        if args.python_platform == host_platform:
            root = package
        else:
            root = scratch_dir / "twin"
            install(uv, [a for r in args.requirements for a in ("-r", str(r))], root, args.python_version, host_platform)
            for entry in package.iterdir():  # the function's own code, beside its dependencies
                if not (root / entry.name).exists():
                    copy = shutil.copytree if entry.is_dir() else shutil.copy2
                    copy(entry, root / entry.name)
        env = {"PATH": os.environ.get("PATH", ""), "LAMBDA_TASK_ROOT": str(root)} | LAMBDA_ENV
        # -I: none of this machine's PYTHON* settings; -B: the import writes no
        # (timestamp) .pyc of its own for compileall to take as up to date.
        traced = subprocess.run(
            [python, "-I", "-B", "-c", TRACE, str(root), str(runtime), args.module],
            env=env,
            cwd=scratch,
            capture_output=True,
            text=True,
        )
        if traced.returncode != 0:
            print(traced.stderr, file=sys.stderr)
            raise SystemExit(f"precompile: {args.module} does not import in Python {args.python_version}")
        files = [package / f for f in json.loads(traced.stdout) if (package / f).is_file()]
        own = [f for f in files if f.relative_to(package).parts[0] in args.keep_source]
        dependencies = [f for f in files if f not in own]
        # Recorded as /var/task/... (where Lambda unpacks the package), not this
        # build's path: tracebacks read as in Lambda and the bytes are the same
        # on every machine, so an unchanged function is not redeployed.
        common = ["-q", "-f", "--invalidation-mode", "checked-hash", "-s", str(package), "-p", "/var/task"]
        compile_files(python, own, common, scratch_dir / "own.txt")
        compile_files(python, dependencies, [*common, "-b"], scratch_dir / "dependencies.txt")
        for source in dependencies:
            source.unlink()  # its bytecode, beside it (-b), is what Python loads now
    print(
        f"precompile: {args.module}: {len(own)} modules of its own compiled beside their source, {len(dependencies)} "
        f"of its dependencies to bytecode only, by Python {args.python_version} ({python})"
    )
    return 0


def compile_files(python: str, files: list[Path], options: list[str], listing: Path) -> None:
    listing.write_text("".join(f"{f}\n" for f in files))
    subprocess.run([python, "-I", "-m", "compileall", *options, "-i", str(listing)], check=True, stdout=subprocess.DEVNULL)


def find_python(uv: str, version: str) -> str | None:
    """An interpreter of the version: one uv knows (managed, or on PATH), else a pyenv install."""
    found = subprocess.run([uv, "python", "find", "--no-project", version], capture_output=True, text=True)
    if found.returncode == 0 and found.stdout.strip():
        return found.stdout.strip()
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    installs = sorted(pyenv.glob(f"{version}.*/bin/python{version}"))  # any patch release: one bytecode format
    return str(installs[-1]) if installs else None


def install(uv: str, requirements: list[str], target: Path, version: str, python_platform: str, *, with_deps=False):
    command = [uv, "pip", "install", "--quiet", "--only-binary", ":all:", "--target", str(target)]
    command += ["--python-version", version, "--python-platform", python_platform]
    command += ([] if with_deps else ["--no-deps"]) + requirements
    subprocess.run(command, check=True)


if __name__ == "__main__":
    sys.exit(main())
