"""Issue, list and revoke genstack API keys, and set a key's monthly budget.

A key belongs to one usage-plan tier (free or standard: throttle and daily quota
per key, see README "Environments"; and the tier's monthly budget,
MonthlyKeyBudgetUsd or FreeKeyMonthlyBudgetUsd). The plan IDs and the ledger
table come from the deployed stack's outputs, never from names. Issuing a key
also writes its profile (tier, and its own budget when set) to the ledger
table, where the functions read it.

  python api_key.py issue      --stack-name genstack-dev --tier standard --name alice [--budget-usd 20]
  python api_key.py list       --stack-name genstack-dev
  python api_key.py set-budget --stack-name genstack-dev --key-id abc123 --budget-usd 200   (or: tier, the tier's)
  python api_key.py revoke     --stack-name genstack-dev --key-id abc123 [--delete]

`issue` prints the key's id and value once (as JSON with --json); keep the value
secret, it is not shown again by this script (`aws apigateway get-api-key
--api-key ID --include-value` reads it back). `revoke` disables the key at once
(requests with it get 403) and, with --delete, deletes it. Rotating a key is
issue + hand over + revoke the old one (docs/runbooks/api-keys.md).

Options: --region, --profile, --endpoint (a local emulator), --ca-bundle.
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "backend"))
from shared.identity import key_hash_owner

TIERS = {"standard": "StandardUsagePlanId", "free": "FreeUsagePlanId"}


class Profiles:
    """Keys' profiles (owner, "profile") in the stack's ledger table. `local`:
    the stack runs on an emulator, where the functions know a key by the hash
    of its value instead of its id (shared.identity)."""

    def __init__(self, table: Any, *, local: bool) -> None:
        self.table, self.local = table, local

    def owner(self, key_id: str, value: str | None) -> str:
        if not self.local:
            return key_id
        if value is None:
            raise ValueError("on a local emulator a key's profile is found by its value")
        return key_hash_owner(value)

    def write(self, key_id: str, value: str | None, *, tier: str, budget_usd: Decimal | None) -> None:
        item: dict[str, Any] = {
            "owner": self.owner(key_id, value),
            "period": "profile",
            "keyId": key_id,
            "tier": tier,
            "updatedAt": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        if budget_usd is not None:
            item["monthlyBudgetUsd"] = budget_usd
        self.table.put_item(Item=item)

    def read(self, key_id: str, value: str | None) -> dict[str, Any]:
        return self.table.get_item(Key={"owner": self.owner(key_id, value), "period": "profile"}).get("Item") or {}


def session_clients(args: argparse.Namespace) -> tuple[Any, Any, Any]:
    session = boto3.Session(profile_name=args.profile, region_name=args.region)
    kwargs: dict[str, Any] = {}
    if args.endpoint:
        kwargs["endpoint_url"] = args.endpoint
    if args.ca_bundle:
        kwargs["verify"] = args.ca_bundle
    return (
        session.client("cloudformation", **kwargs),
        session.client("apigateway", **kwargs),
        session.resource("dynamodb", **kwargs),
    )


def stack_outputs(cfn: Any, stack_name: str) -> dict[str, str]:
    stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def stack_profiles(cfn: Any, dynamodb: Any, stack_name: str) -> Profiles:
    stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    parameters = {p["ParameterKey"]: p.get("ParameterValue") for p in stack.get("Parameters", [])}
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
    return Profiles(dynamodb.Table(outputs["BudgetLedgerTableName"]), local=parameters.get("DeployTarget") == "local-emulator")


def set_budget(apigw: Any, profiles: Profiles, key_id: str, budget_usd: Decimal | None) -> dict[str, Any]:
    """Give a key its own monthly budget (None: its tier's again); its tier is kept."""
    key = apigw.get_api_key(apiKey=key_id, includeValue=True)
    tier = profiles.read(key_id, key.get("value")).get("tier") or key.get("tags", {}).get("Tier", "standard")
    profiles.write(key_id, key.get("value"), tier=tier, budget_usd=budget_usd)
    return {"keyId": key_id, "tier": tier, "monthlyBudgetUsd": None if budget_usd is None else float(budget_usd)}


def issue(
    apigw: Any,
    outputs: dict[str, str],
    tier: str,
    name: str,
    stack_name: str,
    *,
    profiles: Profiles | None = None,
    budget_usd: Decimal | None = None,
) -> dict[str, str]:
    plan_id = outputs[TIERS[tier]]
    key = apigw.create_api_key(
        name=f"{stack_name}-{name}",
        description=f"genstack {tier} tier: {name}",
        enabled=True,
        value=secrets.token_urlsafe(30),  # 40 characters, 240 bits
        tags={"Application": "genstack", "Tier": tier},
    )
    apigw.create_usage_plan_key(usagePlanId=plan_id, keyId=key["id"], keyType="API_KEY")
    if profiles is not None:
        profiles.write(key["id"], key["value"], tier=tier, budget_usd=budget_usd)
    return {"keyId": key["id"], "value": key["value"], "tier": tier, "usagePlanId": plan_id, "name": key["name"]}


def list_keys(apigw: Any, outputs: dict[str, str]) -> list[dict[str, Any]]:
    rows = []
    for tier, output in TIERS.items():
        paginator = apigw.get_paginator("get_usage_plan_keys")
        for page in paginator.paginate(usagePlanId=outputs[output]):
            for item in page.get("items", []):
                key = apigw.get_api_key(apiKey=item["id"])
                rows.append({"keyId": key["id"], "name": key.get("name", ""), "tier": tier, "enabled": key.get("enabled", False)})
    return rows


def revoke(apigw: Any, key_id: str, *, delete: bool) -> None:
    if delete:
        apigw.delete_api_key(apiKey=key_id)
    else:
        apigw.update_api_key(apiKey=key_id, patchOperations=[{"op": "replace", "path": "/enabled", "value": "false"}])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["issue", "list", "set-budget", "revoke"])
    parser.add_argument("--stack-name", required=True)
    parser.add_argument("--tier", choices=sorted(TIERS), default="standard")
    parser.add_argument("--name", help="who the key is for (issue)")
    parser.add_argument("--key-id", help="the key to revoke or give a budget")
    parser.add_argument("--budget-usd", help="issue, set-budget: the key's own monthly budget in USD; 'tier' for its tier's")
    parser.add_argument("--delete", action="store_true", help="revoke: delete the key instead of disabling it")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--region")
    parser.add_argument("--profile")
    parser.add_argument("--endpoint", help="endpoint URL of a local emulator")
    parser.add_argument("--ca-bundle", help="certificate bundle to trust (the emulator's)")
    args = parser.parse_args(argv)
    if args.command == "issue" and not args.name:
        parser.error("issue needs --name (who the key is for)")
    if args.command in ("revoke", "set-budget") and not args.key_id:
        parser.error(f"{args.command} needs --key-id")
    if args.command == "set-budget" and not args.budget_usd:
        parser.error("set-budget needs --budget-usd (an amount, or 'tier')")
    budget = None
    if args.budget_usd and args.budget_usd != "tier":
        try:
            budget = Decimal(args.budget_usd)
        except ArithmeticError:
            parser.error("--budget-usd must be an amount in USD, or 'tier'")
        if not budget > 0:
            parser.error("--budget-usd must be more than 0")
    cfn, apigw, dynamodb = session_clients(args)
    outputs = stack_outputs(cfn, args.stack_name)
    profiles = stack_profiles(cfn, dynamodb, args.stack_name)
    if args.command == "set-budget":
        print(json.dumps(set_budget(apigw, profiles, args.key_id, budget)))
        return 0
    if args.command == "issue":
        key = issue(apigw, outputs, args.tier, args.name, args.stack_name, profiles=profiles, budget_usd=budget)
        if args.json:
            print(json.dumps(key))
        else:
            print(f"issued {key['tier']} key {key['keyId']} ({key['name']}); value (shown once):\n{key['value']}")
    elif args.command == "list":
        rows = list_keys(apigw, outputs)
        if args.json:
            print(json.dumps(rows))
        else:
            for row in rows:
                print(f"{row['keyId']}\t{row['tier']}\t{'enabled' if row['enabled'] else 'DISABLED'}\t{row['name']}")
    else:
        revoke(apigw, args.key_id, delete=args.delete)
        print(f"key {args.key_id} {'deleted' if args.delete else 'disabled'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
