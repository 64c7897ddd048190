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


class ModelCallError(Exception):
    """A model call failed. `code` is Bedrock's error code (or ours); `retryable`
    says whether the same call may succeed later (throttling, timeouts)."""

    def __init__(self, code: str, message: str, *, retryable: bool) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.retryable = retryable


class Provider(Protocol):
    def generate(self, model: str, prompt: str, *, system: str | None = None, max_tokens: int) -> Generation: ...
