"""Fault injection, in-process: N accepted jobs (N >= 200; GENSTACK_FAULT_JOBS,
larger in `make soak`) run by the real JobRunner on moto's DynamoDB and S3 while
Bedrock throttles and times out at fixed rates, a worker is killed in the middle
of some jobs (the message comes back after the lease), some messages are
delivered twice at the same moment (two workers race for the job), and
messages that fail every delivery go to the dead-letter path.

The figures: how many jobs reached a terminal state (goal: all), and how many
model calls were answered twice or cost records written twice (goal: zero).
They are printed, and asserted."""

from __future__ import annotations

import os
import random
import threading
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import boto3
import pytest
from boto3.dynamodb.conditions import Key
from botocore.client import BaseClient

from shared.budgets import BudgetLedger, period_of
from shared.costs import CostLedger
from shared.jobs import JobRepository
from shared.providers import Generation, ModelCallError
from shared.settings import Settings
from tests.moto_threads import atomic
from worker.service import JobRunner, RetryPolicy

JOBS = int(os.environ.get("GENSTACK_FAULT_JOBS", "200"))
MODELS = ["amazon.nova-micro-v1:0", "amazon.nova-lite-v1:0", "amazon.nova-pro-v1:0"]
TERMINAL = {"COMPLETED", "PARTIAL", "FAILED", "BUDGET_EXCEEDED", "CANCELLED"}
MAX_RECEIVES = 3  # the queue's maxReceiveCount


class WorkerKilled(BaseException):
    """The worker's process dies (timeout, out of memory): nothing after runs."""


@dataclass
class FaultyBedrock:
    """Answers like a Bedrock model, except: ThrottlingException and timeouts at
    fixed rates, and, for the jobs marked, the worker dies during one call."""

    throttle_rate: float
    timeout_rate: float
    seed: int = 7
    kill_in: set[str] = field(default_factory=set)  # job ids whose first call kills the worker
    poison: set[str] = field(default_factory=set)  # job ids whose every delivery kills the worker
    answered: Counter = field(default_factory=Counter)  # (job, model) -> answers given
    started: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.random = random.Random(self.seed)

    def generate(self, model: str, prompt: str, *, system=None, max_tokens: int = 0) -> Generation:
        job_id = prompt.split()[-1]
        with self.lock:
            self.started += 1
            roll = self.random.random()
            if job_id in self.kill_in or job_id in self.poison:
                self.kill_in.discard(job_id)
                raise WorkerKilled(job_id)
        if roll < self.throttle_rate:
            raise ModelCallError("ThrottlingException", "Too many requests", retryable=True)
        if roll < self.throttle_rate + self.timeout_rate:
            raise ModelCallError("ModelTimeout", "read timed out", retryable=True)
        with self.lock:
            self.answered[(job_id, model)] += 1
        return Generation(model, b"output", "text/plain", "txt", 20, 40, 5, text="output")


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def atomic_requests(monkeypatch):
    """One AWS request at a time, as DynamoDB applies them (tests/moto_threads.py)."""
    monkeypatch.setattr(BaseClient, "_make_api_call", atomic(BaseClient._make_api_call))


@pytest.fixture
def world(aws, atomic_requests):
    settings = Settings.from_env(
        {
            "JOBS_TABLE": "jobs",
            "COST_TABLE": "costs",
            "BUDGET_TABLE": "ledger",
            "OUTPUTS_BUCKET": "outputs",
            "ENABLED_MODELS": ",".join(MODELS),
            "MONTHLY_KEY_BUDGET_USD": "1000000",
            "JOB_LEASE_SECONDS": "960",
        }
    )
    ddb = boto3.resource("dynamodb")
    return settings, JobRepository(ddb.Table("jobs")), ddb.Table("costs"), ddb.Table("ledger")


def test_every_accepted_job_ends_and_nothing_is_answered_or_recorded_twice(world, aws, capsys):
    settings, jobs, cost_table, ledger_table = world
    rng = random.Random(2026)
    ids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(JOBS)]
    killed = set(rng.sample(ids, JOBS // 10))  # 10%: the worker dies in the middle
    raced = set(rng.sample(sorted(set(ids) - killed), JOBS // 4))  # 25%: delivered twice at once
    poison = set(rng.sample(sorted(set(ids) - killed - raced), max(2, JOBS // 50)))  # 2%: every delivery dies
    bedrock = FaultyBedrock(throttle_rate=0.2, timeout_rate=0.05, kill_in=set(killed), poison=poison)
    clock = Clock(datetime(2026, 11, 22, 12, 0, tzinfo=UTC))
    runner = JobRunner(
        jobs=jobs,
        costs=CostLedger(cost_table, retention_days=1),
        ledger=BudgetLedger(ledger_table, monthly_limit=settings.monthly_key_budget_usd),
        providers={"converse": bedrock},
        s3=aws.s3,
        settings=settings,
        now=clock,
        retry=RetryPolicy(attempts=4, base_delay=0.0, max_delay=0.0),
        sleep=lambda _: None,
    )
    # Keys that have spent before this month. (Also keeps moto's ledger off an
    # exact zero: moto stores a zero sum of decimals as "0E-8" and then fails to
    # parse it on the next ADD; DynamoDB does not.)
    for owner in range(7):
        ledger_table.put_item(Item={"owner": f"key-{owner}", "period": period_of(clock.now), "spentUsd": Decimal("1.5")})
    for index, job_id in enumerate(ids):
        models = MODELS[: 1 + index % 3]
        jobs.create(
            {
                "jobId": job_id,
                "owner": f"key-{index % 7}",
                "status": "QUEUED",
                "kind": "text",
                "prompt": f"write about {job_id}",
                "models": models,
                "results": {},
                "createdAt": clock.now.isoformat(),
                "budgetUsd": 1,
            }
        )

    deliveries: Counter = Counter()
    dead_lettered = 0

    def deliver(job_id: str) -> bool:
        """One delivery of the job's message; False if the worker died."""
        deliveries[job_id] += 1
        try:
            runner.run(job_id)
        except WorkerKilled:
            return False
        return True

    for job_id in ids:
        if job_id in raced:
            with ThreadPoolExecutor(max_workers=2) as pool:  # two workers, one message delivered twice
                outcomes = list(pool.map(deliver, [job_id, job_id]))
            if all(outcomes):
                continue
        elif deliver(job_id):
            continue
        # The message comes back once its visibility timeout (and so the lease) has passed.
        while deliveries[job_id] < MAX_RECEIVES:
            clock.now += timedelta(seconds=settings.job_lease_seconds + 1)
            if deliver(job_id):
                break
        else:
            dead_lettered += 1  # the dead-letter consumer fails it
            jobs.abandon(job_id, reason="abandoned: every delivery failed", now=clock.now)

    statuses = Counter(jobs.get(job_id)["status"] for job_id in ids)
    terminal = sum(n for status, n in statuses.items() if status in TERMINAL)
    answered_twice = sum(n - 1 for n in bedrock.answered.values() if n > 1)
    records = Counter()
    for job_id in ids:
        for item in cost_table.query(KeyConditionExpression=Key("jobId").eq(job_id))["Items"]:
            records[(job_id, item["callId"])] += 1
    records_twice = sum(n - 1 for n in records.values() if n > 1)
    # Every answered call has its cost record, and nothing else does.
    assert set(records) == set(bedrock.answered)

    def failures() -> list[tuple[str, int]]:
        """Why jobs failed, most common first: read only when an assertion below does not hold."""
        failed = (item for item in map(jobs.get, ids) if item["status"] == "FAILED")
        return Counter(str(item.get("error"))[:120] for item in failed).most_common(5)

    with capsys.disabled():
        print(
            f"\nfault run: {JOBS} jobs accepted, {terminal} terminal ({dict(statuses)}); "
            f"{len(killed)} workers killed mid-job, {len(raced)} messages delivered twice at once, "
            f"{len(poison)} jobs killing every delivery, "
            f"{dead_lettered} dead-lettered; {bedrock.started} model calls started "
            f"(throttling 20%, timeouts 5%), {sum(bedrock.answered.values())} answered; "
            f"answered twice: {answered_twice}; cost records twice: {records_twice}"
        )
    assert terminal == JOBS, (statuses, failures())
    assert answered_twice == 0
    assert records_twice == 0
    assert all(jobs.get(job_id)["status"] != "RUNNING" for job_id in killed)
    assert dead_lettered == len(poison), failures()
    assert all(jobs.get(job_id)["status"] == "FAILED" for job_id in poison)
