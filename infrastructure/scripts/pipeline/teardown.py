"""Delete a deployment: empty the buckets CloudFormation will delete (every
version and delete marker, as S3 requires), delete the root stack with its
nested stacks, and list what DeletionPolicy Retain keeps (prod's data)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from cfn_render import render

from .console import PipelineError, say
from .events import first_failure, stack_status, wait_until_settled
from .session import Aws
from .stacks import STATEFUL


def empty_bucket(s3: Any, bucket: str) -> int:
    """Every version and delete marker of a bucket deleted; returns how many."""
    count = 0
    try:
        for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
            objects = [
                {"Key": v["Key"], "VersionId": v["VersionId"]} for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
            ]
            for start in range(0, len(objects), 1000):
                s3.delete_objects(Bucket=bucket, Delete={"Objects": objects[start : start + 1000], "Quiet": True})
            count += len(objects)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "NoSuchBucket":
            raise
    return count


def retention(parameters: dict[str, str]) -> dict[tuple[str, str], str]:
    """The DeletionPolicy of each (template, logical id), as the deployed parameters resolve it."""
    rendered = render(parameters=parameters)
    return {(path.rsplit("/", 1)[-1], lid): res.get("DeletionPolicy", "Delete") for path, lid, res in rendered.walk()}


def delete(aws: Aws, stack: str) -> list[str]:
    """Delete the stack; returns what was retained."""
    cfn, s3 = aws.client("cloudformation"), aws.client("s3")
    if stack_status(cfn, stack) is None:
        say(f"{stack} does not exist; nothing to delete", "green")
        return []
    described = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    if described.get("EnableTerminationProtection"):
        raise PipelineError(
            f"{stack} has termination protection; turn it off first: "
            f"aws cloudformation update-termination-protection --no-enable-termination-protection --stack-name {stack}"
        )
    policies = retention({p["ParameterKey"]: p["ParameterValue"] for p in described.get("Parameters", [])})
    stacks = [("template", stack)] + [
        (r["LogicalResourceId"], r["PhysicalResourceId"])
        for r in cfn.describe_stack_resources(StackName=stack)["StackResources"]
        if r["ResourceType"] == "AWS::CloudFormation::Stack"
    ]
    retained: list[str] = []
    for layer, child in stacks:
        for resource in cfn.describe_stack_resources(StackName=child)["StackResources"]:
            policy = policies.get((layer, resource["LogicalResourceId"]), "Delete")
            if policy == "Retain" and resource["ResourceType"] in STATEFUL | {"AWS::IAM::Role"}:
                retained.append(f"{resource['ResourceType']} {resource['PhysicalResourceId']}")
            elif resource["ResourceType"] == "AWS::S3::Bucket":
                emptied = empty_bucket(s3, resource["PhysicalResourceId"])
                say(f"emptied bucket {resource['PhysicalResourceId']} ({emptied} object versions)")
    since = datetime.now(UTC)
    cfn.delete_stack(StackName=stack)
    say(f"deleting {stack}")
    settled = wait_until_settled(cfn, stack, since)
    if settled != "DELETE_COMPLETE":
        raise PipelineError(f"{stack} ended {settled}: {first_failure(cfn, stack, since)}")
    say(f"{stack} deleted", "green")
    for item in retained:
        say(f"retained (DeletionPolicy Retain): {item}; delete it by hand if you really mean to", "yellow")
    return retained
