"""The deploy pipeline (infrastructure/scripts/pipeline/, through pipeline.sh and
`make deploy`) run end to end against the local stack, from a fresh clone: its
own install (nothing shared with this checkout's environments), then `make
deploy ENV=dev ENDPOINT=...` as a user who started the emulator would run it;
a no-op redeploy, a code-only update, a dry run of a change to one layer, a
deploy refused for a bad parameter or an unreachable endpoint before anything
is created, and `make delete`. The very code AWS deployments run; only the
endpoint differs. `make local` (tests/e2e/conftest.py) goes through it too:
both write the same outputs format."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.e2e.conftest import Deployment
from tests.templates import LAYERS, ROOT

pytestmark = pytest.mark.e2e
STACK = "genstack-dev"  # samconfig.toml's name for dev: what `make deploy ENV=dev` creates


@dataclass
class Run:
    returncode: int
    output: str


@pytest.fixture(scope="module")
def repo(deployment: Deployment, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The files a clone has (tracked, and new ones not ignored), and nothing else:
    no .venv, no .tools, no build output."""
    copy = tmp_path_factory.mktemp("clone")
    listed = ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"]
    for name in filter(None, subprocess.run(listed, cwd=ROOT, capture_output=True, check=True).stdout.decode().split("\0")):
        if (ROOT / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, copy / name)
    assert not (copy / ".venv").exists()
    assert not (copy / ".tools").exists()
    return copy


def user_environment() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN")}


def make(repo: Path, *args: str, timeout: float = 1500) -> Run:
    done = subprocess.run(
        ["make", "-C", str(repo), *args], env=user_environment(), capture_output=True, text=True, timeout=timeout, check=False
    )
    return Run(done.returncode, done.stdout + done.stderr)


def pipeline(repo: Path, deployment: Deployment, command: str, *args: str) -> Run:
    """pipeline.sh, as the Makefile calls it (the templates were linted by the first deploy)."""
    base = ["bash", str(repo / "infrastructure/scripts/pipeline.sh"), command, "--env", "dev", "--endpoint", deployment.endpoint]
    extra = ["--skip-lint"] if command == "deploy" else []
    command = [*base, *extra, *args]
    done = subprocess.run(command, env=user_environment(), capture_output=True, text=True, timeout=900, check=False)
    return Run(done.returncode, done.stdout + done.stderr)


@pytest.fixture(scope="module")
def first(repo: Path, deployment: Deployment) -> Run:
    run = make(repo, "deploy", "ENV=dev", f"ENDPOINT={deployment.endpoint}")
    assert run.returncode == 0, run.output[-5000:]
    return run


def test_a_fresh_clone_installs_then_bootstraps_and_deploys_through_a_change_set(first, repo):
    output = first.output
    assert output.index("install complete") < output.index("bootstrap stack genstack-bootstrap")
    assert "linting the templates (cfn-lint)" in output
    assert "(CREATE) for genstack-dev" in output
    assert "genstack-dev is CREATE_COMPLETE" in output
    assert "emulator only:" in output  # the one emulator-only step
    assert "smoke test passed" in output
    assert "starter templates: product-description, release-notes, monthly-trend-chart" in output
    logs = sorted((repo / ".deploy-logs").glob("dev-*.log"))
    assert len(logs) == 1, "every run writes a log file"
    assert "genstack-dev is CREATE_COMPLETE" in logs[0].read_text()
    assert (repo / ".tools" / "sam" / "bin" / "sam").exists()
    assert (repo / ".tools" / "ministack" / "bin" / "python").exists()


def test_make_deploy_and_make_local_write_one_outputs_format(first, repo, deployment):
    info = json.loads((repo / "outputs/dev.json").read_text())
    local = json.loads(deployment.outputs_file.read_text())
    assert set(info) == set(local)
    assert info["stackName"] == STACK
    assert info["environment"] == "dev"
    assert {"ApiUrl", "ApiId", "ApiKeyId", "StandardUsagePlanId", "JobsTableName"} <= set(info["outputs"])
    assert set(info["nested"]) == {f"{layer.title()}Stack" for layer in LAYERS}
    assert "VpcId" in info["nested"]["NetworkStack"]
    assert "OutputsBucketArn" in info["nested"]["StorageStack"]
    assert info["apiUrl"] == f"{deployment.endpoint}/_aws/execute-api/{info['outputs']['ApiId']}/v1"
    assert info["parameters"]["DeployTarget"] == "local-emulator"
    assert info["apiKey"]
    assert info["caBundle"] == deployment.ca_bundle
    assert (repo / "outputs/dev.json").stat().st_mode & 0o077 == 0, "a file with a key's value is the user's alone"


def test_the_client_reads_the_api_from_the_outputs_file_with_or_without_the_key_value(first, repo, deployment):
    """`python -m genstack --outputs outputs/<env>.json`: the key's value from the file
    (an emulator's), or, as AWS writes it (no value), read by id with the caller's credentials."""
    info = json.loads((repo / "outputs/dev.json").read_text())
    as_on_aws = repo / "outputs/dev-as-on-aws.json"
    as_on_aws.write_text(json.dumps({**info, "apiKey": None, "caBundle": None}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_CA_BUNDLE": deployment.ca_bundle}
    for outputs in (repo / "outputs/dev.json", as_on_aws):
        command = [sys.executable, "-m", "genstack", "--outputs", str(outputs), "jobs"]
        done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
        assert done.returncode == 0, done.stderr


def test_a_redeploy_without_changes_is_a_successful_no_op(first, repo, deployment):
    run = pipeline(repo, deployment, "deploy", "--no-seed")
    assert run.returncode == 0, run.output[-3000:]
    assert "genstack-dev: no changes; nothing to deploy" in run.output
    assert "smoke test passed" in run.output


def test_a_code_only_update_changes_functions_and_no_layer(first, repo, deployment):
    handler = repo / "backend/status/app.py"
    handler.write_text(handler.read_text() + "\n# a code-only change\n")
    run = pipeline(repo, deployment, "deploy", "--no-seed")
    assert run.returncode == 0, run.output[-3000:]
    changes = [line.split() for line in run.output.splitlines() if line.strip().startswith(("Modify", "Add", "Remove"))]
    assert ["Modify", "StatusFunction", "AWS::Lambda::Function", "(replacement:", "False)"] in changes
    # No layer changes. (The emulator also marks the API protection layer, which
    # reads the REST API's id, as a conditional change; AWS lists functions only.)
    assert {c[1] for c in changes if c[2] == "AWS::CloudFormation::Stack"} <= {"ApiStack"}, changes
    assert "genstack-dev is UPDATE_COMPLETE" in run.output


def test_a_dry_run_of_a_storage_change_lists_it_and_changes_nothing(first, repo, deployment):
    cfn = deployment.client("cloudformation")
    before = cfn.describe_stacks(StackName=STACK)["Stacks"][0]
    run = pipeline(repo, deployment, "deploy", "--dry-run", "--parameter", "OutputsTransitionDays=60")
    assert run.returncode == 0, run.output[-3000:]
    layers = {
        c.split()[1] for c in run.output.splitlines() if "AWS::CloudFormation::Stack" in c and c.strip().startswith("Modify")
    }
    # The layer whose parameter changed, and (on the emulator, which marks every
    # reader of a changed output) those that read its outputs; never the others.
    assert "StorageStack" in layers
    assert not layers & {"NetworkStack", "DatabaseStack", "MonitoringStack"}, layers
    assert "nothing executed" in run.output
    after = cfn.describe_stacks(StackName=STACK)["Stacks"][0]
    assert after["StackStatus"] == before["StackStatus"]
    assert after["Parameters"] == before["Parameters"]
    pending = [c for c in cfn.list_change_sets(StackName=STACK).get("Summaries", []) if c.get("ExecutionStatus") == "AVAILABLE"]
    assert not pending, "the dry run's change set is deleted"


@pytest.mark.parametrize(
    ("parameter", "said"),
    [("MaxModelsPerJob=99", "MaxModelsPerJob=99 is above its MaxValue 16"), ("Environment=production", "Environment")],
)
def test_a_bad_parameter_is_refused_clearly_before_anything_changes(first, repo, deployment, parameter, said):
    run = pipeline(repo, deployment, "deploy", "--parameter", parameter)
    assert run.returncode != 0
    assert said in run.output
    assert "nothing was deployed" in run.output
    assert "bootstrap stack" not in run.output
    assert deployment.client("cloudformation").describe_stacks(StackName=STACK)["Stacks"][0]["StackStatus"].endswith("COMPLETE")


def test_an_unreachable_endpoint_stops_the_deploy_before_anything_is_created(first, repo):
    run = make(repo, "deploy", "ENV=dev", "ENDPOINT=https://127.0.0.1:9", timeout=300)
    assert run.returncode != 0
    assert "cannot reach https://127.0.0.1:9" in run.output
    assert "bootstrap stack" not in run.output
    assert "packaging" not in run.output


def test_make_delete_empties_the_buckets_and_removes_the_stack(first, repo, deployment):
    s3 = deployment.client("s3")
    bucket = json.loads((repo / "outputs/dev.json").read_text())["outputs"]["OutputsBucketName"]
    s3.put_object(Bucket=bucket, Key="jobs/x/outputs/a.txt", Body=b"one")
    s3.put_object(Bucket=bucket, Key="jobs/x/outputs/a.txt", Body=b"two")  # a second version
    listed = s3.list_object_versions(Bucket=bucket)
    versions = len(listed.get("Versions", [])) + len(listed.get("DeleteMarkers", []))
    # The two above, and the playground page's files, once per deploy that published them.
    assert versions > 2
    assert {v["Key"] for v in listed["Versions"]} >= {"jobs/x/outputs/a.txt", "playground/index.html", "playground/config.json"}
    run = make(repo, "delete", "ENV=dev", f"ENDPOINT={deployment.endpoint}", timeout=600)
    assert run.returncode == 0, run.output[-3000:]
    assert f"emptied bucket {bucket} ({versions} object versions)" in run.output
    assert f"{STACK} deleted" in run.output
    stacks = deployment.client("cloudformation").list_stacks()["StackSummaries"]
    assert all(s["StackStatus"] == "DELETE_COMPLETE" for s in stacks if s["StackName"] == STACK)
    assert bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}
