"""Faults as production has them: worker processes killed for real.

N jobs (GENSTACK_KILL_JOBS, 500; more in `make soak`) from 7 API keys run through
the real SQS handler (worker.app) in separate worker processes, against a moto
server (DynamoDB, SQS with its dead-letter redrive, versioned S3) and a fake
Bedrock over HTTP (tests/faults/stub_bedrock.py) that throttles 20% of
attempts and times out 5% (half reported by the service, half a slow answer
the client gives up on: an unknown outcome). The harness plays SQS's
consumer, Lambda and the scheduler:
- each delivery has a deadline (the function's timeout); a worker still busy
  at it is SIGKILLed, as Lambda does;
- 15% of deliveries meet a fault at a random stage of the real code
  (tests/faults/worker_process.py): the worker SIGKILLs itself there, or
  stalls there until the deadline kills it;
- 2% of jobs are poison: every delivery dies;
- 10% of jobs are queued twice (duplicate deliveries race for the claim);
- 2% of jobs never got their queue message (generate died after recording them);
- a killed delivery is not acknowledged: SQS delivers it again after its
  visibility timeout, and after 3 receives moves it to the dead-letter
  queue, whose consumer (worker.dead_letter) the harness runs; the sweeper
  (worker.sweeper) runs every few seconds.
Then every accepted job must be terminal, and for every key the call records,
the ledger's months, the per-model lines and the jobs' costs must agree to the
last decimal, with every call Bedrock billed either recorded at exactly its
bill or charged at its reservation (UNCONFIRMED, an upper bound of the bill)
because its answer died with a worker. The figures are printed."""

from __future__ import annotations

import json
import os
import random
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from queue import Empty, Queue
from typing import Any

import boto3
import pytest
from boto3.dynamodb.conditions import Key

from shared.costs import OPEN, OPEN_INDEX, CallLedger
from shared.jobs import JobRepository, utc_now
from shared.parameters import resolve
from shared.registry import spec_for
from shared.settings import Settings
from shared.usage import is_month
from tests.faults.stub_bedrock import StubBedrock
from tests.faults.worker_process import STAGES
from tests.templates import ROOT, table_definition
from worker.dead_letter import abandon_job
from worker.sweeper import Sweeper

JOBS = int(os.environ.get("GENSTACK_KILL_JOBS", "500"))
WORKERS = 6
OWNERS = [f"key-{n}" for n in range(7)]
# A job of three models includes OpenAI's: the worker's external provider over
# real HTTP to the stub (plain HTTP to loopback, the one place its client
# allows it), with its key read from Secrets Manager.
MODELS = ["amazon.nova-micro-v1:0", "amazon.nova-lite-v1:0", "openai/gpt-4.1-mini"]
TERMINAL = {"COMPLETED", "PARTIAL", "FAILED", "BUDGET_EXCEEDED", "CANCELLED"}
FUNCTION_TIMEOUT = 8.0  # seconds; Lambda's kill
LEASE = 10  # JOB_LEASE_SECONDS: outlives the function
VISIBILITY = 12  # the queue's visibility timeout: outlives the lease
CALL_TIMEOUT = 2  # MODEL_CALL_TIMEOUT_SECONDS: a slow answer (3 s) is given up on
QUEUE_GRACE = 5  # QUEUE_GRACE_SECONDS: the sweeper's wait for a queue message
FAULT_RATE, POISON_RATE, DUPLICATE_RATE, UNQUEUED_RATE = 0.15, 0.02, 0.10, 0.02
DEADLINE = 900  # seconds for the whole storm to settle

pytestmark = pytest.mark.faults


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class World:
    endpoint: str
    env: dict[str, str]
    settings: Settings
    session: boto3.Session
    queue_url: str
    dlq_url: str
    stub: StubBedrock

    def client(self, name: str) -> Any:
        return self.session.client(name, endpoint_url=self.endpoint)

    def table(self, name: str) -> Any:
        return self.session.resource("dynamodb", endpoint_url=self.endpoint).Table(name)


@pytest.fixture(scope="module")
def world():
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "tests.faults.moto_server", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "backend")])},
    )
    for _ in range(100):
        try:
            urllib.request.urlopen(endpoint + "/moto-api/", timeout=1)
            break
        except OSError:
            time.sleep(0.1)
    stub = StubBedrock(throttle_rate=0.2, timeout_rate=0.05, slow_seconds=CALL_TIMEOUT + 1).start()
    session = boto3.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name="us-east-1")
    try:
        ddb = session.resource("dynamodb", endpoint_url=endpoint)
        for name, logical in (("jobs", "JobsTable"), ("costs", "CostTrackingTable"), ("ledger", "BudgetLedgerTable")):
            ddb.create_table(TableName=name, **table_definition(logical))
        s3 = session.client("s3", endpoint_url=endpoint)
        s3.create_bucket(Bucket="outputs")
        s3.put_bucket_versioning(Bucket="outputs", VersioningConfiguration={"Status": "Enabled"})
        sqs = session.client("sqs", endpoint_url=endpoint)
        dlq_url = sqs.create_queue(QueueName="jobs-dlq")["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        queue_url = sqs.create_queue(
            QueueName="jobs",
            Attributes={
                "VisibilityTimeout": str(VISIBILITY),
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"}),
            },
        )["QueueUrl"]
        secret = session.client("secretsmanager", endpoint_url=endpoint).create_secret(
            Name="kill-test/providers/openai", SecretString="sk-kill-test"
        )
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "backend")]),
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": stub.url,
            "POWERTOOLS_SERVICE_NAME": "genstack",
            "POWERTOOLS_METRICS_NAMESPACE": "genstack-kills",
            "POWERTOOLS_LOG_LEVEL": "CRITICAL",
            "POWERTOOLS_METRICS_DISABLED": "true",
            "SDK_TIMEOUT_PROFILE": "background",
            "JOBS_TABLE": "jobs",
            "COST_TABLE": "costs",
            "BUDGET_TABLE": "ledger",
            "OUTPUTS_BUCKET": "outputs",
            "JOB_QUEUE_URL": queue_url,
            "ENABLED_MODELS": ",".join(MODELS),
            "PROVIDER_SECRETS": f"openai={secret['ARN']}",
            "PROVIDER_BASE_URLS": f"openai={stub.url}/v1",
            "MONTHLY_KEY_BUDGET_USD": "100000",
            "JOB_LEASE_SECONDS": str(LEASE),
            "MODEL_CALL_TIMEOUT_SECONDS": str(CALL_TIMEOUT),
            "MODEL_RETRY_BASE_SECONDS": "0.05",
            "QUEUE_GRACE_SECONDS": str(QUEUE_GRACE),
        }
        yield World(endpoint, env, Settings.from_env(env), session, queue_url, dlq_url, stub)
    finally:
        stub.stop()
        server.kill()
        server.wait()


# ----------------------------------------------------------------- workers


class Worker:
    """One worker process; restarted whenever it dies."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.faults.worker_process"],
            cwd=ROOT,
            env=self.world.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            bufsize=1,
        )
        line = self.proc.stdout.readline()
        if not line.startswith('{"ready"'):
            raise RuntimeError(f"worker did not start: {line!r}")

    def deliver(self, event: dict[str, Any], fault: dict[str, str] | None) -> tuple[str, Any]:
        """("ok", response), ("killed", None) or ("timeout", None)."""
        deadline = time.time() + FUNCTION_TIMEOUT
        self.proc.stdin.write(json.dumps({"event": event, "deadline": deadline, "fault": fault}) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], max(0.0, deadline - time.time()))
        if not ready:  # Lambda's timeout: the process is killed, whatever it was doing
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            self.start()
            return "timeout", None
        line = self.proc.stdout.readline()
        if not line:  # it died (SIGKILLed itself at a fault)
            self.proc.wait()
            self.start()
            return "killed", None
        return "ok", json.loads(line)["response"]

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


@dataclass
class Storm:
    world: World
    jobs: list[dict[str, Any]]
    poison: set[str]
    outcomes: Counter = field(default_factory=Counter)
    faults: Counter = field(default_factory=Counter)
    deliveries: int = 0
    dead_lettered: int = 0
    sweeps: Counter = field(default_factory=Counter)
    next_stage: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fault_for(self, job_id: str, rng: random.Random) -> dict[str, str] | None:
        """The fault of one delivery: poison always dies; others at FAULT_RATE,
        at the stages in turn (so every stage is hit), killed or stalled."""
        if job_id in self.poison:
            return {"stage": rng.choice(("claimed", "reserved", "calling", "answered")), "mode": "kill"}
        if rng.random() >= FAULT_RATE:
            return None
        with self.lock:
            self.next_stage += 1
            stage = STAGES[self.next_stage % len(STAGES)]
        return {"stage": stage, "mode": "kill" if rng.random() < 0.75 else "stall"}


def sqs_event(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": {
                    "ApproximateReceiveCount": message["Attributes"]["ApproximateReceiveCount"],
                    "SentTimestamp": message["Attributes"].get("SentTimestamp", "0"),
                    "SenderId": "genstack",
                    "ApproximateFirstReceiveTimestamp": message["Attributes"].get("ApproximateFirstReceiveTimestamp", "0"),
                },
                "messageAttributes": {},
                "md5OfBody": message["MD5OfBody"],
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "us-east-1",
            }
        ]
    }


def accept(world: World, rng: random.Random) -> tuple[list[dict[str, Any]], set[str]]:
    """The jobs, as POST /generate leaves them: recorded QUEUED, queued, marked."""
    repo = JobRepository(world.table("jobs"), queue_grace_seconds=QUEUE_GRACE)
    sqs = world.client("sqs")
    jobs, poison = [], set()
    for index in range(JOBS):
        job_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        chart = index % 10 == 9
        job = {
            "jobId": job_id,
            "owner": OWNERS[index % len(OWNERS)],
            "status": "QUEUED",
            "kind": "chart" if chart else "text",
            "prompt": f"job {index}: a line about queues",
            "models": ["amazon.nova-lite-v1:0"] if chart else MODELS[: 1 + index % 3],
            "results": {},
            # Every tenth job as one queued before parameters existed (the worker fills the defaults in).
            "costUsd": 0,
            "budgetUsd": 1,
            "createdAt": utc_now().isoformat(),
        }
        if index % 10 != 5:
            job["parameters"] = {
                m: resolve(spec_for(m), job["kind"], {"maxTokens": 1024}, deployment_max_tokens=2048) for m in job["models"]
            }
        repo.create(job)
        jobs.append(job)
        roll = rng.random()
        if roll < UNQUEUED_RATE:
            continue  # the generate function died before its queue send
        copies = 2 if roll < UNQUEUED_RATE + DUPLICATE_RATE else 1
        for _ in range(copies):
            sqs.send_message(QueueUrl=world.queue_url, MessageBody=json.dumps({"jobId": job_id}))
        repo.mark_queued(job_id, now=utc_now())
        if rng.random() < POISON_RATE:
            poison.add(job_id)
    return jobs, poison


def run_storm(world: World) -> Storm:
    rng = random.Random(20261202)
    jobs, poison = accept(world, rng)
    storm = Storm(world, jobs, poison)
    sqs = world.client("sqs")
    queue_arn = sqs.get_queue_attributes(QueueUrl=world.queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    work: Queue = Queue()
    stop = threading.Event()

    def worker_loop() -> None:
        worker, local_rng = Worker(world), random.Random(rng.random())
        client = world.client("sqs")
        try:
            while not stop.is_set():
                try:
                    message = work.get(timeout=0.2)
                except Empty:
                    continue
                job_id = json.loads(message["Body"])["jobId"]
                fault = storm.fault_for(job_id, local_rng)
                outcome, response = worker.deliver(sqs_event(message, queue_arn), fault)
                with storm.lock:
                    storm.deliveries += 1
                    storm.outcomes[outcome] += 1
                    if fault:
                        storm.faults[(fault["stage"], fault["mode"])] += 1
                if outcome == "ok" and isinstance(response, dict) and response.get("batchItemFailures") == []:
                    client.delete_message(QueueUrl=world.queue_url, ReceiptHandle=message["ReceiptHandle"])
                # otherwise SQS delivers it again after its visibility timeout
        finally:
            worker.stop()

    threads = [threading.Thread(target=worker_loop, daemon=True) for _ in range(WORKERS)]
    for thread in threads:
        thread.start()
    jobs_table = world.table("jobs")
    sweeper = Sweeper(
        jobs=JobRepository(jobs_table, queue_grace_seconds=QUEUE_GRACE),
        calls=CallLedger(world.table("costs"), world.table("ledger"), retention_days=1),
        sqs=sqs,
        settings=world.settings,
    )
    repo, calls = JobRepository(jobs_table), CallLedger(world.table("costs"), world.table("ledger"), retention_days=1)
    started, last_sweep, last_check, last_dlq = time.monotonic(), 0.0, 0.0, 0.0
    try:
        while time.monotonic() - started < DEADLINE:
            now = time.monotonic()
            if work.qsize() < WORKERS:
                received = sqs.receive_message(
                    QueueUrl=world.queue_url, MaxNumberOfMessages=WORKERS, AttributeNames=["All"], WaitTimeSeconds=0
                )
                for message in received.get("Messages", []):
                    work.put(message)
            dead = []
            if now - last_dlq > 2:  # the moto server serves one request at a time: poll it sparingly
                dead = sqs.receive_message(QueueUrl=world.dlq_url, MaxNumberOfMessages=10, AttributeNames=["All"]).get(
                    "Messages", []
                )
                last_dlq = now
            for message in dead:
                # The dead-letter consumer, as worker.dead_letter runs it.
                from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

                abandon_job(SQSRecord(sqs_event(message, queue_arn)["Records"][0]), repo, calls)
                sqs.delete_message(QueueUrl=world.dlq_url, ReceiptHandle=message["ReceiptHandle"])
                storm.dead_lettered += 1
            if now - last_sweep > 3:
                storm.sweeps.update(sweeper.sweep(utc_now()))
                last_sweep = now
            if now - last_check > 5:
                last_check = now
                statuses = [
                    i["status"] for i in scan(jobs_table, ProjectionExpression="#s", ExpressionAttributeNames={"#s": "status"})
                ]
                if len(statuses) == len(jobs) and all(s in TERMINAL for s in statuses) and work.empty():
                    break
            time.sleep(0.3)
        # Whatever is still in flight finishes; then the reservations a death
        # left open (a job finished by another run while a dead run's call was
        # open) are the sweeper's once their lease has passed.
        stop.set()
        for thread in threads:
            thread.join(timeout=FUNCTION_TIMEOUT + 5)
        time.sleep(LEASE + 1)
        storm.sweeps.update(sweeper.sweep(utc_now()))
    finally:
        stop.set()
    return storm


def scan(table: Any, **kwargs: Any) -> list[dict[str, Any]]:
    items = []
    while True:
        page = table.scan(**kwargs)
        items += page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def test_every_job_ends_and_the_money_agrees_under_real_kills(world, capsys):
    storm = run_storm(world)
    jobs = {j["jobId"]: j for j in scan(world.table("jobs"))}
    records = scan(world.table("costs"))
    ledger = scan(world.table("ledger"))
    statuses = Counter(job["status"] for job in jobs.values())
    stub = world.stub

    def bill_id(record: dict[str, Any]) -> str:
        return f"{record['jobId']}|{record['callId']}"

    def cost_of_bill(call: str) -> Decimal:
        bill = stub.bills[call]
        return spec_for(bill.model).cost_usd(bill.input_tokens, bill.output_tokens)

    billed = [r for r in records if r["status"] == "BILLED"]
    unconfirmed = [r for r in records if r["status"] == "UNCONFIRMED"]
    billed_total = sum((cost_of_bill(call) for call in stub.bills), Decimal(0))
    unconfirmed_billed = sum((cost_of_bill(bill_id(r)) for r in unconfirmed if bill_id(r) in stub.bills), Decimal(0))
    unconfirmed_charged = sum((Decimal(str(r["costUsd"])) for r in unconfirmed), Decimal(0))
    records_total = sum((Decimal(str(r["costUsd"])) for r in records), Decimal(0))
    with capsys.disabled():
        print(
            f"\nkill run: {JOBS} jobs accepted from {len(OWNERS)} keys; {sum(statuses[s] for s in TERMINAL)} terminal "
            f"({dict(statuses)}); {storm.deliveries} deliveries to {WORKERS} worker processes: {dict(storm.outcomes)} "
            f"(faults by stage and mode: {dict(sorted(storm.faults.items()))}); {len(storm.poison)} poison jobs, "
            f"{storm.dead_lettered} dead-lettered; sweeper: {dict(storm.sweeps)}; Bedrock and OpenAI: {stub.attempts} attempts "
            f"({stub.faults}), {len(stub.bills)} billed, ${billed_total}; records: {len(records)} "
            f"({len(billed)} billed, {len(unconfirmed)} unconfirmed, {len(records) - len(billed) - len(unconfirmed)} released), "
            f"${records_total}; unconfirmed charged ${unconfirmed_charged} for calls Bedrock billed ${unconfirmed_billed}"
        )
    # 1. Every accepted job ended.
    assert set(jobs) == {j["jobId"] for j in storm.jobs}
    assert sum(statuses[s] for s in TERMINAL) == JOBS, statuses
    assert all(jobs[j]["status"] == "FAILED" for j in storm.poison)
    # 2. Nothing is left reserved anywhere.
    assert not [r for r in records if r["status"] == "RESERVED"]
    open_index = world.table("costs").query(IndexName=OPEN_INDEX, KeyConditionExpression=Key("openReservation").eq(OPEN))
    assert open_index["Items"] == []
    # 3. Per key: records = months = model lines = jobs' costs, to the last decimal.
    for owner in OWNERS:
        mine = [r for r in records if r["owner"] == owner]
        total = sum((Decimal(str(r["costUsd"])) for r in mine), Decimal(0))
        months = [i for i in ledger if i["owner"] == owner and is_month(i["period"])]
        lines = [i for i in ledger if i["owner"] == owner and "#" in i["period"]]
        assert sum(Decimal(str(m["spentUsd"])) for m in months) == total, owner
        assert all(Decimal(str(m.get("reservedUsd", 0))) == 0 for m in months), owner
        assert sum(Decimal(str(line["costUsd"])) for line in lines) == total, owner
        job_costs = sum((Decimal(str(j["costUsd"])) for j in jobs.values() if j["owner"] == owner), Decimal(0))
        assert job_costs == total, owner
    for job in jobs.values():
        own = sum((Decimal(str(r["costUsd"])) for r in records if r["jobId"] == job["jobId"]), Decimal(0))
        assert Decimal(str(job["costUsd"])) == own, job["jobId"]
    # 4. Against Bedrock's bill: every call it billed has its record; a BILLED
    #    record is exactly its bill; an UNCONFIRMED one never charges less.
    assert stub.answered_twice == []
    assert set(stub.bills) <= {bill_id(r) for r in records}
    for record in billed:
        bill = stub.bills[bill_id(record)]
        assert Decimal(str(record["costUsd"])) == cost_of_bill(bill_id(record))
        assert (int(record["inputTokens"]), int(record["outputTokens"])) == (bill.input_tokens, bill.output_tokens)
    for record in unconfirmed:
        if bill_id(record) in stub.bills:
            assert Decimal(str(record["costUsd"])) >= cost_of_bill(bill_id(record))
    assert records_total == sum((cost_of_bill(bill_id(r)) for r in billed), Decimal(0)) + unconfirmed_charged
    # The storm did what it says: kills at every stage, real timeouts, poison, takeovers.
    assert {stage for stage, _ in storm.faults} == set(STAGES)
    openai_bills = [bill for bill in stub.bills.values() if bill.model.startswith("openai/")]
    assert openai_bills, "no OpenAI call was answered"
    assert any(str(r["model"]).startswith("openai/") and r["status"] == "UNCONFIRMED" for r in records) or not any(
        name == "openai slow" for name in stub.faults
    )
    assert storm.outcomes["killed"] > 0
    assert storm.outcomes["timeout"] > 0
    assert storm.sweeps["jobRequeued"] > 0
