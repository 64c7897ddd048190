"""Hostile input at the unit level: oversized bodies refused before parsing,
jobs deleted with every object version, outputs of a deleted job never kept,
and retention. (Template and chart bombs: test_prompt_templates.py and
test_chart_provider.py; the same attacks through the deployed API Gateway:
tests/e2e/test_hostile.py.)"""

from __future__ import annotations

import json
import tracemalloc
from datetime import UTC, datetime

import pytest

from enhance import app as enhance_app
from generate import app as generate_app
from prompt_templates import app as templates_app
from shared.api import MAX_BODY_BYTES
from status import app as status_app
from tests.unit.conftest import body_of, load_event
from tests.unit.test_cancel import OWNER
from tests.unit.test_worker import JOB, MICRO, FakeProvider, put_job, runner

HANDLERS = {
    "/generate": generate_app.handler,
    "/enhance": enhance_app.handler,
    "/templates": templates_app.handler,
}


def post(path: str, body: str, key: str = OWNER):
    event = load_event("generate.json")
    event.update(path=path, resource=path, body=body)
    event["requestContext"]["identity"]["apiKeyId"] = key
    return event


@pytest.mark.parametrize("path", list(HANDLERS))
@pytest.mark.parametrize(
    "body",
    [
        json.dumps({"prompt": "x" * (MAX_BODY_BYTES + 1), "models": [MICRO]}),  # one byte over, ASCII
        json.dumps({"prompt": "\u6f22" * (MAX_BODY_BYTES // 3 + 1)}, ensure_ascii=False),  # under in characters, over in UTF-8
        "[" * 5_700_000,  # 5.7 MB that would have peaked at 327 MB in validation
    ],
    ids=["just-over", "multibyte", "5.7MB"],
)
def test_an_oversized_body_is_a_413_before_it_is_parsed(aws, context, path, body):
    tracemalloc.start()
    try:
        response = HANDLERS[path](post(path, body), context)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response["statusCode"] == 413
    error = body_of(response)["error"]
    assert error["code"] == "PAYLOAD_TOO_LARGE"
    assert str(MAX_BODY_BYTES) in error["message"]
    assert error["details"] == {"maxBytes": MAX_BODY_BYTES}
    # Nothing was parsed: the peak is the UTF-8 copy the size check makes at most.
    assert peak < 4 * len(body) + 2_000_000
    assert aws.jobs_table.scan()["Count"] == 0


def test_a_body_at_the_limit_is_parsed_and_judged_on_its_fields(aws, context):
    body = json.dumps({"prompt": "x", "models": [MICRO], "pad": ""})
    body = body.replace('"pad": ""', '"pad": "' + "y" * (MAX_BODY_BYTES - len(body)) + '"')
    assert len(body.encode()) == MAX_BODY_BYTES
    response = generate_app.handler(post("/generate", body), context)
    assert response["statusCode"] == 400  # "pad" is not a known field: judged, not refused for size
    assert "pad" in body_of(response)["error"]["message"]


def test_too_many_or_too_long_template_variables_are_400s(aws, context):
    for variables in ({f"v{i}": "x" for i in range(51)}, {"v": "x" * 20_001}):
        body = json.dumps({"template": {"id": "t"}, "variables": variables, "models": [MICRO]})
        response = generate_app.handler(post("/generate", body), context)
        assert response["statusCode"] == 400, body_of(response)
        assert "variables" in body_of(response)["error"]["message"]


# ------------------------------------------------------------ deleting jobs


def job_event(method: str, path: str, job_id: str = JOB, owner: str = OWNER):
    event = load_event("health.json")
    resource = "/jobs/{jobId}" if path == "delete" else "/status/{jobId}"
    event.update(
        httpMethod=method,
        resource=resource,
        path=f"/jobs/{job_id}" if path == "delete" else f"/status/{job_id}",
        pathParameters={"jobId": job_id},
    )
    event["headers"]["x-api-key"] = "local-test-key-0001"
    event["requestContext"]["identity"]["apiKeyId"] = owner
    return event


def delete_job(context, **kwargs):
    return generate_app.handler(job_event("DELETE", "delete", **kwargs), context)


def object_versions(aws, job_id: str = JOB) -> list:
    listed = aws.s3.list_object_versions(Bucket="outputs", Prefix=f"jobs/{job_id}/")
    return listed.get("Versions", []) + listed.get("DeleteMarkers", [])


@pytest.fixture
def versioned(aws):
    aws.s3.put_bucket_versioning(Bucket="outputs", VersioningConfiguration={"Status": "Enabled"})
    return aws


def test_deleting_a_job_removes_every_version_of_its_outputs_and_its_record(versioned, context, settings):
    aws = versioned
    put_job(aws, owner=OWNER)
    runner(aws, settings, FakeProvider({MICRO: "a", "amazon.nova-lite-v1:0": "b"})).run(JOB)
    # An older version of one output, as an overwrite leaves behind.
    aws.s3.put_object(Bucket="outputs", Key=f"jobs/{JOB}/outputs/amazon.nova-micro-v1_0.txt", Body=b"older")
    assert len(object_versions(aws)) == 3
    response = delete_job(context)
    assert response["statusCode"] == 200, body_of(response)
    assert body_of(response) == {"jobId": JOB, "deleted": True, "outputVersionsDeleted": 3}
    assert object_versions(aws) == []
    assert "Item" not in aws.jobs_table.get_item(Key={"jobId": JOB})
    # The cost records stay: they are the key's billing history.
    assert aws.cost_table.scan()["Count"] == 2
    assert status_app.handler(job_event("GET", "status"), context)["statusCode"] == 404
    assert delete_job(context)["statusCode"] == 404


def test_another_key_cannot_delete_a_job_and_learns_nothing(versioned, context, settings):
    aws = versioned
    put_job(aws, owner=OWNER)
    runner(aws, settings, FakeProvider({MICRO: "a", "amazon.nova-lite-v1:0": "b"})).run(JOB)
    response = delete_job(context, owner="someone-else")
    assert (response["statusCode"], body_of(response)["error"]["code"]) == (404, "JOB_NOT_FOUND")
    assert len(object_versions(aws)) == 2
    assert aws.jobs_table.get_item(Key={"jobId": JOB})["Item"]["status"] == "COMPLETED"


def test_deleting_a_running_job_stops_it_and_the_worker_keeps_nothing(versioned, context, settings):
    """The owner deletes the job while a model call is in flight: the call
    finishes, but its output is removed again (every version) and nothing
    re-creates the job."""
    aws = versioned
    put_job(aws, models=(MICRO,), owner=OWNER)

    class DeletedMeanwhile(FakeProvider):
        def generate(self, model, prompt, **kwargs):
            assert delete_job(context)["statusCode"] == 200
            return super().generate(model, prompt, **kwargs)

    runner(aws, settings, DeletedMeanwhile({MICRO: "a"})).run(JOB)
    assert object_versions(aws) == []
    assert "Item" not in aws.jobs_table.get_item(Key={"jobId": JOB})


def test_a_malformed_job_id_is_a_400_before_any_write(aws, context):
    response = delete_job(context, job_id="not-a-uuid")
    assert (response["statusCode"], body_of(response)["error"]["details"]) == (400, {"field": "jobId"})


def test_a_job_expires_after_the_retention(aws, context, monkeypatch):
    from shared.settings import get_settings

    monkeypatch.setenv("JOB_RETENTION_DAYS", "30")
    get_settings.cache_clear()
    before = int(datetime.now(UTC).timestamp())
    job_id = body_of(generate_app.handler(load_event("generate.json"), context))["jobId"]
    expires = int(aws.jobs_table.get_item(Key={"jobId": job_id})["Item"]["expiresAt"])
    assert before + 30 * 86400 <= expires <= before + 30 * 86400 + 60


def test_without_a_retention_a_job_has_no_expiry(aws, context):
    job_id = body_of(generate_app.handler(load_event("generate.json"), context))["jobId"]
    assert "expiresAt" not in aws.jobs_table.get_item(Key={"jobId": job_id})["Item"]


# ------------------------------------------------------- the sample events


def test_the_sample_events_of_the_new_routes_run_through_their_handlers(aws, context):
    """events/ holds a sample of every request shape (for `sam local invoke -e`); these run."""
    from worker import sweeper

    created = templates_app.handler(load_event("create-template.json"), context)
    assert created["statusCode"] == 201, body_of(created)
    assert body_of(created)["shared"] is True
    assert templates_app.handler(load_event("share-template.json"), context)["statusCode"] == 200
    bomb = templates_app.handler(load_event("create-template-bomb.json"), context)
    assert (bomb["statusCode"], "arithmetic" in body_of(bomb)["error"]["message"]) == (400, True)
    # Another key's template, now private: indistinguishable from a missing one.
    assert generate_app.handler(load_event("generate-shared-template.json"), context)["statusCode"] == 404
    assert status_app.handler(load_event("usage.json"), context)["statusCode"] == 200
    assert generate_app.handler(load_event("delete-job.json"), context)["statusCode"] == 404  # no such job yet
    assert sweeper.handler(load_event("sweeper-schedule.json"), context) == {
        "jobsRequeued": 0,
        "jobsFailed": 0,
        "reservationsCharged": 0,
    }
