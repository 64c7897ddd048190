"""A fake Bedrock runtime over real HTTP for the kill test: it answers
Converse (the REST-JSON wire format botocore speaks) and keeps the bill. It
also answers OpenAI's Chat Completions (POST /v1/chat/completions, the
worker's external provider over urllib3), with the same faults, keyed on the
X-Client-Request-Id the worker sends (job and call ids), as OpenAI logs it.

Faults, drawn per attempt from a seeded generator:
- throttling (HTTP 429, ThrottlingException): not billed;
- a model timeout reported by the service (HTTP 408, ModelTimeoutException): not billed;
- a slow answer: it sleeps past the client's read timeout, then bills the
  call and writes the answer to a connection its client has left, as a real
  service would (the client sees a ReadTimeoutError: an unknown outcome).
A bill is recorded when the answer is sent, keyed on the job and call ids the
request carries (requestMetadata), as Bedrock's model invocation log would
record them."""

from __future__ import annotations

import json
import random
import threading
import time
from contextlib import suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote


@dataclass
class Bill:
    model: str
    input_tokens: int
    output_tokens: int


@dataclass
class StubBedrock:
    throttle_rate: float
    timeout_rate: float  # half reported by the service, half a slow answer
    slow_seconds: float
    seed: int = 2026
    bills: dict[str, Bill] = field(default_factory=dict)
    attempts: int = 0
    faults: dict[str, int] = field(default_factory=dict)
    answered_twice: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.random = random.Random(self.seed)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="stub-bedrock", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> StubBedrock:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()

    def _draw(self) -> str:
        with self.lock:
            self.attempts += 1
            roll = self.random.random()
        if roll < self.throttle_rate:
            return "throttled"
        if roll < self.throttle_rate + self.timeout_rate / 2:
            return "model-timeout"
        if roll < self.throttle_rate + self.timeout_rate:
            return "slow"
        return "answer"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:  # quiet
                pass

            def _send(self, status: int, body: dict[str, Any], error: str | None = None) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                if error:
                    self.send_header("x-amzn-ErrorType", f"{error}:http://internal.amazon.com/coral/com.amazon.bedrock/")
                self.end_headers()
                with suppress(OSError):  # the client gave up (a read timeout); the bill stands
                    self.wfile.write(payload)

            def do_POST(self) -> None:
                expected = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(expected)
                if len(body) < expected:  # its client died while sending it: nothing to process
                    with stub.lock:
                        stub.faults["cut-off request"] = stub.faults.get("cut-off request", 0) + 1
                    return
                request = json.loads(body)
                if self.path == "/v1/chat/completions":
                    self._openai(request)
                    return
                model = unquote(self.path.split("/")[2])  # /model/amazon.nova-lite-v1%3A0/converse
                metadata = request.get("requestMetadata") or {}
                call_id = f"{metadata.get('genstackJobId', '?')}|{metadata.get('genstackCallId', '?')}"
                outcome = stub._draw()
                with stub.lock:
                    stub.faults[outcome] = stub.faults.get(outcome, 0) + 1
                if outcome == "throttled":
                    self._send(429, {"message": "Too many requests, please wait before trying again."}, "ThrottlingException")
                    return
                if outcome == "model-timeout":
                    self._send(408, {"message": "Model has timed out in processing the request."}, "ModelTimeoutException")
                    return
                if outcome == "slow":
                    time.sleep(stub.slow_seconds)
                prompt = "".join(block.get("text", "") for m in request.get("messages", []) for block in m.get("content", []))
                input_tokens = 5 + len(prompt) // 4
                output_tokens = 7 + (abs(hash(call_id)) % 40)
                with stub.lock:
                    if call_id in stub.bills:  # a call id must never be sent again once answered
                        stub.answered_twice.append(call_id)
                    stub.bills[call_id] = Bill(model, input_tokens, output_tokens)
                self._send(
                    200,
                    {
                        "output": {"message": {"role": "assistant", "content": [{"text": f"reply to {call_id}"}]}},
                        "stopReason": "end_turn",
                        "usage": {
                            "inputTokens": input_tokens,
                            "outputTokens": output_tokens,
                            "totalTokens": input_tokens + output_tokens,
                        },
                        "metrics": {"latencyMs": 12},
                    },
                )

            def _openai(self, request: dict[str, Any]) -> None:
                call_id = self.headers.get("x-client-request-id", "?|?")
                outcome = stub._draw()
                with stub.lock:
                    stub.faults[f"openai {outcome}"] = stub.faults.get(f"openai {outcome}", 0) + 1
                if outcome == "throttled":
                    error = {"message": "Rate limit reached", "type": "requests", "param": None, "code": "rate_limit_exceeded"}
                    self._send(429, {"error": error})
                    return
                if outcome == "model-timeout":  # overloaded: not billed, retryable
                    self._send(503, {"error": {"message": "overloaded", "type": "server_error", "param": None, "code": None}})
                    return
                if outcome == "slow":
                    time.sleep(stub.slow_seconds)
                prompt = "".join(str(m.get("content", "")) for m in request.get("messages", []))
                input_tokens = 5 + len(prompt) // 4
                output_tokens = 7 + (abs(hash(call_id)) % 40)
                with stub.lock:
                    if call_id in stub.bills:
                        stub.answered_twice.append(call_id)
                    stub.bills[call_id] = Bill(f"openai/{request['model']}", input_tokens, output_tokens)
                message = {"role": "assistant", "content": f"reply to {call_id}", "refusal": None}
                self._send(
                    200,
                    {
                        "id": "chatcmpl-kill",
                        "object": "chat.completion",
                        "created": 1764700000,
                        "model": request["model"],
                        "choices": [{"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}],
                        "usage": {
                            "prompt_tokens": input_tokens,
                            "completion_tokens": output_tokens,
                            "total_tokens": input_tokens + output_tokens,
                        },
                    },
                )

        return Handler
