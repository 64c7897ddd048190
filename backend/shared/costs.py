"""The CostTracking table: one record per model call, written once.

Key: jobId + callId (the model's id within the job), so a redelivered or
taken-over job can never record the same call twice. Records expire (TTL on
expiresAt) after the retention the deployment sets."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from boto3.dynamodb.conditions import Key

from shared.dynamo import if_condition
from shared.jobs import iso


class CostLedger:
    def __init__(self, table: Any, *, retention_days: int) -> None:
        self._table = table
        self._retention = timedelta(days=retention_days)

    def spent_on(self, job_id: str) -> Decimal:
        """What a job's recorded calls cost: the source of truth for its costUsd."""
        total, kwargs = Decimal(0), {"KeyConditionExpression": Key("jobId").eq(job_id), "ProjectionExpression": "costUsd"}
        while True:
            page = self._table.query(**kwargs)
            total += sum((Decimal(item["costUsd"]) for item in page.get("Items", [])), Decimal(0))
            if "LastEvaluatedKey" not in page:
                return total
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def record_call(
        self,
        *,
        job_id: str,
        owner: str,
        model: str,
        kind: str,
        input_tokens: int,
        output_tokens: int,
        cost_usd: Decimal,
        now: datetime,
        images: int = 0,
    ) -> bool:
        """Write the record of one call; False if it was already recorded."""
        written = if_condition(
            self._table.put_item,
            Item={
                "jobId": job_id,
                "callId": model,
                "owner": owner,
                "model": model,
                "kind": kind,
                "inputTokens": input_tokens,
                "outputTokens": output_tokens,
                "images": images,
                "costUsd": cost_usd,
                "createdAt": iso(now),
                "expiresAt": int((now + self._retention).timestamp()),
            },
            ConditionExpression="attribute_not_exists(callId)",
        )
        return written is not None
