"""The deploy pipeline's package (infrastructure/scripts/pipeline/), offline:
change sets through botocore's Stubber (the requests are checked against
CloudFormation's API model), the preflight that refuses before anything is
created, the one outputs format, taskcat's per-region config, and the shape
of the tooling itself (small files, no eval). tests/e2e/test_pipeline.py runs
the same code against the local stack."""

from __future__ import annotations

import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
import yaml
from botocore.stub import ANY, Stubber

from pipeline import deploy, emulator, outputs, regions, stacks
from pipeline.config import DeployRequest, StackRequest
from pipeline.console import PipelineError
from pipeline.events import first_failure
from pipeline.session import Aws
from tests.templates import ROOT

SCRIPTS = ROOT / "infrastructure" / "scripts"
NESTED = "arn:aws:cloudformation:us-east-1:123456789012:stack/genstack-dev-StorageStack-1AB/0f0e"
T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def cfn() -> tuple[object, Stubber]:
    client = boto3.client("cloudformation", region_name="us-east-1")
    return client, Stubber(client)


def missing(stubber: Stubber, stack: str) -> None:
    stubber.add_client_error(
        "describe_stacks", "ValidationError", f"Stack with id {stack} does not exist", 400, {"StackName": stack}
    )


def described(stubber: Stubber, stack: str, status: str) -> None:
    stack_body = {"StackName": stack, "StackStatus": status, "CreationTime": T0}
    stubber.add_response("describe_stacks", {"Stacks": [stack_body]}, {"StackName": stack})


def change_set(stubber: Stubber, stack: str, change_type: str) -> None:
    expected = {
        "StackName": stack,
        "ChangeSetName": ANY,
        "ChangeSetType": change_type,
        "Parameters": [{"ParameterKey": "Environment", "ParameterValue": "dev"}],
        "Capabilities": ["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
        "Tags": [{"Key": "Application", "Value": "genstack"}],
        "Description": ANY,
        "TemplateURL": "https://s3.us-east-1.amazonaws.com/b/k.yaml",
        "IncludeNestedStacks": True,
    }
    stubber.add_response("create_change_set", {"Id": "arn:cs/1", "StackId": "arn:stack/1"}, expected)


REQUEST = StackRequest(
    "genstack-dev",
    template_url="https://s3.us-east-1.amazonaws.com/b/k.yaml",
    parameters={"Environment": "dev"},
    tags={"Application": "genstack"},
    capabilities=("CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"),
)


def test_an_empty_change_set_is_a_success_and_leaves_no_empty_stack_behind():
    client, stubber = cfn()
    missing(stubber, "genstack-dev")
    change_set(stubber, "genstack-dev", "CREATE")
    reason = "The submitted information didn't contain changes. Submit different information to create a change set."
    stubber.add_response(
        "describe_change_set", {"Status": "FAILED", "StatusReason": reason, "Changes": []}, {"ChangeSetName": "arn:cs/1"}
    )
    stubber.add_response("delete_change_set", {}, {"ChangeSetName": "arn:cs/1"})
    stubber.add_response("delete_stack", {}, {"StackName": "genstack-dev"})  # the REVIEW_IN_PROGRESS shell
    with stubber:
        assert stacks.deploy(client, REQUEST) == "NO_CHANGES"
    stubber.assert_no_pending_responses()


def test_a_dry_run_marks_a_stateful_replacement_and_executes_nothing(capsys):
    client, stubber = cfn()
    described(stubber, "genstack-dev", "UPDATE_COMPLETE")
    change_set(stubber, "genstack-dev", "UPDATE")
    stubber.add_response("describe_change_set", {"Status": "CREATE_COMPLETE"}, {"ChangeSetName": "arn:cs/1"})
    replaced = {
        "Type": "Resource",
        "ResourceChange": {
            "Action": "Modify",
            "LogicalResourceId": "JobsTable",
            "ResourceType": "AWS::DynamoDB::Table",
            "Replacement": "True",
        },
    }
    stubber.add_response(
        "describe_change_set", {"Status": "CREATE_COMPLETE", "Changes": [replaced]}, {"ChangeSetName": "arn:cs/1"}
    )
    stubber.add_response("delete_change_set", {}, {"ChangeSetName": "arn:cs/1"})
    with stubber:  # an execute_change_set here would fail the test: none is stubbed
        assert stacks.deploy(client, StackRequest(**{**REQUEST.__dict__, "dry_run": True})) == "DRY_RUN"
    stubber.assert_no_pending_responses()
    said = capsys.readouterr().err
    assert "Modify  JobsTable" in said
    assert "REPLACES OR REMOVES STATEFUL DATA" in said
    assert "dry run: 1 change(s) listed, nothing executed" in said


def test_an_environment_that_asks_for_confirmation_refuses_without_a_terminal(monkeypatch):
    monkeypatch.setattr(sys.stdin, "isatty", lambda: False)
    with pytest.raises(PipelineError, match="confirm_changeset"):
        stacks.confirmed(StackRequest("genstack-prod", confirm=True))
    assert stacks.confirmed(StackRequest("genstack-prod", confirm=True, yes=True))


def test_a_failure_is_named_by_its_first_failing_resource_across_nested_stacks():
    client, stubber = cfn()

    def event(stack: str, logical_id: str, kind: str, status: str, reason: str, seconds: int) -> dict:
        return {
            "StackId": stack,
            "EventId": f"{logical_id}-{seconds}",
            "StackName": stack,
            "LogicalResourceId": logical_id,
            "ResourceType": kind,
            "Timestamp": T0 + timedelta(seconds=seconds),
            "ResourceStatus": status,
            "ResourceStatusReason": reason,
        }

    nested = {
        "LogicalResourceId": "StorageStack",
        "PhysicalResourceId": NESTED,
        "ResourceType": "AWS::CloudFormation::Stack",
        "Timestamp": T0,
        "ResourceStatus": "UPDATE_FAILED",
    }
    stubber.add_response("describe_stack_resources", {"StackResources": [nested]}, {"StackName": "genstack-dev"})
    stubber.add_response("describe_stack_resources", {"StackResources": []}, {"StackName": NESTED})
    root_events = [
        event("genstack-dev", "StorageStack", "AWS::CloudFormation::Stack", "UPDATE_FAILED", "Embedded stack failed", 9),
        event("genstack-dev", "old", "AWS::S3::Bucket", "UPDATE_FAILED", "before this deployment", -60),
    ]
    nested_events = [
        event(NESTED, "OutputsBucketPolicy", "AWS::S3::BucketPolicy", "CREATE_FAILED", "Resource creation cancelled", 8),
        event(NESTED, "OutputsBucket", "AWS::S3::Bucket", "UPDATE_FAILED", "Bucket name already exists", 5),
    ]
    stubber.add_response("describe_stack_events", {"StackEvents": root_events}, {"StackName": "genstack-dev"})
    stubber.add_response("describe_stack_events", {"StackEvents": nested_events}, {"StackName": NESTED})
    with stubber:
        said = first_failure(client, "genstack-dev", T0)
    assert said == "OutputsBucket (AWS::S3::Bucket) in genstack-dev-StorageStack-1AB: Bucket name already exists"


def request(**changes) -> DeployRequest:
    return DeployRequest(**{"environment": "dev", "regions": ("us-east-1",), **changes})


def test_preflight_refuses_before_any_aws_call_when_a_tool_is_missing(monkeypatch):
    """A fresh clone before `make install`: said, and nothing touched (no client is even made)."""
    monkeypatch.setattr(deploy, "MINISTACK_PY", ROOT / ".tools" / "no-ministack" / "bin" / "python")
    monkeypatch.setattr(Aws, "client", lambda *_: pytest.fail("no AWS call before the tools are there"))
    with pytest.raises(
        PipelineError, match=r"not installed: .*no-ministack/bin/python; run: make install \(nothing was deployed\)"
    ):
        deploy.preflight(request(endpoint="https://127.0.0.1:4566"))


def test_preflight_refuses_a_bad_parameter_before_any_aws_call(monkeypatch):
    monkeypatch.setattr(deploy, "CFN_LINT", Path(sys.executable))
    monkeypatch.setattr(deploy.artifacts, "SAM", Path(sys.executable))
    with pytest.raises(PipelineError, match="MaxModelsPerJob=99 is above its MaxValue 16; nothing was deployed"):
        deploy.preflight(request(overrides=("MaxModelsPerJob=99",), lint=False))


def test_the_outputs_file_is_named_per_environment_and_per_region_for_several():
    assert request().outputs_for("us-east-1") == ROOT / "outputs" / "dev.json"
    several = request(regions=("us-east-1", "eu-west-1"))
    assert several.outputs_for("eu-west-1") == ROOT / "outputs" / "dev-eu-west-1.json"
    chosen = request(regions=("us-east-1", "eu-west-1"), outputs_file=Path("/x/out.json"))
    assert chosen.outputs_for("eu-west-1") == Path("/x/out-eu-west-1.json")


@pytest.mark.parametrize("endpoint", [None, "https://127.0.0.1:4566"])
def test_one_outputs_format_whatever_the_target(monkeypatch, endpoint):
    aws = Aws("us-east-1", endpoint=endpoint, ca_bundle="/tmp/ca.pem" if endpoint else None)
    client, stubber = cfn()
    root = {
        "StackName": "s",
        "StackStatus": "CREATE_COMPLETE",
        "CreationTime": T0,
        "Parameters": [{"ParameterKey": "Environment", "ParameterValue": "dev"}],
        "Outputs": [
            {"OutputKey": "ApiId", "OutputValue": "abc123"},
            {"OutputKey": "ApiUrl", "OutputValue": "https://abc123.execute-api.us-east-1.amazonaws.com/v1"},
            {"OutputKey": "OpenAiApiId", "OutputValue": "def456"},
            {"OutputKey": "OpenAiBaseUrl", "OutputValue": "https://def456.execute-api.us-east-1.amazonaws.com/openai/v1"},
            {"OutputKey": "ApiKeyId", "OutputValue": "k1"},
        ],
    }
    stubber.add_response("describe_stacks", {"Stacks": [root]}, {"StackName": "s"})
    stubber.add_response("describe_stack_resources", {"StackResources": []}, {"StackName": "s"})
    apigw = boto3.client("apigateway", region_name="us-east-1")
    keys = Stubber(apigw)
    if endpoint:  # only an emulator's throwaway key is written down
        keys.add_response("get_api_key", {"id": "k1", "value": "secret-value"}, {"apiKey": "k1", "includeValue": True})
    monkeypatch.setattr(aws, "client", lambda service: {"cloudformation": client, "apigateway": apigw}[service])
    with stubber, keys:
        info = outputs.collect(aws, "s", "dev")
    keys.assert_no_pending_responses()
    assert set(info) == {
        "stackName",
        "environment",
        "region",
        "endpoint",
        "status",
        "parameters",
        "outputs",
        "nested",
        "apiUrl",
        "openAiBaseUrl",
        "apiKeyId",
        "apiKey",
        "caBundle",
        "collectedAt",
    }
    if endpoint:
        assert info["apiUrl"] == "https://127.0.0.1:4566/_aws/execute-api/abc123/v1"
        assert info["openAiBaseUrl"] == "https://127.0.0.1:4566/_aws/execute-api/def456/openai/v1"
        assert (info["apiKey"], info["caBundle"]) == ("secret-value", "/tmp/ca.pem")
    else:
        assert info["apiUrl"] == "https://abc123.execute-api.us-east-1.amazonaws.com/v1"
        assert info["openAiBaseUrl"].endswith("/openai/v1")
        assert info["apiKey"] is None


def test_an_emulator_endpoint_trusts_the_emulator_certificate_over_the_system_store(monkeypatch):
    monkeypatch.setenv("AWS_CA_BUNDLE", "/etc/ssl/certs/ca-certificates.crt")
    monkeypatch.setattr("pipeline.session.emulator_certificate", lambda: "/tmp/ministack-tls/server.crt")
    assert Aws("us-east-1", endpoint="https://127.0.0.1:4566").ca_bundle == "/tmp/ministack-tls/server.crt"
    assert Aws("us-east-1").ca_bundle == "/etc/ssl/certs/ca-certificates.crt"
    environment = Aws("eu-west-1", endpoint="https://127.0.0.1:4566").environment()
    assert (environment["AWS_REGION"], environment["AWS_ENDPOINT_URL"]) == ("eu-west-1", "https://127.0.0.1:4566")
    assert "AWS_PROFILE" not in environment


def test_the_emulator_step_mirrors_only_allowed_invoke_model_statements():
    documents = [
        {
            "Statement": [
                {"Effect": "Allow", "Action": ["bedrock:InvokeModel"], "Resource": ["arn:m/1"], "Condition": {"Bool": {}}},
                {"Effect": "Deny", "Action": "bedrock:InvokeModel", "Resource": "*"},
                {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"},
            ]
        }
    ]
    assert emulator.converse_statements(documents) == [
        {"Effect": "Allow", "Action": "bedrock:Converse", "Resource": ["arn:m/1"], "Condition": {"Bool": {}}}
    ]


# ------------------------------------------------------------------ taskcat
TASKCAT = yaml.safe_load((ROOT / ".taskcat.yml").read_text())


def test_every_scenario_runs_once_per_region_on_the_template_packaged_in_that_region():
    generated = regions.regional_config(TASKCAT)
    expected = {
        (name, region) for name, test in TASKCAT["tests"].items() for region in test.get("regions", TASKCAT["project"]["regions"])
    }
    assert len(expected) > len(TASKCAT["tests"]), "a scenario runs in several regions"
    seen = set()
    for name, test in generated["tests"].items():
        (region,) = test["regions"]
        scenario = name if name in TASKCAT["tests"] else name.removesuffix(f"-{region}")
        seen.add((scenario, region))
        assert test["template"] == f".aws-sam/taskcat/packaged-{region}.yaml"
        assert test["parameters"] == TASKCAT["tests"][scenario]["parameters"]
    assert seen == expected
    assert generated["project"]["parameters"] == TASKCAT["project"]["parameters"]


def test_one_scenario_can_be_chosen_and_an_unknown_one_is_refused():
    chosen = regions.regional_config(TASKCAT, "prod-ha")
    assert set(chosen["tests"]) == {f"prod-ha-{r}" for r in TASKCAT["tests"]["prod-ha"]["regions"]}
    with pytest.raises(PipelineError, match="no test 'nope'"):
        regions.regional_config(TASKCAT, "nope")


# ------------------------------------------------------------------ tooling
def test_the_tooling_is_small_files_and_runs_no_eval():
    files = [p for p in SCRIPTS.rglob("*") if p.suffix in (".py", ".sh") and "__pycache__" not in p.parts]
    lengths = {str(p.relative_to(SCRIPTS)): len(p.read_text().splitlines()) for p in files}
    assert max(lengths.values()) < 250, {k: v for k, v in lengths.items() if v >= 250}
    shell = [p for p in files if p.suffix == ".sh"] + [ROOT / "Makefile"]
    assert not [p.name for p in shell if re.search(r"^\s*[^#\n]*\beval\b", p.read_text(), re.MULTILINE)]


def test_every_deploy_target_goes_through_the_one_pipeline():
    makefile = (ROOT / "Makefile").read_text()
    for target in ("deploy", "delete", "taskcat"):
        recipe = makefile.split(f"\n{target}: ", 1)[1].split("\n\n", 1)[0]
        assert f"pipeline.sh {target}" in recipe, target
    assert 'pipeline.sh" deploy' in (SCRIPTS / "local.sh").read_text()
    assert 'sam" deploy' not in (SCRIPTS / "local.sh").read_text()


def test_the_entry_point_without_a_command_prints_its_usage_and_fails():
    done = subprocess.run(["bash", str(SCRIPTS / "pipeline.sh")], capture_output=True, text=True, check=False)
    assert done.returncode != 0
    assert "pipeline.sh deploy" in done.stderr
    assert "a command first" in done.stderr


def test_a_release_in_several_regions_builds_once_and_deploys_each_region_from_its_own_bucket(monkeypatch, tmp_path):
    """make deploy REGION="us-east-1 eu-west-1": one build; then per region its bootstrap
    bucket, the package uploaded there, the stack from that package, its outputs file."""
    calls: list[tuple] = []
    monkeypatch.setattr(deploy, "record_to", lambda path: ROOT / ".deploy-logs" / "test.log")
    monkeypatch.setattr(Aws, "identity", lambda self: {"arn": "arn:aws:iam::123456789012:user/ci", "account": "123456789012"})
    monkeypatch.setattr(deploy, "CFN_LINT", Path(sys.executable))
    monkeypatch.setattr(deploy.artifacts, "SAM", Path(sys.executable))
    monkeypatch.setattr(deploy.artifacts, "build", lambda target: calls.append(("build", target)) or tmp_path / "built.yaml")
    monkeypatch.setattr(deploy.artifacts, "bootstrap", lambda aws: f"artifacts-{aws.region}")

    def package(aws, built, bucket, prefix, out):
        calls.append(("package", aws.region, bucket, prefix))
        return f"https://s3.{aws.region}.amazonaws.com/{bucket}/{prefix}/root.yaml"

    def deploy_stack(cfn, stack_request, *, emulator):
        calls.append(("stack", cfn.meta.region_name, stack_request.stack, stack_request.template_url))
        return "UPDATE_COMPLETE"

    def collect(aws, stack, environment):
        return {"stackName": stack, "nested": {}, "region": aws.region}

    monkeypatch.setattr(deploy.artifacts, "package", package)
    monkeypatch.setattr(deploy, "deploy_stack", deploy_stack)
    monkeypatch.setattr(deploy.outputs, "collect", collect)
    monkeypatch.setattr(deploy.outputs, "write", lambda info, path: calls.append(("outputs", info["region"], path.name)))
    monkeypatch.setattr(deploy.checks, "post_deploy", lambda aws, info, **_: calls.append(("checks", aws.region)))
    monkeypatch.setattr(deploy.emulator, "compensate", lambda *_: pytest.fail("AWS gets no emulator step"))
    assert deploy.run(request(regions=("us-east-1", "eu-west-1"), lint=False)) == 0
    assert calls == [
        ("build", "aws"),
        ("package", "us-east-1", "artifacts-us-east-1", "genstack-dev"),
        ("stack", "us-east-1", "genstack-dev", "https://s3.us-east-1.amazonaws.com/artifacts-us-east-1/genstack-dev/root.yaml"),
        ("outputs", "us-east-1", "dev-us-east-1.json"),
        ("checks", "us-east-1"),
        ("package", "eu-west-1", "artifacts-eu-west-1", "genstack-dev"),
        ("stack", "eu-west-1", "genstack-dev", "https://s3.eu-west-1.amazonaws.com/artifacts-eu-west-1/genstack-dev/root.yaml"),
        ("outputs", "eu-west-1", "dev-eu-west-1.json"),
        ("checks", "eu-west-1"),
    ]
