"""Unit-test fixtures. No test here may reach the network: sockets are off,
AWS credentials are fake, and AWS services are moto's or Stubber's."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.client import BaseClient
from botocore.response import StreamingBody
from botocore.stub import Stubber
from moto import mock_aws
from pytest_socket import disable_socket

from shared import clients
from shared.settings import Settings, get_settings
from tests.chart_renderer_function import ARN as RENDERER_ARN
from tests.chart_renderer_function import RendererFunction
from tests.moto_threads import atomic
from tests.templates import ROOT, table_definition

EVENTS = ROOT / "events"
ENABLED = "amazon.nova-micro-v1:0,amazon.nova-lite-v1:0"


@pytest.fixture(autouse=True)
def _no_network() -> None:
    disable_socket(allow_unix_socket=True)


@pytest.fixture(autouse=True)
def aws_env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_METRICS_NAMESPACE": "genstack-test",
        "POWERTOOLS_SERVICE_NAME": "genstack",
        "GENSTACK_ENV": "dev",
        "JOBS_TABLE": "jobs",
        "COST_TABLE": "costs",
        "IDEMPOTENCY_TABLE": "idempotency",
        "BUDGET_TABLE": "ledger",
        "TEMPLATES_TABLE": "templates",
        "OUTPUTS_BUCKET": "outputs",
        "CDN_DOMAIN": "d111111abcdef8.cloudfront.net",
        "JOB_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/jobs",
        "ENABLED_MODELS": ENABLED,
        "ENHANCE_MODEL_ID": "amazon.nova-lite-v1:0",
    }
    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    for factory in (
        clients.dynamodb_table,
        clients.sqs,
        clients.s3,
        clients.bedrock_runtime,
        clients.bedrock_runtime_sync,
        clients.key_profiles,
    ):
        factory.cache_clear()
    return env


@pytest.fixture
def settings() -> Settings:
    return get_settings()


@dataclass
class Aws:
    jobs_table: Any
    cost_table: Any
    ledger_table: Any
    templates_table: Any
    s3: Any
    sqs: Any
    queue_url: str


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[Aws]:
    """moto's DynamoDB, S3 and SQS, with the Jobs table as database.yaml declares it.
    Requests run one at a time, as each is atomic in DynamoDB (tests/moto_threads.py):
    the worker's model threads once crashed moto's transaction copy."""
    monkeypatch.setattr(BaseClient, "_make_api_call", atomic(BaseClient._make_api_call))
    with mock_aws():
        dynamodb = boto3.resource("dynamodb")
        table = dynamodb.create_table(TableName="jobs", **table_definition("JobsTable"))
        cost_table = dynamodb.create_table(TableName="costs", **table_definition("CostTrackingTable"))
        dynamodb.create_table(TableName="idempotency", **table_definition("IdempotencyTable"))
        ledger_table = dynamodb.create_table(TableName="ledger", **table_definition("BudgetLedgerTable"))
        templates_table = dynamodb.create_table(TableName="templates", **table_definition("TemplatesTable"))
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="outputs")
        sqs = boto3.client("sqs")
        queue_url = sqs.create_queue(QueueName="jobs")["QueueUrl"]
        monkeypatch.setenv("JOB_QUEUE_URL", queue_url)
        get_settings.cache_clear()
        yield Aws(
            jobs_table=table,
            cost_table=cost_table,
            ledger_table=ledger_table,
            templates_table=templates_table,
            s3=s3,
            sqs=sqs,
            queue_url=queue_url,
        )


@pytest.fixture
def stub_bedrock(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], Stubber]]:
    """Replace one of the shared Bedrock client factories (`bedrock_runtime` or
    `bedrock_runtime_sync`) by a real client under a botocore Stubber, which
    checks every request and response against the Bedrock service model."""
    stubbers: list[Stubber] = []

    def stub(factory: str) -> Stubber:
        client = boto3.client("bedrock-runtime", region_name="us-east-1")
        monkeypatch.setattr(clients, factory, lambda: client)
        stubber = Stubber(client)
        stubber.activate()
        stubbers.append(stubber)
        return stubber

    yield stub
    for stubber in stubbers:
        stubber.assert_no_pending_responses()
        stubber.deactivate()


@pytest.fixture
def renderer_function(monkeypatch: pytest.MonkeyPatch) -> RendererFunction:
    """The worker's Lambda client, reaching the chart renderer function's real
    handler (tests/chart_renderer_function.py), named in its settings."""
    function = RendererFunction()
    monkeypatch.setenv("CHART_RENDERER_FUNCTION", RENDERER_ARN)
    monkeypatch.setattr(clients, "lambda_client", lambda: function)
    get_settings.cache_clear()
    return function


@pytest.fixture
def bedrock_stub() -> Iterator[tuple[Any, Stubber]]:
    """A real bedrock-runtime client under an active Stubber (which checks each
    request and response against the service model), for a provider to use."""
    client = boto3.client("bedrock-runtime", region_name="us-east-1")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def invoke_model_reply(payload: dict[str, Any]) -> dict[str, Any]:
    """An InvokeModel response whose JSON body is `payload`."""
    raw = json.dumps(payload).encode()
    return {"body": StreamingBody(io.BytesIO(raw), len(raw)), "contentType": "application/json"}


def load_event(name: str) -> dict[str, Any]:
    return json.loads((EVENTS / name).read_text())


@dataclass
class FakeContext:
    function_name: str = "genstack-test"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:genstack-test"
    aws_request_id: str = "8f5a9f7e-0000-4000-8000-000000000001"

    def get_remaining_time_in_millis(self) -> int:
        return 10_000


@pytest.fixture
def context() -> FakeContext:
    return FakeContext()


def body_of(response: dict[str, Any]) -> dict[str, Any]:
    return json.loads(response["body"])
