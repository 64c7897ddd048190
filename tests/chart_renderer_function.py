"""The chart renderer function as the worker's Lambda client reaches it: Invoke
runs the function's real handler (chart_renderer.app) in this process, where
Lambda would run it in its own, and answers as botocore does. The request's
shape against Lambda's API model is checked by Stubber tests
(tests/unit/test_chart_provider.py)."""

from __future__ import annotations

import io
import json
from typing import Any

from botocore.response import StreamingBody

import chart_renderer.app

ARN = "arn:aws:lambda:us-east-1:123456789012:function:genstack-dev-charts:live"


def payload(body: object) -> StreamingBody:
    raw = json.dumps(body).encode()
    return StreamingBody(io.BytesIO(raw), len(raw))


class RendererFunction:
    """A Lambda client that knows one function: the chart renderer."""

    def __init__(self) -> None:
        self.invocations = 0

    def invoke(self, *, FunctionName: str, InvocationType: str, Payload: bytes) -> dict[str, Any]:
        assert (FunctionName, InvocationType) == (ARN, "RequestResponse")
        self.invocations += 1
        return {"StatusCode": 200, "Payload": payload(chart_renderer.app.handler(json.loads(Payload), None))}
