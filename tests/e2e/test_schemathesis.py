"""schemathesis against the local stack's API over HTTPS, from the published
OpenAPI description (docs/openapi.json, generated from the handlers): every
operation, its coverage, fuzzing and stateful phases, with a key of its own.
The property: no request, however malformed, gets a 5xx."""

from __future__ import annotations

import re
import subprocess

import pytest

from tests.e2e.conftest import Deployment, new_key
from tests.templates import ROOT

pytestmark = pytest.mark.e2e
ST = ROOT / ".tools" / "schemathesis" / "bin" / "st"


def fuzz(deployment: Deployment, tmp_path, url: str, headers: list[str], paths: list[str]) -> int:
    """schemathesis over the operations `paths` selects, at `url`; returns how many requests passed."""
    if not ST.exists():
        subprocess.run(["bash", str(ROOT / "infrastructure/scripts/install.sh"), "--tools", "schemathesis"], check=True)
    report = tmp_path / "schemathesis.xml"
    command = [str(ST), "run", str(ROOT / "docs/openapi.json"), "--url", url, *paths]
    for header in headers:
        command += ["-H", header]
    command += ["--checks", "not_a_server_error", "--max-examples", "20", "--seed", "2026", "--rate-limit", "8/s"]
    command += ["--tls-verify", deployment.ca_bundle, "--report", "junit", "--report-junit-path", str(report)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    summary = re.search(r"(\d+) generated, (\d+) passed", done.stdout)
    print(f"\nschemathesis: {summary.group(0) if summary else done.stdout[-500:]}")
    assert done.returncode == 0, done.stdout[-3000:]
    assert summary is not None
    generated, passed = map(int, summary.groups())
    assert generated == passed
    assert 'failures="0"' in report.read_text()
    return passed


def test_no_generated_request_gets_a_server_error(deployment: Deployment, tmp_path):
    key = new_key(deployment)  # its own daily quota: the other tests keep theirs
    passed = fuzz(deployment, tmp_path, deployment.api_url, [f"x-api-key: {key}"], ["--exclude-path-regex", "^/v1/"])
    assert passed > 100


def test_no_generated_request_to_the_openai_routes_gets_a_server_error(deployment: Deployment, tmp_path):
    """The /v1 routes, on their own API (the description's paths start at /v1)."""
    key = new_key(deployment)
    base = deployment.openai_url.removesuffix("/v1")
    # Both headers: the emulator reads the key from x-api-key (test_v1_openai_sdk.py).
    headers = [f"Authorization: Bearer {key}", f"x-api-key: {key}"]
    assert fuzz(deployment, tmp_path, base, headers, ["--include-path-regex", "^/v1/"]) > 20
