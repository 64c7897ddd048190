"""A worker process for the kill test: the real SQS handler (worker.app),
with real boto3 clients against the test's moto server and fake Bedrock,
reading one delivery per line on stdin and answering one line on stdout.

    {"event": <SQS event>, "deadline": <epoch s>, "fault": {"stage": S, "mode": "kill"|"stall"} | null}

At its stage, a fault either SIGKILLs this process (nothing after it runs: no
finally, no atexit, every thread gone, as when Lambda's host dies or it runs
out of memory), or stalls it until the test's harness kills it at the
delivery's deadline (a real timeout, as Lambda's). The stages are points of
the real code, hooked by wrapping the methods that mark them:

  claimed     the job is RUNNING under this run's lease
  reserved    a call's record and its reservation are written
  calling     a model request is about to be sent
  answered    the model's answer arrived, not yet recorded
  settled     the call's record and the ledger say what it cost
  uploading   an output is about to be stored
  uploaded    an output is stored, its result not yet recorded
  recorded    a model's result is on the job
  finishing   about to move the job to its final status
  finished    the job is final, the message not yet acknowledged
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from typing import Any

STAGES = (
    "claimed",
    "reserved",
    "calling",
    "answered",
    "settled",
    "uploading",
    "uploaded",
    "recorded",
    "finishing",
    "finished",
)
_fault: dict[str, Any] | None = None
_lock = threading.Lock()


def stage(name: str) -> None:
    with _lock:
        fault = _fault
    if fault is None or fault["stage"] != name:
        return
    if fault["mode"] == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(3600)  # stalled until the harness's deadline kills it


def after(cls: Any, method: str, name: str, when: Any = bool) -> None:
    original = getattr(cls, method)

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        if when(result):
            stage(name)
        return result

    setattr(cls, method, wrapped)


def before(cls: Any, method: str, name: str) -> None:
    original = getattr(cls, method)

    def wrapped(*args: Any, **kwargs: Any) -> Any:
        stage(name)
        return original(*args, **kwargs)

    setattr(cls, method, wrapped)


def install_hooks() -> None:
    from shared.costs import CallLedger
    from shared.jobs import JobRepository
    from shared.providers import ConverseTextProvider, external
    from worker.service import JobRunner

    after(JobRepository, "claim", "claimed", when=lambda job: job is not None)
    after(CallLedger, "reserve", "reserved")
    before(ConverseTextProvider, "generate", "calling")
    after(ConverseTextProvider, "generate", "answered", when=lambda _: True)
    # The external providers' calls (OpenAI here), at the same stages.
    before(external._External, "generate", "calling")
    after(external._External, "generate", "answered", when=lambda _: True)
    after(CallLedger, "settle", "settled")
    before(JobRunner, "_store", "uploading")
    after(JobRunner, "_store", "uploaded", when=lambda _: True)
    after(JobRepository, "record_result", "recorded")
    before(JobRepository, "finish", "finishing")
    after(JobRepository, "finish", "finished")


class Context:
    """What the handler reads of Lambda's context: its name and its deadline."""

    function_name = "genstack-kill-test-worker"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:genstack-kill-test-worker"

    def __init__(self, deadline: float, request_id: str) -> None:
        self.deadline = deadline
        self.aws_request_id = request_id

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.deadline - time.time()) * 1000))


def main() -> int:
    global _fault
    # stdout is the harness's channel: Powertools' logs and metrics go to stderr.
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    install_hooks()
    from worker import app

    print(json.dumps({"ready": os.getpid()}), file=protocol, flush=True)
    for line in sys.stdin:
        delivery = json.loads(line)
        with _lock:
            _fault = delivery.get("fault")
        context = Context(delivery["deadline"], delivery["event"]["Records"][0]["messageId"])
        try:
            response = app.handler(delivery["event"], context)
        except Exception as exc:
            response = {"error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps({"response": response}), file=protocol, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
