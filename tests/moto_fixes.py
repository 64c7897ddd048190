"""A correction to moto, for the tests only.

moto adds DynamoDB numbers as Decimals and stores the sum with str(), so a
counter that returns to exactly zero (ADD 0.00012345, then ADD -0.00012345) is
stored as "0E-8"; moto then reads a number without a "." as an int and fails on
the next ADD (`invalid literal for int() with base 10: '0E-8'`). DynamoDB stores
such a sum as 0. The ledger's reserved counters go back to zero after every
call, so the tests patch moto's number arithmetic to write plain notation, as
DynamoDB's does. Nothing in the application works around it."""

from __future__ import annotations

from decimal import Decimal
from typing import Any


def _plain(value: Any) -> Any:
    from moto.dynamodb.models.dynamo_type import DynamoType

    if isinstance(value, DynamoType) and value.is_number() and "E" in value.value.upper():
        number = Decimal(value.value)
        text = format(number.normalize(), "f") if number != 0 else "0"
        return DynamoType({"N": text})
    return value


def patch_moto_number_sums() -> None:
    from moto.dynamodb.models.dynamo_type import DynamoType

    if getattr(DynamoType, "_genstack_plain_sums", False):
        return
    add, sub = DynamoType.__add__, DynamoType.__sub__
    DynamoType.__add__ = lambda self, other: _plain(add(self, other))  # type: ignore[method-assign]
    DynamoType.__sub__ = lambda self, other: _plain(sub(self, other))  # type: ignore[method-assign]
    DynamoType._genstack_plain_sums = True  # type: ignore[attr-defined]
