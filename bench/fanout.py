"""Fan-out benchmark: wall time of a job of N models that each take the same
simulated latency L, as a ratio to L (1.0 is the limit; N x L would be serial).

Runs the real JobRunner (claim, budgets, parallel calls, cost records, outputs,
terminal write) in-process against moto, with a provider that sleeps L.
Usage: python bench/fanout.py [--latency 0.5] [--runs 5] [--models 1 4 8]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "backend"), str(ROOT)]
os.environ.update(
    AWS_ACCESS_KEY_ID="bench",
    AWS_SECRET_ACCESS_KEY="bench",  # noqa: S106 - moto's fake credentials
    AWS_DEFAULT_REGION="us-east-1",
    POWERTOOLS_SERVICE_NAME="genstack",
    POWERTOOLS_METRICS_NAMESPACE="genstack-bench",
    POWERTOOLS_LOG_LEVEL="WARNING",
)

import boto3  # noqa: E402
from botocore.client import BaseClient  # noqa: E402
from moto import mock_aws  # noqa: E402

from shared.budgets import KeyProfiles  # noqa: E402
from shared.costs import CallLedger  # noqa: E402
from shared.jobs import JobRepository  # noqa: E402
from shared.providers import Generation  # noqa: E402
from shared.registry import load_registry  # noqa: E402
from shared.settings import Settings  # noqa: E402
from tests.moto_fixes import patch_moto_number_sums  # noqa: E402
from tests.moto_threads import atomic  # noqa: E402
from tests.templates import table_definition  # noqa: E402
from worker.service import JobRunner  # noqa: E402

TEXT_MODELS = [m.id for m in load_registry().values() if m.kind == "text"]


class SimulatedModel:
    def __init__(self, latency: float) -> None:
        self.latency = latency

    def generate(self, model, prompt, *, system=None, max_tokens, metadata=None, **_):
        time.sleep(self.latency)
        return Generation(model, b"output", "text/plain", "txt", 10, 10, int(self.latency * 1000), text="output")


def measure(n: int, latency: float, runs: int) -> list[float]:
    # One AWS request at a time (moto is not thread-safe); the model calls still overlap.
    BaseClient._make_api_call = atomic(BaseClient._make_api_call)
    patch_moto_number_sums()
    ratios = []
    with mock_aws():
        ddb = boto3.resource("dynamodb")
        for name, logical in (("jobs", "JobsTable"), ("costs", "CostTrackingTable"), ("ledger", "BudgetLedgerTable")):
            ddb.create_table(TableName=name, **table_definition(logical))
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="outputs")
        settings = Settings.from_env(
            {"JOBS_TABLE": "jobs", "COST_TABLE": "costs", "BUDGET_TABLE": "ledger", "OUTPUTS_BUCKET": "outputs",
             "ENABLED_MODELS": ",".join(TEXT_MODELS)}
        )  # fmt: skip
        jobs = JobRepository(ddb.Table("jobs"))
        model = SimulatedModel(latency)
        runner = JobRunner(
            jobs=jobs,
            calls=CallLedger(ddb.Table("costs"), ddb.Table("ledger"), retention_days=1),
            profiles=KeyProfiles(ddb.Table("ledger"), tier_budgets=settings.tier_budgets()),
            providers={"converse": model},
            s3=s3,
            settings=settings,
        )
        for _ in range(runs):
            job_id = str(uuid.uuid4())
            jobs.create(
                {"jobId": job_id, "owner": "bench", "status": "QUEUED", "kind": "text", "prompt": "p",
                 "models": TEXT_MODELS[:n], "results": {}, "createdAt": "2026-11-22T00:00:00.000Z"}
            )  # fmt: skip
            started = time.perf_counter()
            outcome = runner.run(job_id)
            ratios.append((time.perf_counter() - started) / latency)
            assert outcome.status == "COMPLETED", outcome
    return ratios


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.5, help="simulated model latency L, seconds")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--models", type=int, nargs="+", default=[1, 4, 8])
    args = parser.parse_args()
    print(f"fan-out: L = {args.latency} s, {args.runs} runs each, {os.cpu_count()} CPUs")
    print("| models N | median wall / L | max wall / L | serial would be |")
    print("|---|---|---|---|")
    for n in args.models:
        ratios = measure(n, args.latency, args.runs)
        print(f"| {n} | {statistics.median(ratios):.3f} | {max(ratios):.3f} | {n:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
