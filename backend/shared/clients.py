"""boto3 clients and resources, created once per execution environment on first
use. Domain code takes them as arguments; these are only the defaults."""

from __future__ import annotations

import os
from functools import cache, lru_cache
from typing import Any

import boto3
from botocore.config import Config

from shared.budgets import KeyProfiles
from shared.costs import CallLedger
from shared.settings import get_settings

# Every AWS call's retry budget ends before its function's timeout, so that a
# slow dependency makes a call fail (and the code handle it: a job whose queue
# send fails is marked FAILED and answered 503) rather than the function being
# killed in the middle. The worst case of one call is its attempts times its
# connect and read timeouts, plus the backoffs between attempts (standard
# retry mode: at most 2**(n-1) s before attempt n+1). tests/unit/
# test_sdk_timeouts.py checks each function's profile against its Timeout.
SDK_PROFILES = {
    # API functions (10 s; /enhance 29 s): 2 x (1 + 2.5) + 1 = 8 s.
    "api": Config(retries={"total_max_attempts": 2, "mode": "standard"}, connect_timeout=1, read_timeout=2.5),
    # The worker and the sweeper (900 s, 300 s): 4 x (3 + 10) + 1 + 2 + 4 = 59 s.
    "background": Config(retries={"total_max_attempts": 4, "mode": "standard"}, connect_timeout=3, read_timeout=10),
}
# /enhance's one Bedrock call, within API Gateway's 29 s: no retry, 2 + 20 = 22 s.
BEDROCK_SYNC_CONFIG = Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=2, read_timeout=20)
BEDROCK_WORKER_CONNECT_SECONDS = 5
# The worker's invocations of the chart renderer function: it answers within
# its Timeout (template.yaml, CHART_RENDERER_TIMEOUT_SECONDS), so the read
# waits that long and a little more. Two attempts: botocore retries a throttled
# or unreachable invoke; a render that failed is an answer, never retried.
CHART_RENDERER_TIMEOUT_SECONDS = 30
CHART_RENDERER_CONFIG = Config(
    retries={"total_max_attempts": 2, "mode": "standard"}, connect_timeout=3, read_timeout=CHART_RENDERER_TIMEOUT_SECONDS + 5
)


def sdk_config() -> Config:
    """The function's profile (environment SDK_TIMEOUT_PROFILE, set per function in template.yaml)."""
    return SDK_PROFILES[os.environ.get("SDK_TIMEOUT_PROFILE", "api")]


def worst_case_seconds(config: Config) -> float:
    """How long one call with this configuration can take, all retries included."""
    attempts = config.retries.get("total_max_attempts", 1)
    backoffs = sum(min(20, 2 ** (n - 1)) for n in range(1, attempts))
    return attempts * (config.connect_timeout + config.read_timeout) + backoffs


@cache
def dynamodb_table(name: str) -> Any:
    return boto3.resource("dynamodb", config=sdk_config()).Table(name)


@lru_cache(maxsize=1)
def sqs() -> Any:
    return boto3.client("sqs", config=sdk_config())


@lru_cache(maxsize=1)
def s3() -> Any:
    """Also the signer of the output links: SigV4, which every region takes."""
    return boto3.client("s3", config=sdk_config().merge(Config(signature_version="s3v4")))


@lru_cache(maxsize=1)
def bedrock_runtime() -> Any:
    """For the worker: the per-call timeout of the settings, and no retries of
    botocore's own: the worker retries with jittered backoff (worker.service)."""
    timeout = get_settings().model_call_timeout_seconds
    return boto3.client(
        "bedrock-runtime",
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=BEDROCK_WORKER_CONNECT_SECONDS, read_timeout=timeout),
    )


@lru_cache(maxsize=1)
def bedrock_runtime_sync() -> Any:
    """For /enhance: must answer within API Gateway's 29 s integration timeout."""
    return boto3.client("bedrock-runtime", config=BEDROCK_SYNC_CONFIG)


@cache
def bedrock_runtime_within(read_timeout: int) -> Any:
    """For the /v1 routes: one attempt, answered within their API's
    integration timeout (OpenAiApiTimeoutSeconds) less the time the call's
    metering takes (openai_api.service.SYNC_MARGIN_SECONDS)."""
    return boto3.client(
        "bedrock-runtime",
        config=Config(
            retries={"total_max_attempts": 1, "mode": "standard"},
            connect_timeout=BEDROCK_SYNC_CONFIG.connect_timeout,
            read_timeout=read_timeout,
        ),
    )


@lru_cache(maxsize=1)
def lambda_client() -> Any:
    """For the worker's chart renders (shared.providers.chart.LambdaRenderer)."""
    return boto3.client("lambda", config=CHART_RENDERER_CONFIG)


@lru_cache(maxsize=1)
def secretsmanager() -> Any:
    return boto3.client("secretsmanager", config=sdk_config())


@lru_cache(maxsize=1)
def provider_keys() -> Any:
    """The external providers' keys (shared.providers.keys), cached per execution environment."""
    from shared.providers.keys import ProviderKeys

    return ProviderKeys(dict(get_settings().provider_secrets), client=secretsmanager())


def provider_base_urls() -> dict[str, str]:
    """Each external provider's API base URL: the deployment's override, else the registry's."""
    from shared.registry import provider_defaults

    # Checked per request (shared.providers.http: HTTPS only): a bad one fails
    # that provider's models with the reason, not every job of the worker.
    overrides = dict(get_settings().provider_base_urls)
    return {name: overrides.get(name, p["baseUrl"]) for name, p in provider_defaults().items()}


@cache
def external_providers(sync: bool = False, read_timeout: float | None = None) -> dict[str, Any]:
    """The external providers by the registry's "api": for the worker, with the
    per-call model timeout (the worker retries); for /enhance (`sync`), within
    API Gateway's 29 s as its Bedrock calls are; for the /v1 routes, with the
    `read_timeout` of their own timeout."""
    from shared.providers.external import external_providers as build
    from shared.providers.http import Http

    if read_timeout is not None:
        http = Http(connect_timeout=BEDROCK_SYNC_CONFIG.connect_timeout, read_timeout=read_timeout)
    elif sync:
        http = Http(connect_timeout=BEDROCK_SYNC_CONFIG.connect_timeout, read_timeout=BEDROCK_SYNC_CONFIG.read_timeout)
    else:
        timeout = get_settings().model_call_timeout_seconds
        http = Http(connect_timeout=BEDROCK_WORKER_CONNECT_SECONDS, read_timeout=timeout)
    return build(http, provider_keys(), provider_base_urls())


def call_ledger() -> CallLedger:
    """The call records and the monthly ledger of this deployment."""
    settings = get_settings()
    return CallLedger(
        dynamodb_table(settings.cost_table), dynamodb_table(settings.budget_table), retention_days=settings.cost_retention_days
    )


@lru_cache(maxsize=1)
def key_profiles() -> KeyProfiles:
    """Each key's tier and budget, cached in this execution environment (one per environment)."""
    settings = get_settings()
    return KeyProfiles(dynamodb_table(settings.budget_table), tier_budgets=settings.tier_budgets())
