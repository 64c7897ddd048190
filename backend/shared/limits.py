"""How many requests of one slow route a key may have in flight at once.

Usage-plan throttles bound a key's request *rate*; a synchronous model call
takes up to 29 s, so a key within its rate could still hold dozens of
concurrent executions of /enhance and starve every other key of the
function's reserved concurrency. Each request here holds one of the key's
slots (items (owner, "inflight#<route>#<n>") of the BudgetLedger table) for
its duration, taken with a conditional write; a slot whose holder died is
free again once its lease (the function's timeout and a margin) has passed."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from shared.dynamo import if_condition
from shared.errors import GenstackError


class TooManyInFlight(GenstackError):
    status_code = 429
    code = "CONCURRENCY_LIMIT"


class InFlightSlots:
    def __init__(self, table: Any, *, route: str, lease_seconds: int, clock: Callable[[], float] = time.time) -> None:
        self._table = table
        self._route = route
        self._lease = lease_seconds
        self._clock = clock

    def _key(self, owner: str, slot: int) -> dict[str, str]:
        return {"owner": owner, "period": f"inflight#{self._route}#{slot}"}

    @contextmanager
    def hold(self, owner: str, *, slots: int) -> Iterator[None]:
        """Hold one of `owner`'s `slots` for the block; 429 when all are held."""
        now, token = int(self._clock()), uuid.uuid4().hex
        order = list(range(slots))
        random.shuffle(order)  # concurrent requests of one key try different slots first
        for slot in order:
            taken = if_condition(
                self._table.put_item,
                Item={**self._key(owner, slot), "token": token, "leaseUntil": now + self._lease},
                ConditionExpression="attribute_not_exists(#owner) OR leaseUntil < :now",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":now": now},
            )
            if taken is None:
                continue
            try:
                yield
            finally:
                # Only our own hold; a slot taken over after an expired lease is the new holder's.
                if_condition(
                    self._table.delete_item,
                    Key=self._key(owner, slot),
                    ConditionExpression="#token = :token",
                    ExpressionAttributeNames={"#token": "token"},
                    ExpressionAttributeValues={":token": token},
                )
            return
        raise TooManyInFlight(
            f"this API key already has {slots} {self._route} request(s) in flight, the most its tier allows; "
            "retry when one has finished",
            details={"inFlightLimit": slots},
        )
