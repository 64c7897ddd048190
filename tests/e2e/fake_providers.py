"""A fake OpenAI and Gemini API on 127.0.0.1, for the end-to-end tests: the
local stack's worker calls it over real HTTP with the keys it read from the
emulator's Secrets Manager (template parameter ProviderBaseUrls points the
providers here). It answers in each API's published shape (the unit tests pin
those shapes: tests/unit/test_external_providers.py) with fixed token counts,
so the test knows to the last decimal what each call must cost, and it
refuses a wrong key as the real APIs do (401). Asked for a chart (the
worker's Vega-Lite system prompt), OpenAI's answer is a bar chart spec of the
request's data, which the stack's chart renderer function then draws."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

OPENAI_KEY = "sk-e2e-openai-0123456789"
GOOGLE_KEY = "AIza-e2e-google-0123456789"
OPENAI_USAGE = (21, 9)  # prompt_tokens, completion_tokens of every chat answer
GEMINI_USAGE = (17, 5)  # promptTokenCount, candidatesTokenCount


def chart_spec(request: str) -> str:
    """A bar chart of the records the chart request carries (shared.providers.chart.chart_request)."""
    records = json.loads(request.split("The data, as JSON records:\n", 1)[1])
    category, value = list(records[0])[:2]
    spec = {
        "title": "e2e chart",
        "data": {"values": records},
        "mark": "bar",
        "encoding": {"x": {"field": category, "type": "nominal"}, "y": {"field": value, "type": "quantitative"}},
    }
    return json.dumps(spec)


class FakeProviders:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []  # path, whether the key was right, the body
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
                if self.path == "/v1/chat/completions":
                    good = self.headers.get("authorization") == f"Bearer {OPENAI_KEY}"
                    outer.calls.append({"path": self.path, "keyOk": good, "body": body})
                    if not good:
                        return self._json(
                            401,
                            {
                                "error": {
                                    "message": "Incorrect API key provided",
                                    "type": "invalid_request_error",
                                    "param": None,
                                    "code": "invalid_api_key",
                                }
                            },
                        )
                    last = body["messages"][-1]["content"]
                    if any("Vega-Lite" in m["content"] for m in body["messages"] if m["role"] == "system"):
                        last = chart_spec(last)
                    return self._json(
                        200,
                        {
                            "id": "chatcmpl-e2e",
                            "object": "chat.completion",
                            "created": 1764700000,
                            "model": body["model"],
                            "choices": [
                                {
                                    "index": 0,
                                    "finish_reason": "stop",
                                    "logprobs": None,
                                    "message": {
                                        "role": "assistant",
                                        "content": last if last.startswith("{") else f"openai:{last[:24]}",
                                        "refusal": None,
                                        "annotations": [],
                                    },
                                }
                            ],
                            "usage": {
                                "prompt_tokens": OPENAI_USAGE[0],
                                "completion_tokens": OPENAI_USAGE[1],
                                "total_tokens": sum(OPENAI_USAGE),
                            },
                        },
                    )
                match = re.fullmatch(r"/v1beta/models/([A-Za-z0-9.-]+):generateContent", self.path)
                if match:
                    good = self.headers.get("x-goog-api-key") == GOOGLE_KEY
                    outer.calls.append({"path": self.path, "keyOk": good, "body": body})
                    if not good:
                        return self._json(
                            400, {"error": {"code": 400, "message": "API key not valid.", "status": "INVALID_ARGUMENT"}}
                        )
                    last = body["contents"][-1]["parts"][0]["text"]
                    return self._json(
                        200,
                        {
                            "candidates": [
                                {
                                    "content": {"role": "model", "parts": [{"text": f"gemini:{last[:24]}"}]},
                                    "finishReason": "STOP",
                                    "index": 0,
                                }
                            ],
                            "usageMetadata": {
                                "promptTokenCount": GEMINI_USAGE[0],
                                "candidatesTokenCount": GEMINI_USAGE[1],
                                "totalTokenCount": sum(GEMINI_USAGE),
                            },
                            "modelVersion": match.group(1),
                        },
                    )
                return self._json(
                    404,
                    {"error": {"message": f"no route {self.path}", "type": "invalid_request_error", "param": None, "code": None}},
                )

            def _json(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_urls(self) -> str:
        """The value of the template parameter ProviderBaseUrls."""
        return f"openai=http://127.0.0.1:{self.port}/v1,google=http://127.0.0.1:{self.port}"

    def start(self) -> FakeProviders:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
