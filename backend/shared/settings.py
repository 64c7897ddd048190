"""Deployment settings, read from the function's environment once, lazily."""

from __future__ import annotations

import os
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache


@dataclass(frozen=True)
class Settings:
    environment: str
    jobs_table: str
    jobs_owner_index: str
    cost_table: str
    idempotency_table: str
    budget_table: str
    templates_table: str
    max_job_budget_usd: Decimal
    monthly_key_budget_usd: Decimal  # the standard tier's
    cost_retention_days: int
    outputs_bucket: str
    job_queue_url: str
    enabled_models: tuple[str, ...]
    enhance_model_id: str
    max_prompt_chars: int
    max_models_per_job: int
    inline_text_chars: int
    model_max_tokens: int
    model_call_timeout_seconds: int
    model_call_attempts: int
    job_lease_seconds: int
    output_link_seconds: int = 3600
    # How long a new job waits for its queue message to be confirmed before the
    # sweeper sends one (shared.jobs); the first backoff of a model call's retries.
    queue_grace_seconds: int = 600
    model_retry_base_seconds: float = 1.0
    free_key_monthly_budget_usd: Decimal = Decimal("1.00")
    # In-flight /enhance requests one key may have, by tier.
    enhance_concurrency: tuple[tuple[str, int], ...] = (("standard", 4), ("free", 1))
    # The /v1 (OpenAI-compatible) API's integration timeout, which its
    # function's Timeout equals (template parameter OpenAiApiTimeoutSeconds).
    sync_timeout_seconds: int = 29
    job_retention_days: int = 0
    cors_allowed_origins: tuple[str, ...] = ()
    # The Bedrock guardrail on every model call (template parameters
    # GuardrailId/GuardrailVersion, or the one CreateGuardrail makes); "" for none.
    guardrail_id: str = ""
    guardrail_version: str = ""
    # The Secrets Manager secret holding each external provider's API key
    # (provider, secret ARN), and the providers' API base URLs where the
    # deployment overrides the registry's (a proxy; the tests' fake server).
    provider_secrets: tuple[tuple[str, str], ...] = ()
    provider_base_urls: tuple[tuple[str, str], ...] = ()
    # The chart renderer function the worker invokes, with its alias ("" in
    # functions that draw no chart).
    chart_renderer_function: str = ""

    @classmethod
    def from_env(cls, env: os._Environ[str] | dict[str, str] = os.environ) -> Settings:
        models = tuple(m.strip() for m in env.get("ENABLED_MODELS", "").split(",") if m.strip())
        return cls(
            environment=env.get("GENSTACK_ENV", "dev"),
            jobs_table=env.get("JOBS_TABLE", ""),
            jobs_owner_index=env.get("JOBS_OWNER_INDEX", "owner-createdAt-index"),
            cost_table=env.get("COST_TABLE", ""),
            idempotency_table=env.get("IDEMPOTENCY_TABLE", ""),
            budget_table=env.get("BUDGET_TABLE", ""),
            templates_table=env.get("TEMPLATES_TABLE", ""),
            # A job's budget defaults to, and may not exceed, the deployment maximum.
            max_job_budget_usd=Decimal(env.get("MAX_JOB_BUDGET_USD", "1.00")),
            monthly_key_budget_usd=Decimal(env.get("MONTHLY_KEY_BUDGET_USD", "50.00")),
            free_key_monthly_budget_usd=Decimal(env.get("FREE_KEY_MONTHLY_BUDGET_USD", "1.00")),
            cost_retention_days=int(env.get("COST_RETENTION_DAYS", "400")),
            outputs_bucket=env.get("OUTPUTS_BUCKET", ""),
            job_queue_url=env.get("JOB_QUEUE_URL", ""),
            enabled_models=models,
            enhance_model_id=env.get("ENHANCE_MODEL_ID", ""),
            max_prompt_chars=int(env.get("MAX_PROMPT_CHARS", "20000")),
            max_models_per_job=int(env.get("MAX_MODELS_PER_JOB", "8")),
            # Text results up to this size are also returned inline by /status.
            inline_text_chars=int(env.get("INLINE_TEXT_CHARS", "8000")),
            model_max_tokens=int(env.get("MODEL_MAX_TOKENS", "2048")),
            # Per attempt; with the attempts and backoff a call stays well within
            # the worker's 900 s timeout (4 x 120 s + at most 35 s of waits).
            model_call_timeout_seconds=int(env.get("MODEL_CALL_TIMEOUT_SECONDS", "120")),
            model_call_attempts=int(env.get("MODEL_CALL_ATTEMPTS", "4")),
            # A worker owns a RUNNING job this long; past it, a redelivered
            # message may take the job over (the worker is then surely dead:
            # the lease outlives the function timeout).
            job_lease_seconds=int(env.get("JOB_LEASE_SECONDS", "960")),
            # How long a result URL works (template parameter OutputLinkSeconds).
            output_link_seconds=int(env.get("OUTPUT_LINK_SECONDS", "3600")),
            queue_grace_seconds=int(env.get("QUEUE_GRACE_SECONDS", "600")),
            model_retry_base_seconds=float(env.get("MODEL_RETRY_BASE_SECONDS", "1.0")),
            # Jobs (and their outputs) end this many days after creation; 0 keeps them.
            job_retention_days=int(env.get("JOB_RETENTION_DAYS", "0")),
            # Browser origins that may call the API (template parameter CorsAllowedOrigins).
            cors_allowed_origins=tuple(o.strip() for o in env.get("CORS_ALLOWED_ORIGINS", "").split(",") if o.strip()),
            sync_timeout_seconds=int(env.get("SYNC_TIMEOUT_SECONDS", "29")),
            guardrail_id=env.get("GUARDRAIL_ID", ""),
            guardrail_version=env.get("GUARDRAIL_VERSION", ""),
            provider_secrets=_pairs(env.get("PROVIDER_SECRETS", "")),
            provider_base_urls=_pairs(env.get("PROVIDER_BASE_URLS", "")),
            chart_renderer_function=env.get("CHART_RENDERER_FUNCTION", ""),
        )

    def tier_budgets(self) -> dict[str, Decimal]:
        return {"standard": self.monthly_key_budget_usd, "free": self.free_key_monthly_budget_usd}

    def secret_of(self, provider: str) -> str:
        """The ARN of the secret with the provider's key; "" if it has none."""
        return dict(self.provider_secrets).get(provider, "")


def _pairs(raw: str) -> tuple[tuple[str, str], ...]:
    """ "a=x,b=y" as ((a, x), (b, y)); empty pieces (a provider left out) are skipped."""
    pairs = []
    for piece in raw.split(","):
        name, sep, value = piece.strip().partition("=")
        if sep and name and value:
            pairs.append((name.strip(), value.strip()))
    return tuple(pairs)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings.from_env()
