"""POST /generate with an Idempotency-Key header: the same key and body return
the job the first request created; the same key with another body is refused.
Powertools idempotency, on the deployment's idempotency table, imported by the
first request that carries the header (about 11 ms a cold start without one
does not pay)."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from shared.errors import GenstackError, InvalidRequest
from shared.models import GenerateRequest

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

HEADER = "Idempotency-Key"
KEY_TTL_SECONDS = 24 * 3600  # a retry a day later creates a new job
_VALID_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")  # printable ASCII, no spaces


class IdempotencyKeyReused(GenstackError):
    status_code = 422
    code = "IDEMPOTENCY_KEY_REUSED"


class IdempotencyInProgress(GenstackError):
    status_code = 409
    code = "IDEMPOTENCY_KEY_IN_PROGRESS"


def idempotency_key(event: Any) -> str | None:
    value = event.headers.get(HEADER)  # Powertools v3 headers are case-insensitive
    if value is None:
        return None
    if not _VALID_KEY.match(value):
        raise InvalidRequest(f"the {HEADER} header must be 1 to 255 printable ASCII characters without spaces")
    return value


@lru_cache(maxsize=1)
def _persistence(table_name: str) -> DynamoDBPersistenceLayer:
    from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer

    return DynamoDBPersistenceLayer(table_name=table_name)


def idempotent_submission(table_name: str, lambda_context: Any) -> Callable[..., dict[str, Any]]:
    """submit(submission={"key", "request"}, run=accept) -> the 202 body, run
    once per key. The key is scoped to the caller by whoever builds it."""
    from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
        IdempotencyValidationError,
    )

    config = IdempotencyConfig(
        event_key_jmespath="key",
        payload_validation_jmespath="request",
        raise_on_no_idempotency_key=True,
        expires_after_seconds=KEY_TTL_SECONDS,
    )
    config.register_lambda_context(lambda_context)

    @idempotent_function(data_keyword_argument="submission", persistence_store=_persistence(table_name), config=config)
    def submit(submission: dict[str, Any], run: Callable[[GenerateRequest, str], dict[str, Any]]) -> dict[str, Any]:
        owner = submission["key"].split("#", 1)[0]
        return run(GenerateRequest.model_validate(submission["request"]), owner)

    def guarded(submission: dict[str, Any], run: Callable[[GenerateRequest, str], dict[str, Any]]) -> dict[str, Any]:
        try:
            return submit(submission=submission, run=run)
        except IdempotencyValidationError as exc:
            raise IdempotencyKeyReused(f"this {HEADER} was already used with a different request body") from exc
        except IdempotencyAlreadyInProgressError as exc:
            raise IdempotencyInProgress(f"a request with this {HEADER} is still being processed; retry shortly") from exc

    return guarded
