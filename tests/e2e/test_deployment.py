"""Read back from the emulator what it really applies: every nested stack,
table keys and index, bucket versioning and public access block, queue
redrive, API key requirement per method, function settings. (What it accepts
without applying is asserted on the templates in tests/unit/test_templates.py.)"""

from __future__ import annotations

import json

import pytest

from tests.templates import FUNCTIONS

pytestmark = pytest.mark.e2e


def queue_arn(sqs, url: str) -> str:
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]


LAYERS = {"NetworkStack", "StorageStack", "DatabaseStack", "IamStack", "MonitoringStack", "ApiStack"}


def test_every_nested_stack_is_created(deployment):
    cfn = deployment.client("cloudformation")
    root = cfn.describe_stacks(StackName=deployment.stack_name)["Stacks"][0]
    assert root["StackStatus"] in ("CREATE_COMPLETE", "UPDATE_COMPLETE")
    nested = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cfn.describe_stack_resources(StackName=root["StackName"])["StackResources"]
        if r["ResourceType"] == "AWS::CloudFormation::Stack"
    }
    assert set(nested) == LAYERS
    for logical_id, stack_id in nested.items():
        status = cfn.describe_stacks(StackName=stack_id)["Stacks"][0]["StackStatus"]
        assert status in ("CREATE_COMPLETE", "UPDATE_COMPLETE"), logical_id


def test_jobs_table_keys_and_owner_index(deployment):
    table = deployment.client("dynamodb").describe_table(TableName=deployment.outputs["JobsTableName"])["Table"]
    assert table["KeySchema"] == [{"AttributeName": "jobId", "KeyType": "HASH"}]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    indexes = {i["IndexName"]: i["KeySchema"] for i in table["GlobalSecondaryIndexes"]}
    assert indexes == {
        "owner-createdAt-index": [
            {"AttributeName": "owner", "KeyType": "HASH"},
            {"AttributeName": "createdAt", "KeyType": "RANGE"},
        ],
        "sweep-index": [{"AttributeName": "sweep", "KeyType": "HASH"}, {"AttributeName": "sweepAt", "KeyType": "RANGE"}],
    }


def test_idempotency_table_has_the_powertools_key(deployment):
    table = deployment.client("dynamodb").describe_table(TableName=deployment.outputs["IdempotencyTableName"])["Table"]
    assert table["KeySchema"] == [{"AttributeName": "id", "KeyType": "HASH"}]


def test_outputs_bucket_is_versioned_and_blocks_public_access(deployment):
    s3 = deployment.client("s3")
    bucket = deployment.outputs["OutputsBucketName"]
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
    assert block == {"BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True}


def test_job_queue_redrives_to_the_dead_letter_queue(deployment):
    sqs = deployment.client("sqs")
    attributes = sqs.get_queue_attributes(QueueUrl=deployment.outputs["JobQueueUrl"], AttributeNames=["All"])["Attributes"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=deployment.outputs["DeadLetterQueueUrl"], AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    assert json.loads(attributes["RedrivePolicy"]) == {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3}
    assert attributes["VisibilityTimeout"] == "5400"


PREFLIGHT_PATHS = (
    "/generate",
    "/status/{jobId}",
    "/jobs",
    "/usage",
    "/models",
    "/jobs/{jobId}/cancel",
    "/jobs/{jobId}",
    "/templates",
    "/templates/{templateId}",
    "/enhance",
)


def test_every_method_but_health_and_preflights_requires_a_key(deployment):
    apigw = deployment.client("apigateway")
    api_id = deployment.outputs["ApiId"]
    required = {}
    for resource in apigw.get_resources(restApiId=api_id)["items"]:
        for method in resource.get("resourceMethods", {}):
            detail = apigw.get_method(restApiId=api_id, resourceId=resource["id"], httpMethod=method)
            required[(method, resource["path"])] = detail.get("apiKeyRequired", False)
    assert required == {
        ("POST", "/generate"): True,
        ("GET", "/status/{jobId}"): True,
        ("GET", "/jobs"): True,
        ("GET", "/usage"): True,
        ("GET", "/models"): True,
        ("POST", "/jobs/{jobId}/cancel"): True,
        ("DELETE", "/jobs/{jobId}"): True,
        ("POST", "/templates"): True,
        ("GET", "/templates"): True,
        ("GET", "/templates/{templateId}"): True,
        ("PATCH", "/templates/{templateId}"): True,
        ("DELETE", "/templates/{templateId}"): True,
        ("POST", "/enhance"): True,
        ("GET", "/health"): False,
        # CORS preflights: browsers send them without a key
        **{("OPTIONS", path): False for path in PREFLIGHT_PATHS},
    }


def test_the_openai_api_takes_its_key_from_the_bearer_authorizer(deployment):
    apigw = deployment.client("apigateway")
    api_id = deployment.outputs["OpenAiApiId"]
    # (The emulator drops ApiKeySourceType when it creates a REST API from a
    # template, and reports HEADER; the SAM translation of the template is
    # checked for AUTHORIZER in tests/unit/test_templates.py.)
    (authorizer,) = apigw.get_authorizers(restApiId=api_id)["items"]
    assert authorizer["type"] == "REQUEST"
    assert authorizer["identitySource"] == "method.request.header.Authorization"
    assert int(authorizer["authorizerResultTtlInSeconds"]) == 300
    methods = {}
    for resource in apigw.get_resources(restApiId=api_id)["items"]:
        for method in resource.get("resourceMethods", {}):
            detail = apigw.get_method(restApiId=api_id, resourceId=resource["id"], httpMethod=method)
            methods[(method, resource["path"])] = (detail.get("apiKeyRequired"), detail.get("authorizationType"))
    assert methods == {
        ("GET", "/v1/models"): (True, "CUSTOM"),
        ("GET", "/v1/models/{model+}"): (True, "CUSTOM"),
        ("POST", "/v1/chat/completions"): (True, "CUSTOM"),
        ("POST", "/v1/images/generations"): (True, "CUSTOM"),
    }
    # Both stages in both usage plans: one throttle and quota per key.
    for plan in ("StandardUsagePlanId", "FreeUsagePlanId"):
        stages = apigw.get_usage_plan(usagePlanId=deployment.outputs[plan])["apiStages"]
        assert {(s["apiId"], s["stage"]) for s in stages} == {(deployment.outputs["ApiId"], "v1"), (api_id, "openai")}


def test_functions_have_the_declared_settings_and_their_own_roles(deployment):
    lam = deployment.client("lambda")
    cfn = deployment.client("cloudformation")
    resources = cfn.describe_stack_resources(StackName=deployment.stack_name)["StackResources"]
    functions = {
        r["LogicalResourceId"]: r["PhysicalResourceId"] for r in resources if r["ResourceType"] == "AWS::Lambda::Function"
    }
    assert set(functions) == FUNCTIONS
    iam_stack = next(r["PhysicalResourceId"] for r in resources if r["LogicalResourceId"] == "IamStack")
    roles = {o["OutputKey"]: o["OutputValue"] for o in cfn.describe_stacks(StackName=iam_stack)["Stacks"][0]["Outputs"]}
    expected = {
        "GenerateFunction": ("generate.app.handler", 256, 10, roles["GenerateRoleArn"]),
        "StatusFunction": ("status.app.handler", 256, 10, roles["StatusRoleArn"]),
        "EnhanceFunction": ("enhance.app.handler", 256, 29, roles["EnhanceRoleArn"]),
        "WorkerFunction": ("worker.app.handler", 512, 900, roles["WorkerRoleArn"]),
        "DeadLetterFunction": ("worker.dead_letter.handler", 256, 60, roles["DeadLetterRoleArn"]),
        "TemplatesFunction": ("prompt_templates.app.handler", 256, 10, roles["TemplatesRoleArn"]),
        "SweeperFunction": ("worker.sweeper.handler", 256, 300, roles["SweeperRoleArn"]),
        "OpenAiFunction": ("openai_api.app.handler", 256, 29, roles["OpenAiRoleArn"]),
        "AuthorizerFunction": ("authorizer.app.handler", 128, 3, roles["AuthorizerRoleArn"]),
        "ChartRendererFunction": ("chart_renderer.app.handler", 1024, 30, roles["ChartRendererRoleArn"]),
    }
    for logical_id, name in functions.items():
        config = lam.get_function_configuration(FunctionName=name)
        assert (config["Handler"], config["MemorySize"], config["Timeout"], config["Role"]) == expected[logical_id]
        assert config["Runtime"] == "python3.13"
        assert config["Architectures"] == ["arm64"]
        variables = config["Environment"]["Variables"]
        assert variables["JOBS_TABLE"] == deployment.outputs["JobsTableName"]
        assert variables["ENABLED_MODELS"] == deployment.outputs["EnabledModelIds"]
    assert len(set(roles.values())) == len(FUNCTIONS)


def test_worker_consumes_the_job_queue_one_job_at_a_time(deployment):
    lam = deployment.client("lambda")
    sqs = deployment.client("sqs")
    queue_arn = sqs.get_queue_attributes(QueueUrl=deployment.outputs["JobQueueUrl"], AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    (mapping,) = lam.list_event_source_mappings(EventSourceArn=queue_arn)["EventSourceMappings"]
    assert mapping["BatchSize"] == 1
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["State"] == "Enabled"


def test_the_emulator_enforces_iam_and_resource_policies(deployment):
    """The local stack runs with AUTH=true: an anonymous read of a job output is
    refused, as on AWS (and the functions' own calls pass only through their roles,
    which the job tests exercise)."""
    import ssl
    import urllib.error
    import urllib.request

    bucket = deployment.outputs["OutputsBucketName"]
    request = urllib.request.Request(f"{deployment.endpoint}/{bucket}/jobs/")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10, context=ssl.create_default_context(cafile=deployment.ca_bundle))
    assert refused.value.code == 403
