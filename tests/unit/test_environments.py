"""Each environment as CloudFormation would resolve it: the root template and
its six layers rendered offline (infrastructure/scripts/cfn_render.py) for
dev, staging and prod, and the resolved resources checked against the
production posture each environment promises (README "Environments")."""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

import pytest

import cost
import readme_tables
from cfn_render import Rendered, RenderError, Unresolved, render
from shared.api import MAX_BODY_BYTES
from tests.templates import FUNCTIONS, load, root

ENVS = ("dev", "staging", "prod")
CONFIG = root()["Mappings"]["EnvironmentConfig"]
STATEFUL = ("AWS::DynamoDB::Table", "AWS::S3::Bucket", "AWS::KMS::Key")


@cache
def env(name: str, **extra: str) -> Rendered:
    return render(parameters={"Environment": name, "AlarmEmail": "ops@example.com", **extra}, stack_name=f"genstack-{name}")


def everything(rendered: Rendered, type_: str) -> dict[str, dict[str, Any]]:
    return {f"{stack}/{lid}": res for stack, lid, res in rendered.walk() if res["Type"] == type_}


def layer(rendered: Rendered, name: str) -> Rendered:
    return rendered.children[f"{name.title()}Stack"]


# ------------------------------------------------------------------- network


@pytest.mark.parametrize("name", ENVS)
def test_availability_zones_and_private_subnets(name):
    network = layer(env(name), "network")
    private = [
        r for r in network.of_type("AWS::EC2::Subnet").values() if {"Key": "Tier", "Value": "private"} in r["Properties"]["Tags"]
    ]
    azs = {s["Properties"]["AvailabilityZone"] for s in private}
    assert len(private) == len(azs) == CONFIG[name]["AvailabilityZoneCount"]


@pytest.mark.parametrize("name", ENVS)
def test_functions_run_in_private_subnets_where_the_environment_says(name):
    functions = env(name).of_type("AWS::Serverless::Function")
    assert set(functions) == FUNCTIONS
    for logical_id, fn in functions.items():
        vpc = fn["Properties"].get("VpcConfig")
        if CONFIG[name]["FunctionsInVpc"] == "true":
            assert "NetworkStack.Outputs.PrivateSubnetIds" in str(vpc["SubnetIds"]) or vpc["SubnetIds"], logical_id
            assert vpc["SecurityGroupIds"], logical_id
        else:
            assert vpc is None, logical_id


@pytest.mark.parametrize("name", ENVS)
def test_aws_apis_are_reached_through_endpoints_not_nat(name):
    network = layer(env(name), "network")
    assert not network.of_type("AWS::EC2::NatGateway"), "no environment needs internet egress"
    endpoints = {
        r["Properties"]["ServiceName"].rsplit(".", 1)[-1]: r["Properties"]
        for r in network.of_type("AWS::EC2::VPCEndpoint").values()
    }
    assert endpoints["s3"]["VpcEndpointType"] == endpoints["dynamodb"]["VpcEndpointType"] == "Gateway"
    interface = {k: v for k, v in endpoints.items() if v["VpcEndpointType"] == "Interface"}
    if CONFIG[name]["FunctionsInVpc"] == "true":
        # Every AWS API the functions call: DynamoDB and S3 (gateway), Bedrock
        # runtime, SQS and Lambda (the worker invokes the chart renderer)
        # (interface). Logs and X-Ray go through the Lambda service.
        assert set(interface) == {"bedrock-runtime", "sqs", "lambda"}
        for props in interface.values():
            assert props["PrivateDnsEnabled"] is True
            assert len(props["SubnetIds"]) == CONFIG[name]["AvailabilityZoneCount"]
    else:
        assert interface == {}


def test_security_groups_allow_only_https_from_functions_to_endpoints():
    network = layer(env("prod"), "network")
    functions = network.props("FunctionSecurityGroup")
    assert "SecurityGroupIngress" not in functions
    assert [(r["IpProtocol"], r["FromPort"], r["ToPort"]) for r in functions["SecurityGroupEgress"]] == [("tcp", 443, 443)]
    endpoints = network.props("EndpointSecurityGroup")
    (ingress,) = endpoints["SecurityGroupIngress"]
    assert (ingress["FromPort"], ingress["ToPort"]) == (443, 443)
    assert ingress["SourceSecurityGroupId"] == Unresolved("{Ref:FunctionSecurityGroup}")


# ---------------------------------------------------------- storage and data


@pytest.mark.parametrize("name", ENVS)
def test_stateful_resources_are_retained_and_protected_in_prod_only(name):
    retain = CONFIG[name]["RetainData"] == "true"
    for path, resource in [(p, r) for t in STATEFUL for p, r in everything(env(name), t).items()]:
        if path.endswith("IdempotencyTable"):
            assert resource["DeletionPolicy"] == "Delete", "idempotency records are transient"
            continue
        expected = "Retain" if retain else "Delete"
        assert resource["DeletionPolicy"] == resource["UpdateReplacePolicy"] == expected, path
        if resource["Type"] == "AWS::DynamoDB::Table":
            assert resource["Properties"]["DeletionProtectionEnabled"] is retain, path
            assert resource["Properties"]["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


@pytest.mark.parametrize("name", ENVS)
def test_outputs_bucket_uses_a_customer_managed_key_in_prod_and_sse_s3_elsewhere(name):
    storage = layer(env(name), "storage")
    (rule,) = storage.props("OutputsBucket")["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    if CONFIG[name]["CustomerManagedKeys"] == "true":
        assert rule["ServerSideEncryptionByDefault"] == {
            "SSEAlgorithm": "aws:kms",
            "KMSMasterKeyID": Unresolved("{GetAtt:OutputsKey.Arn}"),
        }
        assert rule["BucketKeyEnabled"] is True
        assert storage.props("OutputsKey")["EnableKeyRotation"] is True
    else:
        assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
        assert "OutputsKey" not in storage.resources


@pytest.mark.parametrize("name", ENVS)
def test_tables_use_a_customer_managed_key_in_prod(name):
    database = layer(env(name), "database")
    cmk = CONFIG[name]["CustomerManagedKeys"] == "true"
    for logical_id, table in database.of_type("AWS::DynamoDB::Table").items():
        sse = table["Properties"]["SSESpecification"]
        assert sse["SSEEnabled"] is True
        if cmk and logical_id != "IdempotencyTable":
            assert sse["KMSMasterKeyId"] == Unresolved("{Ref:TablesKey}"), logical_id
        else:
            assert "KMSMasterKeyId" not in sse, logical_id
    # The functions may use the tables' key, and only through DynamoDB.
    iam = layer(env(name), "iam")
    if cmk:
        (statement,) = iam.props("TablesKeyAccess")["PolicyDocument"]["Statement"]
        assert statement["Condition"] == {"StringEquals": {"kms:ViaService": "dynamodb.us-east-1.amazonaws.com"}}
        # Every function but the authorizer and the chart renderer, which read no table.
        assert len(iam.props("TablesKeyAccess")["Roles"]) == len(FUNCTIONS) - 2
    else:
        assert "TablesKeyAccess" not in iam.resources


def test_worker_may_encrypt_outputs_with_the_key_through_s3_only():
    worker = layer(env("prod"), "iam").props("WorkerRole")["Policies"][0]["PolicyDocument"]["Statement"]
    (statement,) = [s for s in worker if s["Sid"] == "EncryptJobOutputs"]
    assert statement["Action"] == "kms:GenerateDataKey"
    assert statement["Condition"] == {"StringEquals": {"kms:ViaService": "s3.us-east-1.amazonaws.com"}}
    dev_worker = layer(env("dev"), "iam").props("WorkerRole")["Policies"][0]["PolicyDocument"]["Statement"]
    assert "EncryptJobOutputs" not in {s["Sid"] for s in dev_worker}


def test_cors_is_the_playgrounds_origin_unless_more_are_configured():
    storage = layer(env("dev"), "storage")
    assert "CorsConfiguration" not in storage.props("OutputsBucket")
    assert "CorsConfig" not in storage.props("SecurityHeadersPolicy")["ResponseHeadersPolicyConfig"]
    origins = "https://app.example.com,https://admin.example.com"
    rendered = env("dev", CorsAllowedOrigins=origins)
    storage = layer(rendered, "storage")
    (rule,) = storage.props("OutputsBucket")["CorsConfiguration"]["CorsRules"]
    assert rule["AllowedOrigins"] == origins.split(",")
    assert rule["AllowedMethods"] == ["GET", "HEAD"]
    cdn = storage.props("SecurityHeadersPolicy")["ResponseHeadersPolicyConfig"]["CorsConfig"]
    assert cdn["AccessControlAllowOrigins"]["Items"] == origins.split(",")
    assert cdn["AccessControlAllowCredentials"] is False
    # The API also allows the playground's origin (the distribution), first.
    playground = "https://{GetAtt:Distribution.DomainName}"
    for fn in rendered.of_type("AWS::Serverless::Function").values():
        assert fn["Properties"]["Environment"]["Variables"]["CORS_ALLOWED_ORIGINS"] == f"{playground},{origins}"
    for fn in env("dev").of_type("AWS::Serverless::Function").values():
        assert fn["Properties"]["Environment"]["Variables"]["CORS_ALLOWED_ORIGINS"] == f"{playground},"


def test_a_custom_cdn_domain_gets_tls_1_2_and_its_certificate():
    certificate = "arn:aws:acm:us-east-1:123456789012:certificate/0f1e2d3c-aaaa-bbbb-cccc-000000000000"
    storage = layer(env("prod", CdnDomainName="media.example.com", CdnCertificateArn=certificate), "storage")
    config = storage.props("Distribution")["DistributionConfig"]
    assert config["Aliases"] == ["media.example.com"]
    assert config["ViewerCertificate"] == {
        "AcmCertificateArn": certificate,
        "MinimumProtocolVersion": "TLSv1.2_2021",
        "SslSupportMethod": "sni-only",
    }
    assert storage.outputs["CdnDomainName"] == "media.example.com"


# ------------------------------------------------------------ compute, API


@pytest.mark.parametrize("name", ENVS)
def test_memory_concurrency_tracing_and_log_retention_follow_the_environment(name):
    rendered = env(name)
    row = CONFIG[name]
    for logical_id, fn in rendered.of_type("AWS::Serverless::Function").items():
        props = fn["Properties"]
        fixed = {"AuthorizerFunction": 128, "ChartRendererFunction": 1024}
        expected = {"WorkerFunction": row["WorkerMemorySize"], **fixed}.get(logical_id, row["ApiMemorySize"])
        assert props["MemorySize"] == expected, logical_id
        assert props["Tracing"] == "Active", logical_id
        assert props["Environment"]["Variables"]["POWERTOOLS_LOG_LEVEL"] == row["LogLevel"]
    worker = rendered.props("WorkerFunction")
    if row["WorkerReservedConcurrency"]:
        assert worker["ReservedConcurrentExecutions"] == row["WorkerReservedConcurrency"]
        assert worker["Events"]["Jobs"]["Properties"]["ScalingConfig"]["MaximumConcurrency"] <= row["WorkerReservedConcurrency"]
    else:
        assert "ReservedConcurrentExecutions" not in worker
    for log_group in everything(rendered, "AWS::Logs::LogGroup").values():
        assert int(log_group["Properties"]["RetentionInDays"]) == row["LogRetentionDays"]
    # The API functions' ceilings, so that a flood on one route cannot take the
    # account's concurrency from the others or the worker (none in dev).
    for function in ("Generate", "Status", "Enhance", "Templates", "OpenAi"):
        reserved = rendered.props(f"{function}Function").get("ReservedConcurrentExecutions")
        assert reserved == (row[f"{function}ReservedConcurrency"] or None), function
    if name != "dev":
        reserved = sum(row[f"{f}ReservedConcurrency"] for f in ("Generate", "Status", "Enhance", "Templates", "OpenAi", "Worker"))
        assert reserved <= 1000 - 100 - 500  # a default account (1,000) keeps 100 unreserved, and room for others


@pytest.mark.parametrize("name", ENVS)
def test_stage_throttle_and_two_usage_plan_tiers(name):
    rendered, row = env(name), CONFIG[name]
    (settings,) = rendered.props("GenstackApi")["MethodSettings"]
    assert (settings["ThrottlingRateLimit"], settings["ThrottlingBurstLimit"]) == (
        row["StageThrottleRate"],
        row["StageThrottleBurst"],
    )
    api = layer(rendered, "api")
    plans = {
        p["Properties"]["UsagePlanName"].rsplit("-", 1)[-1]: p["Properties"]
        for p in api.of_type("AWS::ApiGateway::UsagePlan").values()
    }
    assert set(plans) == {"free", "standard"}
    assert plans["standard"]["Throttle"] == {"RateLimit": str(row["KeyThrottleRate"]), "BurstLimit": str(row["KeyThrottleBurst"])}
    assert plans["standard"]["Quota"] == {"Limit": str(row["KeyDailyQuota"]), "Period": "DAY"}
    assert plans["free"]["Quota"] == {"Limit": str(row["FreeKeyDailyQuota"]), "Period": "DAY"}
    assert int(plans["free"]["Quota"]["Limit"]) < int(plans["standard"]["Quota"]["Limit"])
    assert int(plans["free"]["Throttle"]["RateLimit"]) < int(plans["standard"]["Throttle"]["RateLimit"])


@pytest.mark.parametrize("name", ENVS)
def test_waf_with_managed_rules_and_a_rate_rule_in_staging_and_prod(name):
    api = layer(env(name), "api")
    if CONFIG[name]["EnableWaf"] != "true":
        assert not api.of_type("AWS::WAFv2::WebACL")
        return
    acl = api.props("WebAcl")
    rules = {r["Name"]: r for r in acl["Rules"]}
    assert rules["RateLimitPerIp"]["Statement"]["RateBasedStatement"]["AggregateKeyType"] == "IP"
    managed = {
        r["Statement"]["ManagedRuleGroupStatement"]["Name"] for r in acl["Rules"] if "ManagedRuleGroupStatement" in r["Statement"]
    }
    assert {"AWSManagedRulesCommonRuleSet", "AWSManagedRulesKnownBadInputsRuleSet"} <= managed
    assert api.props("WebAclAssociation")["WebACLArn"] == Unresolved("{GetAtt:WebAcl.Arn}")
    # Prompts are free text: the managed rules that inspect bodies count, they do not block.
    counted = {
        o["Name"]
        for r in acl["Rules"]
        if "ManagedRuleGroupStatement" in r["Statement"]
        for o in r["Statement"]["ManagedRuleGroupStatement"].get("RuleActionOverrides", [])
        if o["ActionToUse"] == {"Count": {}}
    }
    assert {"CrossSiteScripting_BODY", "GenericLFI_BODY", "GenericRFI_BODY", "EC2MetaDataSSRF_BODY", "Log4JRCE_BODY"} <= counted
    assert all(name.endswith("_BODY") for name in counted)


def test_the_waf_refuses_a_body_over_the_functions_limit_with_a_413_in_the_error_contract():
    acl = layer(env("prod"), "api").props("WebAcl")
    rule = next(r for r in acl["Rules"] if r["Name"] == "BodyTooLarge")
    block = rule["Action"]["Block"]["CustomResponse"]
    assert block["ResponseCode"] == 413
    body = json.loads(acl["CustomResponseBodies"][block["CustomResponseBodyKey"]]["Content"])
    assert body["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert body["error"]["details"] == {"maxBytes": MAX_BODY_BYTES}
    statement = rule["Statement"]["RegexMatchStatement"]
    assert statement["FieldToMatch"] == {"SingleHeader": {"Name": "content-length"}}
    pattern = re.compile(statement["RegexString"])
    # The pattern matches exactly the lengths above the limit.
    for length in [*range(MAX_BODY_BYTES - 2000, MAX_BODY_BYTES + 2000), 0, 1, 99_999, 999_999, 10**7, 10**12]:
        assert bool(pattern.match(str(length))) == (length > MAX_BODY_BYTES), length
    assert pattern.match("000" + str(MAX_BODY_BYTES + 1))
    assert not pattern.match("abc")


def test_the_local_emulator_target_drops_only_what_emulators_cannot_create():
    on_aws, local = env("prod"), env("prod", DeployTarget="local-emulator")
    types_aws = sorted((s, r) for s, r, _ in on_aws.walk())
    types_local = sorted((s, r) for s, r, _ in local.walk())
    assert set(types_aws) - set(types_local) == {
        ("template/ApiStack", "WebAclAssociation"),
        ("template/ApiStack", "OpenAiWebAclAssociation"),
        ("template/MonitoringStack", "FunctionThrottlesAlarm"),  # metric math
        ("template/MonitoringStack", "DynamoDbThrottlesAlarm"),
    }
    assert set(types_local) <= set(types_aws)


@pytest.mark.parametrize("name", ENVS)
def test_alarms_and_dashboard_exist_where_the_environment_pays_for_them(name):
    rendered = env(name)
    alarms = everything(rendered, "AWS::CloudWatch::Alarm")
    if CONFIG[name]["AlarmsAndDashboard"] == "true":
        assert alarms
        assert everything(rendered, "AWS::CloudWatch::Dashboard")
        row = CONFIG[name]
        thresholds = {
            row["FunctionErrorsThreshold"],
            row["Api5xxThreshold"],
            row["ApiLatencyP99Ms"],
            row["QueueAgeAlarmSeconds"],
            1,
        }
        for alarm in alarms.values():
            if alarm["Properties"]["AlarmName"].endswith("daily-spend"):
                continue  # a template parameter, not an environment setting
            assert int(alarm["Properties"]["Threshold"]) in thresholds
    else:
        assert not alarms
        assert layer(rendered, "monitoring").outputs["DashboardName"] == "none"


# ------------------------------------------------------------------ rules


@pytest.mark.parametrize(
    ("parameters", "rule"),
    [
        ({"Environment": "prod", "AlarmEmail": ""}, "ProdAlarmsReachSomeone"),
        ({"CdnDomainName": "media.example.com"}, "CustomDomainNeedsCertificate"),
        (
            {"CdnCertificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/0f1e2d3c-aaaa-bbbb-cccc-000000000000"},
            "CertificateNeedsCustomDomain",
        ),
    ],
)
def test_rules_refuse_contradictory_parameters_with_a_clear_message(parameters, rule):
    failures = render(parameters=parameters).rule_failures
    assert [f.split(":")[0] for f in failures] == [rule]
    assert len(failures[0]) > len(rule) + 20  # a sentence saying what to change


@pytest.mark.parametrize("name", ENVS)
def test_consistent_parameters_pass_every_rule(name):
    assert env(name).rule_failures == []


def test_parameter_values_outside_the_allowed_set_are_refused():
    with pytest.raises(RenderError, match="Environment"):
        render(parameters={"Environment": "production"})
    with pytest.raises(RenderError, match="CorsAllowedOrigins"):
        render(parameters={"CorsAllowedOrigins": "app.example.com"})


# --------------------------------------------------------------------- IAM


# Statements whose Resource is '*' because AWS allows nothing else there.
STAR_RESOURCE_ALLOWED = {
    "WriteTraces",  # X-Ray has no resource-level permissions
    "AccountAdministersAndUsesTheKey",  # a key policy's Resource is always the key itself: '*'
    "ManageFunctionNetworkInterfaces",  # Lambda's ENI management in the VPC: EC2 takes no resource to name
}


def rendered_statements(rendered: Rendered):
    for stack, logical_id, resource in rendered.walk():
        props = resource.get("Properties", {})
        docs = [props.get("PolicyDocument"), props.get("KeyPolicy")]
        docs += [p["PolicyDocument"] for p in props.get("Policies", [])]
        for doc in filter(None, docs):
            for statement in doc["Statement"]:
                yield f"{stack}/{logical_id}", statement


@pytest.mark.parametrize("name", ENVS)
def test_no_statement_has_a_wildcard_action_and_star_resources_are_justified(name):
    for where, statement in rendered_statements(env(name)):
        if statement["Effect"] == "Deny":
            # TLS-only guards deny s3:* / sqs:* / sns:Publish over plain HTTP (and
            # the outputs bucket below TLS 1.2): a wildcard in a Deny only narrows
            # access (the AWS-documented pattern).
            assert statement["Condition"] in (
                {"Bool": {"aws:SecureTransport": "false"}},
                {"NumericLessThan": {"s3:TlsVersion": "1.2"}},
            ), where
            continue
        actions = statement.get("Action", [])
        for action in actions if isinstance(actions, list) else [actions]:
            assert "*" not in action, f"{where} {statement.get('Sid')}: {action}"
        if statement["Effect"] == "Allow" and statement.get("Resource") == "*":
            assert statement.get("Sid") in STAR_RESOURCE_ALLOWED, f"{where}: Resource '*' in {statement}"


def test_bedrock_access_is_the_enabled_models_and_their_inference_profiles():
    models = "amazon.nova-lite-v1:0,us.anthropic.claude-3-5-haiku-20241022-v1:0"
    policy = layer(env("prod", EnabledModels=models), "iam").props("CallEnabledModels")
    assert policy["Roles"] == ["{Ref:WorkerRole}", "{Ref:OpenAiRole}"]  # the two that call any enabled model
    by_sid = {s["Sid"]: s for s in policy["PolicyDocument"]["Statement"]}
    assert by_sid["InvokeEnabledModels"]["Resource"] == [f"arn:aws:bedrock:*::foundation-model/{m}" for m in models.split(",")]
    profiles = [f"arn:aws:bedrock:*:*:inference-profile/{m}" for m in models.split(",")]
    assert by_sid["InvokeEnabledInferenceProfiles"]["Resource"] == profiles
    through = by_sid["InvokeModelsThroughEnabledProfiles"]
    assert through["Condition"] == {"ArnLike": {"bedrock:InferenceProfileArn": profiles}}


@pytest.mark.parametrize("name", ENVS)
def test_in_the_vpc_the_roles_manage_network_interfaces_but_no_log_group_beyond_their_own(name):
    iam = layer(env(name), "iam")
    for logical_id, role in iam.of_type("AWS::IAM::Role").items():
        assert not role["Properties"].get("ManagedPolicyArns"), logical_id  # no AWSLambdaVPCAccessExecutionRole
    policies = iam.of_type("AWS::IAM::ManagedPolicy")
    if CONFIG[name]["FunctionsInVpc"] != "true":
        assert "FunctionNetworkInterfaces" not in policies
        return
    (statement,) = policies["FunctionNetworkInterfaces"]["Properties"]["PolicyDocument"]["Statement"]
    assert all(action.startswith("ec2:") for action in statement["Action"])
    assert len(policies["FunctionNetworkInterfaces"]["Properties"]["Roles"]) == len(FUNCTIONS)
    for _, statement in rendered_statements(iam):
        actions = statement.get("Action", [])
        for action in actions if isinstance(actions, list) else [actions]:
            if action.startswith("logs:"):
                assert statement["Resource"] != "*", statement


@pytest.mark.parametrize("name", ENVS)
def test_only_the_functions_that_sign_or_delete_output_links_may_read_outputs(name):  # or sign /v1 image links
    iam = layer(env(name), "iam")
    readers = {}
    for where, statement in rendered_statements(iam):
        actions = statement.get("Action", [])
        for action in actions if isinstance(actions, list) else [actions]:
            if action == "s3:GetObject" or (action == "kms:Decrypt" and "OutputsKey" in str(statement["Resource"])):
                readers.setdefault(where.split("/")[-1], set()).add(action)
                if action == "s3:GetObject":
                    assert statement["Resource"].endswith("/jobs/*"), statement
                else:
                    assert statement["Condition"]["StringEquals"]["kms:ViaService"].startswith("s3."), statement
    expected = {"s3:GetObject", "kms:Decrypt"} if CONFIG[name]["CustomerManagedKeys"] == "true" else {"s3:GetObject"}
    # The /v1 images' links are signed by OpenAiRole (response_format url).
    assert readers == {"StatusRole": expected, "GenerateRole": expected, "OpenAiRole": expected}


@pytest.mark.parametrize("boundary", ["", "arn:aws:iam::123456789012:policy/OrgBoundary"])
def test_permissions_boundary_applies_to_every_role_when_given(boundary):
    roles = layer(env("prod", PermissionsBoundaryArn=boundary), "iam").of_type("AWS::IAM::Role")
    assert len(roles) == len(FUNCTIONS)
    for role in roles.values():
        assert role["Properties"].get("PermissionsBoundary") == (boundary or None)


# -------------------------------------------------------------------- cost


def test_dev_costs_nothing_idle_and_prod_costs_are_justified():
    report = cost.report()["environments"]
    assert report["dev"]["total"] == 0
    assert report["dev"]["lines"] == []
    assert 0 < report["staging"]["total"] < report["prod"]["total"]
    for line in report["prod"]["lines"]:
        assert line["why"]
        assert line["monthly"] == round(line["quantity"] * line["unit_price"], 2)
    assert report["prod"]["total"] == round(sum(line["monthly"] for line in report["prod"]["lines"]), 2)


def test_every_resource_type_is_priced_or_declared_free():
    table = cost.prices()
    for name in ENVS:
        cost.idle_lines(env(name), table)  # raises SystemExit on an unpriced type


def test_readme_tables_match_the_templates():
    assert readme_tables.main(["--check"]) == 0, "run `make docs`"


# ---------------------------------------------------------------- releases


@pytest.mark.parametrize(
    ("environment", "target", "canary"),
    [("prod", "aws", True), ("staging", "aws", False), ("dev", "aws", False), ("prod", "local-emulator", False)],
)
def test_prod_on_aws_releases_by_canary_and_everything_else_at_once(environment, target, canary):
    rendered = render(parameters={"Environment": environment, "DeployTarget": target, "AlarmEmail": "ops@example.com"})
    for logical_id, fn in rendered.of_type("AWS::Serverless::Function").items():
        props = fn["Properties"]
        assert props["AutoPublishAlias"] == "live", logical_id
        preference = props["DeploymentPreference"]
        # SAM resolves Enabled at transform time (a FindInMap on parameters)
        assert preference["Enabled"] == ("true" if canary else "false"), logical_id
        assert preference["Type"] == "Canary10Percent5Minutes"


def test_a_canary_watches_every_release_alarm():
    monitoring = load("infrastructure/monitoring.yaml")
    release = monitoring["Outputs"]["ReleaseAlarmNames"]["Value"]["Fn::If"][1]["Fn::Join"][1]
    alarms = root()["Globals"]["Function"]["DeploymentPreference"]["Alarms"]
    assert [a["Fn::Select"][0] for a in alarms] == list(range(len(release)))
    assert {r["Ref"] for r in release} >= {"Api5xxAlarm", "GenerateErrorsAlarm", "WorkerErrorsAlarm"}
