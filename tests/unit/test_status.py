"""GET /status/{jobId} and GET /health through the real handler, on moto."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

from generate import app as generate_app
from shared.settings import get_settings
from status import app as status_app
from tests.unit.conftest import body_of, load_event


def submit(context) -> str:
    return body_of(generate_app.handler(load_event("generate.json"), context))["jobId"]


def status_event(job_id: str):
    event = load_event("status.json")
    event["path"] = f"/status/{job_id}"
    event["pathParameters"] = {"jobId": job_id}
    return event


def test_owner_sees_a_queued_job_with_pending_results(aws, context):
    job_id = submit(context)
    response = status_app.handler(status_event(job_id), context)
    assert response["statusCode"] == 200
    body = body_of(response)
    assert body["jobId"] == job_id
    assert body["status"] == "QUEUED"
    assert [r["status"] for r in body["results"]] == ["PENDING", "PENDING"]
    assert body["costUsd"] == 0
    assert body["createdAt"].endswith("Z")
    assert "prompt" not in body
    assert "owner" not in body


def test_completed_result_carries_cdn_url_and_inline_text(aws, context):
    job_id = submit(context)
    aws.jobs_table.update_item(
        Key={"jobId": job_id},
        UpdateExpression="SET #s = :s, results = :r",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={
            ":s": "COMPLETED",
            ":r": {
                "amazon.nova-micro-v1:0": {
                    "model": "amazon.nova-micro-v1:0",
                    "kind": "text",
                    "status": "SUCCEEDED",
                    "key": f"jobs/{job_id}/outputs/amazon.nova-micro-v1_0.txt",
                    "text": "queues hum",
                }
            },
        },
    )
    before = datetime.now(UTC)
    body = body_of(status_app.handler(status_event(job_id), context))
    first = body["results"][0]
    # A presigned S3 URL for exactly that object, good for OutputLinkSeconds
    # (that a real S3 refuses it once expired: tests/e2e/test_hostile.py).
    url = urlsplit(first["url"])
    query = parse_qs(url.query)
    assert (url.scheme, url.netloc, url.path) == (
        "https",
        "outputs.s3.amazonaws.com",
        f"/jobs/{job_id}/outputs/amazon.nova-micro-v1_0.txt",
    )
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Expires"] == ["3600"]
    assert query["X-Amz-SignedHeaders"] == ["host"]
    assert len(query["X-Amz-Signature"][0]) == 64
    expires = datetime.fromisoformat(body["urlsExpireAt"].replace("Z", "+00:00"))
    assert timedelta(seconds=3599) <= expires - before <= timedelta(seconds=3605)
    assert first["text"] == "queues hum"
    assert "key" not in first


def test_a_link_lifetime_follows_the_setting(aws, context, monkeypatch):
    monkeypatch.setenv("OUTPUT_LINK_SECONDS", "120")
    get_settings.cache_clear()
    job_id = submit(context)
    aws.jobs_table.update_item(
        Key={"jobId": job_id},
        UpdateExpression="SET results = :r",
        ExpressionAttributeValues={
            ":r": {"amazon.nova-micro-v1:0": {"model": "m", "status": "SUCCEEDED", "key": "jobs/x/y.txt"}}
        },
    )
    body = body_of(status_app.handler(status_event(job_id), context))
    assert parse_qs(urlsplit(body["results"][0]["url"]).query)["X-Amz-Expires"] == ["120"]


def test_another_keys_job_is_a_404(aws, context):
    job_id = submit(context)
    event = status_event(job_id)
    event["requestContext"]["identity"]["apiKeyId"] = "someone-else"
    response = status_app.handler(event, context)
    assert response["statusCode"] == 404
    assert body_of(response)["error"]["code"] == "JOB_NOT_FOUND"


def test_unknown_job_is_a_404(aws, context):
    response = status_app.handler(load_event("status.json"), context)
    assert response["statusCode"] == 404
    assert "3f1c2d9e-8a4b-4c1d-9e2f-5a6b7c8d9e0f" in body_of(response)["error"]["message"]


def test_malformed_job_id_is_a_400(aws, context):
    response = status_app.handler(load_event("status-malformed-id.json"), context)
    assert response["statusCode"] == 400
    assert "not a job id" in body_of(response)["error"]["message"]


def test_health_needs_no_key_and_no_aws(context):
    # No moto here: a call to AWS would fail on the disabled network.
    response = status_app.handler(load_event("health.json"), context)
    assert response["statusCode"] == 200
    assert body_of(response) == {"status": "ok"}


def test_missing_key_is_a_401(aws, context):
    event = status_event("3f1c2d9e-8a4b-4c1d-9e2f-5a6b7c8d9e0f")
    del event["headers"]["x-api-key"]
    del event["requestContext"]["identity"]["apiKeyId"]
    response = status_app.handler(event, context)
    assert response["statusCode"] == 401
    assert body_of(response)["error"]["code"] == "MISSING_API_KEY"


def test_unknown_route_is_a_json_404(context):
    event = load_event("health.json")
    event["path"] = event["resource"] = "/nope"
    response = status_app.handler(event, context)
    assert response["statusCode"] == 404
    assert body_of(response)["error"]["code"] == "ROUTE_NOT_FOUND"
