"""Domain errors. Each carries the HTTP status and the error code of the API
contract, so handlers map them to `{"error": {"code", "message"}}` in one place."""

from __future__ import annotations

from typing import Any


class GenstackError(Exception):
    status_code = 500
    code = "INTERNAL_ERROR"

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}


class InvalidRequest(GenstackError):
    status_code = 400
    code = "INVALID_REQUEST"


class UnknownModel(InvalidRequest):
    code = "UNKNOWN_MODEL"


class MissingApiKey(GenstackError):
    status_code = 401
    code = "MISSING_API_KEY"


class JobNotFound(GenstackError):
    status_code = 404
    code = "JOB_NOT_FOUND"


class ModelThrottled(GenstackError):
    status_code = 429
    code = "MODEL_THROTTLED"


class ModelRejected(GenstackError):
    """The model refused the request as invalid (for example a prompt too long for it)."""

    status_code = 400
    code = "MODEL_REJECTED_REQUEST"


class ModelUnavailable(GenstackError):
    """Bedrock failed or denied the call: not the caller's fault."""

    status_code = 502
    code = "MODEL_UNAVAILABLE"


class ProviderNotConfigured(GenstackError):
    """A model beyond Bedrock whose provider has no API key in this
    deployment (no secret, or an empty one): an operator's to fix."""

    status_code = 503
    code = "PROVIDER_NOT_CONFIGURED"


class ModelProviderNotConfigured(InvalidRequest):
    """A job names a model whose provider has no key configured: refused at submit time."""

    code = "PROVIDER_NOT_CONFIGURED"


class MonthlyBudgetExceeded(GenstackError):
    """The API key's monthly budget cannot cover the request."""

    status_code = 429
    code = "MONTHLY_BUDGET_EXCEEDED"


class BlockedByGuardrail(GenstackError):
    """The deployment's guardrail blocked the request's input or the model's
    answer (its cost is still charged: Bedrock bills the guardrail's checks)."""

    status_code = 422
    code = "GUARDRAIL_INTERVENED"
