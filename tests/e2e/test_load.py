"""A bounded load test on loopback against the local stack's API: a fixed
number of requests at a fixed concurrency, stopping by itself
(GENSTACK_LOAD_REQUESTS, larger in `make soak`). No request gets a 5xx; the
usage plan's throttling answers 429 THROTTLED (the free tier's 1 request/s is
far below what the clients send) and a spent budget 429
MONTHLY_BUDGET_EXCEEDED, told apart; every accepted job finishes, and is
counted by its final status. The rates measured
are the emulator's (one process on the test machine), not AWS's."""

from __future__ import annotations

import os
import statistics
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import pytest

from tests.e2e.conftest import TERMINAL, Deployment, call, new_key

pytestmark = pytest.mark.e2e
REQUESTS = int(os.environ.get("GENSTACK_LOAD_REQUESTS", "120"))
CONCURRENCY = 6


def refusal_code(body) -> str:
    """The error code of a refusal: the functions' (and on AWS the gateway's,
    through its response templates) error.code; the emulator's own gateway
    answers {"message"} only, so those read THROTTLED when they say so."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return body["error"].get("code", "?")
    message = str(body.get("message", "")) if isinstance(body, dict) else str(body)
    return "THROTTLED" if "too many requests" in message.lower() else f"gateway: {message[:40]}"


def fire(deployment: Deployment, key: str, n: int) -> tuple[Counter, list[str], float]:
    """n submissions at CONCURRENCY; the answers counted by status and, for
    refusals, by error code (a throttle's 429 is THROTTLED, a budget's
    MONTHLY_BUDGET_EXCEEDED)."""
    body = {"prompt": "one sentence about load tests", "models": ["amazon.nova-micro-v1:0"]}

    def one(_: int):
        reply = call(deployment, "POST", "/generate", body, key=key)
        if reply.status == 202:
            return "202", reply.body["jobId"]
        return f"{reply.status} {refusal_code(reply.body)}", None

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        replies = list(pool.map(one, range(n)))
    elapsed = time.monotonic() - started
    return Counter(answer for answer, _ in replies), [job for _, job in replies if job], elapsed


def test_load_is_served_or_refused_never_failed_and_every_accepted_job_ends(deployment):
    standard, free = new_key(deployment, "standard"), new_key(deployment, "free")
    # A standard key whose budget is below one job's worst case ($0.00029 here): every
    # submission is refused up front, by the budget, not the throttle. (Jobs admitted
    # together against a budget that covers only some of them are stopped call by call
    # by the worker: tests/unit/test_worker.py.)
    thrifty = new_key(deployment, "standard", budget_usd=Decimal("0.0002"))
    standard_answers, accepted, elapsed = fire(deployment, standard, REQUESTS)
    free_answers, free_accepted, _ = fire(deployment, free, max(20, REQUESTS // 4))
    thrifty_answers, thrifty_accepted, _ = fire(deployment, thrifty, 20)
    owners = {
        **dict.fromkeys(accepted, standard),
        **dict.fromkeys(free_accepted, free),
        **dict.fromkeys(thrifty_accepted, thrifty),
    }

    deadline = time.monotonic() + 240
    pending, latencies, outcomes = set(owners), [], Counter()
    submitted = time.monotonic()
    while pending and time.monotonic() < deadline:
        for job_id in list(pending):
            reply = call(deployment, "GET", f"/status/{job_id}", key=owners[job_id])
            if reply.status == 200 and reply.body["status"] in TERMINAL:
                pending.discard(job_id)
                outcomes[reply.body["status"]] += 1
                latencies.append(time.monotonic() - submitted)
        time.sleep(0.5)

    print(
        f"\nload: {REQUESTS} requests at concurrency {CONCURRENCY} on a standard key in {elapsed:.1f} s "
        f"({REQUESTS / elapsed:.1f} requests/s, emulator-bound): {dict(standard_answers)}; free key: {dict(free_answers)}; "
        f"key with a $0.0002 budget: {dict(thrifty_answers)}; {len(owners)} jobs accepted, finished {dict(outcomes)}, "
        f"{len(pending)} unfinished; submit-to-terminal p50 {statistics.median(latencies or [0]):.1f} s"
    )
    everything = standard_answers + free_answers + thrifty_answers
    assert not [a for a in everything if a.startswith("5")]
    # A throttle's 429 and a budget's 429 are told apart by their code.
    assert set(free_answers) <= {"202", "429 THROTTLED"}
    assert free_answers["429 THROTTLED"] > 0, "the free tier's throttle answers 429"
    assert set(thrifty_answers) <= {"429 MONTHLY_BUDGET_EXCEEDED", "429 THROTTLED"}
    assert thrifty_answers["429 MONTHLY_BUDGET_EXCEEDED"] > 0, "the key's budget answers 429"
    assert set(standard_answers) <= {"202", "429 THROTTLED"}
    assert standard_answers["202"] > 0
    assert not pending, f"{len(pending)} accepted jobs did not finish"
    # Jobs the budget let in complete; a FAILED job here would be a bug, not load.
    assert set(outcomes) == {"COMPLETED"}, outcomes
