"""The command-line client (python -m genstack) against the local stack,
configured from the outputs file `make local` writes: submit, follow each
model's progress, download the outputs; list, status, enhance; API errors
reported as `error CODE (status): message` with exit code 1."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import Deployment
from tests.templates import ROOT

pytestmark = pytest.mark.e2e


def genstack(deployment: Deployment, tmp_path, *args: str) -> subprocess.CompletedProcess[str]:
    outputs = tmp_path / "local.json"
    outputs.write_text(json.dumps({"apiUrl": deployment.api_url, "apiKey": deployment.api_key, "caBundle": deployment.ca_bundle}))
    command = [sys.executable, "-m", "genstack", "--outputs", str(outputs), *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False)


def test_generate_shows_progress_and_downloads_every_output(deployment, tmp_path):
    models = deployment.outputs["EnabledModelIds"].split(",")[:2]
    run = genstack(
        deployment,
        tmp_path,
        "generate",
        "a haiku about queues",
        *[a for m in models for a in ("--model", m)],
        "--out",
        str(tmp_path / "out"),
    )
    assert run.returncode == 0, run.stderr
    assert "queued (2 models)" in run.stderr
    for model in models:
        assert any(model in line and "SUCCEEDED" in line for line in run.stderr.splitlines()), model
    files = [line for line in run.stdout.splitlines() if line]
    assert len(files) == 2
    for path in files:
        assert (tmp_path / "out").as_posix() in path
        assert Path(path).read_text(encoding="utf-8").strip()
    job_id = files[0].split("/")[-2]
    listed = genstack(deployment, tmp_path, "jobs", "--limit", "5")
    assert job_id in listed.stdout
    status = json.loads(genstack(deployment, tmp_path, "status", job_id).stdout)
    assert status["status"] == "COMPLETED"
    enhanced = genstack(deployment, tmp_path, "enhance", "a cat")
    assert enhanced.returncode == 0
    assert enhanced.stdout.strip()


def test_api_errors_are_reported_with_their_code_and_exit_1(deployment, tmp_path):
    run = genstack(deployment, tmp_path, "generate", "x", "--model", "not-a-model")
    assert run.returncode == 1
    assert "error UNKNOWN_MODEL (400):" in run.stderr
    missing = genstack(deployment, tmp_path, "status", "00000000-0000-4000-8000-000000000000")
    assert missing.returncode == 1
    assert "(404)" in missing.stderr


def test_delete_and_templates(deployment, tmp_path):
    models = deployment.outputs["EnabledModelIds"].split(",")[:1]
    run = genstack(deployment, tmp_path, "generate", "one line on deletion", "--model", models[0], "--out", str(tmp_path / "o"))
    assert run.returncode == 0, run.stderr
    job_id = run.stdout.splitlines()[0].split("/")[-2]
    deleted = genstack(deployment, tmp_path, "delete", job_id)
    assert deleted.returncode == 0, deleted.stderr
    assert f"job {job_id} deleted (1 output versions removed)" in deleted.stderr
    assert "(404)" in genstack(deployment, tmp_path, "status", job_id).stderr
    shared = genstack(deployment, tmp_path, "templates", "--shared")
    assert shared.returncode == 0, shared.stderr
    usage = genstack(deployment, tmp_path, "usage")
    assert usage.returncode == 0, usage.stderr
    assert usage.stdout.startswith("tier standard, monthly budget $50")
    assert models[0] in usage.stdout  # the deleted job's call is still on the bill


def test_generate_sends_parameters_and_shows_a_refusal(deployment, tmp_path):
    run = genstack(
        deployment,
        tmp_path,
        "generate",
        "one line about queues",
        "--model",
        "amazon.nova-micro-v1:0",
        "--system",
        "Be terse.",
        "--param",
        "temperature=0.2",
        "--param",
        "amazon.nova-micro-v1:0:maxTokens=64",
        "--out",
        str(tmp_path / "out"),
    )
    assert run.returncode == 0, run.stderr
    refused = genstack(deployment, tmp_path, "generate", "x", "--model", "amazon.nova-micro-v1:0", "--param", "steps=25")
    assert refused.returncode == 1
    assert "error INVALID_REQUEST (400)" in refused.stderr
    assert "'steps' is not one it takes" in refused.stderr
