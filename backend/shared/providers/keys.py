"""The API keys of the providers beyond Bedrock, read from Secrets Manager.

One secret per provider (template parameters OpenAiApiKeySecret,
StabilityApiKeySecret, GoogleApiKeySecret); the functions know only their
ARNs. A key is read through Powertools Parameters when a call first needs it
and cached for KEY_MAX_AGE_SECONDS, so a rotated key is picked up within
minutes and a warm function reads it once per interval. A read that fails, or
finds the secret empty, is not kept: the next call reads it again.

The secret's value is the key itself, or a JSON object with the key under
"apiKey" (the shape some secret-management pipelines write). A provider with
no secret, an empty secret (created by the stack, not filled in yet), or a
secret this function may not read fails the call with PROVIDER_NOT_CONFIGURED,
never as an internal error; the key never appears in a log or a message."""

from __future__ import annotations

import json
from typing import Any

from shared.providers.base import ModelCallError
from shared.registry import provider_defaults

KEY_MAX_AGE_SECONDS = 300
# Secrets Manager errors a later read may get past.
_PASSING = frozenset({"ThrottlingException", "InternalServiceError", "ServiceUnavailable"})


class ProviderNotConfigured(ModelCallError):
    def __init__(self, provider: str, why: str) -> None:
        name = provider_defaults().get(provider, {}).get("name", provider)
        super().__init__(
            "PROVIDER_NOT_CONFIGURED",
            f"{name} has no API key in this deployment ({why}); an operator puts it in the provider's secret",
            retryable=False,
            public=True,
        )


class ProviderKeys:
    """Each provider's key, by the secret the deployment names for it."""

    def __init__(self, secrets: dict[str, str], *, client: Any | None = None, max_age: int = KEY_MAX_AGE_SECONDS) -> None:
        self._secrets = secrets  # provider -> secret ARN
        self._client = client
        self._max_age = max_age
        self._reader: Any = None
        self._empty: set[str] = set()  # secrets last read empty

    def key(self, provider: str) -> str:
        arn = self._secrets.get(provider)
        if not arn:
            raise ProviderNotConfigured(provider, "no secret is configured for it")
        value = self._read(provider, arn)
        key = _key_of(value)
        if not key:
            # Not kept: the next call reads the secret again, so a key put in
            # after the stack created it empty works at once, not after the cache.
            self._empty.add(arn)
            raise ProviderNotConfigured(provider, "its secret is empty")
        self._empty.discard(arn)
        return key

    def _read(self, provider: str, arn: str) -> str:
        # Powertools Parameters is imported on first use: only the calls to
        # an external provider pay for it.
        from aws_lambda_powertools.utilities.parameters import SecretsProvider
        from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

        if self._reader is None:
            self._reader = SecretsProvider(boto3_client=self._client) if self._client else SecretsProvider()
        try:
            value = self._reader.get(arn, max_age=self._max_age, force_fetch=arn in self._empty)
        except GetParameterError as exc:
            code = _code_of(exc.__context__)
            if code in _PASSING:
                raise ModelCallError(code, "reading the provider's key was throttled", retryable=True) from None
            if code == "ResourceNotFoundException":  # an empty secret has no value (AWSCURRENT) yet
                raise ProviderNotConfigured(provider, "its secret has no value yet") from None
            raise ProviderNotConfigured(provider, f"its secret cannot be read: {code or 'error'}") from None
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        return str(value or "")


def _code_of(exc: BaseException | None) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return type(exc).__name__ if exc else ""


def _key_of(value: str) -> str:
    value = value.strip()
    if value.startswith("{"):
        try:
            data = json.loads(value)
        except ValueError:
            return ""
        return str(data.get("apiKey", "")).strip() if isinstance(data, dict) else ""
    return value
