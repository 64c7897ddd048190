"""What a deployment leaves for its users: one JSON file per deployment
(outputs/<env>.json; `make local` writes outputs/local.json) in one format,
whatever the target. The client (python -m genstack --outputs), the tests and
the benchmarks read it.

  stackName environment region endpoint status collectedAt
  parameters        the root stack's deployed parameters
  outputs           the root stack's outputs
  nested            each layer's outputs, by its logical id
  apiUrl            where clients call the API (on an emulator: its data plane)
  openAiBaseUrl     the OpenAI-compatible API's base URL
  apiKeyId          the first API key
  apiKey            its value on an emulator (throwaway keys, for the quick-start);
                    null on AWS: a key's value is a secret, read it with your
                    credentials when you need it (the client does)
  caBundle          the certificate to trust (an emulator's self-signed one), or null
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .console import say
from .session import Aws

# ministack serves REST APIs at {endpoint}/_aws/execute-api/{apiId}/{stage}/...
EMULATOR_API = "{endpoint}/_aws/execute-api/{api_id}/{stage}"


def invoke_url(outputs: dict[str, str], endpoint: str | None) -> str:
    """The main API's invoke URL: the ApiUrl output on AWS, the data plane on an emulator."""
    if endpoint:
        return EMULATOR_API.format(endpoint=endpoint.rstrip("/"), api_id=outputs["ApiId"], stage="v1")
    return outputs["ApiUrl"]


def openai_url(outputs: dict[str, str], endpoint: str | None) -> str:
    """The OpenAI-compatible API's base URL (an OpenAI SDK's base_url), the same way."""
    if endpoint:
        return EMULATOR_API.format(endpoint=endpoint.rstrip("/"), api_id=outputs["OpenAiApiId"], stage="openai") + "/v1"
    return outputs["OpenAiBaseUrl"]


def outputs_of(described: dict[str, Any]) -> dict[str, str]:
    return {o["OutputKey"]: o["OutputValue"] for o in described.get("Outputs", [])}


def collect(aws: Aws, stack: str, environment: str) -> dict[str, Any]:
    cfn = aws.client("cloudformation")
    described = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    nested = {}
    for resource in cfn.describe_stack_resources(StackName=stack)["StackResources"]:
        if resource["ResourceType"] == "AWS::CloudFormation::Stack":
            child = cfn.describe_stacks(StackName=resource["PhysicalResourceId"])["Stacks"][0]
            nested[resource["LogicalResourceId"]] = outputs_of(child)
    outputs = outputs_of(described)
    key_id = outputs.get("ApiKeyId")
    key = None
    if aws.endpoint and key_id:
        key = aws.client("apigateway").get_api_key(apiKey=key_id, includeValue=True)["value"]
    return {
        "stackName": stack,
        "environment": environment,
        "region": aws.region,
        "endpoint": aws.endpoint,
        "status": described["StackStatus"],
        "parameters": {p["ParameterKey"]: p.get("ParameterValue", "") for p in described.get("Parameters", [])},
        "outputs": outputs,
        "nested": nested,
        "apiUrl": invoke_url(outputs, aws.endpoint) if "ApiId" in outputs else None,
        "openAiBaseUrl": openai_url(outputs, aws.endpoint) if "OpenAiApiId" in outputs else None,
        "apiKeyId": key_id,
        "apiKey": key,
        "caBundle": aws.ca_bundle,
        "collectedAt": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def write(info: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    if info.get("apiKey"):
        path.chmod(0o600)  # it holds a key's value
    say(f"outputs of {info['stackName']} and its {len(info['nested'])} nested stacks -> {path}", "green")


def read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))
