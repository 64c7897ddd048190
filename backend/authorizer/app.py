"""The /v1 API's Lambda authorizer (REQUEST, identity source the
Authorization header, results cached): `Authorization: Bearer <API key>`,
what OpenAI clients send, becomes the request's usage identifier key. The
API's key source is AUTHORIZER, so API Gateway then checks that key as it
checks x-api-key on the main API: an unknown or disabled key is refused
(403, answered as OpenAI's 401), and the key's usage plan throttles it,
counts its quota and reports its id as the caller's identity.

It makes no AWS call and imports nothing beyond the standard library: it
decides only whether the header has the right form. The policy allows the
whole API stage, because API Gateway caches it per token for every method."""

from __future__ import annotations

import json
import re
from typing import Any

# API Gateway's key values: 20 to 128 printable ASCII characters, no spaces
# (generated ones are 40 letters and digits).
KEY = re.compile(r"[!-~]{20,128}")


class Unauthorized(Exception):
    """Raised with exactly this message, API Gateway answers 401 (UNAUTHORIZED)."""

    def __init__(self) -> None:
        super().__init__("Unauthorized")


def bearer_key(headers: dict[str, str] | None) -> str:
    value = next((v for k, v in (headers or {}).items() if k.lower() == "authorization"), "") or ""
    scheme, _, token = value.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not KEY.fullmatch(token):
        raise Unauthorized
    return token


def stage_arn(method_arn: str) -> str:
    """arn:...:execute-api:region:account:api/stage/VERB/path -> arn:...:api/stage/*/*"""
    head, _, rest = method_arn.partition("/")
    stage = rest.split("/", 1)[0]
    if not head or not stage:
        raise Unauthorized
    return f"{head}/{stage}/*/*"


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    try:
        key = bearer_key(event.get("headers"))
        resource = stage_arn(str(event.get("methodArn", "")))
    except Unauthorized:
        # One line, never the header's value.
        print(json.dumps({"level": "INFO", "message": "bearer token refused", "path": event.get("path")}))
        raise
    return {
        "principalId": "api-key",
        "usageIdentifierKey": key,
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": resource}],
        },
    }
