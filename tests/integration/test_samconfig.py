"""`sam deploy --config-env ENV`, as the README documents it, asked of the real
SAM CLI (.tools/sam): each section of samconfig.toml makes it deploy the
template build.sh writes for AWS, never the unbuilt template.yaml. It is
pointed at a closed local port, so it stops at its first AWS call."""

from __future__ import annotations

import os
import subprocess

import pytest

from tests.templates import ROOT

SAM = ROOT / ".tools" / "sam" / "bin" / "sam"
BUILT = ROOT / ".aws-sam" / "aws" / "build" / "template.yaml"


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_sam_deploy_with_a_config_env_reads_the_built_template(env):
    assert SAM.exists(), "make install puts sam-cli in .tools/sam"
    assert BUILT.exists(), "make test builds for AWS before the tests"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    environment |= {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_ENDPOINT_URL": "https://127.0.0.1:9",  # nothing listens: no stack is touched
        "SAM_CLI_TELEMETRY": "0",
        "AWS_MAX_ATTEMPTS": "1",
    }
    command = [str(SAM), "deploy", "--config-env", env, "--region", "us-east-1", "--debug"]
    done = subprocess.run(command, cwd=ROOT, env=environment, capture_output=True, text=True, timeout=300, check=False)
    said = done.stdout + done.stderr
    assert f"Loading configuration values from [{env}.['deploy'].parameters]" in said
    assert f"Using SAM Template at {BUILT}" in said
    assert done.returncode != 0  # it could not reach AWS, as intended
