"""Hostile input and tenant isolation, through the local stack's real API
Gateway, functions (each with its role's permissions only) and S3: template
bombs, oversized bodies, a second key trying every route on the first key's
jobs, templates and outputs, result links that expire, deletion that leaves
nothing behind, and the functions' memory after it all.

The tests run in file order: the first records a result link and the last
checks, once its lifetime (OutputLinkSeconds=60 in the e2e deployment) has
passed, that S3 refuses it."""

from __future__ import annotations

import json
import time
import uuid

import pytest
from bench.coldstart import function_rss

from tests.e2e.conftest import LINK_SECONDS, call, fetch, new_key, wait_for_job
from tests.templates import FUNCTIONS

pytestmark = pytest.mark.e2e

MODEL = "amazon.nova-micro-v1:0"
FAST = 2.0  # seconds: a refusal that takes longer than this was not "at once"
MEMORY_MB = 256  # the API functions' memory setting in dev (EnvironmentConfig.ApiMemorySize)
LINKS: dict[str, object] = {}


@pytest.fixture(scope="module", autouse=True)
def warm(deployment):
    """One request to each API function first: what is timed below is the
    refusal, not an emulator process starting (a cold start)."""
    for method, path, body in (
        ("GET", "/templates", None),
        ("POST", "/generate", {"prompt": "x", "models": []}),
        ("POST", "/enhance", {"prompt": ""}),
        ("GET", "/jobs?limit=1", None),
    ):
        call(deployment, method, path, body)


def timed(deployment, *args, **kwargs):
    started = time.monotonic()
    reply = call(deployment, *args, **kwargs)
    return reply, time.monotonic() - started


def finished_job(deployment, key="default", prompt="Two words about queues"):
    accepted = call(deployment, "POST", "/generate", {"prompt": prompt, "models": [MODEL]}, key=key)
    assert accepted.status == 202, accepted
    job = wait_for_job(deployment, accepted.body["jobId"], key=key)
    assert job["status"] == "COMPLETED", job
    return job


def test_a_result_link_works_without_a_key_and_is_signed_for_its_lifetime(deployment):
    job = finished_job(deployment)
    (result,) = job["results"]
    status, body = fetch(deployment, result["url"])
    assert status == 200
    assert body.decode() == result["text"]
    assert f"X-Amz-Expires={LINK_SECONDS}" in result["url"]
    LINKS.update(url=result["url"], signed=time.monotonic())


# ----------------------------------------------------------------- bombs

TEMPLATE_BOMBS = [
    "{{ 9 ** (9 ** 8) }}",
    "{{ 'x' * 10**9 }}",
    "{% for i in range(10**9) %}{% for j in range(10**9) %}x{% endfor %}{% endfor %}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ " + "9" * 5000 + " }}",
    "{{ " + "(" * 300 + "1" + ")" * 300 + " }}",
    "{{ 1 / 0 }}",
]


@pytest.mark.parametrize("source", TEMPLATE_BOMBS, ids=range(len(TEMPLATE_BOMBS)))
def test_template_bombs_are_refused_at_once(deployment, source):
    template_id = f"bomb-{uuid.uuid4().hex[:8]}"
    reply, elapsed = timed(deployment, "POST", "/templates", {"templateId": template_id, "template": source})
    assert reply.status == 400, reply
    assert reply.body["error"]["code"] == "INVALID_REQUEST"
    assert reply.body["error"]["details"]["field"] == "template"
    assert elapsed < FAST
    assert call(deployment, "GET", f"/templates/{template_id}").status == 404  # nothing stored


def test_a_template_that_would_render_gigabytes_stops_at_the_prompt_limit(deployment):
    template_id = f"amplify-{uuid.uuid4().hex[:8]}"
    created = call(deployment, "POST", "/templates", {"templateId": template_id, "template": "{{ v }}" * 2000})
    assert created.status == 201, created
    body = {"template": {"id": template_id}, "variables": {"v": "x" * 19_000}, "models": [MODEL]}
    reply, elapsed = timed(deployment, "POST", "/generate", body)
    assert reply.status == 400, reply
    assert "more than 20000 characters" in reply.body["error"]["message"]
    assert elapsed < FAST


@pytest.mark.parametrize(("path", "megabytes"), [("/generate", 1), ("/templates", 1), ("/enhance", 5.7)])
def test_an_oversized_body_is_a_413_before_any_parsing(deployment, path, megabytes):
    body = json.dumps({"prompt": "x" * int(megabytes * 1024 * 1024), "models": [MODEL]})
    reply, elapsed = timed(deployment, "POST", path, body)
    assert reply.status == 413, reply
    assert reply.body["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert elapsed < FAST + megabytes  # the upload itself takes its time on loopback


# ------------------------------------------------------- another tenant


@pytest.fixture(scope="module")
def mallory(deployment):
    """A second key of the same deployment, trying everything on the first's things."""
    return new_key(deployment)


def test_another_key_cannot_read_cancel_or_delete_a_job_or_reach_its_outputs(deployment, mallory):
    job = finished_job(deployment)
    job_id = job["jobId"]
    for method, path in (("GET", f"/status/{job_id}"), ("POST", f"/jobs/{job_id}/cancel"), ("DELETE", f"/jobs/{job_id}")):
        reply = call(deployment, method, path, key=mallory)
        assert (reply.status, reply.body["error"]["code"]) == (404, "JOB_NOT_FOUND"), (method, path, reply)
    listed = call(deployment, "GET", "/jobs?limit=100", key=mallory)
    assert job_id not in [j["jobId"] for j in listed.body["jobs"]]
    # The owner's job is untouched and its output still there.
    again = call(deployment, "GET", f"/status/{job_id}")
    assert again.body["status"] == "COMPLETED"
    assert fetch(deployment, again.body["results"][0]["url"])[0] == 200


def test_another_key_cannot_read_version_list_share_or_delete_a_private_template(deployment, mallory):
    template_id = f"private-{uuid.uuid4().hex[:8]}"
    created = call(deployment, "POST", "/templates", {"templateId": template_id, "template": "Secret plan for {{ x }}"})
    assert created.status == 201, created
    owner = created.body["owner"]
    for path in (f"/templates/{template_id}", f"/templates/{template_id}?owner={owner}"):
        assert call(deployment, "GET", path, key=mallory).status == 404
    for scope in ("own", "shared"):
        listed = call(deployment, "GET", f"/templates?scope={scope}&limit=100", key=mallory).body["templates"]
        assert template_id not in [t["templateId"] for t in listed]
    ref = {"template": {"id": template_id, "owner": owner}, "variables": {"x": "y"}, "models": [MODEL]}
    assert call(deployment, "POST", "/generate", ref, key=mallory).status == 404
    # Mallory's writes land in Mallory's own namespace, never in the owner's.
    mine = call(deployment, "POST", "/templates", {"templateId": template_id, "template": "Mallory's {{ x }}"}, key=mallory)
    assert (mine.status, mine.body["version"]) == (201, 1)
    assert mine.body["owner"] != owner
    assert call(deployment, "PATCH", f"/templates/{template_id}", {"shared": True}, key=mallory).status == 200  # hers
    assert call(deployment, "DELETE", f"/templates/{template_id}", key=mallory).status == 200  # hers
    kept = call(deployment, "GET", f"/templates/{template_id}")
    assert (kept.status, kept.body["version"], kept.body["template"]) == (200, 1, "Secret plan for {{ x }}")
    assert kept.body["shared"] is False


def test_a_shared_template_can_be_used_by_another_key_but_only_changed_by_its_owner(deployment, mallory):
    template_id = f"team-{uuid.uuid4().hex[:8]}"
    created = call(deployment, "POST", "/templates", {"templateId": template_id, "template": "Summarise {{ x }}", "shared": True})
    owner = created.body["owner"]
    read = call(deployment, "GET", f"/templates/{template_id}?owner={owner}", key=mallory)
    assert (read.status, read.body["shared"]) == (200, True)
    ref = {"template": {"id": template_id, "owner": owner}, "variables": {"x": "queues"}, "models": [MODEL]}
    accepted = call(deployment, "POST", "/generate", ref, key=mallory)
    assert accepted.status == 202, accepted
    job = wait_for_job(deployment, accepted.body["jobId"], key=mallory)
    assert job["template"] == {"id": template_id, "owner": owner, "version": 1}
    # Unshared by its owner: gone for the other key at once.
    assert call(deployment, "PATCH", f"/templates/{template_id}", {"shared": False}).status == 200
    assert call(deployment, "GET", f"/templates/{template_id}?owner={owner}", key=mallory).status == 404


# ----------------------------------------------------------- deletion


def test_deleting_a_job_leaves_no_object_version_and_no_record(deployment):
    job = finished_job(deployment)
    job_id = job["jobId"]
    reply = call(deployment, "DELETE", f"/jobs/{job_id}")
    assert reply.status == 200, reply
    assert reply.body["outputVersionsDeleted"] >= 1
    s3 = deployment.client("s3")
    listed = s3.list_object_versions(Bucket=deployment.outputs["OutputsBucketName"], Prefix=f"jobs/{job_id}/")
    assert listed.get("Versions", []) == []
    assert listed.get("DeleteMarkers", []) == []
    table = deployment.client("dynamodb")
    item = table.get_item(TableName=deployment.outputs["JobsTableName"], Key={"jobId": {"S": job_id}})
    assert "Item" not in item
    assert call(deployment, "GET", f"/status/{job_id}").status == 404
    assert fetch(deployment, job["results"][0]["url"])[0] in (403, 404)  # the link reaches nothing now


# ----------------------------------------------------- after it all


def test_the_api_functions_stayed_within_their_memory(deployment):
    peaks = function_rss(deployment.stack_name, FUNCTIONS)
    api = {
        f: mb for f, mb in peaks.items() if f in ("GenerateFunction", "TemplatesFunction", "EnhanceFunction", "StatusFunction")
    }
    assert api, f"no function process of {deployment.stack_name} found"
    assert all(mb < MEMORY_MB for mb in api.values()), api


def test_an_expired_result_link_is_refused(deployment):
    assert LINKS, "the first test records a link"
    wait = LINKS["signed"] + LINK_SECONDS + 2 - time.monotonic()
    if wait > 0:
        time.sleep(wait)
    status, body = fetch(deployment, LINKS["url"])
    assert status == 403
    assert b"expired" in body
