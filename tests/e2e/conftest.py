"""End-to-end fixtures: a ministack of the tests' own (its own port, its own
stack), deployed with the very script behind `make local` (which deploys
through the one pipeline, as `make deploy` does), torn down after.
Resources are found from the stack's outputs, never by name."""

from __future__ import annotations

import json
import os
import ssl
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest

import api_key
from tests.e2e.fake_providers import FakeProviders
from tests.templates import ROOT

PORT = int(os.environ.get("GENSTACK_E2E_PORT", "4599"))
PLAYGROUND_PORT = int(os.environ.get("GENSTACK_E2E_PLAYGROUND_PORT", "8399"))  # local.sh up serves the page there
STACK = os.environ.get("GENSTACK_E2E_STACK", "genstack-e2e")
LOCAL = ROOT / "infrastructure" / "scripts" / "local.sh"
TERMINAL = {"COMPLETED", "PARTIAL", "FAILED", "BUDGET_EXCEEDED", "CANCELLED"}
LINK_SECONDS = 60


@dataclass
class Deployment:
    stack_name: str
    api_url: str
    ca_bundle: str  # the emulator's self-signed certificate (it serves HTTPS)
    api_key: str
    outputs: dict[str, str]
    endpoint: str
    quickstart: str  # what `local.sh up` printed for the user
    session: boto3.Session
    openai_url: str = ""  # the OpenAI-compatible API's base URL (.../openai/v1)
    outputs_file: Path | None = None  # what the pipeline wrote for this deployment

    def client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.endpoint, verify=self.ca_bundle)


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str]


def call(
    deployment: Deployment,
    method: str,
    path: str,
    body: Any = None,
    *,
    key: str | None = "default",
    content_type="application/json",
    headers: dict[str, str] | None = None,
) -> Reply:
    """One request to the real API Gateway data plane of the emulator."""
    data = None
    headers = dict(headers or {})
    if body is not None:
        data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        headers["Content-Type"] = content_type
    if key is not None:
        headers["x-api-key"] = deployment.api_key if key == "default" else key
    request = urllib.request.Request(deployment.api_url + path, data=data, method=method, headers=headers)
    try:
        tls = ssl.create_default_context(cafile=deployment.ca_bundle)
        with urllib.request.urlopen(request, timeout=30, context=tls) as response:
            raw, status, reply_headers = response.read(), response.status, dict(response.headers)
    except urllib.error.HTTPError as error:
        raw, status, reply_headers = error.read(), error.code, dict(error.headers)
    try:
        parsed = json.loads(raw) if raw else None
    except ValueError:
        parsed = raw.decode(errors="replace")
    return Reply(status, parsed, reply_headers)


def wait_for_job(deployment: Deployment, job_id: str, *, key: str | None = "default", timeout: float = 90) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        reply = call(deployment, "GET", f"/status/{job_id}", key=key)
        assert reply.status == 200, reply
        if reply.body["status"] in TERMINAL:
            return reply.body
        if time.monotonic() > deadline:
            pytest.fail(f"job {job_id} still {reply.body['status']} after {timeout} s")
        time.sleep(0.5)


def fetch(deployment: Deployment, url: str) -> tuple[int, bytes]:
    """GET a result link as a browser would: no key, no AWS credentials."""
    tls = ssl.create_default_context(cafile=deployment.ca_bundle)
    try:
        with urllib.request.urlopen(url, timeout=30, context=tls) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


E2E_MODELS = ("amazon.nova-micro-v1:0", "amazon.nova-lite-v1:0", "amazon.nova-canvas-v1:0", "stability.stable-diffusion-xl-v1")
# Models beyond Bedrock (tests/e2e/test_providers.py): OpenAI and Google with
# secrets the stack creates, answered by a fake provider server on this host;
# Stability AI without a key, so its model is refused at submit time.
EXTERNAL_MODELS = ("openai/gpt-4.1-mini", "google/gemini-2.5-flash", "stability/stable-image-core")


@pytest.fixture(scope="session")
def fake_providers() -> Iterator[FakeProviders]:
    server = FakeProviders().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def deployment(tmp_path_factory: pytest.TempPathFactory, fake_providers: FakeProviders) -> Iterator[Deployment]:
    outputs_file = tmp_path_factory.mktemp("e2e") / "outputs.json"
    env = {
        **os.environ,
        "GENSTACK_LOCAL_PORT": str(PORT),
        "GENSTACK_LOCAL_STACK": STACK,
        "GENSTACK_LOCAL_OUTPUTS": str(outputs_file),
        "GENSTACK_PLAYGROUND_PORT": str(PLAYGROUND_PORT),
        # Result links that expire within the run, so tests/e2e/test_hostile.py
        # can see an expired one refused;
        # image models with and without steps (tests/e2e/test_parameters.py);
        # providers beyond Bedrock (tests/e2e/test_providers.py).
        "GENSTACK_LOCAL_PARAMETERS": " ".join(
            [
                f"OutputLinkSeconds={LINK_SECONDS}",
                f"EnabledModels={','.join(E2E_MODELS + EXTERNAL_MODELS)}",
                "OpenAiApiKeySecret=create",
                "GoogleApiKeySecret=create",
                f"ProviderBaseUrls={fake_providers.base_urls}",
            ]
        ),
    }
    for variable in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        env.pop(variable, None)
    up = subprocess.run(["bash", str(LOCAL), "up"], env=env, capture_output=True, text=True, timeout=900, check=False)
    try:
        assert up.returncode == 0, f"local.sh up failed:\n{up.stderr[-4000:]}"
        info = json.loads(Path(outputs_file).read_text())
        session = boto3.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1")
        yield Deployment(
            STACK,
            info["apiUrl"],
            info["caBundle"],
            info["apiKey"],
            info["outputs"],
            info["endpoint"],
            up.stdout,
            session,
            openai_url=info["openAiBaseUrl"],
            outputs_file=outputs_file,
        )
    finally:
        subprocess.run(["bash", str(LOCAL), "down"], env=env, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture(scope="session")
def second_key(deployment: Deployment) -> str:
    """Another API key on the same usage plan: a second tenant."""
    return new_key(deployment)


def profiles(deployment: Deployment) -> api_key.Profiles:
    """The deployment's key profiles, as api_key.py writes them (an emulator: keys known by their hash)."""
    table = deployment.session.resource("dynamodb", endpoint_url=deployment.endpoint, verify=deployment.ca_bundle)
    return api_key.Profiles(table.Table(deployment.outputs["BudgetLedgerTableName"]), local=True)


def new_key(deployment: Deployment, tier: str = "standard", budget_usd=None) -> str:
    """A new API key on one of the deployment's usage-plan tiers, issued the way
    operators do (infrastructure/scripts/api_key.py, with its profile); returns its value."""
    key = api_key.issue(
        deployment.client("apigateway"),
        deployment.outputs,
        tier,
        f"e2e-{uuid.uuid4().hex[:8]}",
        deployment.stack_name,
        profiles=profiles(deployment),
        budget_usd=budget_usd,
    )
    return key["value"]
