"""What ships: the built function packages (`make build`), not the source tree.

The local packages are imported each on its own in a fresh interpreter, the
emulator's, as Lambda would. The AWS packages (Python 3.13, arm64 wheels)
cannot load on this machine; their contents, wheel tags and sizes are checked."""

from __future__ import annotations

import io
import os
import subprocess
import zipfile
from pathlib import Path

import pytest

from tests.templates import FUNCTIONS as EXPECTED_FUNCTIONS
from tests.templates import ROOT, resources_of_type, root

FUNCTIONS = {
    logical_id: fn["Properties"]["Handler"] for logical_id, fn in resources_of_type(root(), "AWS::Serverless::Function").items()
}
API_FUNCTIONS = ("GenerateFunction", "StatusFunction", "EnhanceFunction", "OpenAiFunction")
# the API handlers: pydantic validates their input
VALIDATING = {"generate", "status", "enhance", "prompt_templates", "openai_api"}
# The /v1 authorizer (the standard library and its own module) and the chart
# renderer (its own modules and vl-convert): nothing shared, no Powertools.
STANDALONE = {"AuthorizerFunction", "ChartRendererFunction"}
PACKAGED = {f: h for f, h in FUNCTIONS.items() if f not in STANDALONE}
MINISTACK_PY = ROOT / ".tools" / "ministack" / "bin" / "python"
PYTHON_313_MAGIC = (3571).to_bytes(2, "little") + b"\r\n"  # importlib.util.MAGIC_NUMBER of CPython 3.13


def package(target: str, function: str) -> Path:
    path = ROOT / ".aws-sam" / target / "build" / function
    if not path.is_dir():
        pytest.fail(f"{path} is missing: run `make build` first")
    return path


def zipped_size(path: Path) -> int:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in sorted(path.rglob("*")):
            if file.is_file():
                archive.write(file, file.relative_to(path))
    return buffer.tell()


def test_every_function_is_built():
    assert set(FUNCTIONS) == EXPECTED_FUNCTIONS


@pytest.mark.parametrize(("function", "handler"), PACKAGED.items())
def test_local_package_imports_on_its_own(function, handler, tmp_path):
    module, attribute = handler.rsplit(".", 1)
    # Imported as Lambda imports it, from the bytecode the build compiled (the
    # dependencies' modules without their source), and without what init must
    # not load: Jinja2 anywhere, pydantic outside the functions that validate bodies.
    unwanted = ["jinja2"] + ([] if module.split(".")[0] in VALIDATING else ["pydantic"])
    code = (
        f"import sys; sys.path.insert(0, {str(package('local', function))!r}); "
        "import gc; "
        f"import {module} as m; assert callable(m.{attribute}); "
        # the collector, off while the module loaded, is on again with init's objects frozen (shared.gc_init)
        "assert gc.isenabled() and gc.get_freeze_count() > 10000, gc.get_freeze_count(); "
        "import shared; assert shared.__file__.startswith(sys.path[0]), shared.__file__; "
        "import aws_lambda_powertools as p; assert p.__file__.endswith('__init__.pyc'), p.__file__; "
        "import os; assert os.path.isfile(m.__cached__), m.__cached__; "
        f"loaded = [name for name in {unwanted!r} if name in sys.modules]; assert not loaded, loaded"
    )
    env = {
        "PATH": os.environ["PATH"],
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_SERVICE_NAME": "genstack",
        "POWERTOOLS_METRICS_NAMESPACE": "genstack",
    }
    # -I: no PYTHONPATH, no user site, no current directory on sys.path.
    result = subprocess.run(
        [str(MINISTACK_PY), "-I", "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("target", ["local", "aws"])
def test_the_authorizer_ships_its_module_alone_and_imports_nothing_else(target, tmp_path):
    path = package(target, "AuthorizerFunction")
    assert sorted(str(f.relative_to(path)) for f in path.rglob("*") if f.is_file()) == [
        "authorizer/__init__.py",
        "authorizer/app.py",
    ]
    code = (
        f"import sys; sys.path.insert(0, {str(path)!r}); before = set(sys.modules); "
        "import authorizer.app as m; assert callable(m.handler); "
        "heavy = {'boto3', 'botocore', 'aws_lambda_powertools', 'shared', 'pydantic', 'urllib3', 'aws_xray_sdk'}; "
        "loaded = sorted(heavy & {n.split('.')[0] for n in sys.modules}); assert not loaded, loaded"
    )
    result = subprocess.run([str(MINISTACK_PY), "-I", "-c", code], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(("function", "handler"), PACKAGED.items())
def test_aws_package_holds_its_code_and_target_wheels_only(function, handler):
    path = package("aws", function)
    module_file = path / (handler.rsplit(".", 1)[0].replace(".", "/") + ".py")
    assert module_file.is_file()
    assert (path / "shared" / "registry.json").is_file()
    assert not (path / "boto3").exists()  # the Lambda runtime provides boto3
    assert not (path / "botocore").exists()
    others = {"generate", "status", "enhance", "worker", "prompt_templates", "openai_api", "authorizer", "chart_renderer"} - {
        handler.split(".")[0]
    }
    assert not any((path / other).exists() for other in others), "another function's code was packaged"
    (binary,) = (path / "pydantic_core").glob("_pydantic_core.*.so")
    assert "cpython-313-aarch64-linux-gnu" in binary.name


@pytest.mark.parametrize(("function", "handler"), PACKAGED.items())
def test_aws_package_carries_the_runtime_pythons_bytecode_for_its_init(function, handler):
    """Compiled by Python 3.13 (the runtime's): the handler's own module beside its
    source and hash-checked, the dependencies' imported modules instead of theirs."""
    path = package("aws", function)
    module_dir = path / handler.split(".")[0]
    (compiled,) = (module_dir / "__pycache__").glob(handler.split(".")[1] + ".cpython-313.pyc")
    header = compiled.read_bytes()[:8]
    assert header[:4] == PYTHON_313_MAGIC
    assert int.from_bytes(header[4:8], "little") == 0b11  # PEP 552: checked hash (SAM zips carry no dates)
    powertools = path / "aws_lambda_powertools"
    assert (powertools / "__init__.pyc").read_bytes()[:4] == PYTHON_313_MAGIC
    assert not (powertools / "__init__.py").exists()
    assert (powertools / "utilities" / "streaming" / "__init__.py").is_file()  # not imported: left as it came


@pytest.mark.parametrize("function", API_FUNCTIONS)
def test_api_packages_stay_small(function):
    size = zipped_size(package("aws", function))
    assert size <= 5 * 1024 * 1024, f"{function} is {size / 1e6:.1f} MB zipped"


def test_the_worker_package_carries_only_its_jobs_code():
    """Text and image jobs never draw: vl-convert ships in the chart renderer alone."""
    size = zipped_size(package("aws", "WorkerFunction"))
    assert size < 10 * 1024 * 1024, f"WorkerFunction is {size / 1e6:.1f} MB zipped"


def test_only_the_chart_renderer_ships_vl_convert():
    assert (package("aws", "ChartRendererFunction") / "vl_convert").is_dir()
    for function in sorted(EXPECTED_FUNCTIONS - {"ChartRendererFunction"}):
        assert not (package("aws", function) / "vl_convert").exists(), function


@pytest.mark.parametrize("target", ["local", "aws"])
def test_the_chart_renderer_ships_its_modules_and_vl_convert_alone(target):
    path = package(target, "ChartRendererFunction")
    tops = {f.name for f in path.iterdir() if not f.name.endswith(".dist-info")}
    assert tops == {"chart_renderer", "vl_convert"}
    own = path / "chart_renderer"
    assert {f.name for f in own.glob("*.py")} == {"__init__.py", "app.py", "render.py", "sandbox.py"}
    tag = "cpython-313" if target == "aws" else "cpython-311"
    assert (own / "__pycache__" / f"app.{tag}.pyc").is_file()  # its init, compiled by the runtime's Python
    if target == "aws":  # the arm64 wheel: the ELF header's machine is AArch64 (183)
        (binary,) = (path / "vl_convert").glob("*.so")
        assert int.from_bytes(binary.read_bytes()[18:20], "little") == 183


def test_the_local_chart_renderer_package_renders_a_chart(tmp_path):
    """In the renderer's package alone (as Lambda runs it): its handler imports
    nothing beyond the standard library, and its render process finds
    vl-convert in the package, with nothing of this environment."""
    code = (
        f"import sys; sys.path.insert(0, {str(package('local', 'ChartRendererFunction'))!r}); "
        "import chart_renderer.app as m; "
        "heavy = {'boto3', 'botocore', 'aws_lambda_powertools', 'shared', 'pydantic', 'vl_convert'}; "
        "loaded = sorted(heavy & {n.split('.')[0] for n in sys.modules}); assert not loaded, loaded; "
        "a = m.handler({'spec': {'mark': 'bar', 'data': {'values': [{'a': 1}]}, "
        "'encoding': {'y': {'field': 'a', 'type': 'quantitative'}}}, "
        "'limits': {'maxSide': 2000, 'maxSvgBytes': 8388608, 'scale': 2}}, None); "
        "import base64, gzip; assert a['ok'], a; assert base64.b64decode(a['png']).startswith(b'\\x89PNG'); "
        "assert b'<svg' in gzip.decompress(base64.b64decode(a['svgGzip']))"
    )
    result = subprocess.run([str(MINISTACK_PY), "-I", "-c", code], cwd=tmp_path, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
