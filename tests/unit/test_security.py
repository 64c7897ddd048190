"""Security properties over every template, the bootstrap stack included,
rendered for every environment: no bucket without a public-access block and a
TLS-only policy, no data store unencrypted, queues and topics encrypted, and no
route but /health (and CORS preflights) without an API key. (No IAM statement
with a wildcard action: tests/unit/test_environments.py.)"""

from __future__ import annotations

import pytest

from cfn_render import Rendered, render

ENVS = ("dev", "staging", "prod")
TLS_ONLY = {"Bool": {"aws:SecureTransport": "false"}}


def deployments() -> list[tuple[str, Rendered]]:
    rendered = [(env, render(parameters={"Environment": env, "AlarmEmail": "ops@example.com"})) for env in ENVS]
    return [*rendered, ("bootstrap", render("infrastructure/bootstrap.yaml"))]


@pytest.mark.parametrize(("name", "rendered"), deployments(), ids=lambda v: v if isinstance(v, str) else "")
def test_every_bucket_blocks_public_access_and_refuses_plain_http(name, rendered):
    buckets, policies = {}, {}
    for stack, logical_id, resource in rendered.walk():
        if resource["Type"] == "AWS::S3::Bucket":
            buckets[(stack, logical_id)] = resource["Properties"]
        elif resource["Type"] == "AWS::S3::BucketPolicy":
            policies[(stack, resource["Properties"]["Bucket"].removeprefix("{Ref:").removesuffix("}"))] = resource["Properties"]
    assert buckets
    for (stack, logical_id), props in buckets.items():
        block = props["PublicAccessBlockConfiguration"]
        assert block == {
            "BlockPublicAcls": True,
            "BlockPublicPolicy": True,
            "IgnorePublicAcls": True,
            "RestrictPublicBuckets": True,
        }
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]["SSEAlgorithm"]
        assert props["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
        statements = policies[(stack, logical_id)]["PolicyDocument"]["Statement"]
        assert any(s["Effect"] == "Deny" and s.get("Condition") == TLS_ONLY for s in statements), logical_id
        for statement in statements:
            if statement["Effect"] == "Allow":
                assert statement["Principal"] != "*", f"{logical_id}: public Allow"


@pytest.mark.parametrize("env", ENVS)
def test_every_data_store_queue_and_topic_is_encrypted(env):
    rendered = render(parameters={"Environment": env, "AlarmEmail": "ops@example.com"})
    kinds = set()
    for _, logical_id, resource in rendered.walk():
        props = resource.get("Properties", {})
        kinds.add(resource["Type"])
        if resource["Type"] == "AWS::DynamoDB::Table":
            assert props["SSESpecification"]["SSEEnabled"] is True, logical_id
        elif resource["Type"] == "AWS::SQS::Queue":
            assert props.get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in props, logical_id
        elif resource["Type"] == "AWS::SNS::Topic":
            assert props["KmsMasterKeyId"], logical_id
    assert {"AWS::DynamoDB::Table", "AWS::SQS::Queue", "AWS::SNS::Topic"} <= kinds


@pytest.mark.parametrize("env", ENVS)
def test_only_health_and_preflights_are_open_without_a_key(env):
    rendered = render(parameters={"Environment": env, "AlarmEmail": "ops@example.com"})
    assert rendered.props("GenstackApi")["Auth"]["ApiKeyRequired"] is True
    open_routes = set()
    for fn in rendered.of_type("AWS::Serverless::Function").values():
        for event in fn["Properties"].get("Events", {}).values():
            props = event["Properties"]
            if event["Type"] == "Api" and props.get("Auth", {}).get("ApiKeyRequired") is False:
                open_routes.add((props["Method"], props["Path"]))
    assert {path for method, path in open_routes if method != "options"} == {"/health"}
