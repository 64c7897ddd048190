"""Reading the CloudFormation templates in tests, with their short-form tags."""

from __future__ import annotations

from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from cfnlint.decode import cfn_yaml

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("network", "storage", "database", "iam", "api", "monitoring")
FUNCTIONS = frozenset(
    {
        "GenerateFunction",
        "StatusFunction",
        "EnhanceFunction",
        "WorkerFunction",
        "DeadLetterFunction",
        "TemplatesFunction",
        "SweeperFunction",
        "OpenAiFunction",
        "AuthorizerFunction",
        "ChartRendererFunction",
    }
)


@cache
def load(relative: str) -> dict[str, Any]:
    return cfn_yaml.load(str(ROOT / relative))


def layer(name: str) -> dict[str, Any]:
    return load(f"infrastructure/{name}.yaml")


def root() -> dict[str, Any]:
    return load("template.yaml")


def resources_of_type(template: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    return {k: v for k, v in template["Resources"].items() if v.get("Type") == type_}


def table_definition(logical_id: str) -> dict[str, Any]:
    """create_table arguments for a table of database.yaml, as the template declares it."""
    props = layer("database")["Resources"][logical_id]["Properties"]
    args: dict[str, Any] = {
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props["BillingMode"],
    }
    if "GlobalSecondaryIndexes" in props:
        args["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
    return args


def role_statements(iam: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """(role, statement) for every statement a rendered IAM layer grants a
    role: its inline policies, and the managed policies that name it."""
    for logical_id, resource in iam.of_type("AWS::IAM::Role").items():
        for policy in resource["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                yield logical_id, statement
    for resource in iam.of_type("AWS::IAM::ManagedPolicy").values():
        for role in resource["Properties"].get("Roles", []):
            for statement in resource["Properties"]["PolicyDocument"]["Statement"]:
                yield str(role).removeprefix("{Ref:").removesuffix("}"), statement
