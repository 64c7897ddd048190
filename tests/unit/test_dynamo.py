"""if_condition: a false condition is an answer, any other failure an error."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from shared.dynamo import if_condition


def failing(code: str):
    def write(**_request):
        raise ClientError({"Error": {"Code": code, "Message": "m"}}, "UpdateItem")

    return write


def test_a_false_condition_is_none():
    assert if_condition(failing("ConditionalCheckFailedException"), Key={}) is None


@pytest.mark.parametrize("code", ["ProvisionedThroughputExceededException", "AccessDeniedException", "ValidationException"])
def test_other_failures_are_raised(code):
    with pytest.raises(ClientError, match=code):
        if_condition(failing(code), Key={})


def test_a_write_returns_its_response():
    assert if_condition(lambda **request: {"Attributes": request}, Key={"id": "1"}) == {"Attributes": {"Key": {"id": "1"}}}


def test_a_zero_amount_is_written_as_zero():
    from decimal import Decimal

    from shared.dynamo import plain

    zero = Decimal("0.00000266") - Decimal("0.00000266")
    assert str(zero) == "0E-8"  # what a released reservation sums to
    assert str(plain(zero)) == "0"
    assert plain(Decimal("0.00000266")) == Decimal("0.00000266")
