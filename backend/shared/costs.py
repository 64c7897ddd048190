"""Money: one CostTracking record per paid model call, and the key's monthly
ledger, changed together in one DynamoDB transaction each time, so that they
can never disagree, whatever dies when.

A call's record (CostTracking, keyed on jobId + callId) moves through
  RESERVED     written *before* the call, with the worst case the call may
               cost and the lease of the worker that made it;
  BILLED       the provider answered: the real tokens and cost;
  RELEASED     the call failed in a way the provider does not bill (throttled,
               refused, a model timeout reported by the provider): 0;
  UNCONFIRMED  the caller died, or lost the answer (a client-side timeout),
               after the call may have been billed: charged at the reserved
               worst case, never less. The call id travels with the request
               (Converse requestMetadata), so Bedrock's model invocation log
               can confirm it later. A late answer still turns it into BILLED.
Each step is one transaction over the record and the ledger items of the
month the reservation was made in (a job that crosses midnight at the end of
a month is settled into the month it reserved in):
  BudgetLedger (owner, "2026-12"):        spentUsd (settled and reserved),
                                          reservedUsd (reserved only)
  BudgetLedger (owner, "2026-12#<model>"): costUsd, tokens, images, calls,
                                          unconfirmedCalls (GET /usage)
So at every moment: a month's spentUsd is the sum of its records' costUsd,
and its reservedUsd the sum of the RESERVED ones. A reserved record carries
the lease of its maker, so whoever finds it after the lease expired (a
takeover, the sweeper) knows its maker is dead and makes it UNCONFIRMED."""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from shared.dynamo import plain
from shared.jobs import iso

RESERVED, BILLED, RELEASED, UNCONFIRMED = "RESERVED", "BILLED", "RELEASED", "UNCONFIRMED"
OPEN_INDEX = "open-reservations-index"  # sparse: only RESERVED records carry its key
OPEN = "open"
ZERO = Decimal(0)
LEDGER_RETENTION = timedelta(days=400)  # a year of history, then TTL removes it


def period_of(now: datetime) -> str:
    return now.strftime("%Y-%m")


def call_id(model: str, claim: int, seq: int) -> str:
    """A call's id within its job: the model, the claim (attempt) of the job
    that made it, and its number within that claim's work for the model (a
    chart's repair is 2, a retry after an unknown outcome the next)."""
    return f"{model}#{claim:03d}#{seq:02d}"


@dataclass(frozen=True)
class Call:
    """A reserved call, as its record says."""

    job_id: str
    call_id: str
    owner: str
    model: str
    kind: str
    reserved: Decimal
    period: str
    lease_until: int  # epoch seconds: past this, a RESERVED record's maker is dead

    @classmethod
    def from_record(cls, item: dict[str, Any]) -> Call:
        return cls(
            job_id=item["jobId"],
            call_id=item["callId"],
            owner=item["owner"],
            model=item["model"],
            kind=item.get("kind", "text"),
            reserved=Decimal(str(item["reservedUsd"])),
            period=item["period"],
            lease_until=int(item["leaseUntil"]),
        )


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    images: int = 0


class BudgetRefused(Exception):
    """The key's month cannot take the reservation."""


# Cancellation reasons that say "try again", not "no": another transaction on
# the same item, or capacity.
_PASSING = frozenset({"TransactionConflict", "ThrottlingError", "ProvisionedThroughputExceeded"})
CONFLICT_RETRIES = 8


def _token(*parts: str) -> str:
    """The stem of a ClientRequestToken (36 characters at most): retries of one
    transaction are applied once."""
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:33]


class CallLedger:
    def __init__(self, cost_table: Any, ledger_table: Any, *, retention_days: int) -> None:
        self._costs = cost_table
        self._ledger = ledger_table
        self._retention = timedelta(days=retention_days)

    # ---------------------------------------------------------- transactions
    def _transact(self, items: list[dict[str, Any]], token: str) -> list[str] | None:
        """Run one transaction; None when it applied, else each item's
        cancellation reason ("None" for the items that were not the cause).

        A transaction that met another on the same item (every call of a key
        updates its month item, and a job's calls settle in parallel) is
        cancelled with TransactionConflict, not applied or refused: it is
        retried, with jittered backoff, each try with its own request token
        (botocore's own retries of one try reuse it, so none applies twice)."""
        for attempt in range(CONFLICT_RETRIES + 1):
            try:
                self._costs.meta.client.transact_write_items(
                    TransactItems=items, ClientRequestToken=f"{token[:33]}-{attempt:02d}"
                )
                return None
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                    raise
                reasons = [str(r.get("Code", "None")) for r in exc.response.get("CancellationReasons") or []] or ["Unknown"]
            if "ConditionalCheckFailed" in reasons or not set(reasons) & _PASSING:
                return reasons
            time.sleep(min(1.0, 0.02 * 2**attempt) * random.random())  # noqa: S311 - jitter, not a secret
        raise RuntimeError(f"transaction still conflicting after {CONFLICT_RETRIES} retries: {reasons}")

    def _month_update(self, call: Call, *, spent: Decimal, reserved: Decimal, now: datetime, ceiling: Decimal | None = None):
        update: dict[str, Any] = {
            "TableName": self._ledger.name,
            "Key": {"owner": call.owner, "period": call.period},
            "UpdateExpression": "ADD spentUsd :spent, reservedUsd :reserved SET expiresAt = if_not_exists(expiresAt, :expires)",
            "ExpressionAttributeValues": {
                ":spent": plain(spent),
                ":reserved": plain(reserved),
                ":expires": int((now + LEDGER_RETENTION).timestamp()),
            },
        }
        if ceiling is not None:
            update["ConditionExpression"] = "attribute_not_exists(spentUsd) OR spentUsd <= :ceiling"
            update["ExpressionAttributeValues"][":ceiling"] = plain(ceiling)
        return {"Update": update}

    def _line_update(self, call: Call, *, cost: Decimal, usage: Usage, calls: int, unconfirmed: int, now: datetime):
        return {
            "Update": {
                "TableName": self._ledger.name,
                "Key": {"owner": call.owner, "period": f"{call.period}#{call.model}"},
                "UpdateExpression": (
                    "ADD costUsd :cost, inputTokens :in, outputTokens :out, images :images, calls :calls, "
                    "unconfirmedCalls :unconfirmed SET expiresAt = if_not_exists(expiresAt, :expires), model = :model"
                ),
                "ExpressionAttributeValues": {
                    ":cost": plain(cost),
                    ":in": usage.input_tokens,
                    ":out": usage.output_tokens,
                    ":images": usage.images,
                    ":calls": calls,
                    ":unconfirmed": unconfirmed,
                    ":expires": int((now + LEDGER_RETENTION).timestamp()),
                    ":model": call.model,
                },
            }
        }

    def _record_update(self, call: Call, *, set_: str, values: dict[str, Any], from_status: str, remove_open: bool):
        update = f"SET {set_}" + (" REMOVE openReservation" if remove_open else "")
        return {
            "Update": {
                "TableName": self._costs.name,
                "Key": {"jobId": call.job_id, "callId": call.call_id},
                "UpdateExpression": update,
                "ConditionExpression": "#status = :from",
                "ExpressionAttributeNames": {"#status": "status"},
                "ExpressionAttributeValues": {**values, ":from": from_status},
            }
        }

    # -------------------------------------------------------------- moves
    def reserve(self, call: Call, *, limit: Decimal, now: datetime) -> bool:
        """RESERVED, with the month's spend raised by the worst case; False
        (nothing written) if the month cannot take it under `limit`."""
        if call.reserved > limit:
            return False
        record = {
            "jobId": call.job_id,
            "callId": call.call_id,
            "owner": call.owner,
            "model": call.model,
            "kind": call.kind,
            "status": RESERVED,
            "reservedUsd": plain(call.reserved),
            "costUsd": plain(call.reserved),
            "period": call.period,
            "leaseUntil": call.lease_until,
            "openReservation": OPEN,
            "inputTokens": 0,
            "outputTokens": 0,
            "images": 0,
            "createdAt": iso(now),
            "expiresAt": int((now + self._retention).timestamp()),
        }
        reasons = self._transact(
            [
                {"Put": {"TableName": self._costs.name, "Item": record, "ConditionExpression": "attribute_not_exists(callId)"}},
                self._month_update(call, spent=call.reserved, reserved=call.reserved, now=now, ceiling=limit - call.reserved),
            ],
            _token(call.job_id, call.call_id, "reserve"),
        )
        if reasons is None:
            return True
        if reasons[1] == "ConditionalCheckFailed":
            return False
        raise RuntimeError(f"call {call.call_id} of {call.job_id} is already reserved ({reasons})")

    def settle(self, call: Call, usage: Usage, cost: Decimal, *, now: datetime) -> bool:
        """BILLED at `cost` (from RESERVED, or correcting an UNCONFIRMED one);
        False if the record was already BILLED or RELEASED."""
        values = {
            ":billed": BILLED,
            ":cost": plain(cost),
            ":in": usage.input_tokens,
            ":out": usage.output_tokens,
            ":images": usage.images,
            ":now": iso(now),
        }
        set_ = "#status = :billed, costUsd = :cost, inputTokens = :in, outputTokens = :out, images = :images, settledAt = :now"
        delta = cost - call.reserved
        reasons = self._transact(
            [
                self._record_update(call, set_=set_, values=values, from_status=RESERVED, remove_open=True),
                self._month_update(call, spent=delta, reserved=-call.reserved, now=now),
                self._line_update(call, cost=cost, usage=usage, calls=1, unconfirmed=0, now=now),
            ],
            _token(call.job_id, call.call_id, "settle"),
        )
        if reasons is None:
            return True
        if reasons[0] != "ConditionalCheckFailed":
            raise RuntimeError(f"settling call {call.call_id} of {call.job_id} failed: {reasons}")
        # No longer RESERVED. Made UNCONFIRMED meanwhile (its lease ran out)? The real cost corrects it.
        reasons = self._transact(
            [
                self._record_update(call, set_=set_, values=values, from_status=UNCONFIRMED, remove_open=False),
                self._month_update(call, spent=delta, reserved=ZERO, now=now),
                self._line_update(call, cost=delta, usage=usage, calls=0, unconfirmed=-1, now=now),
            ],
            _token(call.job_id, call.call_id, "correct"),
        )
        return reasons is None

    def release(self, call: Call, *, now: datetime) -> bool:
        """RELEASED: the call cost nothing; False if it was no longer RESERVED."""
        values = {":released": RELEASED, ":zero": 0, ":now": iso(now)}
        reasons = self._transact(
            [
                self._record_update(
                    call,
                    set_="#status = :released, costUsd = :zero, settledAt = :now",
                    values=values,
                    from_status=RESERVED,
                    remove_open=True,
                ),
                self._month_update(call, spent=-call.reserved, reserved=-call.reserved, now=now),
            ],
            _token(call.job_id, call.call_id, "release"),
        )
        return reasons is None

    def unconfirm(self, call: Call, *, now: datetime, reason: str) -> bool:
        """UNCONFIRMED: charged at the reservation; False if it was no longer RESERVED."""
        values = {":unconfirmed": UNCONFIRMED, ":now": iso(now), ":reason": reason[:300]}
        reasons = self._transact(
            [
                self._record_update(
                    call,
                    set_="#status = :unconfirmed, settledAt = :now, unconfirmedReason = :reason",
                    values=values,
                    from_status=RESERVED,
                    remove_open=True,
                ),
                self._month_update(call, spent=ZERO, reserved=-call.reserved, now=now),
                self._line_update(call, cost=call.reserved, usage=Usage(), calls=1, unconfirmed=1, now=now),
            ],
            _token(call.job_id, call.call_id, "unconfirm"),
        )
        return reasons is None

    # -------------------------------------------------------------- reads
    def records_of(self, job_id: str) -> list[dict[str, Any]]:
        """Every call record of a job (or of one /enhance request)."""
        items, kwargs = [], {"KeyConditionExpression": Key("jobId").eq(job_id), "ConsistentRead": True}
        while True:
            page = self._costs.query(**kwargs)
            items += page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def spent_on(self, job_id: str) -> Decimal:
        """What a job's calls cost: the source of truth for its costUsd."""
        return sum((Decimal(str(r["costUsd"])) for r in self.records_of(job_id)), ZERO)

    def resolve_dead(self, job_id: str, *, now: datetime, reason: str) -> int:
        """Make UNCONFIRMED every RESERVED record of a job whose maker's lease
        has passed (the maker is dead); how many were."""
        resolved = 0
        for record in self.records_of(job_id):
            if record["status"] == RESERVED and int(record["leaseUntil"]) < now.timestamp():
                resolved += self.unconfirm(Call.from_record(record), now=now, reason=reason)
        return resolved

    def expired_reservations(self, *, now: datetime, limit: int = 500) -> Iterator[Call]:
        """RESERVED records anywhere whose maker's lease has passed (the sweeper's)."""
        kwargs: dict[str, Any] = {
            "IndexName": OPEN_INDEX,
            "KeyConditionExpression": Key("openReservation").eq(OPEN) & Key("leaseUntil").lt(int(now.timestamp())),
            "Limit": min(limit, 100),
        }
        seen = 0
        while seen < limit:
            page = self._costs.query(**kwargs)
            for item in page.get("Items", []):
                seen += 1
                yield Call.from_record(item)
            if "LastEvaluatedKey" not in page:
                return
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def month(self, owner: str, period: str) -> tuple[Decimal, Decimal]:
        """A key's month: (spent, reserved); spent includes what is reserved."""
        item = self._ledger.get_item(Key={"owner": owner, "period": period}, ConsistentRead=True).get("Item") or {}
        return Decimal(str(item.get("spentUsd", 0))), Decimal(str(item.get("reservedUsd", 0)))

    def months(self, owner: str, first: str, last: str) -> list[dict[str, Any]]:
        """The key's month items and per-model lines from `first` to `last` (YYYY-MM), in order."""
        items, kwargs = (
            [],
            {
                "KeyConditionExpression": Key("owner").eq(owner) & Key("period").between(first, f"{last}#~"),
                "ConsistentRead": True,
            },
        )
        while True:
            page = self._ledger.query(**kwargs)
            items += page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
