"""Issue, list and revoke genstack API keys.

A key belongs to one usage-plan tier (free or standard: throttle and daily quota
per key, see README "Environments"). The plan IDs come from the deployed
stack's outputs (StandardUsagePlanId, FreeUsagePlanId), never from names.

  python api_key.py issue  --stack-name genstack-dev --tier standard --name alice
  python api_key.py list   --stack-name genstack-dev
  python api_key.py revoke --stack-name genstack-dev --key-id abc123 [--delete]

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
from typing import Any

import boto3

TIERS = {"standard": "StandardUsagePlanId", "free": "FreeUsagePlanId"}


def session_clients(args: argparse.Namespace) -> tuple[Any, Any]:
    session = boto3.Session(profile_name=args.profile, region_name=args.region)
    kwargs: dict[str, Any] = {}
    if args.endpoint:
        kwargs["endpoint_url"] = args.endpoint
    if args.ca_bundle:
        kwargs["verify"] = args.ca_bundle
    return session.client("cloudformation", **kwargs), session.client("apigateway", **kwargs)


def stack_outputs(cfn: Any, stack_name: str) -> dict[str, str]:
    stack = cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}


def issue(apigw: Any, outputs: dict[str, str], tier: str, name: str, stack_name: str) -> dict[str, str]:
    plan_id = outputs[TIERS[tier]]
    key = apigw.create_api_key(
        name=f"{stack_name}-{name}",
        description=f"genstack {tier} tier: {name}",
        enabled=True,
        value=secrets.token_urlsafe(30),  # 40 characters, 240 bits
        tags={"Application": "genstack", "Tier": tier},
    )
    apigw.create_usage_plan_key(usagePlanId=plan_id, keyId=key["id"], keyType="API_KEY")
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
    parser.add_argument("command", choices=["issue", "list", "revoke"])
    parser.add_argument("--stack-name", required=True)
    parser.add_argument("--tier", choices=sorted(TIERS), default="standard")
    parser.add_argument("--name", help="who the key is for (issue)")
    parser.add_argument("--key-id", help="the key to revoke")
    parser.add_argument("--delete", action="store_true", help="revoke: delete the key instead of disabling it")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.add_argument("--region")
    parser.add_argument("--profile")
    parser.add_argument("--endpoint", help="endpoint URL of a local emulator")
    parser.add_argument("--ca-bundle", help="certificate bundle to trust (the emulator's)")
    args = parser.parse_args(argv)
    if args.command == "issue" and not args.name:
        parser.error("issue needs --name (who the key is for)")
    if args.command == "revoke" and not args.key_id:
        parser.error("revoke needs --key-id")
    cfn, apigw = session_clients(args)
    outputs = stack_outputs(cfn, args.stack_name)
    if args.command == "issue":
        key = issue(apigw, outputs, args.tier, args.name, args.stack_name)
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
