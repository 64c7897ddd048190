"""HTTPS calls to the model providers beyond Bedrock, through urllib3.

urllib3 is botocore's own HTTP library: the Lambda runtime and every package
that carries boto3 already have it, and boto3 has imported it by the time a
handler runs, so it adds nothing to a package or to a cold start (make bench;
docs/decisions.md has the figures against httpx and requests). One pool per
execution environment keeps TLS connections to a provider open between calls.

Each request has a connect timeout and a read timeout (the worker's per-call
model timeout, /enhance's within API Gateway's), and no retries of its own:
the caller retries with jittered backoff, as for Bedrock (worker.service).
Failures come back as ModelCallError with the same codes and meaning as a
Bedrock call's (throttling and 5xx retryable; a read timeout of unknown
outcome, as it may have been billed). An answer is read up to a size limit,
so a broken or hostile endpoint cannot exhaust the function's memory.

Only HTTPS leaves the function: a plain-HTTP base URL is refused unless it
names this host (the local stack's tests run a fake provider on localhost).
Nothing here logs a request: headers carry the key, bodies the prompt."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import urllib3
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)

from shared.providers.base import ModelCallError

MAX_RESPONSE_BYTES = 64 * 1024 * 1024  # four 2048x2048 PNGs in base64 fit; a runaway answer does not
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError:
            return None


def check_base_url(url: str) -> str:
    """The base URL without its trailing slash, if it is HTTPS (or plain HTTP
    to this host); ValueError otherwise, so a misconfiguration fails loudly."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return url.rstrip("/")
    if parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS:
        return url.rstrip("/")
    raise ValueError(f"a provider base URL must be https:// (got {parts.scheme or 'no'} scheme for {parts.hostname})")


class Http:
    """POSTs to provider APIs: JSON or multipart bodies, bounded in time and size."""

    def __init__(
        self,
        *,
        connect_timeout: float,
        read_timeout: float,
        pool: urllib3.PoolManager | None = None,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
    ) -> None:
        self._timeout = urllib3.Timeout(connect=connect_timeout, read=read_timeout)
        # Certificates are verified (urllib3 2 does by default, with the system's CAs).
        self._pool = pool or urllib3.PoolManager(num_pools=4, maxsize=16, retries=False)
        self._max = max_response_bytes

    def post(
        self,
        url: str,
        *,
        headers: dict[str, str],
        json_body: Any = None,
        fields: dict[str, str] | None = None,
    ) -> HttpResponse:
        """One request. `json_body` is sent as JSON, `fields` as multipart/form-data."""
        try:
            check_base_url(url)
        except ValueError as exc:  # a deployment's mistake: that model fails, with the reason
            raise ModelCallError("PROVIDER_NOT_CONFIGURED", str(exc), retryable=False, public=True) from exc
        if fields is not None:
            body, content_type = urllib3.encode_multipart_formdata(fields)
        else:
            body, content_type = json.dumps(json_body).encode("utf-8"), "application/json"
        try:
            response = self._pool.request(
                "POST",
                url,
                body=body,
                headers={**headers, "content-type": content_type},
                timeout=self._timeout,
                retries=False,
                redirect=False,
                preload_content=False,
            )
            try:
                data = self._read(response)
            finally:
                response.release_conn()
        except NewConnectionError as exc:  # refused, or no route: nothing was sent (a subclass of ConnectTimeoutError: first)
            raise ModelCallError("EndpointConnectionError", _reason(exc), retryable=True) from exc
        except ConnectTimeoutError as exc:  # nothing was sent
            raise ModelCallError("ConnectTimeoutError", "connecting to the provider timed out", retryable=True) from exc
        except ReadTimeoutError as exc:  # sent: the provider may be working on it, and bill it
            raise ModelCallError(
                "ReadTimeoutError", "the provider did not answer in time", retryable=True, outcome_unknown=True
            ) from exc
        except ProtocolError as exc:  # the connection broke after the request went out
            raise ModelCallError("ConnectionClosedError", _reason(exc), retryable=True, outcome_unknown=True) from exc
        except HTTPError as exc:  # TLS and the rest of urllib3's transport failures
            raise ModelCallError("EndpointConnectionError", _reason(exc), retryable=True) from exc
        return HttpResponse(response.status, {k.lower(): v for k, v in response.headers.items()}, data)

    def _read(self, response: Any) -> bytes:
        chunks, size = [], 0
        for chunk in response.stream(1024 * 1024):
            size += len(chunk)
            if size > self._max:
                raise ModelCallError(
                    "InvalidResponse",
                    f"the provider's answer is larger than {self._max} bytes",
                    retryable=False,
                    public=True,
                    outcome_unknown=True,  # it answered: the call may be billed
                )
            chunks.append(chunk)
        return b"".join(chunks)


def _reason(exc: Exception) -> str:
    # urllib3's messages name the host and port, never headers or bodies.
    return str(exc)[:300]
