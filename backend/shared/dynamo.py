"""Conditional writes, the one mechanism behind every state change genstack
makes in DynamoDB: a write whose condition does not hold is an answer (None),
not an error; any other failure is raised."""

from __future__ import annotations

from collections.abc import Callable
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
