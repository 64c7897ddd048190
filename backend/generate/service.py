"""Accepting a job: check it against the deployment, record it QUEUED, queue it."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from aws_lambda_powertools import Logger

from shared.budgets import JobInput, KeyProfile, work_bound
from shared.costs import CallLedger, period_of
from shared.errors import GenstackError, InvalidRequest, ModelProviderNotConfigured, MonthlyBudgetExceeded, UnknownModel
from shared.guardrails import guardrail_of
from shared.job_status import JobStatus
from shared.jobs import JobRepository, check_job_id, iso, public_view, utc_now
from shared.models import GenerateRequest, ensure_prompt_fits
from shared.outputs import OutputLinks, delete_outputs
from shared.parameters import resolve
from shared.registry import enabled_specs
from shared.settings import Settings

logger = Logger(child=True)

# The template parameter that names each external provider's key secret.
SECRET_PARAMETERS = {"openai": "OpenAiApiKeySecret", "stability": "StabilityApiKeySecret", "google": "GoogleApiKeySecret"}


class QueueUnavailable(GenstackError):
    status_code = 503
    code = "QUEUE_UNAVAILABLE"


class JobBudgetTooSmall(GenstackError):
    status_code = 402
    code = "JOB_BUDGET_TOO_SMALL"


def job_budget(request: GenerateRequest, settings: Settings) -> Decimal:
    """The job's budget: the request's, which may not exceed the deployment's maximum (the default)."""
    cap = settings.max_job_budget_usd
    if request.budget_usd is None:
        return cap
    budget = Decimal(str(request.budget_usd))
    if budget > cap:
        raise InvalidRequest(
            f"budgetUsd may be at most {cap} in this deployment", details={"field": "budgetUsd", "max": float(cap)}
        )
    return budget


def conversation(request: GenerateRequest) -> tuple[JobInput, str | None]:
    """What the job sends its models, and its system prompt (parameters.system,
    or a conversation's system turn)."""
    system = request.parameters.system if request.parameters else None
    if not request.messages:
        return JobInput(prompt=request.prompt or "", data=request.data), system
    turns = list(request.messages)
    if turns[0].role == "system":
        system, turns = turns[0].content, turns[1:]
    messages = tuple({"role": t.role, "content": t.content} for t in turns)
    return JobInput(prompt=messages[-1]["content"], messages=messages), system


def model_parameters(request: GenerateRequest, system: str | None, settings: Settings) -> dict[str, dict[str, Any]]:
    """Each model's parameters, checked against the registry, defaults and
    seeds filled in (400 naming the model and the parameter otherwise).
    The system prompt is the job's, the same for every model."""
    specs = enabled_specs(settings.enabled_models)
    common = request.parameters.given() if request.parameters else {}
    common.pop("system", None)
    resolved = {}
    for model in request.models:
        own = request.model_parameters.get(model) if request.model_parameters else None
        given = {**common, **(own.given() if own else {})}
        if "system" in given:
            raise InvalidRequest(
                f"modelParameters.{model}.system: the system prompt is the job's, the same for every model; "
                "give it in parameters.system",
                details={"field": f"modelParameters.{model}.system"},
            )
        if system is not None:
            given["system"] = system
        params = resolve(specs[model], request.kind, given, deployment_max_tokens=settings.model_max_tokens)
        params.pop("system", None)
        resolved[model] = params
    return resolved


def check_budgets(
    request: GenerateRequest,
    *,
    owner: str,
    budget: Decimal,
    settings: Settings,
    calls: CallLedger,
    profile: KeyProfile,
    now: datetime,
    job_input: JobInput,
    system: str | None,
    parameters: dict[str, dict[str, Any]],
) -> Decimal:
    """Refuse up front a job whose worst-case cost cannot fit; returns that cost.
    (The worker enforces both budgets again, atomically, call by call.)"""
    specs = enabled_specs(settings.enabled_models)
    guardrail = guardrail_of(settings.guardrail_id, settings.guardrail_version)
    with_system = {m: {**p, "system": system} if system else p for m, p in parameters.items()}
    estimate = sum(
        (work_bound(specs[m], request.kind, job_input, with_system[m], guardrail) for m in request.models),
        Decimal(0),
    )
    if estimate > budget:
        raise JobBudgetTooSmall(
            f"this job may cost up to ${estimate:.6f}, more than its budget of ${budget}; "
            "raise budgetUsd or use fewer or cheaper models",
            details={"estimatedUsd": float(estimate), "budgetUsd": float(budget)},
        )
    spent, _ = calls.month(owner, period_of(now))  # spent includes what is reserved now
    limit = profile.monthly_budget_usd
    if spent + estimate > limit:
        raise MonthlyBudgetExceeded(
            f"this API key has spent ${spent:.6f} of its ${limit} this month; this job may cost up to ${estimate:.6f}",
            details={"spentUsd": float(spent), "monthlyBudgetUsd": float(limit), "estimatedUsd": float(estimate)},
        )
    return estimate


def validate(request: GenerateRequest, settings: Settings, job_input: JobInput, system: str | None) -> None:
    # What the models are sent (a conversation's turns, the system prompt) is bounded together.
    size = job_input.chars + len(system or "")
    if request.messages:
        ensure_prompt_fits(size, settings.max_prompt_chars, field="messages", what="the conversation (with its system prompt)")
    else:
        what = "prompt with parameters.system" if system else "prompt"
        ensure_prompt_fits(size, settings.max_prompt_chars, field="prompt", what=what)
    if len(request.models) > settings.max_models_per_job:
        raise InvalidRequest(
            f"a job may use at most {settings.max_models_per_job} models; got {len(request.models)}",
            details={"field": "models", "maxModels": settings.max_models_per_job},
        )
    specs = enabled_specs(settings.enabled_models)
    unknown = [m for m in request.models if m not in specs]
    if unknown:
        raise UnknownModel(
            f"model(s) not enabled in this deployment: {', '.join(unknown)}; enabled: {', '.join(specs)}",
            details={"unknownModels": unknown, "enabledModels": list(specs)},
        )
    unconfigured = [m for m in request.models if specs[m].external and not settings.secret_of(specs[m].provider)]
    if unconfigured:
        providers = sorted({specs[m].provider for m in unconfigured})
        raise ModelProviderNotConfigured(
            f"model(s) {', '.join(unconfigured)} cannot be used: this deployment has no API key for "
            f"{', '.join(providers)} (template parameters {', '.join(SECRET_PARAMETERS[p] for p in providers)})",
            details={"field": "models", "models": unconfigured, "providers": providers},
        )
    wrong_kind = [m for m in request.models if not specs[m].serves(request.kind)]
    if wrong_kind:
        raise InvalidRequest(
            f"model(s) {', '.join(wrong_kind)} do not produce '{request.kind}' output",
            details={"field": "models", "models": wrong_kind},
        )
    too_long = {m: specs[m].max_prompt_chars for m in request.models if size > specs[m].max_prompt_chars}
    if too_long:
        raise InvalidRequest(
            "prompt is longer than " + ", ".join(f"{m} accepts ({n} characters)" for m, n in too_long.items()),
            details={"field": "prompt", "maxChars": too_long},
        )


def submit_job(
    request: GenerateRequest,
    *,
    owner: str,
    settings: Settings,
    jobs: JobRepository,
    template: dict[str, Any] | None = None,
    calls: CallLedger,
    profile: KeyProfile,
    sqs: Any,
    now: Callable[[], datetime] = utc_now,
    new_id: Callable[[], str] = lambda: str(uuid.uuid4()),
) -> dict[str, Any]:
    """Record the job as QUEUED, then queue its id, then mark it queued.
    Returns the stored job.

    If the queue refuses the message, the job is marked FAILED at once (so it
    never sits QUEUED forever) and the caller gets a 503 to retry. If this
    function dies between the record and the send (a timeout), the job has no
    message and no queued mark: the sweeper sends one after its grace period.
    """
    job_input, system = conversation(request)
    validate(request, settings, job_input, system)
    parameters = model_parameters(request, system, settings)
    budget = job_budget(request, settings)
    started = now()
    estimate = check_budgets(
        request,
        owner=owner,
        budget=budget,
        settings=settings,
        calls=calls,
        profile=profile,
        now=started,
        job_input=job_input,
        system=system,
        parameters=parameters,
    )
    created = iso(started)
    job: dict[str, Any] = {
        "jobId": new_id(),
        "owner": owner,
        "status": JobStatus.QUEUED.value,
        "kind": request.kind,
        "prompt": job_input.prompt,
        "models": request.models,
        # What each model runs with, seeds included: every run of the job runs the same.
        "parameters": parameters,
        "results": {},
        "costUsd": 0,
        "budgetUsd": float(budget),
        "estimatedUsd": float(estimate),
        "createdAt": created,
        "updatedAt": created,
    }
    if settings.job_retention_days:
        # DynamoDB's TTL removes the job this long after it was made; the
        # bucket's lifecycle rule removes its outputs at the same age.
        job["expiresAt"] = int((started + timedelta(days=settings.job_retention_days)).timestamp())
    if template:
        job["template"] = template
    if request.data is not None:
        job["data"] = request.data
    if job_input.messages:
        job["messages"] = list(job_input.messages)
    if system:
        job["system"] = system
    jobs.create(job, now=started)
    try:
        sqs.send_message(QueueUrl=settings.job_queue_url, MessageBody=json.dumps({"jobId": job["jobId"]}))
    except Exception as exc:
        logger.exception("could not queue job", extra={"jobId": job["jobId"]})
        jobs.fail_unqueued(job["jobId"], reason=f"the job could not be queued ({type(exc).__name__})", now=now())
        raise QueueUnavailable("the job queue is unavailable; nothing was charged, retry the request") from exc
    try:
        jobs.mark_queued(job["jobId"], now=now())
    except Exception:  # the job has its message: a sweeper's duplicate later is harmless
        logger.exception("could not mark the job queued", extra={"jobId": job["jobId"]})
    logger.info("job queued", extra={"jobId": job["jobId"], "models": len(request.models), "promptChars": job_input.chars})
    return job


class JobAlreadyFinished(GenstackError):
    status_code = 409
    code = "JOB_ALREADY_FINISHED"


def cancel_job(job_id: str, *, owner: str, jobs: JobRepository, links: OutputLinks, now: datetime) -> dict[str, Any]:
    """QUEUED or RUNNING -> CANCELLED. Calls already running finish and are
    billed; nothing more is started or recorded. Cancelling twice is harmless."""
    check_job_id(job_id)  # before any write
    cancelled = jobs.cancel(job_id, owner=owner, now=now)
    job = jobs.get_owned(job_id, owner)  # 404 for a missing or another key's job
    if not cancelled and job["status"] != JobStatus.CANCELLED.value:
        raise JobAlreadyFinished(f"job {job_id} already finished ({job['status']})", details={"status": job["status"]})
    logger.info("job cancelled", extra={"jobId": job_id, "changed": cancelled})
    return public_view(job, links=links, now=now)


def delete_job(job_id: str, *, owner: str, jobs: JobRepository, s3: Any, bucket: str, now: datetime) -> dict[str, Any]:
    """Delete one of the owner's jobs: stop it if it is still running, remove
    every version of its outputs, then its record. Its cost records stay (they
    are the key's billing history and hold no prompt or output). Deleting
    again, or a half-finished delete retried, is safe."""
    job = jobs.get_owned(job_id, owner)  # 400 for a malformed id, 404 for a missing or another key's job
    if job["status"] in (JobStatus.QUEUED.value, JobStatus.RUNNING.value):
        # A worker still running it records nothing more, and removes any
        # output it stores after this (it cannot record its result).
        jobs.cancel(job_id, owner=owner, now=now)
    removed = delete_outputs(s3, bucket=bucket, job_id=job_id)
    jobs.delete(job_id, owner=owner)
    logger.info("job deleted", extra={"jobId": job_id, "objectVersions": removed})
    return {"jobId": job_id, "deleted": True, "outputVersionsDeleted": removed}
