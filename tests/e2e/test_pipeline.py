"""The deploy pipeline (infrastructure/scripts/deploy.sh, `make deploy`) run end
to end against the local stack: first deploy, no-op redeploy, a code-only
update, a dry run of a change to one layer, a deploy refused for a bad
parameter, and --delete. The very script AWS deployments use; only --endpoint
differs.

It runs on a copy of the repository (the code-only update edits a handler),
sharing the installed environments, against the emulator of the e2e session."""

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
STACK = "genstack-pipeline"


@dataclass
class Run:
    returncode: int
    output: str


@pytest.fixture(scope="module")
def repo(deployment: Deployment, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the tracked files, with the installed environments linked in."""
    copy = tmp_path_factory.mktemp("repo")
    files = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT, capture_output=True, check=True
        )
        .stdout.decode()
        .split("\0")
    )
    for name in filter(None, files):
        source = ROOT / name
        if source.is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy / name)
    for shared in (".venv", ".tools"):
        (copy / shared).symlink_to(ROOT / shared)
    return copy


def deploy(repo: Path, deployment: Deployment, *args: str) -> Run:
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN")}
    command = ["bash", str(repo / "infrastructure/scripts/deploy.sh"), "--env", "dev", "--stack-name", STACK]
    command += ["--endpoint", deployment.endpoint, "--ca-bundle", deployment.ca_bundle, "--outputs-file", str(repo / "out.json")]
    done = subprocess.run([*command, *args], env=env, capture_output=True, text=True, timeout=900, check=False)
    return Run(done.returncode, done.stdout + done.stderr)


@pytest.fixture(scope="module")
def first(repo: Path, deployment: Deployment) -> Run:
    run = deploy(repo, deployment)
    assert run.returncode == 0, run.output[-4000:]
    return run


def test_first_deploy_bootstraps_deploys_through_a_change_set_and_runs_the_post_deploy_steps(first, repo):
    assert "bootstrap stack genstack-bootstrap" in first.output
    assert "(CREATE) for genstack-pipeline" in first.output
    assert "genstack-pipeline is CREATE_COMPLETE" in first.output
    assert "smoke test passed" in first.output
    assert "starter templates: product-description, release-notes, monthly-trend-chart" in first.output
    logs = sorted((repo / ".deploy-logs").glob("dev-*.log"))
    assert len(logs) == 1, "every run writes a log file"
    assert "genstack-pipeline is CREATE_COMPLETE" in logs[0].read_text()


def test_outputs_file_holds_root_and_nested_outputs(first, repo):
    info = json.loads((repo / "out.json").read_text())
    assert info["stackName"] == STACK
    assert {"ApiUrl", "ApiId", "ApiKeyId", "StandardUsagePlanId", "JobsTableName"} <= set(info["outputs"])
    assert set(info["nested"]) == {f"{layer.title()}Stack" for layer in LAYERS}
    assert "VpcId" in info["nested"]["NetworkStack"]
    assert "OutputsBucketArn" in info["nested"]["StorageStack"]


def test_the_client_reads_the_api_and_its_key_from_the_outputs_file(first, repo, deployment):
    """`python -m genstack --outputs outputs/<env>.json`: the URL from the file, the
    key's value read with the caller's AWS credentials (the emulator's here)."""
    info = json.loads((repo / "out.json").read_text())
    assert info["apiUrl"] == f"{deployment.endpoint}/_aws/execute-api/{info['outputs']['ApiId']}/v1"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env |= {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_CA_BUNDLE": deployment.ca_bundle}
    command = [sys.executable, "-m", "genstack", "--outputs", str(repo / "out.json"), "jobs"]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr


def test_a_redeploy_without_changes_is_a_successful_no_op(first, repo, deployment):
    run = deploy(repo, deployment, "--no-seed")
    assert run.returncode == 0, run.output[-3000:]
    assert "no changes; nothing to deploy" in run.output
    assert "smoke test passed" in run.output


def test_a_code_only_update_changes_functions_and_no_layer(first, repo, deployment):
    handler = repo / "backend/status/app.py"
    handler.write_text(handler.read_text() + "\n# a code-only change\n")
    run = deploy(repo, deployment, "--no-seed")
    assert run.returncode == 0, run.output[-3000:]
    changes = [line.split() for line in run.output.splitlines() if line.strip().startswith(("Modify", "Add", "Remove"))]
    assert ["Modify", "StatusFunction", "AWS::Lambda::Function", "(replacement:", "False)"] in changes
    # No layer changes. (The emulator also marks the API protection layer, which
    # reads the REST API's id, as a conditional change; AWS lists functions only.)
    assert {c[1] for c in changes if c[2] == "AWS::CloudFormation::Stack"} <= {"ApiStack"}, changes
    assert "genstack-pipeline is UPDATE_COMPLETE" in run.output


def test_a_dry_run_of_a_storage_change_lists_it_and_changes_nothing(first, repo, deployment):
    cfn = deployment.client("cloudformation")
    before = cfn.describe_stacks(StackName=STACK)["Stacks"][0]
    run = deploy(repo, deployment, "--dry-run", "--parameter", "OutputsTransitionDays=60")
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
    run = deploy(repo, deployment, "--parameter", parameter)
    assert run.returncode != 0
    assert said in run.output
    assert "nothing was deployed" in run.output
    assert deployment.client("cloudformation").describe_stacks(StackName=STACK)["Stacks"][0]["StackStatus"].endswith("COMPLETE")


def test_delete_empties_the_buckets_and_removes_the_stack(first, repo, deployment):
    s3 = deployment.client("s3")
    bucket = json.loads((repo / "out.json").read_text())["outputs"]["OutputsBucketName"]
    s3.put_object(Bucket=bucket, Key="jobs/x/outputs/a.txt", Body=b"one")
    s3.put_object(Bucket=bucket, Key="jobs/x/outputs/a.txt", Body=b"two")  # a second version
    listed = s3.list_object_versions(Bucket=bucket)
    versions = len(listed.get("Versions", [])) + len(listed.get("DeleteMarkers", []))
    # The two above, and the playground page's files, once per deploy that published them.
    assert versions > 2
    assert {v["Key"] for v in listed["Versions"]} >= {"jobs/x/outputs/a.txt", "playground/index.html", "playground/config.json"}
    run = deploy(repo, deployment, "--delete")
    assert run.returncode == 0, run.output[-3000:]
    assert f"emptied bucket {bucket} ({versions} object versions)" in run.output
    assert f"{STACK} deleted" in run.output
    stacks = deployment.client("cloudformation").list_stacks()["StackSummaries"]
    assert all(s["StackStatus"] == "DELETE_COMPLETE" for s in stacks if s["StackName"] == STACK)
    assert bucket not in {b["Name"] for b in s3.list_buckets()["Buckets"]}


def test_usage_without_arguments(repo):
    done = subprocess.run(["bash", str(repo / "infrastructure/scripts/deploy.sh")], capture_output=True, text=True, check=False)
    assert done.returncode != 0
    assert "usage:" in done.stderr
    assert "--env" in done.stderr
