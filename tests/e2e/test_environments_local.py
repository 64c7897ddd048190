"""dev and prod deployed side by side into the local stack and read back: what
the emulator applies must match what each environment promises (the rest is
asserted on the rendered templates, tests/unit/test_environments.py)."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from tests.e2e.conftest import LOCAL, PORT, Deployment, call, wait_for_job
from tests.templates import layer, resources_of_type, root

pytestmark = pytest.mark.e2e
PROD = root()["Mappings"]["EnvironmentConfig"]["prod"]


def nested(deployment: Deployment, stack: str) -> dict[str, str]:
    cfn = deployment.client("cloudformation")
    return {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cfn.describe_stack_resources(StackName=stack)["StackResources"]
        if r["ResourceType"] == "AWS::CloudFormation::Stack"
    }


def stack_name(stack_id: str) -> str:
    """A nested stack's name, from its id (an ARN)."""
    return stack_id.split("/")[1] if stack_id.startswith("arn:") else stack_id


def physical(deployment: Deployment, stack: str, logical_id: str) -> str:
    resources = deployment.client("cloudformation").describe_stack_resources(StackName=stack)["StackResources"]
    return next(r["PhysicalResourceId"] for r in resources if r["LogicalResourceId"] == logical_id)


@pytest.fixture(scope="module")
def prod(deployment: Deployment, tmp_path_factory: pytest.TempPathFactory) -> Deployment:
    """The prod environment, next to the dev one, in the same emulator."""
    outputs_file = tmp_path_factory.mktemp("prod") / "outputs.json"
    stack = f"{deployment.stack_name}-prod"
    env = {k: v for k, v in os.environ.items() if k not in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN")}
    up = subprocess.run(
        # (--playground-port 0: the dev stack's page server, which test_playground.py uses, stays as it is.)
        [
            "bash",
            str(LOCAL),
            "up",
            "--port",
            str(PORT),
            "--stack-name",
            stack,
            "--env",
            "prod",
            "--outputs",
            str(outputs_file),
            "--playground-port",
            "0",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert up.returncode == 0, f"prod deploy failed:\n{up.stderr[-4000:]}"
    info = json.loads(outputs_file.read_text())
    return Deployment(
        stack, info["apiUrl"], info["caBundle"], info["apiKey"], info["outputs"], info["endpoint"], up.stdout, deployment.session
    )


def test_prod_runs_a_job_end_to_end(prod):
    reply = call(prod, "POST", "/generate", {"prompt": "one line about retention", "models": ["amazon.nova-micro-v1:0"]})
    assert reply.status == 202, reply
    assert wait_for_job(prod, reply.body["jobId"])["status"] == "COMPLETED"


def test_prod_spreads_private_subnets_and_interface_endpoints_over_three_azs(prod):
    network = nested(prod, prod.stack_name)["NetworkStack"]
    vpc_id = physical(prod, network, "Vpc")
    ec2 = prod.client("ec2")
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
    private = [s for s in subnets if {"Key": "Tier", "Value": "private"} in s.get("Tags", [])]
    assert len({s["AvailabilityZone"] for s in private}) == PROD["AvailabilityZoneCount"] == 3
    endpoints = ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["VpcEndpoints"]
    kinds = {e["ServiceName"].rsplit(".", 1)[-1]: e["VpcEndpointType"] for e in endpoints}
    assert kinds == {
        "s3": "Gateway",
        "dynamodb": "Gateway",
        "bedrock-runtime": "Interface",
        "sqs": "Interface",
        "lambda": "Interface",  # the worker invokes the chart renderer
    }


def test_every_function_is_traced(prod, deployment):
    # (The emulator drops a function's VpcConfig and reserved concurrency, and
    # a bucket's SSE-KMS setting; those are asserted on the rendered templates.)
    for env_deployment in (prod, deployment):
        worker = physical(env_deployment, env_deployment.stack_name, "WorkerFunction")
        config = env_deployment.client("lambda").get_function_configuration(FunctionName=worker)
        assert config["TracingConfig"]["Mode"] == "Active"


def test_prod_creates_rotated_customer_managed_keys_and_dev_none(prod, deployment):
    kms, cfn = prod.client("kms"), prod.client("cloudformation")
    for env_deployment, expected in ((prod, {"StorageStack", "DatabaseStack"}), (deployment, set())):
        with_keys = set()
        for layer_id, stack in nested(env_deployment, env_deployment.stack_name).items():
            for key in cfn.describe_stack_resources(StackName=stack)["StackResources"]:
                if key["ResourceType"] == "AWS::KMS::Key":
                    assert kms.get_key_rotation_status(KeyId=key["PhysicalResourceId"])["KeyRotationEnabled"] is True
                    with_keys.add(layer_id)
        assert with_keys == expected


def test_prod_has_waf_alarms_dashboard_and_two_usage_plan_tiers(prod, deployment):
    acls = {a["Name"] for a in prod.client("wafv2").list_web_acls(Scope="REGIONAL")["WebACLs"]}
    assert f"{stack_name(nested(prod, prod.stack_name)['ApiStack'])}-api" in acls
    assert f"{stack_name(nested(deployment, deployment.stack_name)['ApiStack'])}-api" not in acls
    cloudwatch = prod.client("cloudwatch")
    # (less the two metric-math alarms, which the emulator cannot create)
    declared = len(resources_of_type(layer("monitoring"), "AWS::CloudWatch::Alarm")) - 2
    for env_deployment, expected in ((prod, declared), (deployment, 0)):
        prefix = stack_name(nested(env_deployment, env_deployment.stack_name)["MonitoringStack"])
        assert len(cloudwatch.describe_alarms(AlarmNamePrefix=prefix)["MetricAlarms"]) == expected
    assert prod.outputs["DashboardName"] != "none"
    assert deployment.outputs["DashboardName"] == "none"
    apigw = prod.client("apigateway")
    plans = {p["id"]: p for p in apigw.get_usage_plans()["items"]}
    standard, free = plans[prod.outputs["StandardUsagePlanId"]], plans[prod.outputs["FreeUsagePlanId"]]
    assert standard["quota"]["limit"] == PROD["KeyDailyQuota"]
    assert free["quota"]["limit"] == PROD["FreeKeyDailyQuota"]
    assert free["throttle"]["rateLimit"] < standard["throttle"]["rateLimit"]


def test_prod_tables_are_protected_from_deletion(prod, deployment):
    dynamodb = prod.client("dynamodb")
    assert dynamodb.describe_table(TableName=prod.outputs["JobsTableName"])["Table"]["DeletionProtectionEnabled"] is True
    assert dynamodb.describe_table(TableName=deployment.outputs["JobsTableName"])["Table"].get("DeletionProtectionEnabled") in (
        False,
        None,
    )
