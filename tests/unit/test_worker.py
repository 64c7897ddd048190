"""The worker: claim, parallel model calls, outputs in S3, results recorded
once, terminal status; and the SQS handler around it."""

from __future__ import annotations

import json
import resource
import threading
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from boto3.dynamodb.conditions import Key

from shared.budgets import KeyProfiles
from shared.costs import Call, CallLedger, Usage, call_id
from shared.jobs import JobRepository
from shared.providers import ChartProvider, Generation, ModelCallError
from shared.settings import get_settings
from shared.usage import is_month
from tests.unit.conftest import load_event
from worker import app as worker_app
from worker.service import JobRunner, RetryPolicy, final_status, output_key

JOB = "3f1c2d9e-8a4b-4c1d-9e2f-5a6b7c8d9e0f"  # the job of events/worker-sqs.json
MICRO, LITE = "amazon.nova-micro-v1:0", "amazon.nova-lite-v1:0"


class FakeProvider:
    """Answers per model: text, or a ModelCallError (or a list of answers, one
    per successive call); counts calls; optional delay."""

    def __init__(self, replies: dict[str, str | ModelCallError | list], delay: float = 0.0) -> None:
        self.replies = replies
        self.delay = delay
        self.calls: list[str] = []
        self.metadata: list[dict | None] = []
        self.prompts: list[str] = []
        self._lock = threading.Lock()

    def generate(self, model, prompt, *, system=None, max_tokens, metadata=None, **_):
        with self._lock:
            self.calls.append(model)
            self.metadata.append(metadata)
            self.prompts.append(prompt)
        time.sleep(self.delay)
        reply = self.replies[model]
        if isinstance(reply, list):
            reply = reply.pop(0)
        if isinstance(reply, ModelCallError):
            raise reply
        return Generation(model, reply.encode(), "text/plain; charset=utf-8", "txt", 10, 20, 5, text=reply)


def put_job(aws, models=(MICRO, LITE), status="QUEUED", job_id=JOB, **extra):
    JobRepository(aws.jobs_table).create(
        {
            "kind": "text",
            "owner": "k1",
            **extra,
            "jobId": job_id,
            "status": status,
            "prompt": "Write a haiku",
            "models": list(models),
            "results": {},
            "costUsd": 0,
            "createdAt": "2026-11-22T12:00:00.000Z",
        }
    )


def ledger(aws, settings) -> CallLedger:
    return CallLedger(aws.cost_table, aws.ledger_table, retention_days=settings.cost_retention_days)


def runner(aws, settings, provider, now=None, sleeps=None, **extra):
    kwargs = {"now": now} if now else {}
    kwargs["sleep"] = (sleeps if sleeps is not None else []).append  # record backoff delays instead of waiting
    return JobRunner(
        jobs=JobRepository(aws.jobs_table),
        calls=ledger(aws, settings),
        profiles=KeyProfiles(aws.ledger_table, tier_budgets=settings.tier_budgets()),
        providers={"converse": provider, "invoke-image": provider},
        s3=aws.s3,
        settings=settings,
        **kwargs,
        **extra,
    )


def month_items(aws, owner="k1") -> list[dict]:
    return [i for i in aws.ledger_table.scan()["Items"] if i["owner"] == owner and is_month(i["period"])]


def month_spent(aws, owner="k1") -> float:
    return sum(float(i["spentUsd"]) for i in month_items(aws, owner))


def first(model: str, claim: int = 1, seq: int = 1) -> str:
    return call_id(model, claim, seq)


def cost_records(aws, job_id=JOB):
    return aws.cost_table.query(KeyConditionExpression=Key("jobId").eq(job_id))["Items"]


def test_all_models_succeed_completed_with_outputs_and_cost(aws, settings):
    put_job(aws)
    provider = FakeProvider({MICRO: "micro says", LITE: "lite says"})
    outcome = runner(aws, settings, provider).run(JOB)

    assert outcome.status == "COMPLETED"
    assert sorted(provider.calls) == sorted([MICRO, LITE])
    job = aws.jobs_table.get_item(Key={"jobId": JOB})["Item"]
    assert job["status"] == "COMPLETED"
    for model, text in ((MICRO, "micro says"), (LITE, "lite says")):
        result = job["results"][model]
        assert result["status"] == "SUCCEEDED"
        assert result["key"] == output_key(JOB, model, "txt") == f"jobs/{JOB}/outputs/{model.replace(':', '_')}.txt"
        obj = aws.s3.get_object(Bucket="outputs", Key=result["key"])
        assert obj["Body"].read().decode() == text
        assert obj["ContentType"].startswith("text/plain")
    # Nova Micro: 10 in x 0.000035/1k + 20 out x 0.00014/1k; Nova Lite: 10 x 0.00006/1k + 20 x 0.00024/1k
    assert float(job["costUsd"]) == pytest.approx(0.00000315 + 0.0000054)
    records = {r["callId"]: r for r in cost_records(aws)}
    assert set(records) == {first(MICRO), first(LITE)}
    micro = records[first(MICRO)]
    assert micro["costUsd"] == Decimal("0.00000315")
    assert (micro["status"], micro["inputTokens"], micro["outputTokens"], micro["owner"]) == ("BILLED", 10, 20, "k1")
    assert "openReservation" not in micro  # settled: off the sweeper's index
    assert micro["expiresAt"] > int(time.time()) + 399 * 86400  # TTL: the retention, 400 days
    assert "leaseUntil" not in job
    assert job["finishedAt"]


def test_one_model_failing_makes_the_job_partial_with_the_reason(aws, settings):
    put_job(aws)
    provider = FakeProvider({MICRO: "ok", LITE: ModelCallError("AccessDeniedException", "no access", retryable=False)})
    assert runner(aws, settings, provider).run(JOB).status == "PARTIAL"
    job = aws.jobs_table.get_item(Key={"jobId": JOB})["Item"]
    # Bedrock's own text (which can quote the role's ARN) stays in the log.
    assert job["results"][LITE]["error"] == {
        "code": "AccessDeniedException",
        "message": "this deployment may not call the model (model access is not enabled or not granted)",
    }
    assert "AccessDeniedException" in job["error"]
    statuses = {r["callId"]: (r["status"], r["costUsd"]) for r in cost_records(aws)}
    assert statuses == {
        first(MICRO): ("BILLED", Decimal("0.00000315")),
        first(LITE): ("RELEASED", 0),
    }  # a failed call costs nothing


def test_every_model_failing_fails_the_job(aws, settings):
    put_job(aws, models=(MICRO,))
    provider = FakeProvider({MICRO: ModelCallError("ThrottlingException", "slow down", retryable=True)})
    assert runner(aws, settings, provider).run(JOB).status == "FAILED"


def test_models_run_in_parallel(aws, settings):
    """Both calls are in flight at the same moment: each waits at a barrier
    for the other, which only a parallel fan-out can pass (sequential calls
    would break it after its timeout). The fan-out's speed is measured by
    make bench, not here."""
    put_job(aws)
    both_in_flight = threading.Barrier(2, timeout=10)

    class Meeting(FakeProvider):
        def generate(self, model, prompt, **kwargs):
            both_in_flight.wait()
            return super().generate(model, prompt, **kwargs)

    outcome = runner(aws, settings, Meeting({MICRO: "a", LITE: "b"})).run(JOB)
    assert outcome.status == "COMPLETED"


def test_a_redelivered_message_for_a_finished_job_does_no_work(aws, settings):
    put_job(aws)
    provider = FakeProvider({MICRO: "a", LITE: "b"})
    runner(aws, settings, provider).run(JOB)
    again = runner(aws, settings, provider).run(JOB)
    assert again.status == "COMPLETED"
    assert again.ran_models == 0
    assert len(provider.calls) == 2
    assert len(cost_records(aws)) == 2


def test_a_duplicate_while_running_does_no_work(aws, settings):
    put_job(aws)
    JobRepository(aws.jobs_table).claim(JOB, now=datetime.now(UTC), lease_seconds=900)
    provider = FakeProvider({MICRO: "a", LITE: "b"})
    assert runner(aws, settings, provider).run(JOB).status == "RUNNING"
    assert provider.calls == []


def dead_claim(aws, settings, *, answered: bool):
    """A first run of the job that died an hour ago: MICRO's result was
    recorded; LITE's call was reserved and then, if `answered`, paid for, but
    its result never recorded (the worker was killed during the upload), or,
    if not, left open (killed while Bedrock was generating)."""
    put_job(aws)
    repo, calls = JobRepository(aws.jobs_table), ledger(aws, settings)
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    claimed = repo.claim(JOB, now=long_ago, lease_seconds=900)  # its lease has long expired
    lease = int(claimed["leaseUntil"])
    for model, cost in ((MICRO, Decimal("0.001")), (LITE, Decimal("0.002"))):
        call = Call(JOB, first(model), "k1", model, "text", Decimal("0.01"), "2026-11", lease)
        assert calls.reserve(call, limit=Decimal(50), now=long_ago)
        if model == MICRO or answered:
            calls.settle(call, Usage(5, 5), cost, now=long_ago)
    repo.record_result(JOB, MICRO, {"model": MICRO, "status": "SUCCEEDED", "costUsd": 0.001}, now=long_ago)


@pytest.mark.parametrize("answered", [True, False], ids=["killed-after-the-answer", "killed-during-the-call"])
def test_a_takeover_calls_only_the_missing_models_and_every_paid_call_shows(aws, settings, answered):
    dead_claim(aws, settings, answered=answered)
    provider = FakeProvider({MICRO: "never", LITE: "b"})
    outcome = runner(aws, settings, provider).run(JOB)
    assert outcome.status == "COMPLETED"
    assert provider.calls == [LITE]
    records = {r["callId"]: r for r in cost_records(aws)}
    # The dead run's LITE call stays on the bill: billed if it was answered, else
    # charged at its reservation (UNCONFIRMED); the takeover's call is a new record.
    assert records[first(LITE)]["status"] == ("BILLED" if answered else "UNCONFIRMED")
    assert records[first(LITE, claim=2)]["status"] == "BILLED"
    assert provider.metadata == [{"genstackJobId": JOB, "genstackCallId": first(LITE, claim=2)}]
    dead_lite = Decimal("0.002") if answered else Decimal("0.01")
    expected = Decimal("0.001") + dead_lite + Decimal("0.0000054")
    job = aws.jobs_table.get_item(Key={"jobId": JOB})["Item"]
    assert job["costUsd"] == expected == sum(r["costUsd"] for r in records.values())
    # The dead run's calls stay in the month they were reserved in (2026-11).
    assert {i["period"] for i in month_items(aws)} >= {"2026-11"}
    assert sum(Decimal(str(i["spentUsd"])) for i in month_items(aws)) == expected
    assert all(Decimal(str(i["reservedUsd"])) == 0 for i in month_items(aws))


def test_unexpected_error_fails_the_job_instead_of_leaving_it_running(aws, settings, monkeypatch):
    put_job(aws)
    provider = FakeProvider({MICRO: "a", LITE: "b"})

    def broken_put(**_kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(aws.s3, "put_object", broken_put)
    assert runner(aws, settings, provider).run(JOB).status == "FAILED"
    job = aws.jobs_table.get_item(Key={"jobId": JOB})["Item"]
    assert job["status"] == "FAILED"
    assert job["error"] == "internal error: RuntimeError"


def test_unknown_job_is_dropped(aws, settings):
    assert runner(aws, settings, FakeProvider({})).run(JOB).status == "UNKNOWN_JOB"


def test_final_status_rules():
    ok, bad = {"status": "SUCCEEDED"}, {"status": "FAILED"}
    assert final_status({"a": ok, "b": ok}, ["a", "b"]).value == "COMPLETED"
    assert final_status({"a": ok, "b": bad}, ["a", "b"]).value == "PARTIAL"
    assert final_status({"a": bad}, ["a"]).value == "FAILED"


# ---------------------------------------------------------------- handler


@pytest.fixture
def stubbed_bedrock(stub_bedrock):
    return stub_bedrock("bedrock_runtime")


def test_handler_runs_the_sample_event_through_real_converse_shapes(aws, context, stubbed_bedrock):
    put_job(aws, models=(MICRO,))
    stubbed_bedrock.add_response(
        "converse",
        {
            "output": {"message": {"role": "assistant", "content": [{"text": "haiku"}]}},
            "stopReason": "end_turn",
            "usage": {"inputTokens": 5, "outputTokens": 3, "totalTokens": 8},
            "metrics": {"latencyMs": 40},
        },
        expected_params={
            "modelId": MICRO,
            "messages": [{"role": "user", "content": [{"text": "Write a haiku"}]}],
            "inferenceConfig": {"maxTokens": 2048, "temperature": 0.7, "topP": 0.9},
            # The call's id travels with it: Bedrock's invocation log can confirm a lost answer's bill.
            "requestMetadata": {"genstackJobId": JOB, "genstackCallId": first(MICRO)},
        },
    )
    response = worker_app.handler(load_event("worker-sqs.json"), context)
    assert response == {"batchItemFailures": []}
    assert aws.jobs_table.get_item(Key={"jobId": JOB})["Item"]["status"] == "COMPLETED"


@pytest.mark.parametrize("body", ["not json", json.dumps({"job": "x"}), json.dumps({"jobId": ""})])
def test_a_malformed_message_fails_the_invocation_so_it_is_retried_then_dead_lettered(aws, context, body):
    event = load_event("worker-sqs.json")
    event["Records"][0]["body"] = body
    # Powertools raises when every record of the batch failed: the message goes
    # back to the queue (and after maxReceiveCount to the DLQ), and the
    # invocation counts in the worker's Errors alarm.
    with pytest.raises(BatchProcessingError):
        worker_app.handler(event, context)


def test_one_bad_record_does_not_redeliver_the_good_one(aws, context, stubbed_bedrock):
    put_job(aws, models=(MICRO,))
    stubbed_bedrock.add_client_error("converse", service_error_code="AccessDeniedException", service_message="no access")
    event = load_event("worker-sqs.json")
    bad = json.loads(json.dumps(event["Records"][0]))
    bad["messageId"], bad["body"] = "bad-1", "not json"
    event["Records"].append(bad)
    response = worker_app.handler(event, context)
    assert response == {"batchItemFailures": [{"itemIdentifier": "bad-1"}]}
    job = aws.jobs_table.get_item(Key={"jobId": JOB})["Item"]
    assert job["status"] == "FAILED"
    assert job["results"][MICRO]["error"]["code"] == "AccessDeniedException"


def test_a_call_is_settled_once_even_if_settled_twice(aws, settings):
    calls, now = ledger(aws, settings), datetime.now(UTC)
    call = Call(JOB, first(MICRO), "k1", MICRO, "text", Decimal("0.5"), "2026-12", int(now.timestamp()) + 60)
    assert calls.reserve(call, limit=Decimal(50), now=now)
    with pytest.raises(RuntimeError, match="already reserved"):
        calls.reserve(call, limit=Decimal(50), now=now)
    assert calls.settle(call, Usage(1, 2), Decimal("0.1"), now=now)
    assert not calls.settle(call, Usage(1, 2), Decimal("0.2"), now=now)
    assert not calls.release(call, now=now)
    (record,) = cost_records(aws)
    assert (record["status"], record["costUsd"]) == ("BILLED", Decimal("0.1"))
    assert calls.month("k1", "2026-12") == (Decimal("0.1"), Decimal(0))


THROTTLED = ModelCallError("ThrottlingException", "slow down", retryable=True)


def test_a_throttled_call_is_retried_with_backoff_then_succeeds(aws, settings):
    put_job(aws, models=(MICRO,))
    provider = FakeProvider({MICRO: [THROTTLED, THROTTLED, "finally"]})
    sleeps: list[float] = []
    assert runner(aws, settings, provider, sleeps=sleeps).run(JOB).status == "COMPLETED"
    assert provider.calls == [MICRO] * 3
    assert len(sleeps) == 2
    assert 0 <= sleeps[0] <= 1.0
    assert 0 <= sleeps[1] <= 2.0


def test_retries_stop_after_the_attempts_and_the_reason_is_kept(aws, settings):
    put_job(aws, models=(MICRO,))
    provider = FakeProvider({MICRO: THROTTLED})
    assert runner(aws, settings, provider).run(JOB).status == "FAILED"
    assert len(provider.calls) == settings.model_call_attempts == 4
    result = aws.jobs_table.get_item(Key={"jobId": JOB})["Item"]["results"][MICRO]
    assert result["error"]["code"] == "ThrottlingException"


def test_a_permanent_error_is_not_retried(aws, settings):
    put_job(aws, models=(MICRO,))
    provider = FakeProvider({MICRO: ModelCallError("ValidationException", "bad", retryable=False)})
    runner(aws, settings, provider).run(JOB)
    assert provider.calls == [MICRO]


def test_backoff_is_exponential_capped_and_fully_jittered():
    policy = RetryPolicy(attempts=6, base_delay=1.0, max_delay=5.0)
    assert [policy.delay(a, rand=lambda: 1.0) for a in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert policy.delay(3, rand=lambda: 0.0) == 0.0


# ------------------------------------------------------------------ budgets
# Worst case of one call of "Write a haiku" (13 bytes, + 64 template tokens ->
# at most 77 input tokens) with 2048 output tokens:
MICRO_WORST = (77 * 0.000035 + 2048 * 0.00014) / 1000  # 0.000289415
LITE_WORST = (77 * 0.00006 + 2048 * 0.00024) / 1000  # 0.00049614


def test_the_job_budget_stops_calls_in_model_order(aws, settings):
    put_job(aws, budgetUsd=MICRO_WORST + LITE_WORST / 2)  # room for the first model only
    provider = FakeProvider({MICRO: "a", LITE: "b"})
    outcome = runner(aws, settings, provider).run(JOB)
    assert outcome.status == "BUDGET_EXCEEDED"
    assert provider.calls == [MICRO]
    job = aws.jobs_table.get_item(Key={"jobId": JOB})["Item"]
    assert job["results"][MICRO]["status"] == "SUCCEEDED"
    assert job["results"][LITE]["status"] == "SKIPPED"
    assert job["results"][LITE]["error"]["code"] == "BUDGET_EXCEEDED"
    assert "budget reached" in job["error"]
    assert float(job["costUsd"]) == pytest.approx(0.00000315)  # what was spent
    assert month_spent(aws) == pytest.approx(0.00000315)  # the reservation settled to the actual cost


def test_the_monthly_key_budget_is_shared_and_stops_calls(aws, monkeypatch):
    monkeypatch.setenv("MONTHLY_KEY_BUDGET_USD", str(MICRO_WORST + 0.0001))
    get_settings.cache_clear()
    settings = get_settings()
    put_job(aws)
    provider = FakeProvider({MICRO: "a", LITE: "b"})
    assert runner(aws, settings, provider).run(JOB).status == "BUDGET_EXCEEDED"
    job = aws.jobs_table.get_item(Key={"jobId": JOB})["Item"]
    assert "monthly budget" in job["results"][LITE]["error"]["message"]


def test_a_failed_call_releases_its_reservation(aws, settings):
    put_job(aws, models=(MICRO,))
    provider = FakeProvider({MICRO: ModelCallError("AccessDeniedException", "no", retryable=False)})
    runner(aws, settings, provider).run(JOB)
    assert month_spent(aws) == 0


def test_a_call_whose_output_cannot_be_stored_is_still_charged(aws, settings, monkeypatch):
    put_job(aws, models=(MICRO,))

    def s3_down(**_kwargs):
        raise RuntimeError("s3 down")

    monkeypatch.setattr(aws.s3, "put_object", s3_down)
    assert runner(aws, settings, FakeProvider({MICRO: "a"})).run(JOB).status == "FAILED"
    # Bedrock answered, so the money is spent: recorded and charged, not reserved.
    assert [(r["callId"], r["status"]) for r in cost_records(aws)] == [(first(MICRO), "BILLED")]
    assert month_spent(aws) == pytest.approx(0.00000315)
    assert float(aws.jobs_table.get_item(Key={"jobId": JOB})["Item"]["costUsd"]) == pytest.approx(0.00000315)


def test_an_image_job_stores_a_png_priced_per_image(aws, monkeypatch):
    monkeypatch.setenv("ENABLED_MODELS", "amazon.nova-canvas-v1:0")
    get_settings.cache_clear()
    canvas = "amazon.nova-canvas-v1:0"
    put_job(aws, models=(canvas,), kind="image")

    class Images:
        def generate(self, model, prompt, *, system=None, max_tokens=0, metadata=None, **_):
            return Generation(model, b"\x89PNG...", "image/png", "png", 0, 0, 900, images=1)

    outcome = runner(aws, get_settings(), Images()).run(JOB)
    assert outcome.status == "COMPLETED"
    result = aws.jobs_table.get_item(Key={"jobId": JOB})["Item"]["results"][canvas]
    assert result["key"].endswith("/amazon.nova-canvas-v1_0.png")
    assert "text" not in result
    assert result["images"] == 1
    assert float(result["costUsd"]) == 0.04
    assert aws.s3.get_object(Bucket="outputs", Key=result["key"])["ContentType"] == "image/png"
    (record,) = cost_records(aws)
    assert (record["images"], float(record["costUsd"])) == (1, 0.04)


class FakeRenderer:
    """Renders any spec that parses (the real renderer: test_chart_provider.py)."""

    def render(self, spec):
        return b"\x89PNG", "<svg/>"


SPEC = json.dumps({"mark": "bar", "data": {"values": [{"month": "Jan", "sales": 3}]}})


def chart_runner(aws, settings, replies):
    text = FakeProvider({LITE: replies})
    job_runner = runner(aws, settings, text)
    job_runner._providers = {"converse": text, "chart": ChartProvider(text, renderer=FakeRenderer())}
    return job_runner, text


def test_a_chart_job_stores_png_svg_and_spec(aws, settings):
    put_job(aws, models=(LITE,), kind="chart", data=[{"month": "Jan", "sales": 3}])
    job_runner, text = chart_runner(aws, settings, [SPEC])
    assert job_runner.run(JOB).status == "COMPLETED"
    assert '"month":"Jan"' in text.prompts[0]  # the data went to the model
    result = aws.jobs_table.get_item(Key={"jobId": JOB})["Item"]["results"][LITE]
    assert result["kind"] == "chart"
    assert result["key"].endswith(".png")
    assert set(result["files"]) == {"svg", "vl.json"}
    assert aws.s3.get_object(Bucket="outputs", Key=result["files"]["svg"])["ContentType"] == "image/svg+xml"
    assert [r["callId"] for r in cost_records(aws)] == [first(LITE)]


def test_a_chart_repair_is_its_own_paid_call_even_when_it_stays_invalid(aws, settings):
    """Both calls of a chart that stays invalid are billed, each as its own
    record (the repair with a reservation of its own, for the prompt it
    really sends): the job, the records and the month agree."""
    put_job(aws, models=(LITE,), kind="chart")
    job_runner, text = chart_runner(aws, settings, ["Sure! Here is a chart.", "still not a chart"])
    assert job_runner.run(JOB).status == "FAILED"
    job = aws.jobs_table.get_item(Key={"jobId": JOB})["Item"]
    assert job["results"][LITE]["error"]["code"] == "InvalidChartSpec"
    records = {r["callId"]: r for r in cost_records(aws)}
    assert set(records) == {first(LITE, seq=1), first(LITE, seq=2)}
    assert all(r["status"] == "BILLED" and r["costUsd"] == Decimal("0.0000054") for r in records.values())
    assert text.metadata[1] == {"genstackJobId": JOB, "genstackCallId": first(LITE, seq=2)}
    # The repair's reservation was for what it sent: the request quoting the first reply.
    repair = records[first(LITE, seq=2)]
    assert repair["reservedUsd"] > records[first(LITE, seq=1)]["reservedUsd"]
    assert job["costUsd"] == Decimal("0.0000108") == Decimal(str(month_spent(aws)))


def test_a_chart_spec_bomb_fails_its_model_not_the_delivery(aws, settings, stub_bedrock, renderer_function):
    """Bedrock (a Stubber: the real Converse shapes) answers a chart job with a
    spec that passes every static bound and explodes inside Vega. The render
    process is killed; the model's result is FAILED with the reason, its
    tokens are billed, the job ends, and the worker's memory stays put."""
    put_job(aws, models=(LITE,), kind="chart", data=[{"month": "Jan", "sales": 3}])
    bomb = {
        "data": {"values": [{"a": 1}]},
        "transform": [{"calculate": "length(sequence(0, 300000000))", "as": "n"}],
        "mark": "point",
        "encoding": {"x": {"field": "n", "type": "quantitative"}},
    }
    stubber = stub_bedrock("bedrock_runtime")
    stubber.add_response(
        "converse",
        {
            "output": {"message": {"role": "assistant", "content": [{"text": json.dumps(bomb)}]}},
            "stopReason": "end_turn",
            "usage": {"inputTokens": 120, "outputTokens": 80, "totalTokens": 200},
            "metrics": {"latencyMs": 900},
        },
    )
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    outcome = worker_app.runner().run(JOB)  # built as the handler builds it, on the stubbed client
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50 * 1024
    job = aws.jobs_table.get_item(Key={"jobId": JOB})["Item"]
    assert outcome.status == job["status"] == "FAILED"
    result = job["results"][LITE]
    assert result["error"]["code"] == "ChartRenderFailed"
    assert "MB to render" in result["error"]["message"]
    assert "ChartRenderFailed" in job["error"]
    assert Decimal(str(result["costUsd"])) > 0  # the spec's tokens were paid for
    assert renderer_function.invocations == 1  # rendered by the chart renderer function, not in the worker
