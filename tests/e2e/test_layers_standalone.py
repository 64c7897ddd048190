"""Every layer deploys on its own: parameters in, outputs out. Each is created
as a standalone stack in the end-to-end emulator, checked, and deleted."""

from __future__ import annotations

import time
import uuid

import pytest

from tests.templates import ROOT, layer

pytestmark = pytest.mark.e2e

ACCOUNT_ARN = "arn:aws:{service}:us-east-1:000000000000:{resource}"


def standalone_parameters(deployment) -> dict[str, dict[str, str]]:
    """Only what each layer requires (parameters without a default), with
    well-formed values; for api.yaml, the end-to-end deployment's own API."""
    return {
        "network": {},
        "storage": {},
        "database": {},
        "iam": {
            "JobsTableArn": ACCOUNT_ARN.format(service="dynamodb", resource="table/jobs"),
            "JobsOwnerIndexName": "owner-createdAt-index",
            "JobsSweepIndexName": "sweep-index",
            "CostOpenReservationsIndexName": "open-reservations-index",
            "TemplatesSharedIndexName": "shared-index",
            "SweeperLogGroupArn": ACCOUNT_ARN.format(service="logs", resource="log-group:/aws/lambda/sw:*"),
            "CostTrackingTableArn": ACCOUNT_ARN.format(service="dynamodb", resource="table/costs"),
            "IdempotencyTableArn": ACCOUNT_ARN.format(service="dynamodb", resource="table/idempotency"),
            "BudgetLedgerTableArn": ACCOUNT_ARN.format(service="dynamodb", resource="table/ledger"),
            "OutputsBucketArn": "arn:aws:s3:::outputs-bucket",
            "JobQueueArn": ACCOUNT_ARN.format(service="sqs", resource="jobs"),
            "GenerateLogGroupArn": ACCOUNT_ARN.format(service="logs", resource="log-group:/aws/lambda/g:*"),
            "StatusLogGroupArn": ACCOUNT_ARN.format(service="logs", resource="log-group:/aws/lambda/s:*"),
            "EnhanceLogGroupArn": ACCOUNT_ARN.format(service="logs", resource="log-group:/aws/lambda/e:*"),
            "WorkerLogGroupArn": ACCOUNT_ARN.format(service="logs", resource="log-group:/aws/lambda/w:*"),
            "DeadLetterLogGroupArn": ACCOUNT_ARN.format(service="logs", resource="log-group:/aws/lambda/d:*"),
            "DeadLetterQueueArn": ACCOUNT_ARN.format(service="sqs", resource="jobs-dlq"),
            "TemplatesTableArn": ACCOUNT_ARN.format(service="dynamodb", resource="table/templates"),
            "TemplatesLogGroupArn": ACCOUNT_ARN.format(service="logs", resource="log-group:/aws/lambda/t:*"),
            "OpenAiLogGroupArn": ACCOUNT_ARN.format(service="logs", resource="log-group:/aws/lambda/o:*"),
            "AuthorizerLogGroupArn": ACCOUNT_ARN.format(service="logs", resource="log-group:/aws/lambda/a:*"),
            "ChartRendererLogGroupArn": ACCOUNT_ARN.format(service="logs", resource="log-group:/aws/lambda/c:*"),
            "ChartRendererFunctionArn": ACCOUNT_ARN.format(service="lambda", resource="function:standalone-charts:live"),
            "EnabledModelIds": "amazon.nova-micro-v1:0,amazon.nova-lite-v1:0",
            "EnhanceModelId": "amazon.nova-lite-v1:0",
        },
        "monitoring": {
            "ConfigureApiGatewayAccount": "false",
            "GenerateFunctionName": "generate",
            "StatusFunctionName": "status",
            "EnhanceFunctionName": "enhance",
            "WorkerFunctionName": "worker",
            "DeadLetterFunctionName": "dead-letter",
            "TemplatesFunctionName": "templates",
            "SweeperFunctionName": "sweeper",
            "OpenAiFunctionName": "openai",
            "MetricsNamespace": "genstack/standalone",
            "JobQueueName": "jobs",
            "DeadLetterQueueName": "jobs-dlq",
            "ApiName": "api",
            "ApiStageName": "v1",
            "JobsTableName": "jobs",
            "CostTrackingTableName": "costs",
            "BudgetLedgerTableName": "ledger",
            "TemplatesTableName": "templates",
            "IdempotencyTableName": "idempotency",
            "MetricMathAlarms": "false",  # the emulator cannot create metric-math alarms
        },
        "api": {
            "RestApiId": deployment.outputs["ApiId"],
            "StageName": "v1",
            "OpenAiRestApiId": deployment.outputs["OpenAiApiId"],
            "OpenAiStageName": "openai",
        },
    }


def wait(cfn, stack_id: str) -> dict:
    for _ in range(240):
        stack = cfn.describe_stacks(StackName=stack_id)["Stacks"][0]
        if not stack["StackStatus"].endswith("_IN_PROGRESS"):
            return stack
        time.sleep(0.5)
    pytest.fail(f"{stack_id} still in progress")


@pytest.mark.parametrize("name", ["network", "storage", "database", "iam", "monitoring", "api"])
def test_layer_deploys_on_its_own(deployment, name):
    parameters = standalone_parameters(deployment)[name]
    required = {p for p, spec in layer(name)["Parameters"].items() if "Default" not in spec}
    assert required <= set(parameters), "the test must give every required parameter"

    cfn = deployment.client("cloudformation")
    stack_id = cfn.create_stack(
        StackName=f"layer-{name}-{uuid.uuid4().hex[:6]}",
        TemplateBody=(ROOT / "infrastructure" / f"{name}.yaml").read_text(),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
    )["StackId"]
    try:
        stack = wait(cfn, stack_id)
        assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
        assert set(outputs) == set(layer(name)["Outputs"])
        assert all(outputs.values())
    finally:
        cfn.delete_stack(StackName=stack_id)
