"""A bounded load test on loopback against the local stack's API: a fixed
number of requests at a fixed concurrency, stopping by itself
(GENSTACK_LOAD_REQUESTS, larger in `make soak`). No request gets a 5xx, the
usage plan's throttling answers 429 (the free tier's 1 request/s is far below
what the clients send), and every accepted job finishes. The rates measured
are the emulator's (one process on the test machine), not AWS's."""

from __future__ import annotations

import os
import statistics
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.e2e.conftest import TERMINAL, Deployment, call, new_key

pytestmark = pytest.mark.e2e
REQUESTS = int(os.environ.get("GENSTACK_LOAD_REQUESTS", "120"))
CONCURRENCY = 6


def fire(deployment: Deployment, key: str, n: int) -> tuple[Counter, list[str], float]:
    body = {"prompt": "one sentence about load tests", "models": ["amazon.nova-micro-v1:0"]}

    def one(_: int):
        reply = call(deployment, "POST", "/generate", body, key=key)
        return reply.status, (reply.body or {}).get("jobId") if reply.status == 202 else None

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=CONCURRENCY) as pool:
        replies = list(pool.map(one, range(n)))
    elapsed = time.monotonic() - started
    return Counter(status for status, _ in replies), [job for _, job in replies if job], elapsed


def test_load_is_served_or_throttled_never_failed_and_every_accepted_job_ends(deployment):
    standard, free = new_key(deployment, "standard"), new_key(deployment, "free")
    standard_statuses, accepted, elapsed = fire(deployment, standard, REQUESTS)
    free_statuses, free_accepted, _ = fire(deployment, free, max(20, REQUESTS // 4))
    accepted += free_accepted

    deadline = time.monotonic() + 240
    pending, latencies = set(accepted), []
    submitted = time.monotonic()
    while pending and time.monotonic() < deadline:
        for job_id in list(pending):
            reply = call(deployment, "GET", f"/status/{job_id}", key=standard if job_id not in free_accepted else free)
            if reply.status == 200 and reply.body["status"] in TERMINAL:
                pending.discard(job_id)
                latencies.append(time.monotonic() - submitted)
        time.sleep(0.5)

    print(
        f"\nload: {REQUESTS} requests at concurrency {CONCURRENCY} on the standard key in {elapsed:.1f} s "
        f"({REQUESTS / elapsed:.1f} requests/s, emulator-bound): {dict(standard_statuses)}; free key: {dict(free_statuses)}; "
        f"{len(accepted)} jobs accepted, {len(accepted) - len(pending)} finished"
    )
    assert not [s for s in (standard_statuses + free_statuses) if s >= 500]
    assert set(standard_statuses) <= {202, 429}
    assert set(free_statuses) <= {202, 429}
    assert free_statuses[429] > 0, "the free tier's throttle answers 429"
    assert standard_statuses[202] > 0
    assert not pending, f"{len(pending)} accepted jobs did not finish"
    assert statistics.median(latencies) < 240
