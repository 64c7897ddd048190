"""GET /jobs: the caller's jobs, newest first, paginated on the owner index."""

from __future__ import annotations

import base64
import json

import pytest

from shared.jobs import JobRepository
from status import app as status_app
from tests.unit.conftest import body_of, load_event

OWNER = "k1a2b3c4d5"  # the apiKeyId of the sample events


def put_jobs(aws, owner: str, count: int, *, minute0: int = 0) -> list[str]:
    repo = JobRepository(aws.jobs_table)
    ids = []
    for i in range(count):
        job_id = f"00000000-0000-4000-8000-{owner[:4].encode().hex()}{i:04d}"
        repo.create(
            {
                "jobId": job_id,
                "owner": owner,
                "status": "COMPLETED",
                "kind": "text",
                "prompt": "secret prompt",
                "models": ["amazon.nova-micro-v1:0"],
                "results": {},
                "costUsd": 0.5,
                "createdAt": f"2026-11-22T10:{minute0 + i:02d}:00.000Z",
                "updatedAt": f"2026-11-22T10:{minute0 + i:02d}:30.000Z",
            }
        )
        ids.append(job_id)
    return ids


def list_event(**query):
    event = load_event("health.json")
    event.update(resource="/jobs", path="/jobs", queryStringParameters=query or None)
    event["headers"]["x-api-key"] = "local-test-key-0001"
    event["requestContext"]["identity"]["apiKeyId"] = OWNER
    return event


def test_lists_only_own_jobs_newest_first_without_prompts(aws, context):
    mine = put_jobs(aws, OWNER, 3)
    put_jobs(aws, "someone-else", 2)
    response = status_app.handler(list_event(), context)
    assert response["statusCode"] == 200
    body = body_of(response)
    assert [j["jobId"] for j in body["jobs"]] == list(reversed(mine))
    assert "nextToken" not in body
    first = body["jobs"][0]
    assert set(first) == {"jobId", "status", "kind", "models", "costUsd", "createdAt", "updatedAt"}
    assert first["costUsd"] == 0.5


def test_pages_follow_each_other_with_next_token(aws, context):
    mine = list(reversed(put_jobs(aws, OWNER, 5)))
    seen, token = [], None
    for _ in range(5):
        query = {"limit": "2", **({"nextToken": token} if token else {})}
        body = body_of(status_app.handler(list_event(**query), context))
        seen += [j["jobId"] for j in body["jobs"]]
        token = body.get("nextToken")
        if not token:
            break
    assert seen == mine


def token_for(key: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "token",
    [
        "not base64 at all!",
        token_for(["a", "list"]),
        token_for({"jobId": "x", "owner": OWNER}),  # a key missing
        token_for({"jobId": "x", "owner": "someone-else", "createdAt": "2026-11-22T10:00:00.000Z"}),
    ],
)
def test_a_forged_or_foreign_token_is_refused(aws, context, token):
    response = status_app.handler(list_event(nextToken=token), context)
    assert response["statusCode"] == 400
    assert body_of(response)["error"]["details"] == {"field": "nextToken"}


@pytest.mark.parametrize("limit", ["0", "101", "ten"])
def test_limit_out_of_range_names_the_parameter(aws, context, limit):
    response = status_app.handler(list_event(limit=limit), context)
    assert response["statusCode"] == 400
    assert body_of(response)["error"]["message"].startswith("limit: input should be")
