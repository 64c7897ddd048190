"""The OpenAI wire format of the /v1 routes: the requests they take (every
field they do not implement is refused, never ignored) and the objects they
answer: model, chat completion, chat completion chunk (as server-sent
events), images response and error. tests/unit/test_openai_api.py checks each
against the OpenAI API's published OpenAPI description."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from shared.models import MAX_TURNS

# What a request may say and genstack does: the rest of OpenAI's fields
# (tools, logprobs, response_format, seed, ...) are refused by name.
CHAT_FIELDS = (
    "model",
    "messages",
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "stop",
    "n",
    "user",
    "stream",
    "stream_options",
)
IMAGE_FIELDS = ("model", "prompt", "n", "size", "quality", "response_format", "style", "user")

Text = Annotated[str, Field(max_length=200_000)]  # the prompt limit (MAX_PROMPT_CHARS) is checked after


class _Strict(BaseModel):
    # Validators are built at first use (shared.models.build: the handler builds the chat request's at init).
    model_config = ConfigDict(defer_build=True, extra="forbid", allow_inf_nan=False)


class TextPart(_Strict):
    """A content part: text only (images, audio and files are refused)."""

    type: Literal["text"]
    text: Text


class ChatMessage(_Strict):
    role: Literal["system", "developer", "user", "assistant"]
    content: Text | list[TextPart] = Field(description="A string, or text parts.")

    @property
    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class StreamOptions(_Strict):
    include_usage: bool | None = None


class ChatCompletionRequest(_Strict):
    """POST /v1/chat/completions."""

    model: str = Field(min_length=1, max_length=200)
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_TURNS)
    temperature: float | None = Field(default=None, ge=0, le=2)
    top_p: float | None = Field(default=None, ge=0, le=1)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    stop: str | list[Annotated[str, Field(max_length=200)]] | None = None
    n: int | None = Field(default=None, ge=1, le=128)
    user: str | None = Field(default=None, max_length=256)
    stream: bool | None = None
    stream_options: StreamOptions | None = None

    @field_validator("stop")
    @classmethod
    def at_most_four(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and len(value) > 4:
            raise ValueError("has more than 4 stop sequences")
        return value


class ImageRequest(_Strict):
    """POST /v1/images/generations."""

    model: str = Field(min_length=1, max_length=200)
    prompt: Text = Field(min_length=1)
    n: int | None = Field(default=None, ge=1, le=10)
    size: str | None = Field(default=None, pattern=r"^(auto|\d{3,4}x\d{3,4})$")
    quality: Literal["auto", "standard", "hd", "low", "medium", "high"] | None = None
    response_format: Literal["url", "b64_json"] | None = None
    style: Literal["vivid", "natural"] | None = None
    user: str | None = Field(default=None, max_length=256)


# ------------------------------------------------------------------ answers
def model_object(model_id: str, owned_by: str, created: int) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": created, "owned_by": owned_by}


def usage_object(input_tokens: int, output_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": input_tokens, "completion_tokens": output_tokens, "total_tokens": input_tokens + output_tokens}


def chat_completion(
    *, completion_id: str, created: int, model: str, text: str, finish: str | None, usage: dict[str, int]
) -> dict[str, Any]:
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": None},
                "finish_reason": finish or "stop",
                "logprobs": None,
            }
        ],
        "usage": usage,
    }


# The size of the content deltas a buffered stream is cut into: small enough
# for a client to render progressively, large enough to keep the body small.
CHUNK_CHARS = 64


def completion_chunks(completion: dict[str, Any], *, include_usage: bool) -> Iterator[dict[str, Any]]:
    """A chat completion as the chunks a stream of it sends: the role, the
    content in pieces, the finish reason, then (if asked) the usage in a
    chunk with no choices. Lambda response streaming would send the same
    chunks as the model's deltas arrive; clients see no difference."""
    choice = completion["choices"][0]
    text = choice["message"]["content"] or ""

    def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {
            "id": completion["id"],
            "object": "chat.completion.chunk",
            "created": completion["created"],
            "model": completion["model"],
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
        }

    yield chunk({"role": "assistant", "content": ""})
    for start in range(0, len(text), CHUNK_CHARS):
        yield chunk({"content": text[start : start + CHUNK_CHARS]})
    yield chunk({}, choice["finish_reason"])
    if include_usage:
        last = chunk({})
        last["choices"], last["usage"] = [], completion["usage"]
        yield last


def server_sent_events(chunks: Iterable[dict[str, Any]]) -> str:
    """`data: <json>` events, then `data: [DONE]`, as OpenAI streams end."""
    events = [f"data: {json.dumps(chunk, separators=(',', ':'))}\n\n" for chunk in chunks]
    return "".join(events) + "data: [DONE]\n\n"


def error_object(message: str, *, type_: str, code: str | None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}
