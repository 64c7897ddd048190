"""boto3 clients and resources, created once per execution environment on first
use. Domain code takes them as arguments; these are only the defaults."""

from __future__ import annotations

from functools import cache, lru_cache
from typing import Any

import boto3
from aws_lambda_powertools import Tracer
from botocore.config import Config

from shared.settings import get_settings

# Standard retry mode backs off on throttling. API-side calls get short
# timeouts; /enhance must answer within API Gateway's 29 s.
_AWS_CONFIG = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=3, read_timeout=10)
_BEDROCK_SYNC_CONFIG = Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=3, read_timeout=25)


@cache
def dynamodb_table(name: str) -> Any:
    return boto3.resource("dynamodb", config=_AWS_CONFIG).Table(name)


@lru_cache(maxsize=1)
def sqs() -> Any:
    return boto3.client("sqs", config=_AWS_CONFIG)


@lru_cache(maxsize=1)
def s3() -> Any:
    """Also the signer of the output links: SigV4, which every region takes."""
    return boto3.client("s3", config=_AWS_CONFIG.merge(Config(signature_version="s3v4")))


@lru_cache(maxsize=1)
def bedrock_runtime() -> Any:
    """For the worker: the per-call timeout of the settings, and no retries of
    botocore's own: the worker retries with jittered backoff (worker.service)."""
    timeout = get_settings().model_call_timeout_seconds
    return boto3.client(
        "bedrock-runtime", config=Config(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=timeout)
    )


@lru_cache(maxsize=1)
def bedrock_runtime_sync() -> Any:
    """For /enhance: must answer within API Gateway's 29 s integration timeout."""
    return boto3.client("bedrock-runtime", config=_BEDROCK_SYNC_CONFIG)


def tracer() -> Tracer:
    """The function's X-Ray tracer: the handler and every call these clients
    make, as subsegments of the function's trace; off outside Lambda (tests,
    scripts). It patches boto3 only, not its default of every library the X-Ray
    SDK knows (sqlite3 among them): nothing else here makes a call worth a
    subsegment, and patching them costs each cold start about 10 ms (make bench)."""
    return Tracer(patch_modules=("boto3",))
