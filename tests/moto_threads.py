"""moto's DynamoDB is not thread-safe (two concurrent conditional updates of
one item can both pass, or crash inside moto), while DynamoDB applies each
request atomically. `atomic` wraps botocore's request method so that requests
run one at a time, restoring that guarantee without serialising the caller's
threads otherwise. Used by the fault test and the fan-out benchmark."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any


def atomic(make_api_call: Callable[..., Any]) -> Callable[..., Any]:
    if getattr(make_api_call, "atomic", False):
        return make_api_call
    lock = threading.Lock()

    def wrapper(self: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        with lock:
            return make_api_call(self, operation_name, api_params)

    wrapper.atomic = True  # type: ignore[attr-defined]
    return wrapper
