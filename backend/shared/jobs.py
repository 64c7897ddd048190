"""The Jobs table: creation, the worker's claim (a lease), per-model results and
the final transition, each a conditional write so that retries and duplicate
deliveries cannot move a job backwards or record a result twice.

While a job is not finished it carries the sweep-index keys (sweep, sweepAt):
the time at which, if nothing has moved it, the sweeper looks at it: a QUEUED
job's grace for its queue message, a RUNNING job's lease. Finishing removes
them, so the index holds only unfinished jobs."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from shared.dynamo import if_condition
from shared.errors import InvalidRequest, JobNotFound
from shared.job_status import JobStatus

SWEEP_INDEX = "sweep-index"
SWEEP = "due"
# How long a new job may wait for its queue message to be confirmed sent
# before the sweeper sends one itself (the settings' queue_grace_seconds).
QUEUE_GRACE_SECONDS = 600
# A queued message lives 4 days (the queue's MessageRetentionPeriod); a job
# still QUEUED after that never ran and is failed by the sweeper.
QUEUE_RETENTION_SECONDS = 4 * 24 * 3600
MAX_CLAIMS = 3  # the deliveries a job gets (the queue's maxReceiveCount); the next one abandons it


def check_job_id(job_id: str) -> None:
    """Job ids are UUIDs; anything else is a 400, not a lookup."""
    try:
        uuid.UUID(job_id)
    except ValueError:
        raise InvalidRequest(f"'{job_id}' is not a job id (job ids are UUIDs)", details={"field": "jobId"}) from None


def utc_now() -> datetime:
    return datetime.now(UTC)


def iso(ts: datetime) -> str:
    return ts.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def to_dynamo(value: Any) -> Any:
    """Floats become Decimals, as the DynamoDB resource layer requires."""
    return json.loads(json.dumps(value), parse_float=Decimal)


def from_dynamo(value: Any) -> Any:
    """Decimals become ints or floats again, for JSON responses."""
    if isinstance(value, list):
        return [from_dynamo(v) for v in value]
    if isinstance(value, dict):
        return {k: from_dynamo(v) for k, v in value.items()}
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    return value


class JobRepository:
    def __init__(self, table: Any, *, queue_grace_seconds: int = QUEUE_GRACE_SECONDS) -> None:
        self._table = table
        self._grace = queue_grace_seconds

    def create(self, job: dict[str, Any], *, now: datetime | None = None) -> None:
        """A new job, QUEUED, on the sweeper's list from its grace period on."""
        now = now or utc_now()
        item = {**job, "sweep": SWEEP, "sweepAt": int(now.timestamp()) + self._grace}
        self._table.put_item(Item=to_dynamo(item), ConditionExpression="attribute_not_exists(jobId)")

    def mark_queued(self, job_id: str, *, now: datetime) -> bool:
        """Its queue message was sent: the sweeper leaves it alone until the
        message could have expired."""
        written = if_condition(
            self._table.update_item,
            Key={"jobId": job_id},
            UpdateExpression="SET queuedAt = :now, sweepAt = :expiry",
            ConditionExpression="#status = :queued",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":now": iso(now),
                ":expiry": int(now.timestamp()) + QUEUE_RETENTION_SECONDS,
                ":queued": JobStatus.QUEUED.value,
            },
        )
        return written is not None

    def requeued(self, job_id: str, *, now: datetime, next_look: int) -> bool:
        """The sweeper sent the job a message: when to look again."""
        written = if_condition(
            self._table.update_item,
            Key={"jobId": job_id},
            UpdateExpression=(
                "SET queuedAt = if_not_exists(queuedAt, :now), sweepAt = :next, requeues = if_not_exists(requeues, :zero) + :one"
            ),
            ConditionExpression="#status IN (:queued, :running)",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":now": iso(now),
                ":next": next_look,
                ":queued": JobStatus.QUEUED.value,
                ":running": JobStatus.RUNNING.value,
                ":zero": 0,
                ":one": 1,
            },
        )
        return written is not None

    def due(self, *, now: datetime, limit: int = 500) -> list[dict[str, Any]]:
        """Unfinished jobs whose sweep time has passed (keys only), oldest first."""
        items: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {
            "IndexName": SWEEP_INDEX,
            "KeyConditionExpression": "sweep = :due AND sweepAt < :now",
            "ExpressionAttributeValues": {":due": SWEEP, ":now": int(now.timestamp())},
            "Limit": min(limit, 100),
        }
        while len(items) < limit:
            page = self._table.query(**kwargs)
            items += page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return items[:limit]

    def delete(self, job_id: str, *, owner: str) -> bool:
        """Remove the owner's job record; False if there is none (or not theirs)."""
        deleted = if_condition(
            self._table.delete_item,
            Key={"jobId": job_id},
            ConditionExpression="#owner = :owner",
            ExpressionAttributeNames={"#owner": "owner"},
            ExpressionAttributeValues={":owner": owner},
        )
        return deleted is not None

    def get(self, job_id: str) -> dict[str, Any] | None:
        return self._table.get_item(Key={"jobId": job_id}, ConsistentRead=True).get("Item")

    def get_owned(self, job_id: str, owner: str) -> dict[str, Any]:
        """The job, if `owner`'s. Another key's job is indistinguishable from a
        missing one (404); a malformed id is a 400, not a lookup."""
        check_job_id(job_id)
        job = self.get(job_id)
        if job is None or job.get("owner") != owner:
            raise JobNotFound(f"no job {job_id} for this API key")
        return job

    def list_for_owner(
        self, owner: str, *, index: str, limit: int, start_key: dict[str, str] | None = None
    ) -> tuple[list[dict[str, Any]], dict[str, str] | None]:
        """One page of the owner's jobs, newest first, and the key to continue from."""
        kwargs: dict[str, Any] = {
            "IndexName": index,
            "KeyConditionExpression": "#owner = :owner",
            "ExpressionAttributeNames": {"#owner": "owner"},
            "ExpressionAttributeValues": {":owner": owner},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if start_key:
            kwargs["ExclusiveStartKey"] = start_key
        response = self._table.query(**kwargs)
        return response.get("Items", []), response.get("LastEvaluatedKey")

    def claim(self, job_id: str, *, now: datetime, lease_seconds: int, max_claims: int = MAX_CLAIMS) -> dict[str, Any] | None:
        """QUEUED -> RUNNING, or take over a RUNNING job whose lease has expired
        (its worker died), while it has claims left. Returns the job as
        claimed (`attempts` is this claim's number), or None if it is not ours
        to run (finished, running under a live lease, out of claims, unknown)."""
        now_epoch = int(now.timestamp())
        lease = now_epoch + lease_seconds
        response = if_condition(
            self._table.update_item,
            Key={"jobId": job_id},
            UpdateExpression=(
                "SET #status = :running, leaseUntil = :lease, sweepAt = :lease, updatedAt = :now, "
                "startedAt = if_not_exists(startedAt, :now), attempts = if_not_exists(attempts, :zero) + :one"
            ),
            ConditionExpression=(
                "attribute_exists(jobId) AND (attribute_not_exists(attempts) OR attempts < :max) "
                "AND (#status = :queued OR (#status = :running AND leaseUntil < :now_epoch))"
            ),
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={
                ":running": JobStatus.RUNNING.value,
                ":queued": JobStatus.QUEUED.value,
                ":lease": lease,
                ":now": iso(now),
                ":now_epoch": now_epoch,
                ":zero": 0,
                ":one": 1,
                ":max": max_claims,
            },
            ReturnValues="ALL_NEW",
        )
        return response["Attributes"] if response else None

    def record_result(self, job_id: str, model: str, result: dict[str, Any], *, now: datetime) -> bool:
        """Store one model's result once; False if it was already recorded or
        the job is no longer running."""
        written = if_condition(
            self._table.update_item,
            Key={"jobId": job_id},
            UpdateExpression="SET results.#model = :result, updatedAt = :now",
            ConditionExpression="#status = :running AND attribute_not_exists(results.#model)",
            ExpressionAttributeNames={"#model": model, "#status": "status"},
            ExpressionAttributeValues={":result": to_dynamo(result), ":running": JobStatus.RUNNING.value, ":now": iso(now)},
        )
        return written is not None

    def _end(
        self,
        job_id: str,
        to: JobStatus,
        *,
        from_: tuple[JobStatus, ...],
        now: datetime,
        error: str | None = None,
        cost_usd: Decimal | None = None,
        owner: str | None = None,
    ) -> bool:
        """Move a job from one of `from_` to the terminal status `to` (dropping
        its lease); False if it was in none of them (or is not `owner`'s)."""
        names = {"#status": "status"}
        values: dict[str, Any] = {":to": to.value, ":now": iso(now)}
        sets = ["#status = :to", "updatedAt = :now", "finishedAt = :now"]
        if error:
            sets.append("#error = :error")
            names["#error"] = "error"
            values[":error"] = error
        if cost_usd is not None:
            sets.append("costUsd = :cost")
            values[":cost"] = cost_usd
        sources = []
        for i, status in enumerate(from_):
            values[f":from{i}"] = status.value
            sources.append(f":from{i}")
        condition = f"#status IN ({', '.join(sources)})"
        if owner is not None:
            condition = f"#owner = :owner AND {condition}"
            names["#owner"] = "owner"
            values[":owner"] = owner
        written = if_condition(
            self._table.update_item,
            Key={"jobId": job_id},
            UpdateExpression=f"SET {', '.join(sets)} REMOVE leaseUntil, sweep, sweepAt",
            ConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )
        return written is not None

    def finish(self, job_id: str, status: JobStatus, *, cost_usd: Decimal, now: datetime, error: str | None = None) -> bool:
        """RUNNING -> a terminal status; False if the job was not RUNNING."""
        if not status.is_terminal:
            raise ValueError(f"{status.value} is not a terminal status")
        return self._end(job_id, status, from_=(JobStatus.RUNNING,), now=now, error=error, cost_usd=cost_usd)

    def abandon(self, job_id: str, *, reason: str, now: datetime, cost_usd: Decimal | None = None) -> bool:
        """QUEUED or RUNNING -> FAILED, for a job no worker will run again (its
        message was dead-lettered, its claims are used up, or it never got a
        message), with what its calls cost. False if it had already finished.
        (shared.recovery.abandon settles its money first.)"""
        return self._end(
            job_id, JobStatus.FAILED, from_=(JobStatus.QUEUED, JobStatus.RUNNING), now=now, error=reason, cost_usd=cost_usd
        )

    def cancel(self, job_id: str, *, owner: str, now: datetime) -> bool:
        """QUEUED or RUNNING -> CANCELLED, for the job's owner; False otherwise."""
        return self._end(job_id, JobStatus.CANCELLED, from_=(JobStatus.QUEUED, JobStatus.RUNNING), now=now, owner=owner)

    def fail_unqueued(self, job_id: str, *, reason: str, now: datetime) -> bool:
        """QUEUED -> FAILED, for a job whose queue message could not be sent."""
        return self._end(job_id, JobStatus.FAILED, from_=(JobStatus.QUEUED,), now=now, error=reason)

    def record_cancelled_cost(self, job_id: str, cost_usd: Decimal, *, now: datetime) -> bool:
        """What a cancelled job's calls in flight still cost, once they end."""
        written = if_condition(
            self._table.update_item,
            Key={"jobId": job_id},
            UpdateExpression="SET costUsd = :cost, updatedAt = :now",
            ConditionExpression="#status = :cancelled",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":cost": cost_usd, ":cancelled": JobStatus.CANCELLED.value, ":now": iso(now)},
        )
        return written is not None


LISTED_FIELDS = ("jobId", "status", "kind", "models", "costUsd", "createdAt", "updatedAt")


def listing_view(job: dict[str, Any]) -> dict[str, Any]:
    """A job as GET /jobs lists it (what the owner index projects)."""
    job = from_dynamo(job)
    return {k: job[k] for k in LISTED_FIELDS if k in job}


# What a result stores that its owner is not shown as such: object keys (shown
# as links) and the object versions the worker wrote.
_INTERNAL_RESULT_FIELDS = frozenset({"key", "files", "versions"})


def public_view(job: dict[str, Any], *, links: Any, now: datetime | None = None) -> dict[str, Any]:
    """The job as GET /status shows it to its owner, with links to its
    outputs that expire (shared.outputs.OutputLinks), signed now."""
    job = from_dynamo(job)
    results = []
    signed = False
    for model in job.get("models", []):
        result = job.get("results", {}).get(model)
        if result is None:
            results.append({"model": model, "kind": job.get("kind", "text"), "status": "PENDING"})
            continue
        entry = {k: v for k, v in result.items() if k not in _INTERNAL_RESULT_FIELDS}
        if result.get("key"):
            entry["url"] = links.url(result["key"])
            signed = True
            if result.get("files"):
                entry["files"] = {ext: links.url(key) for ext, key in result["files"].items()}
        results.append(entry)
    view = {
        "jobId": job["jobId"],
        "status": job["status"],
        "kind": job.get("kind", "text"),
        "models": job.get("models", []),
        "results": results,
        "costUsd": job.get("costUsd", 0),
        "createdAt": job["createdAt"],
        "updatedAt": job.get("updatedAt", job["createdAt"]),
    }
    for optional in ("budgetUsd", "startedAt", "finishedAt", "error", "template"):
        if optional in job:
            view[optional] = job[optional]
    if signed:
        view["urlsExpireAt"] = links.expires_at(now or utc_now())
    return view
