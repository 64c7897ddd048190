"""The one deploy step that runs on an emulator only. ministack 1.5.33
authorises the Bedrock Converse API as `bedrock:Converse`, while AWS authorises
it with `bedrock:InvokeModel` (API reference, Converse: "This operation
requires permission for the bedrock:InvokeModel action"). For every role of the
deployed stack that may invoke models, the same models are allowed for
`bedrock:Converse` in an inline policy named EmulatorConverseCompat. The
templates stay exactly what AWS gets."""

from __future__ import annotations

import json
from typing import Any

from .console import say
from .session import Aws

POLICY_NAME = "EmulatorConverseCompat"


def roles_of(cfn: Any, stack: str) -> list[str]:
    """Physical names of the IAM roles in the stack and its nested stacks."""
    roles = []
    for resource in cfn.describe_stack_resources(StackName=stack)["StackResources"]:
        if resource["ResourceType"] == "AWS::IAM::Role":
            roles.append(resource["PhysicalResourceId"])
        elif resource["ResourceType"] == "AWS::CloudFormation::Stack":
            roles += roles_of(cfn, resource["PhysicalResourceId"])
    return roles


def policy_documents(iam: Any, role: str) -> list[dict[str, Any]]:
    """The role's inline policies (but this step's own) and the managed policies attached to it."""
    documents = []
    for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        if name != POLICY_NAME:
            documents.append(iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"])
    for attached in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]:
        version = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]["DefaultVersionId"]
        documents.append(iam.get_policy_version(PolicyArn=attached["PolicyArn"], VersionId=version)["PolicyVersion"]["Document"])
    return [json.loads(d) if isinstance(d, str) else d for d in documents]


def converse_statements(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """bedrock:Converse mirrored from every statement that allows bedrock:InvokeModel."""
    statements = []
    for document in documents:
        for statement in document.get("Statement", []):
            actions = statement.get("Action", [])
            actions = [actions] if isinstance(actions, str) else actions
            if statement.get("Effect") == "Allow" and "bedrock:InvokeModel" in actions:
                mirror = {"Effect": "Allow", "Action": "bedrock:Converse", "Resource": statement["Resource"]}
                if "Condition" in statement:
                    mirror["Condition"] = statement["Condition"]
                statements.append(mirror)
    return statements


def compensate(aws: Aws, stack: str) -> list[str]:
    """Apply the compensation to the stack's roles; returns the roles changed."""
    cfn, iam = aws.client("cloudformation"), aws.client("iam")
    changed = []
    for role in roles_of(cfn, stack):
        statements = converse_statements(policy_documents(iam, role))
        if statements:
            document = json.dumps({"Version": "2012-10-17", "Statement": statements})
            iam.put_role_policy(RoleName=role, PolicyName=POLICY_NAME, PolicyDocument=document)
            changed.append(role)
    if changed:
        say(f"emulator only: {len(changed)} role(s) may call Converse on the models they may invoke")
    return changed
