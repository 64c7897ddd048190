"""Money at the unit level, on moto: every paid call has one record, and the
records, the key's month, its per-model lines and the job's cost agree to the
last decimal through unknown outcomes, late answers, dead runs, the end of a
month, the dead-letter path and the sweeper. Also tiers, GET /usage, the
in-flight limit and the worst-case bounds. (Real SIGKILLs and timeouts, 500
jobs: tests/faults/test_kills.py.)"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from boto3.dynamodb.conditions import Key

from shared.budgets import JobInput, KeyProfiles, input_token_bound, text_call_bound, work_bound
from shared.costs import Call, Usage, call_id, period_of
from shared.jobs import MAX_CLAIMS, JobRepository
from shared.limits import InFlightSlots, TooManyInFlight
from shared.providers import ModelCallError
from shared.providers.chart import SYSTEM, chart_request, repair_request
from shared.registry import spec_for
from shared.settings import get_settings
from shared.usage import usage_view
from status import app as status_app
from tests.unit.conftest import body_of, load_event
from tests.unit.test_worker import JOB, LITE, MICRO, FakeProvider, cost_records, ledger, month_items, put_job, runner
from worker.sweeper import Sweeper

TIMEOUT = ModelCallError("ReadTimeoutError", "read timed out", retryable=True, outcome_unknown=True)


def agree(aws, owner: str = "k1") -> Decimal:
    """The invariant: the records' amounts equal the month's spend, nothing is
    left reserved, the model lines equal the settled records, and every job's
    cost is the sum of its records. Returns the total."""
    records = [r for r in aws.cost_table.scan()["Items"] if r["owner"] == owner]
    total = sum((Decimal(str(r["costUsd"])) for r in records), Decimal(0))
    months = month_items(aws, owner)
    assert sum(Decimal(str(m["spentUsd"])) for m in months) == total
    assert all(Decimal(str(m["reservedUsd"])) == 0 for m in months)
    assert not [r for r in records if r["status"] == "RESERVED"]
    lines = [i for i in aws.ledger_table.scan()["Items"] if i["owner"] == owner and "#" in i["period"]]
    assert sum(Decimal(str(line["costUsd"])) for line in lines) == total
    for job in aws.jobs_table.scan()["Items"]:
        if job["owner"] == owner and job["status"] not in ("QUEUED", "RUNNING"):
            mine = [r for r in records if r["jobId"] == job["jobId"]]
            assert Decimal(str(job["costUsd"])) == sum((Decimal(str(r["costUsd"])) for r in mine), Decimal(0))
    return total


# ------------------------------------------------------- unknown outcomes


def test_a_lost_answer_is_charged_at_its_reservation_and_the_retry_is_a_new_call(aws, settings):
    put_job(aws, models=(MICRO,))
    provider = FakeProvider({MICRO: [TIMEOUT, "second try"]})
    assert runner(aws, settings, provider).run(JOB).status == "COMPLETED"
    records = {r["callId"]: r for r in cost_records(aws)}
    lost, retry = records[call_id(MICRO, 1, 1)], records[call_id(MICRO, 1, 2)]
    assert (lost["status"], lost["costUsd"]) == ("UNCONFIRMED", lost["reservedUsd"])
    assert lost["unconfirmedReason"] == "ReadTimeoutError"
    assert (retry["status"], retry["costUsd"]) == ("BILLED", Decimal("0.00000315"))
    # Each attempt told Bedrock its own call id.
    assert [m["genstackCallId"] for m in provider.metadata] == [call_id(MICRO, 1, 1), call_id(MICRO, 1, 2)]
    total = agree(aws)
    assert total == lost["reservedUsd"] + Decimal("0.00000315")
    (line,) = [i for i in aws.ledger_table.scan()["Items"] if i["period"].endswith(f"#{MICRO}")]
    assert (line["calls"], line["unconfirmedCalls"]) == (2, 1)


def test_a_throttled_attempt_keeps_its_reservation_and_is_never_charged(aws, settings):
    put_job(aws, models=(MICRO,))
    throttled = ModelCallError("ThrottlingException", "slow down", retryable=True)
    runner(aws, settings, FakeProvider({MICRO: [throttled, throttled, "ok"]})).run(JOB)
    (only,) = cost_records(aws)  # one call, three attempts, one record
    assert (only["status"], only["costUsd"]) == ("BILLED", Decimal("0.00000315"))
    agree(aws)


def test_a_late_answer_corrects_an_unconfirmed_charge(aws, settings):
    calls, now = ledger(aws, settings), datetime.now(UTC)
    call = Call(JOB, call_id(MICRO, 1, 1), "k1", MICRO, "text", Decimal("0.25"), period_of(now), int(now.timestamp()) - 1)
    assert calls.reserve(call, limit=Decimal(50), now=now)
    assert calls.unconfirm(call, now=now, reason="lease expired")  # the sweeper thought it dead
    assert calls.month("k1", call.period) == (Decimal("0.25"), Decimal(0))
    assert calls.settle(call, Usage(10, 20), Decimal("0.00000315"), now=now)  # but it answered
    (record,) = cost_records(aws)
    assert (record["status"], record["costUsd"]) == ("BILLED", Decimal("0.00000315"))
    (line,) = [i for i in aws.ledger_table.scan()["Items"] if "#" in i["period"]]
    assert (line["costUsd"], line["calls"], line["unconfirmedCalls"], line["inputTokens"]) == (Decimal("0.00000315"), 1, 0, 10)
    assert calls.month("k1", call.period) == (Decimal("0.00000315"), Decimal(0))


def test_retries_stop_before_the_functions_deadline(aws, settings):
    put_job(aws, models=(MICRO,))
    throttled = ModelCallError("ThrottlingException", "slow down", retryable=True)
    provider = FakeProvider({MICRO: [throttled, "would succeed"]})
    # 30 s left: less than one more attempt's timeout (120 s) plus its backoff.
    assert runner(aws, settings, provider, time_left=lambda: 30.0).run(JOB).status == "FAILED"
    assert provider.calls == [MICRO]
    agree(aws)


# ----------------------------------------------------------------- months


def test_a_call_that_crosses_midnight_at_the_end_of_a_month_settles_into_the_month_it_reserved_in(aws, settings):
    calls = ledger(aws, settings)
    before = datetime(2026, 11, 30, 23, 59, 59, tzinfo=UTC)
    after = datetime(2026, 12, 1, 0, 0, 1, tzinfo=UTC)
    call = Call(JOB, call_id(MICRO, 1, 1), "k1", MICRO, "text", Decimal("0.4"), period_of(before), int(after.timestamp()) + 60)
    assert calls.reserve(call, limit=Decimal(50), now=before)
    calls.settle(call, Usage(10, 20), Decimal("0.1"), now=after)
    assert calls.month("k1", "2026-11") == (Decimal("0.1"), Decimal(0))
    assert calls.month("k1", "2026-12") == (Decimal(0), Decimal(0))
    assert {i["period"] for i in aws.ledger_table.scan()["Items"]} == {"2026-11", f"2026-11#{MICRO}"}


def test_a_reservation_beyond_the_keys_month_writes_nothing(aws, settings):
    calls, now = ledger(aws, settings), datetime.now(UTC)
    spent = Call("j1", call_id(MICRO, 1, 1), "k1", MICRO, "text", Decimal("0.75"), period_of(now), int(now.timestamp()) + 60)
    assert calls.reserve(spent, limit=Decimal(1), now=now)
    over = Call("j2", call_id(MICRO, 1, 1), "k1", MICRO, "text", Decimal("0.5"), period_of(now), int(now.timestamp()) + 60)
    assert not calls.reserve(over, limit=Decimal(1), now=now)
    assert calls.records_of("j2") == []
    assert calls.month("k1", period_of(now)) == (Decimal("0.75"), Decimal("0.75"))


# ------------------------------------------------------- dead runs, DLQ


def test_a_job_whose_claims_are_used_up_is_abandoned_with_its_open_calls_charged(aws, settings):
    put_job(aws, models=(MICRO,))
    repo, calls = JobRepository(aws.jobs_table), ledger(aws, settings)
    long_ago = datetime.now(UTC) - timedelta(hours=2)
    for claim in range(1, MAX_CLAIMS + 1):  # every run died during its call
        claimed = repo.claim(JOB, now=long_ago + timedelta(minutes=20 * claim), lease_seconds=900)
        assert int(claimed["attempts"]) == claim
        call = Call(JOB, call_id(MICRO, claim, 1), "k1", MICRO, "text", Decimal("0.01"), "2026-11", int(claimed["leaseUntil"]))
        assert calls.reserve(call, limit=Decimal(50), now=long_ago)
    provider = FakeProvider({MICRO: "never called"})
    outcome = runner(aws, settings, provider).run(JOB)  # the next delivery
    assert outcome.status == "FAILED"
    assert provider.calls == []
    job = aws.jobs_table.get_item(Key={"jobId": JOB})["Item"]
    assert f"all {MAX_CLAIMS} runs" in job["error"]
    assert job["costUsd"] == Decimal("0.03")
    assert {r["status"] for r in cost_records(aws)} == {"UNCONFIRMED"}
    assert "sweep" not in job  # off the sweeper's list
    agree(aws)


def test_the_dead_letter_consumer_charges_the_open_calls_before_failing_the_job(aws, settings):
    from worker import dead_letter

    put_job(aws, models=(MICRO,))
    claimed = JobRepository(aws.jobs_table).claim(JOB, now=datetime.now(UTC) - timedelta(hours=3), lease_seconds=900)
    call = Call(JOB, call_id(MICRO, 1, 1), "k1", MICRO, "text", Decimal("0.02"), "2026-11", int(claimed["leaseUntil"]))
    ledger(aws, settings).reserve(call, limit=Decimal(50), now=datetime.now(UTC))
    event = load_event("worker-sqs.json")
    record = dead_letter.SQSRecord(event["Records"][0])
    assert dead_letter.abandon_job(record, JobRepository(aws.jobs_table), ledger(aws, settings))
    job = aws.jobs_table.get_item(Key={"jobId": JOB})["Item"]
    assert (job["status"], job["costUsd"]) == ("FAILED", Decimal("0.02"))
    agree(aws)


# ---------------------------------------------------------------- sweeper


def sweeper(aws, settings) -> Sweeper:
    return Sweeper(jobs=JobRepository(aws.jobs_table), calls=ledger(aws, settings), sqs=aws.sqs, settings=settings)


def queued_messages(aws) -> list[str]:
    messages = aws.sqs.receive_message(QueueUrl=aws.queue_url, MaxNumberOfMessages=10).get("Messages", [])
    return [json.loads(m["Body"])["jobId"] for m in messages]


def test_the_sweeper_sends_a_message_for_a_job_that_never_got_one(aws, settings):
    created = datetime.now(UTC) - timedelta(minutes=30)
    JobRepository(aws.jobs_table).create(
        {"jobId": JOB, "owner": "k1", "status": "QUEUED", "models": [MICRO], "prompt": "p", "results": {}, "createdAt": "x"},
        now=created,
    )
    now = datetime.now(UTC)
    assert sweeper(aws, settings).sweep(now) == {"jobRequeued": 1}
    assert queued_messages(aws) == [JOB]
    job = aws.jobs_table.get_item(Key={"jobId": JOB})["Item"]
    assert "queuedAt" in job
    assert int(job["sweepAt"]) > now.timestamp()  # not again at once
    assert sweeper(aws, settings).sweep(now) == {}
    # Then a worker runs it, as if the message had been there all along.
    assert runner(aws, settings, FakeProvider({MICRO: "ok"})).run(JOB).status == "COMPLETED"


def test_the_sweeper_leaves_a_queued_job_with_its_message_alone_until_the_message_could_expire(aws, context):
    from generate import app as generate_app

    job_id = body_of(generate_app.handler(load_event("generate.json"), context))["jobId"]
    settings = get_settings()
    assert sweeper(aws, settings).sweep(datetime.now(UTC) + timedelta(hours=1)) == {}
    assert sweeper(aws, settings).sweep(datetime.now(UTC) + timedelta(days=5)) == {"jobFailed": 1}
    job = aws.jobs_table.get_item(Key={"jobId": job_id})["Item"]
    assert "message expired" in job["error"]


def test_the_sweeper_sends_a_dead_workers_job_to_another_and_fails_one_out_of_runs(aws, settings):
    put_job(aws, models=(MICRO,), job_id=JOB)
    other = "4a2b3c4d-0000-4000-8000-00000000000b"
    put_job(aws, models=(MICRO,), job_id=other)
    repo = JobRepository(aws.jobs_table)
    long_ago = datetime.now(UTC) - timedelta(hours=2)
    repo.claim(JOB, now=long_ago, lease_seconds=900)
    for _ in range(MAX_CLAIMS):
        repo.claim(other, now=long_ago, lease_seconds=-1)  # each run's lease already over
    assert sweeper(aws, settings).sweep(datetime.now(UTC)) == {"jobRequeued": 1, "jobFailed": 1}
    assert queued_messages(aws) == [JOB]
    assert repo.get(other)["status"] == "FAILED"
    assert runner(aws, settings, FakeProvider({MICRO: "ok"})).run(JOB).status == "COMPLETED"  # taken over


def test_the_sweeper_charges_an_enhance_request_that_died_with_its_call_open(aws, settings):
    calls, now = ledger(aws, settings), datetime.now(UTC)
    call = Call("enhance#r1", call_id(LITE, 1, 1), "k1", LITE, "text", Decimal("0.003"), period_of(now), int(now.timestamp()) - 5)
    calls.reserve(call, limit=Decimal(50), now=now)
    assert sweeper(aws, settings).sweep(now) == {"reservationCharged": 1}
    assert sweeper(aws, settings).sweep(now) == {}  # once
    (record,) = calls.records_of("enhance#r1")
    assert (record["status"], record["costUsd"]) == ("UNCONFIRMED", Decimal("0.003"))
    agree(aws)


def test_the_sweeper_handler_counts_its_actions(aws, context, monkeypatch, capsys):
    from worker import sweeper as sweeper_module

    result = sweeper_module.handler({"source": "aws.events"}, context)
    assert result == {"jobsRequeued": 0, "jobsFailed": 0, "reservationsCharged": 0}
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    metrics = {m["Name"] for record in emitted for m in record["_aws"]["CloudWatchMetrics"][0]["Metrics"]}
    assert {"SweeperJobsRequeued", "SweeperJobsFailed", "SweeperReservationsCharged", "SweeperRecoveries"} <= metrics


# ------------------------------------------------------- tiers and budgets


def test_each_tier_has_its_budget_and_an_operator_can_set_one_keys(aws, settings):
    profiles = KeyProfiles(aws.ledger_table, tier_budgets=settings.tier_budgets())
    aws.ledger_table.put_item(Item={"owner": "free-key", "period": "profile", "tier": "free"})
    aws.ledger_table.put_item(Item={"owner": "vip", "period": "profile", "tier": "standard", "monthlyBudgetUsd": Decimal("500")})
    assert profiles.of("free-key").monthly_budget_usd == settings.free_key_monthly_budget_usd == Decimal("1.00")
    assert profiles.of("vip").monthly_budget_usd == Decimal("500")
    assert profiles.of("vip").own_budget is True
    assert profiles.of("never-issued").tier == "standard"  # the stack's first key, console keys
    assert profiles.of("never-issued").monthly_budget_usd == settings.monthly_key_budget_usd


def test_a_free_key_is_refused_at_its_own_budget(aws, context):
    from generate import app as generate_app

    aws.ledger_table.put_item(Item={"owner": "k1a2b3c4d5", "period": "profile", "tier": "free"})
    month = period_of(datetime.now(UTC))
    aws.ledger_table.put_item(Item={"owner": "k1a2b3c4d5", "period": month, "spentUsd": Decimal("0.9995")})
    response = generate_app.handler(load_event("generate.json"), context)
    assert response["statusCode"] == 429
    assert body_of(response)["error"]["details"]["monthlyBudgetUsd"] == 1.0  # the free tier's, not $50


def test_a_profile_is_read_again_after_its_cache_time(aws, settings):
    ticks = iter([0, 10, 100])
    profiles = KeyProfiles(aws.ledger_table, tier_budgets=settings.tier_budgets(), ttl_seconds=60, clock=lambda: next(ticks))
    assert profiles.of("k").tier == "standard"
    aws.ledger_table.put_item(Item={"owner": "k", "period": "profile", "tier": "free"})
    assert profiles.of("k").tier == "standard"  # within the minute
    assert profiles.of("k").tier == "free"


# --------------------------------------------------------------- GET /usage


def usage_event(query=None, key_id="k1a2b3c4d5"):
    event = load_event("status.json")
    event.update(path="/usage", resource="/usage", pathParameters=None, queryStringParameters=query)
    event["requestContext"]["identity"]["apiKeyId"] = key_id
    return event


def test_usage_is_the_keys_own_month_by_model_and_agrees_with_its_records(aws, settings, context):
    put_job(aws, owner="k1a2b3c4d5")
    runner(aws, settings, FakeProvider({MICRO: [TIMEOUT, "a"], LITE: "b"})).run(JOB)
    total = agree(aws, "k1a2b3c4d5")
    body = body_of(status_app.handler(usage_event(), context))
    assert Decimal(str(body["spentUsd"])) == total
    assert body["reservedUsd"] == 0
    assert body["tier"] == "standard"
    assert Decimal(str(body["remainingUsd"])) == Decimal(50) - total
    (month,) = body["months"]
    by_model = {line["model"]: line for line in month["models"]}
    assert (by_model[MICRO]["calls"], by_model[MICRO]["unconfirmedCalls"], by_model[LITE]["calls"]) == (2, 1, 1)
    assert sum(Decimal(str(line["costUsd"])) for line in month["models"]) == total
    # Another key sees only its own (nothing).
    other = body_of(status_app.handler(usage_event(key_id="someone-else"), context))
    assert other["spentUsd"] == 0
    assert other["months"][0]["models"] == []


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"from": "2026-13"}, "from"),
        ({"to": "26-01"}, "to"),
        ({"from": "2025-01", "to": "2026-06"}, "from"),
        ({"from": "2026-06", "to": "2026-01"}, "to"),
    ],
)
def test_a_usage_range_that_is_not_months_or_too_long_is_a_400(aws, context, query, field):
    response = status_app.handler(usage_event(query), context)
    assert response["statusCode"] == 400
    assert body_of(response)["error"]["details"]["field"] == field


def test_usage_lists_every_month_of_a_range(aws, settings):
    now = datetime(2026, 12, 2, tzinfo=UTC)
    profiles = KeyProfiles(aws.ledger_table, tier_budgets=settings.tier_budgets())
    view = usage_view("k1", calls=ledger(aws, settings), profile=profiles.of("k1"), first="2026-10", last=None, now=now)
    assert [m["period"] for m in view["months"]] == ["2026-10", "2026-11", "2026-12"]


# ----------------------------------------------------------- in-flight slots


def test_a_key_holds_at_most_its_slots_and_a_dead_holders_slot_frees_after_its_lease(aws):
    clock = [1_000_000.0]
    slots = InFlightSlots(aws.ledger_table, route="enhance", lease_seconds=60, clock=lambda: clock[0])
    with slots.hold("k1", slots=1):
        with pytest.raises(TooManyInFlight) as refused, slots.hold("k1", slots=1):
            pass
        assert refused.value.status_code == 429
        with slots.hold("k2", slots=1):  # another key is not affected
            pass
    with slots.hold("k1", slots=1):  # released
        pass
    # A holder that died (its slot was never released):
    aws.ledger_table.put_item(
        Item={"owner": "k1", "period": "inflight#enhance#0", "token": "dead", "leaseUntil": int(clock[0]) + 60}
    )
    with pytest.raises(TooManyInFlight), slots.hold("k1", slots=1):
        pass
    clock[0] += 61
    with slots.hold("k1", slots=1):
        pass


def test_enhance_refuses_a_request_beyond_the_keys_in_flight_limit(aws, context, monkeypatch):
    from enhance import app as enhance_app

    aws.ledger_table.put_item(Item={"owner": "k1a2b3c4d5", "period": "profile", "tier": "free"})  # 1 slot
    aws.ledger_table.put_item(
        Item={"owner": "k1a2b3c4d5", "period": "inflight#enhance#0", "token": "t", "leaseUntil": 4_102_444_800}
    )
    response = enhance_app.handler(load_event("enhance.json"), context)
    assert response["statusCode"] == 429
    assert body_of(response)["error"]["code"] == "CONCURRENCY_LIMIT"
    assert aws.cost_table.scan()["Count"] == 0  # refused before anything was reserved


# ------------------------------------------------------------- worst cases

SCRIPTS = {
    "English": "Write a short poem about the sea and the wind",
    "Russian": "Напишите короткое стихотворение о море и ветре",
    "Chinese": "写一首关于大海和风的短诗",
    "Japanese": "海と風についての短い詩を書いてください",
    "Hindi": "समुद्र और हवा के बारे में एक छोटी कविता लिखें",
    "Emoji": "🌊🌬️🐚" * 5,
}


@pytest.mark.parametrize("script", list(SCRIPTS))
def test_the_input_bound_holds_in_every_script(script):
    """A token covers at least one byte of UTF-8 in every tokenizer the text
    models use, so bytes bound tokens in any script. The old rule (a token per
    three characters) under-reserved text outside Latin by up to 3 times per
    character: Chinese is 3 bytes, and commonly 1 to 2 tokens, a character."""
    text = SCRIPTS[script]
    bound = input_token_bound(text)
    assert bound >= len(text.encode("utf-8"))  # at most one token per byte
    assert bound >= len(text)  # so also at most one per character, or per code unit
    old = -(-len(text) // 3)
    if script in ("Chinese", "Japanese", "Hindi", "Emoji"):
        assert bound - 64 > 2 * old  # the old estimate was not a bound there


def test_a_charts_worst_case_covers_its_repair_as_really_sent():
    spec = spec_for(LITE)
    prompt, data = "Sales by month", [{"month": "Jan", "sales": 3}]
    request = chart_request(prompt, data)
    reply = "x" * 100_000  # a first answer far longer than the repair quotes
    repair = repair_request(request, reply, "Vega-Lite rejected the spec: " + "y" * 5000)
    first = text_call_bound(spec, prompt=request, system=SYSTEM, max_tokens=2048)
    actual_repair = text_call_bound(spec, prompt=repair, system=SYSTEM, max_tokens=2048)
    assert work_bound(spec, "chart", JobInput(prompt, data), {"maxTokens": 2048}) >= first + actual_repair


def test_records_are_found_by_job_and_call(aws, settings):
    put_job(aws, models=(MICRO,))
    runner(aws, settings, FakeProvider({MICRO: "a"})).run(JOB)
    items = aws.cost_table.query(KeyConditionExpression=Key("jobId").eq(JOB) & Key("callId").begins_with(f"{MICRO}#"))["Items"]
    assert [i["callId"] for i in items] == [call_id(MICRO, 1, 1)]


def test_a_transaction_that_meets_another_on_the_same_item_is_retried_not_misread(aws, settings, monkeypatch):
    """DynamoDB cancels one of two transactions on the same item with
    TransactionConflict (parallel settlements of one key's calls all update its
    month). That is neither "applied" nor "no": it is retried, each try with a
    token of its own, and the call is settled, not left RESERVED."""
    from botocore.exceptions import ClientError

    from shared import costs

    calls, now = ledger(aws, settings), datetime.now(UTC)
    call = Call(JOB, call_id(MICRO, 1, 1), "k1", MICRO, "text", Decimal("0.5"), period_of(now), int(now.timestamp()) + 60)
    assert calls.reserve(call, limit=Decimal(50), now=now)
    client = aws.cost_table.meta.client
    real, tokens = client.transact_write_items, []

    def conflicting(**kwargs):
        tokens.append(kwargs["ClientRequestToken"])
        if len(tokens) <= 2:
            reasons = [{"Code": "None"}, {"Code": "TransactionConflict"}, {"Code": "None"}]
            error = {"Error": {"Code": "TransactionCanceledException", "Message": "conflict"}, "CancellationReasons": reasons}
            raise ClientError(error, "TransactWriteItems")
        return real(**kwargs)

    monkeypatch.setattr(client, "transact_write_items", conflicting)
    monkeypatch.setattr(costs.time, "sleep", lambda _: None)
    assert calls.settle(call, Usage(10, 20), Decimal("0.1"), now=now)
    assert len(tokens) == len(set(tokens)) == 3
    (record,) = cost_records(aws)
    assert (record["status"], record["costUsd"]) == ("BILLED", Decimal("0.1"))
    assert calls.month("k1", call.period) == (Decimal("0.1"), Decimal(0))
