"""POST /enhance: return an improved version of a prompt."""

from __future__ import annotations

import gc

gc.disable()  # while this module loads: on again at its end (shared.gc_init)

from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from enhance.service import LEASE_SECONDS, enhance_prompt
from shared import clients
from shared.api import caller_id, make_resolver, resolve
from shared.gc_init import loaded
from shared.jobs import utc_now
from shared.limits import InFlightSlots
from shared.metrics import record_model_usage
from shared.models import EnhanceRequest, build, ensure_prompt_fits
from shared.providers import ConverseTextProvider
from shared.providers.guardrail import GuardrailCheck
from shared.registry import spec_for
from shared.settings import get_settings

logger = Logger()
metrics = Metrics()
app = make_resolver(metrics, cors_origins=get_settings().cors_allowed_origins)
build(EnhanceRequest)  # the one route's body, at init


def enhance_provider(settings: Any) -> Any:
    """The enhance model's provider: Bedrock Converse, or a provider beyond
    Bedrock (EnhanceModelId openai/..., google/...), within API Gateway's 29 s."""
    spec = spec_for(settings.enhance_model_id)
    if spec is not None and spec.external:
        return clients.external_providers(sync=True)[spec.api]
    return ConverseTextProvider(clients.bedrock_runtime_sync())


@app.post("/enhance")
def enhance(request: EnhanceRequest) -> dict[str, Any]:
    settings = get_settings()
    owner = caller_id(app.current_event)
    ensure_prompt_fits(request.prompt, settings.max_prompt_chars)
    profile = clients.key_profiles().of(owner)
    # A key's in-flight requests are bounded (by tier), so one key cannot
    # occupy the function's reserved concurrency.
    slots = InFlightSlots(clients.dynamodb_table(settings.budget_table), route="enhance", lease_seconds=LEASE_SECONDS)
    with slots.hold(owner, slots=dict(settings.enhance_concurrency)[profile.tier]):
        result = enhance_prompt(
            request.prompt,
            request.kind,
            owner=owner,
            settings=settings,
            provider=enhance_provider(settings),
            calls=clients.call_ledger(),
            profile=profile,
            now=utc_now(),
            parameters=request.parameters.given() if request.parameters else None,
            guardrail_check=lambda guardrail: GuardrailCheck(clients.bedrock_runtime_sync(), guardrail),
        )
    metrics.add_metric(name="PromptsEnhanced", unit=MetricUnit.Count, value=1)
    record_model_usage({**result, "status": "SUCCEEDED"})
    if result["costUsd"]:
        metrics.add_metric(name="SpendUsd", unit=MetricUnit.NoUnit, value=float(result["costUsd"]))
    logger.info("prompt enhanced", extra={"model": result["model"], "outputTokens": result["outputTokens"]})
    return result


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return resolve(app, event, context)


loaded()  # init's objects frozen, the collector on again (shared.gc_init)
