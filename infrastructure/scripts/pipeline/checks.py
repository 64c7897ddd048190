"""After a deploy: the first API key checked (enabled again if it was disabled),
a smoke test through the real API (/health, then an authenticated call), the
playground page published, and the starter prompt templates seeded."""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
from typing import Any

from botocore.exceptions import ClientError

from cfn_render import ROOT

from .console import PipelineError, say
from .session import Aws

SEED_TEMPLATES = ROOT / "infrastructure" / "seed" / "templates.json"


def http(method: str, url: str, *, key: str | None = None, body: Any = None, ca_bundle: str | None = None) -> tuple[int, Any]:
    headers = {"content-type": "application/json"} if body is not None else {}
    if key:
        headers["x-api-key"] = key
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    context = ssl.create_default_context(cafile=ca_bundle or None)
    try:
        with urllib.request.urlopen(request, timeout=30, context=context) as response:
            raw, status = response.read(), response.status
    except urllib.error.HTTPError as error:
        raw, status = error.read(), error.code
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")


def first_key(aws: Aws, key_id: str) -> str:
    """The first key's value, enabled again if someone disabled it."""
    apigw = aws.client("apigateway")
    try:
        key = apigw.get_api_key(apiKey=key_id, includeValue=True)
    except ClientError as exc:
        raise PipelineError(f"the first API key {key_id} is missing: {exc.response['Error']['Message']}") from exc
    if not key.get("enabled", True):
        apigw.update_api_key(apiKey=key_id, patchOperations=[{"op": "replace", "path": "/enabled", "value": "true"}])
        say(f"the first API key {key_id} was disabled; enabled it again", "yellow")
    say(f"first API key: {key_id} (value: make api-key, or aws apigateway get-api-key --api-key {key_id} --include-value)")
    return key["value"]


def smoke(base: str, key: str, ca_bundle: str | None, settle_seconds: float = 90) -> None:
    status, body = http("GET", f"{base}/health", ca_bundle=ca_bundle)
    if status != 200:
        raise PipelineError(f"smoke test: GET /health answered {status} {body}")
    # A new key can take a few seconds to reach every API Gateway node.
    deadline = time.monotonic() + settle_seconds
    while True:
        status, body = http("GET", f"{base}/jobs?limit=1", key=key, ca_bundle=ca_bundle)
        if status == 200 or time.monotonic() > deadline:
            break
        time.sleep(3)
    if status != 200:
        raise PipelineError(f"smoke test: GET /jobs with the first key answered {status} {body}")
    say("smoke test passed: /health, and /jobs with the first key", "green")


def seed(base: str, key: str, ca_bundle: str | None) -> list[str]:
    """The starter templates the first key does not have yet; returns their ids."""
    seeded = []
    for template in json.loads(SEED_TEMPLATES.read_text(encoding="utf-8")):
        url = f"{base}/templates/{template['templateId']}"
        status, _ = http("GET", url, key=key, ca_bundle=ca_bundle)
        if status == 404:
            status, body = http("POST", f"{base}/templates", key=key, body=template, ca_bundle=ca_bundle)
            if status != 201:
                raise PipelineError(f"seeding template {template['templateId']}: {status} {body}")
            seeded.append(template["templateId"])
        elif status != 200:
            raise PipelineError(f"reading template {template['templateId']}: {status}")
    say(f"starter templates: {', '.join(seeded) or 'already present'}", "green")
    return seeded


def post_deploy(aws: Aws, info: dict[str, Any], *, seed_templates: bool = True, smoke_test: bool = True) -> None:
    key = first_key(aws, info["outputs"]["ApiKeyId"])
    base, ca_bundle = info["apiUrl"], info.get("caBundle")
    if smoke_test:
        smoke(base, key, ca_bundle)
    if "PlaygroundUrl" in info["outputs"]:
        from playground import publish

        say(f"playground: {publish(aws.client('s3'), info)} (paste an API key)", "green")
    if seed_templates:
        seed(base, key, ca_bundle)
