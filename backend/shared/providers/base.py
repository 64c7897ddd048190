"""The provider interface every output kind implements."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Generation:
    """What one model call produced."""

    model: str
    content: bytes
    content_type: str
    extension: str
    input_tokens: int
    output_tokens: int
    latency_ms: int
    text: str | None = None
    images: int = 0
    # Further files of the same output: (extension, content type, bytes).
    attachments: tuple[tuple[str, str, bytes], ...] = ()


class ModelCallError(Exception):
    """A model call failed. `code` is Bedrock's error code (or ours); `retryable`
    says whether the same call may succeed later (throttling, timeouts). Tokens
    a failed piece of work still consumed (a chart's calls) are carried along,
    because they are billed."""

    def __init__(self, code: str, message: str, *, retryable: bool, input_tokens: int = 0, output_tokens: int = 0) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.retryable = retryable
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens


class Provider(Protocol):
    def generate(self, model: str, prompt: str, *, system: str | None = None, max_tokens: int) -> Generation: ...
