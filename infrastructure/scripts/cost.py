"""Idle cost per environment: what each genstack environment costs per month
when no request arrives, computed from the templates themselves.

Each environment (dev, staging, prod) is rendered offline (cfn_render.py: its
EnvironmentConfig row, conditions and nested stacks resolved) and every active
resource is priced from infrastructure/prices.json (dated list prices). A
resource type the price table does not know fails the run, so a new billable
resource cannot slip into a template unpriced.

Usage:
  python cost.py           print the tables (Markdown; readme_tables.py puts them in the README)
  python cost.py --json    the same as JSON
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from typing import Any

from cfn_render import ROOT, Rendered, render

PRICES_FILE = ROOT / "infrastructure" / "prices.json"
ENVIRONMENTS = ("dev", "staging", "prod")

# Why each priced item exists where it does: every line of a bill is justified.
WHY = {
    "nat": (
        "HTTPS egress from private subnets to the providers beyond Bedrock (one per AZ in prod), "
        "plus ${per_gb:.3f} per GB through it."
    ),
    "secret": "One Secrets Manager secret per provider beyond Bedrock, holding its API key (created by the stack).",
    "ipv4": "The NAT gateways' Elastic IPs (public IPv4 is billed per hour).",
    "endpoint": "Functions in private subnets reach {services} without a NAT gateway; one ENI per AZ for zonal resilience.",
    "waf-acl": "Web ACL in front of the API stage.",
    "waf-rule": "{rules}.",
    "kms": "Customer managed keys for {keys} (revocable, audited in CloudTrail, yearly rotation).",
    "alarm": "One alarm per failure signal, each with a runbook (docs/runbooks/); a metric-math alarm pays per metric it sums.",
    "dashboard": "The on-call view of the deployment.",
    "budget": "Spend notification (the first two budgets of an account are free).",
}


@dataclass
class Line:
    item: str
    quantity: float
    unit: str
    unit_price: float
    monthly: float
    why: str


def prices() -> dict[str, Any]:
    return json.loads(PRICES_FILE.read_text(encoding="utf-8"))


# Every provider beyond Bedrock enabled, each with a secret the stack creates.
WITH_PROVIDERS = {"OpenAiApiKeySecret": "create", "StabilityApiKeySecret": "create", "GoogleApiKeySecret": "create"}


def render_environment(environment: str, extra: dict[str, str] | None = None) -> Rendered:
    # prod refuses an empty AlarmEmail (template Rules); any address renders the same resources.
    parameters = {"Environment": environment, "AlarmEmail": "ops@example.com", **(extra or {})}
    return render(parameters=parameters, stack_name=f"genstack-{environment}")


def idle_lines(rendered: Rendered, table: dict[str, Any]) -> list[Line]:
    fixed, free, hours = table["fixed"], table["noIdleCost"], table["hoursPerMonth"]
    nat = eips = 0
    endpoint_azs: dict[str, int] = {}
    acls, rule_names, keys, alarms, dashboards, budgets, secrets = 0, [], [], 0, 0, 0, 0
    for stack, logical_id, resource in rendered.walk():
        type_, props = resource["Type"], resource.get("Properties", {})
        if type_ == "AWS::EC2::NatGateway":
            nat += 1
        elif type_ == "AWS::EC2::EIP":
            eips += 1
        elif type_ == "AWS::EC2::VPCEndpoint" and props.get("VpcEndpointType") == "Interface":
            endpoint_azs[str(props["ServiceName"]).rsplit(".", 1)[-1]] = len(props["SubnetIds"])
        elif type_ == "AWS::EC2::VPCEndpoint":
            continue  # gateway endpoints are free
        elif type_ == "AWS::WAFv2::WebACL":
            acls += 1
            rule_names += [rule["Name"] for rule in props["Rules"]]
        elif type_ == "AWS::KMS::Key":
            keys.append(stack.rsplit("/", 1)[-1].removesuffix("Stack").lower())
        elif type_ == "AWS::CloudWatch::Alarm":
            # Billed per metric: a metric-math alarm pays for each metric it reads.
            alarms += sum(1 for m in props.get("Metrics", []) if "MetricStat" in m) or 1
        elif type_ == "AWS::CloudWatch::Dashboard":
            dashboards += 1
        elif type_ == "AWS::Budgets::Budget":
            budgets += 1
        elif type_ == "AWS::SecretsManager::Secret":
            secrets += 1
        elif type_ not in free:
            raise SystemExit(f"{stack}/{logical_id}: {type_} is not in {PRICES_FILE.name}; price it or list it under noIdleCost")
    lines = []
    if nat:
        why = WHY["nat"].format(per_gb=fixed["natGatewayPerGb"])
        lines.append(Line("NAT gateways", nat, "gateway-month", fixed["natGatewayHour"] * hours, 0, why))
    if eips:
        lines.append(Line("Public IPv4 addresses", eips, "address-month", fixed["publicIpv4Hour"] * hours, 0, WHY["ipv4"]))
    if endpoint_azs:
        enis = sum(endpoint_azs.values())
        services = ", ".join(sorted(endpoint_azs))
        item = f"Interface endpoints ({services}) x {max(endpoint_azs.values())} AZs"
        why = WHY["endpoint"].format(services=services)
        lines.append(Line(item, enis, "endpoint-AZ-month", fixed["interfaceEndpointAzHour"] * hours, 0, why))
    if acls:
        lines.append(Line("WAF web ACL", acls, "ACL-month", fixed["wafWebAclMonth"], 0, WHY["waf-acl"]))
        rules = "; ".join(rule_names)
        why = WHY["waf-rule"].format(rules=rules)
        lines.append(Line("WAF rules", len(rule_names), "rule-month", fixed["wafRuleMonth"], 0, why))
    if keys:
        why = WHY["kms"].format(keys=" and ".join(sorted(keys)))
        lines.append(Line("KMS customer managed keys", len(keys), "key-month", fixed["kmsKeyMonth"], 0, why))
    if alarms:
        lines.append(Line("CloudWatch alarm metrics", alarms, "metric-month", fixed["cloudwatchAlarmMonth"], 0, WHY["alarm"]))
    if dashboards:
        price = fixed["cloudwatchDashboardMonth"]
        lines.append(Line("CloudWatch dashboard", dashboards, "dashboard-month", price, 0, WHY["dashboard"]))
    if budgets:
        lines.append(Line("AWS Budgets budget", budgets, "budget-month", fixed["budgetMonth"], 0, WHY["budget"]))
    if secrets:
        price = fixed["secretsManagerSecretMonth"]
        lines.append(Line("Secrets Manager secrets", secrets, "secret-month", price, 0, WHY["secret"]))
    for line in lines:
        line.monthly = round(line.quantity * line.unit_price, 2)
    return sorted(lines, key=lambda line: -line.monthly)


def report() -> dict[str, Any]:
    table = prices()
    environments = {}
    for environment in ENVIRONMENTS:
        lines = idle_lines(render_environment(environment), table)
        environments[environment] = {"total": round(sum(line.monthly for line in lines), 2), "lines": [asdict(x) for x in lines]}
        # What enabling the providers beyond Bedrock adds: their secrets, and egress where the functions are in a VPC.
        base = {line.item: line.monthly for line in lines}
        extra = [x for x in idle_lines(render_environment(environment, WITH_PROVIDERS), table) if x.monthly != base.get(x.item)]
        for line in extra:
            line.monthly = round(line.monthly - base.get(line.item, 0), 2)
            line.quantity -= next((b.quantity for b in lines if b.item == line.item), 0)
        environments[environment]["withProviders"] = {
            "added": round(sum(line.monthly for line in extra), 2),
            "lines": [asdict(x) for x in extra],
        }
    return {"pricesDate": table["date"], "region": table["region"], "environments": environments}


def markdown(data: dict[str, Any]) -> str:
    envs = data["environments"]
    out = [
        f"Idle cost per month (no requests), {data['region']} list prices of {data['pricesDate']} "
        "(`infrastructure/prices.json`), computed from the templates by `make cost`. "
        "Usage (model calls, requests, storage, logs) comes on top; see Performance for the cost per job.",
        "",
        "| Environment | Idle cost per month |",
        "|---|---:|",
    ]
    out += [f"| {env} | ${envs[env]['total']:.2f} |" for env in envs]
    for env, data_env in envs.items():
        if not data_env["lines"]:
            out += ["", f"**{env}**: nothing billed while idle."]
        else:
            out += ["", f"**{env}**", "", "| Item | Quantity | Unit price | Per month | Why |", "|---|---:|---:|---:|---|"]
            for line in data_env["lines"]:
                prices_ = f"${line['unit_price']:.2f} | ${line['monthly']:.2f}"
                out.append(f"| {line['item']} | {line['quantity']:g} | {prices_} | {line['why']} |")
    out += [
        "",
        "**Providers beyond Bedrock** (OpenAI, Stability AI, Google: `OpenAiApiKeySecret`, `StabilityApiKeySecret`, "
        "`GoogleApiKeySecret` set to `create`) add, while idle:",
        "",
        "| Environment | Added per month | Items |",
        "|---|---:|---|",
    ]
    for env, data_env in envs.items():
        added = data_env["withProviders"]
        items = (
            "; ".join(f"{line['quantity']:g} x {line['item']} (${line['monthly']:.2f})" for line in added["lines"]) or "nothing"
        )
        out.append(f"| {env} | ${added['added']:.2f} | {items} |")
    per_gb = prices()["fixed"]["natGatewayPerGb"]
    out += ["", f"In use, NAT gateways also charge ${per_gb:.3f} per GB they carry (prompts out, answers and images in)."]
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON instead of Markdown")
    args = parser.parse_args(argv)
    data = report()
    print(json.dumps(data, indent=2) if args.json else markdown(data), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
