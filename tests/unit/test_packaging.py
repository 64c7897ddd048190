"""What goes into a function's package: each build target vendors the handler
the template names, and backend/precompile.py ships bytecode for the modules the
handler imports (its own beside their source, its dependencies' instead of it)."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from pathlib import Path

import pytest

from cfn_render import load

ROOT = Path(__file__).resolve().parents[2]
UV = ROOT / ".tools" / "uv" / "bin" / "uv"
VERSION = f"{sys.version_info.major}.{sys.version_info.minor}"


def build_targets() -> dict[str, tuple[str, str]]:
    """Function -> (the folder it copies, the handler module precompile imports), from backend/Makefile."""
    makefile = (ROOT / "backend" / "Makefile").read_text()
    found = re.findall(r"^build-(\w+):\n\t\$\(call (?:vendor|standalone|charts),([\w]+),([\w.]+)", makefile, flags=re.MULTILINE)
    return {function: (folder, module) for function, folder, module in found}


def test_every_function_is_built_with_the_handler_module_the_template_names():
    functions = {
        name: resource["Properties"]
        for name, resource in load("template.yaml")["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function"
    }
    targets = build_targets()
    assert set(targets) == set(functions)
    for function, (folder, module) in targets.items():
        assert functions[function]["Handler"] == f"{module}.handler", function
        assert module.split(".")[0] == folder, function


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small function package, built as the Makefile builds one: its own code
    (app/), a dependency it imports (dep/) and a dependency module it does not."""
    root = tmp_path_factory.mktemp("package")
    (root / "app").mkdir()
    (root / "app" / "__init__.py").write_text("")
    (root / "app" / "handler.py").write_text("import dep.used\n\n\ndef handler(event, context):\n    return dep.used.ANSWER\n")
    (root / "dep").mkdir()
    (root / "dep" / "__init__.py").write_text("")
    (root / "dep" / "used.py").write_text("ANSWER = 42\n\n\ndef fail():\n    raise ValueError('from the dependency')\n")
    (root / "dep" / "unused.py").write_text("VALUE = 1\n")
    command = [sys.executable, str(ROOT / "backend" / "precompile.py"), str(root), "--module", "app.handler"]
    command += ["--keep-source", "app", "--python-version", VERSION, "--python-platform", f"{platform.machine()}-manylinux2014"]
    # No boto3 to install (so no network): this package does not import it.
    (root / "runtime").mkdir()
    command += ["--runtime-path", str(root / "runtime")]
    done = subprocess.run(command, env=os.environ | {"UV": str(UV)}, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "app.handler: 2 modules of its own compiled beside their source, 2 of its dependencies" in done.stdout
    return root


def pyc_flags(path: Path) -> int:
    return int.from_bytes(path.read_bytes()[4:8], "little")


def test_own_code_keeps_its_source_with_hash_checked_bytecode_beside_it(package):
    assert (package / "app" / "handler.py").is_file()
    compiled = list((package / "app" / "__pycache__").glob("handler.cpython-*.pyc"))
    assert len(compiled) == 1
    assert pyc_flags(compiled[0]) == 0b11  # PEP 552: hash-based and checked, never a timestamp


def test_imported_dependencies_ship_as_bytecode_only_and_the_rest_untouched(package):
    assert not (package / "dep" / "used.py").exists()
    assert (package / "dep" / "used.pyc").is_file()
    assert (package / "dep" / "unused.py").is_file()
    assert not (package / "dep" / "unused.pyc").exists()


def test_the_package_runs_from_its_bytecode_with_lambda_paths_in_tracebacks(package):
    """Run as Lambda would: read-only in spirit (no bytecode written), the
    dependency's frames named under /var/task, and the handler's answer right."""
    script = (
        "import sys, traceback\n"
        "import app.handler, dep.used\n"
        "assert app.handler.handler({}, None) == 42\n"
        "assert app.handler.__cached__.endswith('.pyc')\n"
        "try:\n    dep.used.fail()\n"
        "except ValueError:\n    print(traceback.format_exc())\n"
    )
    env = {"PATH": os.environ["PATH"], "PYTHONDONTWRITEBYTECODE": "1", "PYTHONPATH": str(package)}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert 'File "/var/task/dep/used.py", line 5, in fail' in done.stdout
