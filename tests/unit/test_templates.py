"""Assertions on the templates themselves: conventions, and every property the
local emulator accepts but does not apply (TTL, PITR, SSE, lifecycle, bucket
policies, gateway responses), so those are proven here rather than read back."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.costs import OPEN_INDEX
from shared.jobs import SWEEP_INDEX
from shared.templates import SHARED_INDEX
from tests.templates import FUNCTIONS, LAYERS, ROOT, layer, resources_of_type, root

ALL = {"template.yaml": root(), **{f"infrastructure/{n}.yaml": layer(n) for n in LAYERS}}
SECTION_ORDER = [
    "AWSTemplateFormatVersion",
    "Transform",
    "Description",
    "Metadata",
    "Parameters",
    "Rules",
    "Mappings",
    "Conditions",
    "Globals",
    "Resources",
    "Outputs",
]


def statements(template: dict[str, Any]):
    """Every policy statement of every resource, with the resource's id."""
    for logical_id, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        docs = [props.get("PolicyDocument"), props.get("AssumeRolePolicyDocument")]
        docs += [p.get("PolicyDocument") for p in props.get("Policies", [])]
        for doc in filter(None, docs):
            for statement in doc["Statement"]:
                yield logical_id, statement


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# ----------------------------------------------------------------- conventions


@pytest.mark.parametrize("name", ALL)
def test_sections_in_the_conventional_order(name):
    keys = list(ALL[name])
    assert keys == sorted(keys, key=SECTION_ORDER.index)


@pytest.mark.parametrize("name", ALL)
def test_every_parameter_is_described_labelled_and_grouped(name):
    template = ALL[name]
    interface = template["Metadata"]["AWS::CloudFormation::Interface"]
    grouped = [p for group in interface["ParameterGroups"] for p in group["Parameters"]]
    for param, spec in template.get("Parameters", {}).items():
        assert spec.get("Description"), f"{name}: {param} has no Description"
        assert param in interface["ParameterLabels"], f"{name}: {param} has no label"
        assert grouped.count(param) == 1, f"{name}: {param} is in {grouped.count(param)} groups"


@pytest.mark.parametrize("name", ALL)
def test_outputs_are_described_and_exported_under_their_own_key(name):
    for key, output in ALL[name]["Outputs"].items():
        assert output.get("Description"), f"{name}: output {key} has no Description"
        assert output["Export"]["Name"] == {"Fn::Sub": f"${{AWS::StackName}}-{key}"}


@pytest.mark.parametrize("name", [n for n in ALL if n != "template.yaml"])
def test_layers_take_environment_and_state_idle_cost(name):
    template = ALL[name]
    assert template["Parameters"]["Environment"]["AllowedValues"] == ["dev", "staging", "prod"]
    assert "Idle cost" in template["Description"]


def test_root_passes_each_layer_exactly_its_parameters():
    for logical_id, stack in resources_of_type(root(), "AWS::CloudFormation::Stack").items():
        child = layer(stack["Properties"]["TemplateURL"].removeprefix("infrastructure/").removesuffix(".yaml"))
        given = set(stack["Properties"]["Parameters"])
        declared = set(child["Parameters"])
        required = {p for p, spec in child["Parameters"].items() if "Default" not in spec}
        assert given <= declared, f"{logical_id} passes unknown parameters {given - declared}"
        assert required <= given, f"{logical_id} misses required parameters {required - given}"


def test_environment_rows_have_the_same_settings_and_dev_costs_nothing_idle():
    rows = root()["Mappings"]["EnvironmentConfig"]
    assert set(rows) == {"dev", "staging", "prod"}
    assert len({frozenset(row) for row in rows.values()}) == 1
    dev = rows["dev"]
    assert (dev["NatGateways"], dev["InterfaceEndpoints"], dev["EnableWaf"]) == ("none", "false", "false")
    assert rows["prod"]["RetainData"] == "true"
    assert rows["prod"]["AvailabilityZoneCount"] == 3


# ------------------------------------------------------------- least privilege


def test_each_function_has_its_own_role_from_the_iam_layer():
    functions = resources_of_type(root(), "AWS::Serverless::Function")
    roles = {
        fn["Properties"]["Role"]["Fn::GetAtt"][0] + "." + fn["Properties"]["Role"]["Fn::GetAtt"][1] for fn in functions.values()
    }
    assert len(roles) == len(functions) == len(FUNCTIONS)
    assert all(r.startswith("IamStack.Outputs.") for r in roles)


def test_lambda_trust_is_scoped_to_this_account():
    for _, statement in statements(layer("iam")):
        if statement.get("Action") == "sts:AssumeRole":
            assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}


# ------------------------------------------------------------- data at rest


def test_tables_are_on_demand_encrypted_with_pitr():
    tables = resources_of_type(layer("database"), "AWS::DynamoDB::Table")
    assert set(tables) == {"JobsTable", "CostTrackingTable", "BudgetLedgerTable", "TemplatesTable", "IdempotencyTable"}
    for logical_id, table in tables.items():
        props = table["Properties"]
        assert props["BillingMode"] == "PAY_PER_REQUEST", logical_id
        assert props["SSESpecification"]["SSEEnabled"] is True, logical_id
        assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True, logical_id


def test_table_keys_ttl_and_index_match_what_the_code_uses():
    res = layer("database")["Resources"]
    jobs = res["JobsTable"]["Properties"]
    assert jobs["KeySchema"] == [{"AttributeName": "jobId", "KeyType": "HASH"}]
    owner_index, sweep_index = jobs["GlobalSecondaryIndexes"]
    assert [k["AttributeName"] for k in owner_index["KeySchema"]] == ["owner", "createdAt"]
    assert sweep_index["IndexName"] == SWEEP_INDEX
    assert [k["AttributeName"] for k in sweep_index["KeySchema"]] == ["sweep", "sweepAt"]  # shared.jobs.JobRepository.due
    (open_index,) = res["CostTrackingTable"]["Properties"]["GlobalSecondaryIndexes"]
    assert open_index["IndexName"] == OPEN_INDEX
    assert [k["AttributeName"] for k in open_index["KeySchema"]] == ["openReservation", "leaseUntil"]
    # What Call.from_record reads off the index, besides the keys.
    assert set(open_index["Projection"]["NonKeyAttributes"]) == {"owner", "model", "kind", "reservedUsd", "period"}
    assert res["CostTrackingTable"]["Properties"]["TimeToLiveSpecification"] == {"AttributeName": "expiresAt", "Enabled": True}
    idem = res["IdempotencyTable"]["Properties"]
    assert idem["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]  # what Powertools expects
    assert idem["TimeToLiveSpecification"] == {"AttributeName": "expiration", "Enabled": True}
    assert jobs["TimeToLiveSpecification"] == {"AttributeName": "expiresAt", "Enabled": True}  # JobRetentionDays
    templates = res["TemplatesTable"]["Properties"]
    assert [k["AttributeName"] for k in templates["KeySchema"]] == ["owner", "sk"]  # shared.templates.head_key
    (shared,) = templates["GlobalSecondaryIndexes"]
    assert shared["IndexName"] == SHARED_INDEX
    assert [k["AttributeName"] for k in shared["KeySchema"]] == ["sharedScope", "sharedSort"]


def test_stateful_resources_are_retained_when_asked():
    for name in ("database", "storage"):
        for logical_id, resource in layer(name)["Resources"].items():
            if resource["Type"] in ("AWS::DynamoDB::Table", "AWS::S3::Bucket") and logical_id != "IdempotencyTable":
                assert resource["DeletionPolicy"] == {"Fn::If": ["RetainDataOnDelete", "Retain", "Delete"]}, logical_id
                assert resource["UpdateReplacePolicy"] == resource["DeletionPolicy"], logical_id


def test_buckets_are_private_versioned_encrypted_and_tls_only():
    storage = layer("storage")
    buckets = resources_of_type(storage, "AWS::S3::Bucket")
    policies = {p["Properties"]["Bucket"]["Ref"]: p for p in resources_of_type(storage, "AWS::S3::BucketPolicy").values()}
    for logical_id, bucket in buckets.items():
        props = bucket["Properties"]
        assert all(props["PublicAccessBlockConfiguration"].values()), logical_id
        assert len(props["PublicAccessBlockConfiguration"]) == 4
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}
        assert props["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"]
        assert props["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
        deny = [s for s in policies[logical_id]["Properties"]["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
        assert any(s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for s in deny), logical_id


def test_outputs_lifecycle_tiers_expires_and_cleans_up():
    rules = {r["Id"]: r for r in layer("storage")["Resources"]["OutputsBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]}
    assert rules["tier-and-expire-job-outputs"]["Prefix"] == "jobs/"
    tier, _ = rules["tier-and-expire-job-outputs"]["Transitions"]["Fn::If"][1:]
    assert rules["tier-and-expire-job-outputs"]["Transitions"]["Fn::If"][0] == "TierOutputs"
    assert tier[0]["StorageClass"] == "GLACIER_IR"
    assert "NoncurrentVersionExpiration" in rules["expire-noncurrent-versions"]
    assert rules["abort-incomplete-multipart-uploads"]["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 1


def test_outputs_are_private_the_cdn_reads_the_playground_only_and_tls_is_12_or_later():
    storage = layer("storage")
    config = storage["Resources"]["Distribution"]["Properties"]["DistributionConfig"]
    (origin,) = config["Origins"]
    assert origin["OriginAccessControlId"] == {"Fn::GetAtt": ["OriginAccessControl", "Id"]}
    assert origin["S3OriginConfig"]["OriginAccessIdentity"] == ""
    assert config["DefaultCacheBehavior"]["ViewerProtocolPolicy"] == "redirect-to-https"
    statements = storage["Resources"]["OutputsBucketPolicy"]["Properties"]["PolicyDocument"]["Statement"]
    # Nothing but the functions' roles can read an output: the bucket policy's
    # one Allow is CloudFront's, on the playground page's prefix alone (its
    # files are stored with SSE-S3), and no KMS grant for CloudFront on the outputs key.
    (allow,) = [s for s in statements if s["Effect"] == "Allow"]
    assert allow["Resource"] == {"Fn::Sub": "${OutputsBucket.Arn}/playground/*"}
    assert allow["Action"] == "s3:GetObject"
    key_statements = storage["Resources"]["OutputsKey"]["Properties"]["KeyPolicy"]["Statement"]
    assert all("Service" not in s["Principal"] for s in key_statements)
    tls = next(s for s in statements if s["Sid"] == "DenyTlsOlderThan12")
    assert (tls["Effect"], tls["Principal"], tls["Condition"]) == ("Deny", "*", {"NumericLessThan": {"s3:TlsVersion": "1.2"}})


def test_queues_are_encrypted_and_dead_letter_after_three_receives():
    res = root()["Resources"]
    for queue in ("JobQueue", "JobDeadLetterQueue"):
        assert res[queue]["Properties"]["SqsManagedSseEnabled"] is True
    job_queue = res["JobQueue"]["Properties"]
    assert job_queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": ["JobDeadLetterQueue", "Arn"]},
        "maxReceiveCount": 3,
    }
    worker_timeout = res["WorkerFunction"]["Properties"]["Timeout"]
    assert job_queue["VisibilityTimeout"] >= 6 * worker_timeout


# --------------------------------------------------------------------- API


def test_every_route_but_health_requires_an_api_key():
    res = root()["Resources"]
    assert res["GenstackApi"]["Properties"]["Auth"]["ApiKeyRequired"] is True
    routes = {}
    for fn in resources_of_type(root(), "AWS::Serverless::Function").values():
        for event in fn["Properties"].get("Events", {}).values():
            if event["Type"] == "Api":
                props = event["Properties"]
                routes[(props["Method"], props["Path"])] = props.get("Auth", {}).get("ApiKeyRequired", True)
    assert routes == {
        ("post", "/generate"): True,
        ("get", "/status/{jobId}"): True,
        ("get", "/jobs"): True,
        ("get", "/usage"): True,
        ("get", "/models"): True,
        ("post", "/jobs/{jobId}/cancel"): True,
        ("delete", "/jobs/{jobId}"): True,
        ("post", "/templates"): True,
        ("get", "/templates"): True,
        ("get", "/templates/{templateId}"): True,
        ("patch", "/templates/{templateId}"): True,
        ("delete", "/templates/{templateId}"): True,
        ("post", "/enhance"): True,
        # The OpenAI-compatible API: the key comes through its authorizer (bearer)
        ("get", "/v1/models"): True,
        ("get", "/v1/models/{model+}"): True,
        ("post", "/v1/chat/completions"): True,
        ("post", "/v1/images/generations"): True,
        ("get", "/health"): False,
        # CORS preflight: browsers send it without the key (Powertools answers it)
        ("options", "/generate"): False,
        ("options", "/jobs/{jobId}/cancel"): False,
        ("options", "/jobs/{jobId}"): False,
        ("options", "/status/{jobId}"): False,
        ("options", "/jobs"): False,
        ("options", "/usage"): False,
        ("options", "/models"): False,
        ("options", "/enhance"): False,
        ("options", "/templates"): False,
        ("options", "/templates/{templateId}"): False,
    }


def test_json_bodies_are_checked_at_the_gateway_before_any_function_runs():
    api = root()["Resources"]["GenstackApi"]["Properties"]
    assert api["Models"]["JsonObject"]["type"] == "object"
    assert "INVALID_REQUEST" in api["GatewayResponses"]["BAD_REQUEST_BODY"]["ResponseTemplates"]["application/json"]
    bodies = {}
    for fn in resources_of_type(root(), "AWS::Serverless::Function").values():
        for event in fn["Properties"].get("Events", {}).values():
            props = event["Properties"]
            if event["Type"] == "Api" and props["Method"] in ("post", "patch") and "{jobId}" not in props["Path"]:
                bodies[props["Path"]] = props.get("RequestModel")
    expected = {"Model": "JsonObject", "Required": True, "ValidateBody": True}
    assert bodies == {
        "/generate": expected,
        "/enhance": expected,
        "/templates": expected,
        "/templates/{templateId}": expected,
        "/v1/chat/completions": expected,
        "/v1/images/generations": expected,
    }


def test_gateway_refusals_use_the_error_contract():
    responses = root()["Resources"]["GenstackApi"]["Properties"]["GatewayResponses"]
    for kind in ("DEFAULT_4XX", "DEFAULT_5XX"):
        template = responses[kind]["ResponseTemplates"]["application/json"]
        assert template.startswith('{"error": {"code": "$context.error.responseType"')


def test_api_logs_access_in_json_and_never_request_bodies():
    props = root()["Resources"]["GenstackApi"]["Properties"]
    assert props["AccessLogSetting"]["Format"].startswith("{")
    assert props["MethodSettings"][0]["DataTraceEnabled"] is False


def test_waf_and_nat_exist_only_behind_conditions():
    # The emulator refuses WAF associations, and dev must cost nothing idle.
    for name, type_ in (
        ("api", "AWS::WAFv2::WebACL"),
        ("api", "AWS::WAFv2::WebACLAssociation"),
        ("network", "AWS::EC2::NatGateway"),
    ):
        for logical_id, resource in resources_of_type(layer(name), type_).items():
            assert "Condition" in resource, logical_id


def test_the_sam_translation_gives_the_openai_api_its_authorizer_key_source_and_timeouts():
    """What CloudFormation gets after the SAM transform (the emulator ignores the
    key source on create, so this is where it is checked)."""
    import subprocess

    sam_python = ROOT / ".tools" / "sam" / "bin" / "python"
    if not sam_python.exists():
        subprocess.run(["bash", str(ROOT / "infrastructure/scripts/install.sh"), "--tools", "sam"], check=True)
    translated = subprocess.run(
        [str(sam_python), str(ROOT / "tests" / "sam_translate.py"), str(ROOT / "template.yaml")],
        capture_output=True, text=True, check=True, timeout=300,
    )  # fmt: skip
    api = json.loads(translated.stdout)["Resources"]["OpenAiApi"]["Properties"]
    assert api["ApiKeySourceType"] == "AUTHORIZER"
    body = api["Body"]
    schemes = body["securityDefinitions"]
    extension = schemes["BearerKey"]["x-amazon-apigateway-authorizer"]
    assert (extension["type"], extension["identitySource"], extension["authorizerResultTtlInSeconds"]) == (
        "request",
        "method.request.header.Authorization",
        300,
    )
    assert schemes["api_key"] == {"type": "apiKey", "name": "x-api-key", "in": "header"}
    for path, operations in body["paths"].items():
        for method, operation in operations.items():
            assert {name for requirement in operation["security"] for name in requirement} == {"BearerKey", "api_key"}
            timeout = operation["x-amazon-apigateway-integration"].get("timeoutInMillis")
            if method == "post":  # the model calls: the parameter's integration timeout
                assert timeout == {"Fn::FindInMap": ["IntegrationTimeouts", {"Ref": "OpenAiApiTimeoutSeconds"}, "Millis"]}, path
    assert set(body["paths"]) == {"/v1/models", "/v1/models/{model+}", "/v1/chat/completions", "/v1/images/generations"}
