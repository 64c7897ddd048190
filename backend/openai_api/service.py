"""The /v1 routes' domain: OpenAI's requests turned into genstack's calls of
the registry's models, each metered like POST /enhance (shared.metering):
its worst case reserved on the key's month, settled to its real cost, one
cost record per call, counted by GET /usage."""

from __future__ import annotations

import base64
import calendar
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from openai_api.wire import ChatCompletionRequest, ImageRequest, chat_completion, model_object, usage_object
from shared.budgets import JobInput, KeyProfile, image_bound, input_check_bound, text_call_bound
from shared.costs import CallLedger
from shared.errors import (
    BlockedByGuardrail,
    GenstackError,
    InvalidRequest,
    ModelProviderNotConfigured,
    ModelThrottled,
    ModelUnavailable,
)
from shared.guardrails import Guardrail, guardrail_of
from shared.metering import account_failure, generation_cost, reserve, settle, sync_call
from shared.models import Message, check_conversation, ensure_prompt_fits
from shared.parameters import parameter_set, resolve
from shared.providers import Generation, GuardrailBlocked, ModelCallError, Provider
from shared.registry import ModelSpec, enabled_specs, registry_data
from shared.settings import Settings

# What a synchronous call leaves of the integration timeout beyond the
# model's answer: its connection (2 s at most) and the settlement after it at
# its worst (one DynamoDB transaction with its retries, 8 s: shared.clients),
# so the function answers (its own 504, if the model is slow) before API
# Gateway gives up. The reads and the reservation before the call take
# milliseconds when DynamoDB is well; if they are slow and the function is
# killed after the call, its reservation stays open and the sweeper charges
# it (UNCONFIRMED) once its lease ends: money stays exact either way.
SYNC_MARGIN_SECONDS = 10
# The output rate a default max_tokens assumes, so that a call without one
# ends within the timeout: a slow rate for a large model (Claude Sonnet, Llama
# 70B, Mistral Large answer 40-80 tokens a second on Bedrock).
TOKENS_PER_SECOND = 40


def model_timeout(settings: Settings) -> int:
    """The model call's read timeout within the /v1 API's integration timeout."""
    return settings.sync_timeout_seconds - SYNC_MARGIN_SECONDS


def lease_seconds(settings: Settings) -> int:
    """A /v1 reservation outlives its function by this much; past it the
    sweeper charges it (the request died with the call open)."""
    return settings.sync_timeout_seconds + 31


def default_max_tokens(settings: Settings) -> int:
    """max_tokens when a request sets none: what fits in the timeout, and at
    most the deployment's MODEL_MAX_TOKENS."""
    return max(1, min(settings.model_max_tokens, model_timeout(settings) * TOKENS_PER_SECOND))


class ModelNotFound(GenstackError):
    status_code = 404
    code = "MODEL_NOT_FOUND"


class CallTimedOut(GenstackError):
    """The model did not answer within the integration timeout: it may have
    billed the call, which is charged at its reservation (UNCONFIRMED)."""

    status_code = 504
    code = "TIMEOUT"


# OpenAI's parameter names for genstack's, in the messages of refused values.
OPENAI_NAMES = {
    "temperature": "temperature",
    "topP": "top_p",
    "maxTokens": "max_tokens",
    "stopSequences": "stop",
    "count": "n",
    "width": "size",
    "height": "size",
    "aspectRatio": "size",
    "quality": "quality",
    "style": "style",
}


# ------------------------------------------------------------------ models
def registry_created() -> int:
    """`created` of every model: when genstack's registry was last reviewed
    (the registry does not record the providers' release dates)."""
    reviewed = date.fromisoformat(registry_data()["reviewed"])
    return calendar.timegm(reviewed.timetuple())


def callable_specs(settings: Settings) -> dict[str, ModelSpec]:
    """The enabled models a call can reach now (a provider beyond Bedrock needs its key's secret)."""
    return {
        model_id: spec
        for model_id, spec in enabled_specs(settings.enabled_models).items()
        if not spec.external or settings.secret_of(spec.provider)
    }


def list_models(settings: Settings) -> dict[str, Any]:
    created = registry_created()
    data = [model_object(m, spec.provider, created) for m, spec in callable_specs(settings).items()]
    return {"object": "list", "data": data}


def get_model(settings: Settings, model_id: str) -> dict[str, Any]:
    spec = _spec(settings, model_id, kind=None)
    return model_object(model_id, spec.provider, registry_created())


def _spec(settings: Settings, model_id: str, *, kind: str | None) -> ModelSpec:
    spec = enabled_specs(settings.enabled_models).get(model_id)
    if spec is None:
        raise ModelNotFound(
            f"The model `{model_id[:200]}` does not exist or you do not have access to it "
            "(GET /v1/models lists this deployment's models).",
            details={"param": "model"},
        )
    if spec.external and not settings.secret_of(spec.provider):
        raise ModelProviderNotConfigured(
            f"{model_id} is enabled, but its provider ({spec.provider}) has no API key in this deployment",
            details={"param": "model"},
        )
    if kind is not None and spec.kind != kind:
        route = "/v1/images/generations" if spec.kind == "image" else "/v1/chat/completions"
        raise InvalidRequest(f"{model_id} is an {spec.kind} model; call it through {route}", details={"param": "model"})
    return spec


def _resolve(spec: ModelSpec, kind: str, given: dict[str, Any], *, max_tokens: int) -> dict[str, Any]:
    """The registry's check of the parameters, its messages in OpenAI's names."""
    try:
        return resolve(spec, kind, given, deployment_max_tokens=max_tokens)
    except InvalidRequest as exc:
        name = str(exc.details.get("parameter", ""))
        param = OPENAI_NAMES.get(name, name)
        message = exc.message.replace(f"parameter '{name}'", f"'{param}' (genstack's {name})") if name else exc.message
        raise InvalidRequest(message, details={"param": param}) from exc


# -------------------------------------------------------------------- calls
@dataclass(frozen=True)
class Outcome:
    """What a call answered, with what it cost and the record it is under."""

    body: dict[str, Any]
    cost: Decimal
    record: str
    generation: Generation


@dataclass(frozen=True)
class CallContext:
    owner: str
    settings: Settings
    calls: CallLedger
    profile: KeyProfile
    now: datetime
    provider_for: Callable[[ModelSpec], Provider]
    guardrail_check: Callable[[Guardrail], Any]


def _conversation(request: ChatCompletionRequest, max_chars: int) -> tuple[str | None, list[dict[str, str]]]:
    """The system prompt (the leading system and developer messages) and the
    turns, checked as /generate checks a conversation."""
    messages = list(request.messages)
    system_parts = []
    while messages and messages[0].role in ("system", "developer"):
        system_parts.append(messages.pop(0).text)
    system = "\n\n".join(system_parts) or None
    turns = [{"role": m.role, "content": m.text} for m in messages]
    for i, turn in enumerate(turns):
        if turn["role"] in ("system", "developer"):
            raise InvalidRequest(
                f"messages[{i + len(system_parts)}] is a {turn['role']} message after the conversation began; "
                "system and developer messages come first",
                details={"param": "messages"},
            )
        if not turn["content"].strip():
            raise InvalidRequest(f"messages[{i + len(system_parts)}].content is empty", details={"param": "messages"})
    try:
        check_conversation([Message.model_construct(role=t["role"], content=t["content"]) for t in turns], has_system=False)
    except ValueError as exc:
        raise InvalidRequest(f"messages {exc}", details={"param": "messages"}) from exc
    ensure_prompt_fits(sum(len(t["content"]) for t in turns) + len(system or ""), max_chars, field="messages", what="messages")
    return system, turns


def _raise_for(exc: ModelCallError, model: str, cost: Decimal | None) -> None:
    """A failed call as the error its caller gets."""
    if isinstance(exc, GuardrailBlocked):
        raise BlockedByGuardrail(f"{exc.public}; this request cost ${cost or 0}", details={"param": "messages"}) from exc
    if exc.outcome_unknown:
        raise CallTimedOut(
            f"{model} did not answer within this API's timeout; the call may have been billed and is charged "
            "at its reservation. Ask for fewer max_tokens, or ask an operator to raise OpenAiApiTimeoutSeconds.",
        ) from exc
    if exc.code == "PROVIDER_NOT_CONFIGURED":
        raise ModelProviderNotConfigured(f"{model} cannot be called: {exc.public}", details={"param": "model"}) from exc
    if exc.retryable and exc.code in ("ThrottlingException", "ServiceQuotaExceededException"):
        raise ModelThrottled(f"{model} is throttled; retry in a few seconds") from exc
    if exc.code == "ValidationException":
        raise InvalidRequest(f"{model} refused the request: {exc.public}") from exc
    raise ModelUnavailable(f"{model} failed ({exc.code}): {exc.public}") from exc


def chat(request: ChatCompletionRequest, ctx: CallContext) -> Outcome:
    settings = ctx.settings
    spec = _spec(settings, request.model, kind="text")
    if request.n not in (None, 1):
        raise InvalidRequest("n must be 1: genstack's text models answer one choice per call", details={"param": "n"})
    if request.max_tokens is not None and request.max_completion_tokens is not None:
        raise InvalidRequest("give max_tokens or max_completion_tokens, not both", details={"param": "max_tokens"})
    if request.stream_options is not None and not request.stream:
        raise InvalidRequest("stream_options is only allowed when stream is true", details={"param": "stream_options"})
    system, turns = _conversation(request, settings.max_prompt_chars)
    given: dict[str, Any] = {}
    if request.temperature is not None:
        given["temperature"] = request.temperature
    if request.top_p is not None:
        given["topP"] = request.top_p
    if (request.max_completion_tokens or request.max_tokens) is not None:
        given["maxTokens"] = request.max_completion_tokens or request.max_tokens
    if request.stop is not None:
        given["stopSequences"] = [request.stop] if isinstance(request.stop, str) else request.stop
    params = _resolve(spec, "text", given, max_tokens=default_max_tokens(settings))
    max_tokens = spec.output_limit(int(params["maxTokens"]))

    guardrail = guardrail_of(settings.guardrail_id, settings.guardrail_version)
    in_call = guardrail if spec.guardrail_in_call else None
    check = ctx.guardrail_check(guardrail) if guardrail and not in_call else None
    texts = [t["content"] for t in turns]
    reserved = text_call_bound(spec, prompt=texts, system=system, max_tokens=max_tokens, guardrail=in_call)
    if check:
        reserved += input_check_bound(spec, "text", JobInput(prompt=texts[-1], messages=tuple(turns)), guardrail)
    call = _reserve(ctx, spec, "text", reserved)
    checked = Decimal(0)
    try:
        if check:
            checked_generation, texts = check.check(texts)
            checked = checked_generation.guardrail_usd
            turns = [{**t, "content": text} for t, text in zip(turns, texts, strict=True)]
        generation = ctx.provider_for(spec).generate(
            request.model,
            turns[-1]["content"],
            system=system,
            max_tokens=max_tokens,
            metadata={"genstackJobId": call.job_id, "genstackCallId": call.call_id},
            params=params,
            messages=turns,
            guardrail=guardrail,
        )
    except ModelCallError as exc:
        _raise_for(exc, request.model, account_failure(ctx.calls, call, spec, exc, now=ctx.now, checked=checked))
        raise  # not reached: _raise_for always raises
    cost = generation_cost(spec, params, generation) + checked
    settle(ctx.calls, call, generation, cost, now=ctx.now)
    body = chat_completion(
        completion_id=f"chatcmpl-{call.job_id.partition('#')[2]}",
        created=int(ctx.now.timestamp()),
        model=request.model,
        text=generation.text or "",
        finish=generation.finish,
        usage=usage_object(generation.input_tokens, generation.output_tokens),
    )
    return Outcome(body, cost, call.job_id, generation)


def _reserve(ctx: CallContext, spec: ModelSpec, kind: str, reserved: Decimal) -> Any:
    call = sync_call(
        prefix="v1",
        owner=ctx.owner,
        model=spec.id,
        kind=kind,
        reserved=reserved,
        now=ctx.now,
        lease_seconds=lease_seconds(ctx.settings),
    )
    reserve(ctx.calls, call, ctx.profile, now=ctx.now)
    return call


def image_parameters(spec: ModelSpec, request: ImageRequest) -> dict[str, Any]:
    """OpenAI's n, size, quality and style as the registry's parameters of
    the model: a size becomes width and height where the model takes them,
    else its aspect ratio."""
    takes = set(parameter_set(spec, "image").rules)
    given: dict[str, Any] = {}
    if request.n is not None:
        given["count"] = request.n
    if request.size not in (None, "auto"):
        width, height = (int(n) for n in request.size.split("x"))
        if "width" in takes:
            given["width"], given["height"] = width, height
        else:
            divisor = math.gcd(width, height)
            given["aspectRatio"] = f"{width // divisor}:{height // divisor}"
    if request.quality not in (None, "auto"):
        given["quality"] = request.quality
    if request.style is not None:
        given["style"] = request.style
    return _resolve(spec, "image", given, max_tokens=0)


def images(
    request: ImageRequest,
    ctx: CallContext,
    *,
    store: Callable[[str, list[bytes]], list[str]],
) -> Outcome:
    """One image call. `store(record, pngs)` keeps the images and answers a
    link to each (response_format url, the default)."""
    settings = ctx.settings
    spec = _spec(settings, request.model, kind="image")
    ensure_prompt_fits(request.prompt, min(settings.max_prompt_chars, spec.max_prompt_chars))
    params = image_parameters(spec, request)
    guardrail = guardrail_of(settings.guardrail_id, settings.guardrail_version)
    call = _reserve(ctx, spec, "image", image_bound(spec, params, JobInput(prompt=request.prompt), guardrail))
    checked = Decimal(0)
    prompt = request.prompt
    try:
        if guardrail:  # an image call cannot carry it: ApplyGuardrail first
            checked_generation, (prompt,) = ctx.guardrail_check(guardrail).check([prompt])
            checked = checked_generation.guardrail_usd
        generation = ctx.provider_for(spec).generate(
            request.model,
            prompt,
            max_tokens=0,
            metadata={"genstackJobId": call.job_id, "genstackCallId": call.call_id},
            params=params,
        )
    except ModelCallError as exc:
        _raise_for(exc, request.model, account_failure(ctx.calls, call, spec, exc, now=ctx.now, checked=checked))
        raise  # not reached
    cost = generation_cost(spec, params, generation) + checked
    settle(ctx.calls, call, generation, cost, now=ctx.now)
    pngs = pngs_of(generation)
    if request.response_format == "b64_json":
        data = [{"b64_json": base64.b64encode(png).decode("ascii")} for png in pngs]
    else:
        data = [{"url": url} for url in store(call.job_id, pngs)]
    body: dict[str, Any] = {"created": int(ctx.now.timestamp()), "data": data}
    if spec.billing == "tokens":
        body["usage"] = {
            "input_tokens": generation.input_tokens,
            "output_tokens": generation.output_tokens,
            "total_tokens": generation.input_tokens + generation.output_tokens,
            "input_tokens_details": {"text_tokens": generation.input_tokens, "image_tokens": 0},
        }
    return Outcome(body, cost, call.job_id, generation)


def pngs_of(generation: Generation) -> list[bytes]:
    return [generation.content, *(content for _, _, content in generation.attachments)]
