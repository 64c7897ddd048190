"""Running a job: claim it, settle what a dead predecessor left, reserve each
model's calls, call the models in parallel, store every output in S3 and every
result in the job, then move it to a terminal status.

Money is exact whatever dies when (shared.costs): every call has its record
before it starts, and every record and the key's ledger change together. A
takeover (the previous claim's lease has expired, so its worker is dead)
first turns that worker's open reservations into UNCONFIRMED charges, then
resumes with the models that have no result; their calls get new call ids, so
a model paid for twice (its first answer died with the worker) shows twice."""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from aws_lambda_powertools import Logger

from shared.budgets import (
    ZERO,
    JobBudget,
    JobInput,
    KeyProfiles,
    first_call_bound,
    guardrail_check_bound,
    input_check_bound,
    text_call_bound,
    work_bound,
)
from shared.costs import Call, CallLedger, Usage, call_id, period_of
from shared.guardrails import GUARDRAIL_MODEL, Guardrail, guardrail_of
from shared.job_status import JobStatus
from shared.jobs import MAX_CLAIMS, JobRepository, from_dynamo, utc_now
from shared.metering import generation_cost
from shared.parameters import defaults_for
from shared.providers import Generation, GuardrailBlocked, ModelCallError, Provider
from shared.providers.chart import chart_request, chart_system
from shared.recovery import abandon
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
    failed = [m for m in models if results.get(m, {}).get("status") in ("FAILED", "SKIPPED", "BLOCKED")]
    problems = [f"{m}: {results[m]['error']['code']}" for m in failed]
    if status is JobStatus.BUDGET_EXCEEDED:
        prefix = "budget reached"
    elif all(results[m]["status"] == "BLOCKED" for m in failed):
        prefix = "blocked by the guardrail"
    else:
        prefix = "model calls failed"
    return f"{prefix} - " + "; ".join(problems)


class BudgetReached(ModelCallError):
    def __init__(self, message: str) -> None:
        super().__init__("BUDGET_EXCEEDED", message, retryable=False, public=True)


@dataclass
class Work:
    """One model's part of a job in this claim: its reserved first call, the
    calls made since, and what they cost."""

    job: dict[str, Any]
    model: str
    spec: ModelSpec
    claim: int
    worst: Decimal  # held on the job's budget for the whole work
    first: Call
    params: dict[str, Any] = field(default_factory=dict)  # what the model runs with (shared.parameters)
    checks: int = 0  # guardrail checks made (ApplyGuardrail, before an image call)
    masked: bool = False  # the guardrail's check masked (anonymised) the prompts sent
    spent: Decimal = ZERO
    calls: int = 0
    extra: Decimal = ZERO  # held on the job's budget beyond `worst` (a retry after an unknown outcome)
    started: set[str] = field(default_factory=set)  # call ids whose request went out
    allowance: Decimal = ZERO  # what of `worst` later calls may still use (a chart's repair)

    def __post_init__(self) -> None:
        self.allowance = self.worst - self.first.reserved


class JobRunner:
    def __init__(
        self,
        *,
        jobs: JobRepository,
        calls: CallLedger,
        profiles: KeyProfiles,
        providers: dict[str, Provider],
        s3: Any,
        settings: Settings,
        now: Callable[[], datetime] = utc_now,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        time_left: Callable[[], float] | None = None,
        guardrail_check: Callable[[Guardrail], Any] | None = None,
    ) -> None:
        self._jobs = jobs
        self._calls = calls
        self._profiles = profiles
        self._providers = providers  # by the registry's "api" of a model, and "chart"
        self._s3 = s3
        self._settings = settings
        self._now = now
        self._retry = retry or RetryPolicy(attempts=settings.model_call_attempts, base_delay=settings.model_retry_base_seconds)
        self._sleep = sleep
        # Seconds before the function's own timeout (Lambda's remaining time);
        # a retry that could not finish before it is not started.
        self._time_left = time_left or (lambda: float("inf"))
        # The deployment's guardrail, and the ApplyGuardrail check of prompts
        # that a model call cannot carry it in (images).
        self._guardrail = guardrail_of(settings.guardrail_id, settings.guardrail_version)
        self._guardrail_check = guardrail_check

    # ------------------------------------------------------------------ run
    def run(self, job_id: str) -> RunOutcome:
        job = self._jobs.claim(job_id, now=self._now(), lease_seconds=self._settings.job_lease_seconds, max_claims=MAX_CLAIMS)
        if job is None:
            return self._not_claimed(job_id)
        try:
            return self._run_claimed(job)
        except Exception as exc:
            # Unexpected (not a model error: those are per-model results). Fail
            # the job with the reason so it never stays RUNNING; if even that
            # write fails, the exception reaches SQS and the message is retried.
            logger.exception("job run failed", extra={"jobId": job_id})
            self._settle_own_open(job)
            self._jobs.finish(
                job_id,
                JobStatus.FAILED,
                cost_usd=self._calls.spent_on(job_id),
                now=self._now(),
                error=f"internal error: {type(exc).__name__}",
            )
            return RunOutcome(job_id, JobStatus.FAILED.value)

    def _not_claimed(self, job_id: str) -> RunOutcome:
        current = self._jobs.get(job_id)
        if current is None:
            logger.warning("message for an unknown job; dropped", extra={"jobId": job_id})
            return RunOutcome(job_id, "UNKNOWN_JOB")
        now = self._now()
        expired = current["status"] == JobStatus.RUNNING.value and int(current.get("leaseUntil", 0)) < now.timestamp()
        if expired and int(current.get("attempts", 0)) >= MAX_CLAIMS:
            # Every claim died: nothing will finish it but this.
            reason = f"abandoned: all {MAX_CLAIMS} runs of the job died (timed out, out of memory or killed)"
            if abandon(job_id, jobs=self._jobs, calls=self._calls, now=now, reason=reason):
                logger.warning("job abandoned after its claims", extra={"jobId": job_id})
                return RunOutcome(job_id, JobStatus.FAILED.value)
        logger.info("job not claimed", extra={"jobId": job_id, "status": current["status"]})
        return RunOutcome(job_id, current["status"])

    def _run_claimed(self, job: dict[str, Any]) -> RunOutcome:
        if "data" in job:  # chart records come back from DynamoDB with Decimals
            job = {**job, "data": from_dynamo(job["data"])}
        job_id, claim = job["jobId"], int(job["attempts"])
        now = self._now()
        if claim > 1:
            resolved = self._calls.resolve_dead(job_id, now=now, reason=f"run {claim - 1} of the job died with the call open")
            if resolved:
                logger.warning("took over a dead run's open calls", extra={"jobId": job_id, "unconfirmed": resolved})
        models: list[str] = list(job["models"])
        done = job.get("results", {})
        pending = [m for m in models if m not in done]  # a taken-over job resumes
        registry = enabled_specs(tuple(models))  # also resolves inference-profile IDs
        logger.info("job running", extra={"jobId": job_id, "models": len(models), "pending": len(pending), "claim": claim})

        # What earlier runs spent (a first run has no records to read).
        spent_before = self._calls.spent_on(job_id) if claim > 1 else ZERO
        budget = JobBudget(Decimal(str(job.get("budgetUsd", self._settings.max_job_budget_usd))), spent=spent_before)
        limit = self._profiles.of(job["owner"]).monthly_budget_usd
        work = self._reserve_all(job, claim, pending, registry, budget, limit, now)
        if work:
            with ThreadPoolExecutor(max_workers=len(work), thread_name_prefix="model") as pool:
                # Each thread records its own result as soon as its work ends.
                for done_work in [pool.submit(self._run_work, w, budget) for w in work]:
                    done_work.result()

        current = self._jobs.get(job_id) or job
        results = current.get("results", {})
        status = final_status(results, models)
        spent = self._calls.spent_on(job_id)
        if not self._jobs.finish(job_id, status, cost_usd=spent, now=self._now(), error=failure_reason(status, results, models)):
            # No longer RUNNING: cancelled by its owner while the calls ran (it
            # stays CANCELLED and shows what they cost), deleted, or ended by another path.
            self._jobs.record_cancelled_cost(job_id, spent, now=self._now())
            ended = (self._jobs.get(job_id) or {}).get("status", JobStatus.CANCELLED.value)
            logger.info("job ended elsewhere while it ran", extra={"jobId": job_id, "status": ended})
            return RunOutcome(job_id, ended, ran_models=len(work), calls=self._calls_of(results, work))
        logger.info("job finished", extra={"jobId": job_id, "status": status.value, "costUsd": str(spent)})
        return RunOutcome(job_id, status.value, ran_models=len(work), calls=self._calls_of(results, work))

    @staticmethod
    def _calls_of(results: dict[str, Any], work: list[Work]) -> tuple[dict[str, Any], ...]:
        return tuple(results[w.model] for w in work if w.model in results)

    def _reserve_all(
        self,
        job: dict[str, Any],
        claim: int,
        pending: list[str],
        registry: dict[str, ModelSpec],
        budget: JobBudget,
        limit: Decimal,
        now: datetime,
    ) -> list[Work]:
        """Reserve each model's first call, in the job's model order: what
        does not fit the job's or the key's budget is SKIPPED; the rest runs."""
        kind = job.get("kind", "text")
        job_input = JobInput.of(job)
        lease_until = int(job["leaseUntil"])
        work = []
        for model in pending:
            spec = registry[model]
            params = self.parameters_of(job, model, spec)
            worst = work_bound(spec, kind, job_input, params, self._guardrail)
            if not budget.try_reserve(worst):
                reason = f"the job's budget of ${budget.budget} would be exceeded (spent ${budget.spent})"
                self._record(job["jobId"], model, skipped(model, spec, reason))
                continue
            first = Call(
                job_id=job["jobId"],
                call_id=call_id(model, claim, 1),
                owner=job["owner"],
                model=model,
                kind=kind,
                reserved=first_call_bound(spec, kind, job_input, params, self._guardrail),
                period=period_of(now),
                lease_until=lease_until,
            )
            if not self._calls.reserve(first, limit=limit, now=now):
                budget.settle(worst, ZERO)
                self._record(
                    job["jobId"], model, skipped(model, spec, f"this API key's monthly budget of ${limit} would be exceeded")
                )
                continue
            work.append(Work(job=job, model=model, spec=spec, claim=claim, worst=worst, first=first, params=params))
        return work

    def parameters_of(self, job: dict[str, Any], model: str, spec: ModelSpec) -> dict[str, Any]:
        """What the model runs with: as the job was accepted with (defaults and
        seed filled in then), with the job's system prompt; a job queued before
        parameters existed gets the defaults."""
        stored = job.get("parameters", {}).get(model)
        if stored is None:
            stored = defaults_for(
                spec, job.get("kind", "text"), deployment_max_tokens=self._settings.model_max_tokens, seed_source=job["jobId"]
            )
        params = from_dynamo(stored)
        if job.get("system"):
            params = {"system": job["system"], **params}
        return params

    # ------------------------------------------------------------- one model
    def _run_work(self, work: Work, budget: JobBudget) -> None:
        job, kind, params = work.job, work.job.get("kind", "text"), work.params
        guardrail = self._guardrail
        try:
            if kind == "chart":
                generation = self._chart(work, budget)
            elif kind == "image":
                prompt = job["prompt"]
                if guardrail and self._guardrail_check:
                    prompt, params = self._checked_input(work, budget, guardrail)
                provider = self._providers[work.spec.api]
                generation = self._metered(
                    work,
                    budget,
                    lambda meta: provider.generate(work.model, prompt, max_tokens=0, metadata=meta, params=params),
                    estimate=work.first.reserved,
                )
            else:
                provider = self._providers[work.spec.api]
                prompt, messages = job["prompt"], job.get("messages") or None
                if guardrail and not work.spec.guardrail_in_call and self._guardrail_check:
                    prompt, messages = self._checked_text(work, budget, guardrail)
                generation = self._metered(
                    work,
                    budget,
                    lambda meta: provider.generate(
                        work.model,
                        prompt,
                        system=params.get("system"),
                        max_tokens=int(params["maxTokens"]),
                        metadata=meta,
                        params=params,
                        messages=messages,
                        guardrail=guardrail,
                    ),
                    estimate=work.first.reserved,
                )
        except ModelCallError as exc:
            detail = exc.message[:500]  # the provider's own text: for the log, not the caller
            logger.warning(
                "model call failed", extra={"jobId": job["jobId"], "model": work.model, "code": exc.code, "detail": detail}
            )
            self._close_unstarted(work)
            error = {"code": exc.code, "message": exc.public[:500]}
            status = "BLOCKED" if isinstance(exc, GuardrailBlocked) else "FAILED"
            result = {"model": work.model, "kind": kind, "status": status, "costUsd": float(work.spent), "error": error}
            result["parameters"] = self._reported(params)
            if isinstance(exc, GuardrailBlocked) and guardrail:
                result["guardrail"] = {**guardrail.view(), "blocked": exc.where, "reasons": exc.reasons}
        else:
            keys, versions = self._store(job["jobId"], generation)
            result = {**self._result(kind, generation, keys, work.spent), "versions": versions}
            result["parameters"] = self._reported(params)
            if guardrail:
                action = "MASKED" if work.masked else generation.guardrail_action or "NONE"
                result["guardrail"] = {**guardrail.view(), "action": action}
        finally:
            budget.settle(work.worst + work.extra, work.spent)
        if not self._record(job["jobId"], work.model, result):
            # The job was cancelled or deleted while the call ran: nothing may
            # keep its output (DELETE /jobs must leave no object behind).
            self._discard(result.get("versions", {}))

    @staticmethod
    def _reported(params: dict[str, Any]) -> dict[str, Any]:
        """The parameters a result shows: all but the system prompt (the job's,
        the same for every model, and possibly long)."""
        return {k: v for k, v in params.items() if k != "system"}

    def _chart(self, work: Work, budget: JobBudget) -> Generation:
        job, params, guardrail = work.job, work.params, self._guardrail
        prompt = job["prompt"]
        if guardrail and not work.spec.guardrail_in_call:
            if self._guardrail_check:
                prompt, _ = self._checked_text(work, budget, guardrail)
            guardrail = None  # the model's calls cannot carry it
        request, system = chart_request(prompt, job.get("data")), chart_system(params.get("system"))
        max_tokens = int(params["maxTokens"])
        provider = self._providers[work.spec.api]

        def text_call(prompt: str) -> Generation:
            return self._metered(
                work,
                budget,
                lambda meta: provider.generate(
                    work.model, prompt, system=system, max_tokens=max_tokens, metadata=meta, params=params, guardrail=guardrail
                ),
                estimate=text_call_bound(work.spec, prompt=prompt, system=system, max_tokens=max_tokens, guardrail=guardrail),
            )

        size = (int(params["width"]), int(params["height"])) if "width" in params else None
        return self._providers["chart"].generate(work.model, request, max_tokens=max_tokens, call=text_call, size=size)

    def _checked_input(self, work: Work, budget: JobBudget, guardrail: Guardrail) -> tuple[str, dict[str, Any]]:
        """The guardrail's check of an image call's prompts: the prompts to
        send (masked if it anonymised them), or GuardrailBlocked."""
        prompt, params = work.job["prompt"], work.params
        texts = [prompt] + ([params["negativePrompt"]] if "negativePrompt" in params else [])
        sent = self._checked(work, budget, guardrail, texts, guardrail_check_bound(len(prompt), params))
        if len(sent) > 1:
            params = {**params, "negativePrompt": sent[1]}
        return sent[0], params

    def _checked_text(self, work: Work, budget: JobBudget, guardrail: Guardrail) -> tuple[str, list[dict[str, str]] | None]:
        """The guardrail's check of a text or chart job's input (its prompt,
        or every turn of its conversation) before a model whose own calls
        cannot carry the guardrail (a provider beyond Bedrock): what to send,
        or GuardrailBlocked. (Its answer is not checked: see docs/decisions.md.)"""
        job, job_input = work.job, JobInput.of(work.job)
        messages = job.get("messages") or None
        estimate = input_check_bound(work.spec, job.get("kind", "text"), job_input, guardrail)
        sent = self._checked(work, budget, guardrail, job_input.texts(), estimate)
        if messages:
            turns = [{**m, "content": text} for m, text in zip(messages, sent, strict=True)]
            return turns[-1]["content"], turns
        return sent[0], None

    def _checked(self, work: Work, budget: JobBudget, guardrail: Guardrail, texts: list[str], estimate: Decimal) -> list[str]:
        """One ApplyGuardrail check of `texts`, metered as a call of its own
        (recorded under GUARDRAIL_MODEL): the texts to send, masked if it
        anonymised them; GuardrailBlocked if it blocked them."""
        check = self._guardrail_check(guardrail)
        sent: list[str] = texts

        def send(meta: dict[str, str]) -> Generation:
            nonlocal sent
            generation, sent = check.check(texts)
            return generation

        def next_check() -> Call:
            work.checks += 1  # a retry after an unknown outcome is a check of its own
            return self._new_call(work, budget, estimate, model=GUARDRAIL_MODEL, seq=work.checks)

        self._metered(
            work, budget, send, estimate=estimate, next_call=next_check, price=lambda generation: generation.guardrail_usd
        )
        work.masked = sent != texts
        return sent

    def _next_call(self, work: Work, budget: JobBudget, estimate: Decimal) -> Call:
        """The call to make now: the reserved first one, else a new reservation."""
        work.calls += 1
        if work.calls == 1:
            return work.first
        return self._new_call(work, budget, estimate, model=work.model, seq=work.calls)

    def _new_call(self, work: Work, budget: JobBudget, estimate: Decimal, *, model: str, seq: int) -> Call:
        """A new reservation within the work: out of what its worst case still
        holds for it, else on top of it (a retry after an unknown outcome)."""
        covered = min(estimate, work.allowance)  # a chart's repair fits the worst case held for it
        work.allowance -= covered
        if estimate > covered:
            if not budget.try_reserve(estimate - covered):
                raise BudgetReached(f"the job's budget of ${budget.budget} has no room for another call to {work.model}")
            work.extra += estimate - covered
        call = Call(
            job_id=work.first.job_id,
            # A guardrail check is named after the model it guards.
            call_id=call_id(work.model if model == work.model else f"{model}.{work.model}", work.claim, seq),
            owner=work.first.owner,
            model=model,
            kind=work.first.kind if model == work.model else "guardrail",
            reserved=estimate,
            period=period_of(self._now()),
            lease_until=work.first.lease_until,
        )
        limit = self._profiles.of(work.first.owner).monthly_budget_usd
        if not self._calls.reserve(call, limit=limit, now=self._now()):
            raise BudgetReached(f"this API key's monthly budget of ${limit} has no room for another call to {work.model}")
        return call

    def _metered(
        self,
        work: Work,
        budget: JobBudget,
        send: Callable[[dict[str, str]], Generation],
        *,
        estimate: Decimal,
        next_call: Callable[[], Call] | None = None,
        price: Callable[[Generation], Decimal] | None = None,
    ) -> Generation:
        """One logical call with its retries, every attempt under a reservation:
        settled to the real cost when the provider answers (a guardrail's
        block included: it is billed), released when it failed unbilled,
        charged (UNCONFIRMED) when its outcome is unknown, after which a retry
        needs a reservation of its own."""
        next_call = next_call or (lambda: self._next_call(work, budget, estimate))
        price = price or (lambda generation: self._price(work, generation))
        call = next_call()
        attempt = 0
        while True:
            attempt += 1
            work.started.add(call.call_id)
            try:
                generation = send({"genstackJobId": call.job_id, "genstackCallId": call.call_id})
            except ModelCallError as exc:
                last = attempt >= self._retry.attempts or not exc.retryable
                delay = 0.0 if last else self._retry.delay(attempt)
                # Room for the next attempt, its backoff, and a second to record it.
                out_of_time = not last and self._time_left() < delay + self._settings.model_call_timeout_seconds + 1
                if exc.billed_usd is not None:  # answered and billed, but nothing to use
                    usage = Usage(exc.input_tokens, exc.output_tokens)
                    cost = (
                        exc.billed_usd
                        if call.model == GUARDRAIL_MODEL
                        else (work.spec.cost_usd(exc.input_tokens, exc.output_tokens) + exc.billed_usd)
                    )
                    self._calls.settle(call, usage, cost, now=self._now())
                    work.spent += cost
                    raise
                if exc.outcome_unknown:
                    self._calls.unconfirm(call, now=self._now(), reason=exc.code)
                    work.spent += call.reserved
                    if last or out_of_time:
                        raise
                    call = next_call()
                elif last or out_of_time:
                    self._calls.release(call, now=self._now())
                    raise
                logger.info("model call retried", extra={"code": exc.code, "attempt": attempt, "delaySeconds": round(delay, 2)})
                self._sleep(delay)
                continue
            cost = price(generation)
            usage = Usage(generation.input_tokens, generation.output_tokens, generation.images)
            self._calls.settle(call, usage, cost, now=self._now())
            work.spent += cost
            return generation

    @staticmethod
    def _price(work: Work, generation: Generation) -> Decimal:
        return generation_cost(work.spec, work.params, generation)

    def _close_unstarted(self, work: Work) -> None:
        """A first call that was reserved but never sent (the work failed before it) costs nothing."""
        if work.first.call_id not in work.started:
            self._calls.release(work.first, now=self._now())

    def _settle_own_open(self, job: dict[str, Any]) -> None:
        """After an unexpected error: this claim's calls still open are
        charged (they may have been sent); nothing of them is lost."""
        claim = f"#{int(job['attempts']):03d}#"
        for record in self._calls.records_of(job["jobId"]):
            if record["status"] == "RESERVED" and claim in record["callId"]:
                self._calls.unconfirm(Call.from_record(record), now=self._now(), reason="the run failed unexpectedly")

    # ------------------------------------------------------------ outputs
    def _record(self, job_id: str, model: str, result: dict[str, Any]) -> bool:
        if not self._jobs.record_result(job_id, model, result, now=self._now()):
            logger.warning("result not recorded (already recorded, or the job ended)", extra={"jobId": job_id, "model": model})
            return False
        return True

    def _discard(self, versions: dict[str, str]) -> None:
        """Remove the object versions a result no one will see had stored."""
        for key, version_id in versions.items():
            self._s3.delete_object(Bucket=self._settings.outputs_bucket, Key=key, VersionId=version_id)

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
