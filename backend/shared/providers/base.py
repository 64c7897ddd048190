"""The provider interface every output kind implements."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from botocore.exceptions import BotoCoreError, ClientError


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
    # What the call's guardrail checks cost (Converse with guardrailConfig),
    # and what it did short of blocking ("MASKED").
    guardrail_usd: Decimal = Decimal(0)
    guardrail_action: str | None = None
    # Why a text model stopped, in OpenAI's terms (FINISH_REASONS): "stop"
    # (the end of its turn or a stop sequence), "length" (maxTokens),
    # "content_filter"; None where the provider does not say.
    finish: str | None = None


FINISH_REASONS = {
    # Bedrock Converse stopReason
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
    # OpenAI finish_reason
    "stop": "stop",
    "length": "length",
    "content_filter": "content_filter",
    # Gemini finishReason
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
}


def finish_of(reason: Any) -> str | None:
    """A provider's stop reason in OpenAI's terms, or None if it has no equivalent."""
    return FINISH_REASONS.get(reason) if isinstance(reason, str) else None


# What a caller is told when a provider fails a call: the provider's own text
# can name the account, the role and the resources (AccessDeniedException
# quotes the role's ARN), so it goes to the log and the caller gets these.
PUBLIC_MESSAGES = {
    "ValidationException": "the model refused the request as invalid (a prompt or setting it does not accept)",
    "AccessDeniedException": "this deployment may not call the model (model access is not enabled or not granted)",
    "ResourceNotFoundException": "the model is not available to this deployment (region or account)",
    "ThrottlingException": "the model was throttled and the retries ran out",
    "ServiceQuotaExceededException": "the model's quota is exhausted for now",
    "ModelTimeoutException": "the model took too long to answer",
    "ModelNotReadyException": "the model is not ready yet",
    "ModelErrorException": "the model failed to process the request",
    "ServiceUnavailableException": "the model provider is unavailable",
    "InternalServerException": "the model provider failed",
    "ImageGenerationError": "the image model reported an error",
    "ContentFiltered": "the model's content filter blocked the output",
    "ReadTimeoutError": "the model did not answer within the call's timeout",
    "ConnectTimeoutError": "the model provider could not be reached in time",
    "EndpointConnectionError": "the model provider could not be reached",
}


def public_message(code: str) -> str:
    return PUBLIC_MESSAGES.get(code, f"the model call failed ({code})")


class ModelCallError(Exception):
    """A model call failed. `code` is Bedrock's error code (or ours); `retryable`
    says whether the same call may succeed later (throttling, timeouts). Tokens
    a failed piece of work still consumed (a chart's calls) are carried along,
    because they are billed. `message` is for the log; `public` is what the
    caller may be shown: our own sentence for errors genstack itself raises
    (`public=True` keeps `message`), else the code's entry in PUBLIC_MESSAGES.
    `outcome_unknown`: the request reached the provider but its answer was
    lost (a read timeout, a connection cut mid-answer): it may have been
    billed, so its reservation is charged (UNCONFIRMED), not released."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        retryable: bool,
        input_tokens: int = 0,
        output_tokens: int = 0,
        public: bool = False,
        outcome_unknown: bool = False,
        billed_usd: Decimal | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.retryable = retryable
        self.input_tokens = input_tokens
        self.output_tokens = output_tokens
        self.public = message if public else public_message(code)
        self.outcome_unknown = outcome_unknown
        # Set when the provider answered and billed the call although it
        # produced nothing usable (a guardrail's block): beyond the tokens, what
        # else it cost (the guardrail's units). The call is settled, not released.
        self.billed_usd = billed_usd


class GuardrailBlocked(ModelCallError):
    """The deployment's guardrail blocked the input or the output: the
    model's result is BLOCKED, with the guardrail's reason."""

    def __init__(
        self, where: str, reasons: list[str], *, input_tokens: int = 0, output_tokens: int = 0, guardrail_usd: Decimal
    ) -> None:
        reason = ", ".join(reasons) if reasons else "its policies"
        super().__init__(
            "GUARDRAIL_INTERVENED",
            f"the guardrail blocked the {where} ({reason})",
            retryable=False,
            public=True,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            billed_usd=guardrail_usd,
        )
        self.where = where
        self.reasons = reasons


class Provider(Protocol):
    def generate(
        self,
        model: str,
        prompt: str,
        *,
        system: str | None = None,
        max_tokens: int,
        metadata: dict[str, str] | None = None,
        params: dict[str, Any] | None = None,
        messages: list[dict[str, str]] | None = None,
        guardrail: Any | None = None,
    ) -> Generation:
        """One call. `metadata` names the call (job and call id) to the
        provider where its API takes it (Bedrock Converse requestMetadata,
        which the model invocation log records), for reconciling bills.
        `params` are the call's generation parameters (shared.parameters,
        resolved); `messages` a conversation instead of `prompt`; `guardrail`
        the deployment's (shared.guardrails.Guardrail), for the providers that
        apply it within the call."""
        ...


# Transport failures after the request was sent: the provider may have
# answered (and billed) while the answer was lost.
OUTCOME_UNKNOWN = frozenset({"ReadTimeoutError", "ConnectionClosedError", "ResponseStreamingError", "IncompleteReadError"})


# Bedrock error codes a later identical call may get past.
RETRYABLE_CODES = frozenset(
    {
        "ThrottlingException",
        "ModelTimeoutException",
        "ServiceUnavailableException",
        "InternalServerException",
        "ModelNotReadyException",
    }
)


@contextmanager
def bedrock_errors() -> Iterator[None]:
    """A Bedrock runtime call's failures as ModelCallError: the service's code
    (retryable if a later identical call may succeed), or the transport's
    (connection and read timeouts, retryable; the outcome unknown once the
    request may have reached the service)."""
    try:
        yield
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = error.get("Code", "ClientError")
        raise ModelCallError(code, error.get("Message", str(exc)), retryable=code in RETRYABLE_CODES) from exc
    except BotoCoreError as exc:
        name = type(exc).__name__
        raise ModelCallError(name, str(exc), retryable=True, outcome_unknown=name in OUTCOME_UNKNOWN) from exc
