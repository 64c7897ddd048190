"""Conditional writes, the one mechanism behind every state change genstack
makes in DynamoDB: a write whose condition does not hold is an answer (None),
not an error; any other failure is raised."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError


def if_condition(write: Callable[..., dict[str, Any]], **request: Any) -> dict[str, Any] | None:
    """`write(**request)` (put_item, update_item, ...) and its response, or None
    when its ConditionExpression was false."""
    try:
        return write(**request)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return None
        raise


def plain(amount: Decimal) -> Decimal:
    """A settled amount of exactly zero as 0, not 0E-8 (what a sum of
    quantized amounts becomes at zero). DynamoDB reads either, but some
    clients and emulators parse "0E-8" as an integer and fail."""
    return Decimal(0) if amount == 0 else amount
