"""Compensate one IAM inaccuracy of the local emulator (ministack 1.5.33), on the
emulator only: it authorises the Bedrock Converse API as `bedrock:Converse`,
while AWS authorises it with `bedrock:InvokeModel` (API reference,
Converse: "This operation requires permission for the bedrock:InvokeModel
action"). For every role of the deployed stack that may invoke models, the
same models are allowed for `bedrock:Converse` in an inline policy named
EmulatorConverseCompat. The templates stay exactly what AWS gets.

Usage: python emulator_iam_compat.py --stack-name NAME --endpoint URL
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from local_outputs import emulator_session

POLICY_NAME = "EmulatorConverseCompat"


def roles_of(cfn, stack_name: str) -> list[str]:
    """Physical names of the IAM roles in the stack and its nested stacks."""
    roles = []
    for resource in cfn.describe_stack_resources(StackName=stack_name)["StackResources"]:
        if resource["ResourceType"] == "AWS::IAM::Role":
            roles.append(resource["PhysicalResourceId"])
        elif resource["ResourceType"] == "AWS::CloudFormation::Stack":
            roles += roles_of(cfn, resource["PhysicalResourceId"])
    return roles


def policy_documents(iam, role: str) -> list[dict]:
    """The role's inline policies and the managed policies attached to it."""
    documents = []
    for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        if name != POLICY_NAME:
            documents.append(iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"])
    for attached in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]:
        version = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]["DefaultVersionId"]
        documents.append(iam.get_policy_version(PolicyArn=attached["PolicyArn"], VersionId=version)["PolicyVersion"]["Document"])
    return [json.loads(d) if isinstance(d, str) else d for d in documents]


def converse_statements(iam, role: str) -> list[dict]:
    statements = []
    for document in policy_documents(iam, role):
        for statement in document.get("Statement", []):
            actions = statement.get("Action", [])
            actions = [actions] if isinstance(actions, str) else actions
            if statement.get("Effect") == "Allow" and "bedrock:InvokeModel" in actions:
                mirror = {"Effect": "Allow", "Action": "bedrock:Converse", "Resource": statement["Resource"]}
                if "Condition" in statement:
                    mirror["Condition"] = statement["Condition"]
                statements.append(mirror)
    return statements


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stack-name", required=True)
    parser.add_argument("--endpoint", required=True)
    args = parser.parse_args(argv)
    session = emulator_session(os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
    cfn = session.client("cloudformation", endpoint_url=args.endpoint)
    iam = session.client("iam", endpoint_url=args.endpoint)
    for role in roles_of(cfn, args.stack_name):
        statements = converse_statements(iam, role)
        if statements:
            iam.put_role_policy(
                RoleName=role,
                PolicyName=POLICY_NAME,
                PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}),
            )
            print(f"emulator only: {role} may call Converse on the models it may invoke")
    return 0


if __name__ == "__main__":
    sys.exit(main())
