"""Running a job: claim it, call its models in parallel, store every output in
S3 and every result in the job, then move it to a terminal status."""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from aws_lambda_powertools import Logger

from shared.budgets import ZERO, BudgetLedger, JobBudget, call_estimate
from shared.costs import CostLedger
from shared.job_status import JobStatus
from shared.jobs import JobRepository, from_dynamo, utc_now
from shared.providers import Generation, ModelCallError, Provider
from shared.providers.chart import chart_request
from shared.registry import ModelSpec, enabled_specs
from shared.settings import Settings

logger = Logger(child=True)

_UNSAFE_KEY_CHARS = re.compile(r"[^A-Za-z0-9._-]")


def output_key(job_id: str, model: str, extension: str) -> str:
    return f"jobs/{job_id}/outputs/{_UNSAFE_KEY_CHARS.sub('_', model)}.{extension}"


@dataclass(frozen=True)
class RetryPolicy:
    """Retries of a model call that failed for a passing reason (throttling,
    model timeout): exponential backoff with full jitter, so parallel calls
    throttled together do not retry together."""

    attempts: int = 4
    base_delay: float = 1.0
    max_delay: float = 20.0

    def delay(self, attempt: int, rand: Callable[[], float] = random.random) -> float:
        return min(self.max_delay, self.base_delay * 2 ** (attempt - 1)) * rand()


def call_with_retries(
    call: Callable[[], Generation], policy: RetryPolicy, *, sleep: Callable[[float], None] = time.sleep
) -> Generation:
    for attempt in range(1, policy.attempts + 1):
        try:
            return call()
        except ModelCallError as exc:
            if not exc.retryable or attempt == policy.attempts:
                raise
            delay = policy.delay(attempt)
            logger.info("model call retried", extra={"code": exc.code, "attempt": attempt, "delaySeconds": round(delay, 2)})
            sleep(delay)
    raise AssertionError("unreachable")  # the loop returns or raises


@dataclass(frozen=True)
class RunOutcome:
    job_id: str
    status: str  # the job's status after this run, or why nothing was run
    ran_models: int = 0
    # The results of the calls this run made (model, status, tokens, cost),
    # for the per-model metrics.
    calls: tuple[dict[str, Any], ...] = ()


def skipped(model: str, spec: ModelSpec, reason: str) -> dict[str, Any]:
    return {
        "model": model,
        "kind": spec.kind,
        "status": "SKIPPED",
        "costUsd": 0,
        "error": {"code": "BUDGET_EXCEEDED", "message": reason},
    }


def final_status(results: dict[str, Any], models: list[str]) -> JobStatus:
    if any(results.get(m, {}).get("status") == "SKIPPED" for m in models):
        return JobStatus.BUDGET_EXCEEDED
    succeeded = sum(1 for m in models if results.get(m, {}).get("status") == "SUCCEEDED")
    if succeeded == len(models):
        return JobStatus.COMPLETED
    return JobStatus.PARTIAL if succeeded else JobStatus.FAILED


def failure_reason(status: JobStatus, results: dict[str, Any], models: list[str]) -> str | None:
    """Why a job did not complete, model by model."""
    if status is JobStatus.COMPLETED:
        return None
    problems = [
        f"{m}: {results[m]['error']['code']}" for m in models if results.get(m, {}).get("status") in ("FAILED", "SKIPPED")
    ]
    prefix = "budget reached" if status is JobStatus.BUDGET_EXCEEDED else "model calls failed"
    return f"{prefix} - " + "; ".join(problems)


class JobRunner:
    def __init__(
        self,
        *,
        jobs: JobRepository,
        costs: CostLedger,
        ledger: BudgetLedger,
        providers: dict[str, Provider],
        s3: Any,
        settings: Settings,
        now: Callable[[], datetime] = utc_now,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._jobs = jobs
        self._costs = costs
        self._ledger = ledger
        self._providers = providers  # by the registry's "api" of a model
        self._s3 = s3
        self._settings = settings
        self._now = now
        self._retry = retry or RetryPolicy(attempts=settings.model_call_attempts)
        self._sleep = sleep

    def run(self, job_id: str) -> RunOutcome:
        job = self._jobs.claim(job_id, now=self._now(), lease_seconds=self._settings.job_lease_seconds)
        if job is None:
            return self._not_claimed(job_id)
        try:
            return self._run_claimed(job)
        except Exception as exc:
            # Unexpected (not a model error: those are per-model results). Fail
            # the job with the reason so it never stays RUNNING; if even that
            # write fails, the exception reaches SQS and the message is retried.
            logger.exception("job run failed", extra={"jobId": job_id})
            self._jobs.finish(
                job_id,
                JobStatus.FAILED,
                cost_usd=self._costs.spent_on(job_id),
                now=self._now(),
                error=f"internal error: {type(exc).__name__}",
            )
            return RunOutcome(job_id, JobStatus.FAILED.value)

    def _not_claimed(self, job_id: str) -> RunOutcome:
        current = self._jobs.get(job_id)
        if current is None:
            logger.warning("message for an unknown job; dropped", extra={"jobId": job_id})
            return RunOutcome(job_id, "UNKNOWN_JOB")
        logger.info("job not claimed", extra={"jobId": job_id, "status": current["status"]})
        return RunOutcome(job_id, current["status"])

    def _run_claimed(self, job: dict[str, Any]) -> RunOutcome:
        if "data" in job:  # chart records come back from DynamoDB with Decimals
            job = {**job, "data": from_dynamo(job["data"])}
        job_id = job["jobId"]
        models: list[str] = list(job["models"])
        done = job.get("results", {})
        pending = [m for m in models if m not in done]  # a taken-over job resumes
        registry = enabled_specs(tuple(models))  # also resolves inference-profile IDs
        logger.info("job running", extra={"jobId": job_id, "models": len(models), "pending": len(pending)})

        # Reserve each call's worst case before any call starts: what does not
        # fit the job's or the key's budget is skipped, in the job's model
        # order; the rest runs in parallel.
        budget = JobBudget(
            Decimal(str(job.get("budgetUsd", self._settings.max_job_budget_usd))), spent=self._costs.spent_on(job_id)
        )
        kind = job.get("kind", "text")
        max_tokens = self._settings.model_max_tokens
        estimates = {m: call_estimate(registry[m], kind, job["prompt"], job.get("data"), max_tokens) for m in pending}
        spent_before = budget.spent
        to_run, on_ledger = self._reserve_all(job, budget, estimates, registry)
        try:
            if to_run:
                with ThreadPoolExecutor(max_workers=len(to_run), thread_name_prefix="model") as pool:
                    # Each thread records its own result as soon as its call ends.
                    calls = [pool.submit(self._run_call, job, m, registry[m], estimate, budget) for m, estimate in to_run]
                    for call in calls:
                        call.result()
        finally:
            # One ledger write settles every reservation of this run to what the
            # calls really cost (failed calls cost nothing).
            self._ledger.adjust(job["owner"], (budget.spent - spent_before) - on_ledger, self._now())

        current = self._jobs.get(job_id) or job
        results = current.get("results", {})
        status = final_status(results, models)
        spent = self._costs.spent_on(job_id)
        if not self._jobs.finish(job_id, status, cost_usd=spent, now=self._now(), error=failure_reason(status, results, models)):
            # No longer RUNNING: cancelled by its owner while the calls ran (it
            # stays CANCELLED and shows what they cost), or ended by another path.
            self._jobs.record_cancelled_cost(job_id, spent, now=self._now())
            ended = (self._jobs.get(job_id) or {}).get("status", JobStatus.CANCELLED.value)
            logger.info("job ended elsewhere while it ran", extra={"jobId": job_id, "status": ended})
            return RunOutcome(job_id, ended, ran_models=len(to_run), calls=self._calls_of(results, to_run))
        logger.info("job finished", extra={"jobId": job_id, "status": status.value})
        return RunOutcome(job_id, status.value, ran_models=len(to_run), calls=self._calls_of(results, to_run))

    @staticmethod
    def _calls_of(results: dict[str, Any], to_run: list[tuple[str, Decimal]]) -> tuple[dict[str, Any], ...]:
        return tuple(results[m] for m, _ in to_run if m in results)

    def _reserve_all(
        self, job: dict[str, Any], budget: JobBudget, estimates: dict[str, Decimal], registry: dict[str, ModelSpec]
    ) -> tuple[list[tuple[str, Decimal]], Decimal]:
        """Reserve the calls that fit; returns them and what was reserved on the
        ledger. The common case, everything fits, costs one ledger write;
        otherwise models are taken one by one in the job's order."""
        total = sum(estimates.values(), ZERO)
        if budget.try_reserve(total):
            if self._ledger.try_reserve(job["owner"], total, self._now()):
                return list(estimates.items()), total
            budget.settle(total, ZERO)
        to_run = []
        for model, estimate in estimates.items():
            refusal = self._reserve(job, budget, estimate)
            if refusal:
                self._record(job["jobId"], model, skipped(model, registry[model], refusal))
            else:
                to_run.append((model, estimate))
        return to_run, sum((estimate for _, estimate in to_run), ZERO)

    def _run_call(self, job: dict[str, Any], model: str, spec: ModelSpec, estimate: Decimal, budget: JobBudget) -> None:
        model, result = self._call_reserved(job, model, spec, estimate, budget)
        if not self._record(job["jobId"], model, result):
            # The job was cancelled or deleted while the call ran: nothing may
            # keep its output (DELETE /jobs must leave no object behind).
            self._discard(result.get("versions", {}))

    def _reserve(self, job: dict[str, Any], budget: JobBudget, estimate: Decimal) -> str | None:
        """Reserve a call's worst case on both budgets; the reason if it does not fit."""
        if not budget.try_reserve(estimate):
            return f"the job's budget of ${budget.budget} would be exceeded (spent ${budget.spent})"
        if not self._ledger.try_reserve(job["owner"], estimate, self._now()):
            budget.settle(estimate, ZERO)
            return f"this API key's monthly budget of ${self._ledger.monthly_limit} would be exceeded"
        return None

    def _record(self, job_id: str, model: str, result: dict[str, Any]) -> bool:
        if not self._jobs.record_result(job_id, model, result, now=self._now()):
            logger.warning("result not recorded (already recorded, or the job ended)", extra={"jobId": job_id, "model": model})
            return False
        return True

    def _discard(self, versions: dict[str, str]) -> None:
        """Remove the object versions a result no one will see had stored."""
        for key, version_id in versions.items():
            self._s3.delete_object(Bucket=self._settings.outputs_bucket, Key=key, VersionId=version_id)

    def _call_reserved(
        self, job: dict[str, Any], model: str, spec: ModelSpec, estimate: Decimal, budget: JobBudget
    ) -> tuple[str, dict[str, Any]]:
        """Call a model whose worst case is reserved. Its cost is recorded as
        soon as Bedrock answers (the money is spent even if storing the output
        fails), and the job's budget is settled to that cost (the ledger is
        settled once for the whole run)."""
        actual = ZERO
        kind = job.get("kind", "text")
        provider, prompt = self._providers[spec.api], job["prompt"]
        if kind == "chart":
            provider, prompt = self._providers["chart"], chart_request(job["prompt"], job.get("data"))
        try:
            max_tokens = spec.output_limit(self._settings.model_max_tokens)
            try:
                generation = call_with_retries(
                    lambda: provider.generate(model, prompt, max_tokens=max_tokens), self._retry, sleep=self._sleep
                )
            except ModelCallError as exc:
                logger.warning(
                    "model call failed",
                    extra={"jobId": job["jobId"], "model": model, "code": exc.code, "detail": exc.message[:500]},
                )
                # Work that failed after consuming tokens (a chart that stayed invalid) is billed.
                actual = self._charge(job, model, kind, spec, exc.input_tokens, exc.output_tokens, 0)
                error = {"code": exc.code, "message": exc.public[:500]}
                return model, {"model": model, "kind": kind, "status": "FAILED", "costUsd": float(actual), "error": error}
            actual = self._charge(job, model, kind, spec, generation.input_tokens, generation.output_tokens, generation.images)
            keys, versions = self._store(job["jobId"], generation)
            return model, {**self._result(kind, generation, keys, actual), "versions": versions}
        finally:
            budget.settle(estimate, actual)

    def _charge(
        self, job: dict[str, Any], model: str, kind: str, spec: ModelSpec, input_tokens: int, output_tokens: int, images: int
    ) -> Decimal:
        """Record what a call cost (once) and return it; nothing for nothing."""
        cost = spec.cost_usd(input_tokens, output_tokens, images)
        if cost == ZERO:
            return cost
        if not self._costs.record_call(
            job_id=job["jobId"],
            owner=job["owner"],
            model=model,
            kind=kind,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            images=images,
            cost_usd=cost,
            now=self._now(),
        ):
            logger.warning("cost already recorded", extra={"jobId": job["jobId"], "model": model})
        return cost

    def _store(self, job_id: str, generation: Generation) -> tuple[dict[str, str], dict[str, str]]:
        """Every file of the output, by extension (the main one first), and
        the object version each put created (by key)."""
        files = [(generation.extension, generation.content_type, generation.content), *generation.attachments]
        keys, versions = {}, {}
        for extension, content_type, body in files:
            key = output_key(job_id, generation.model, extension)
            put = self._s3.put_object(Bucket=self._settings.outputs_bucket, Key=key, Body=body, ContentType=content_type)
            keys[extension] = key
            if put.get("VersionId"):
                versions[key] = put["VersionId"]
        return keys, versions

    def _result(self, kind: str, generation: Generation, keys: dict[str, str], cost: Decimal) -> dict[str, Any]:
        result: dict[str, Any] = {
            "model": generation.model,
            "kind": kind,
            "status": "SUCCEEDED",
            "key": keys[generation.extension],
            "inputTokens": generation.input_tokens,
            "outputTokens": generation.output_tokens,
            "images": generation.images,
            "latencyMs": generation.latency_ms,
            "costUsd": float(cost),
        }
        if generation.text is not None and len(generation.text) <= self._settings.inline_text_chars:
            result["text"] = generation.text
        if generation.attachments:
            result["files"] = {ext: key for ext, key in keys.items() if ext != generation.extension}
        return result
