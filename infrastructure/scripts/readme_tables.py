"""The README's reference tables, generated from the templates so they cannot
drift: the root template's parameters and outputs, the EnvironmentConfig
mapping, and the idle cost per environment (cost.py).

Usage:
  python readme_tables.py [--readme README.md]           rewrite the sections
  python readme_tables.py [--readme README.md] --check   exit 1 if one is stale
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import cost
from cfn_render import ROOT, load

# What each EnvironmentConfig setting means, in the README's words.
SETTING_LABELS = {
    "AvailabilityZoneCount": "Availability Zones",
    "NatGateways": "NAT gateways: none, single or per-az",
    "ProviderNatGateways": "NAT gateways once a provider beyond Bedrock has a key (HTTPS egress)",
    "InterfaceEndpoints": "interface endpoints (Bedrock runtime, SQS, Lambda)",
    "FunctionsInVpc": "functions in private subnets",
    "EnableWaf": "WAF web ACL on the API",
    "RetainData": "tables, buckets and keys retained on delete; table deletion protection",
    "CustomerManagedKeys": "customer managed KMS keys (outputs bucket, tables)",
    "AlarmsAndDashboard": "alarms and dashboard",
    "ApiMemorySize": "API functions' memory (MB)",
    "WorkerMemorySize": "worker memory (MB)",
    "WorkerMaxConcurrency": "worker max concurrency (SQS event source)",
    "WorkerReservedConcurrency": "worker reserved concurrency (0: none)",
    "GenerateReservedConcurrency": "GenerateFunction reserved concurrency (0: none)",
    "StatusReservedConcurrency": "StatusFunction reserved concurrency (0: none)",
    "EnhanceReservedConcurrency": "EnhanceFunction reserved concurrency (0: none)",
    "OpenAiReservedConcurrency": "OpenAiFunction (/v1 routes) reserved concurrency (0: none)",
    "TemplatesReservedConcurrency": "TemplatesFunction reserved concurrency (0: none)",
    "LogRetentionDays": "log retention (days)",
    "LogLevel": "log level",
    "StageThrottleRate": "stage throttle (requests/s)",
    "StageThrottleBurst": "stage burst",
    "KeyThrottleRate": "standard tier: requests/s per key",
    "KeyThrottleBurst": "standard tier: burst per key",
    "KeyDailyQuota": "standard tier: requests/day per key",
    "FreeKeyThrottleRate": "free tier: requests/s per key",
    "FreeKeyThrottleBurst": "free tier: burst per key",
    "FreeKeyDailyQuota": "free tier: requests/day per key",
    "FunctionErrorsThreshold": "alarm: function errors per 5 min",
    "Api5xxThreshold": "alarm: API 5xx per 5 min",
    "ApiLatencyP99Ms": "alarm: API p99 latency (ms)",
    "QueueAgeAlarmSeconds": "alarm: oldest queued job (s)",
}


def _cell(text: Any) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def parameters_table(template: dict[str, Any]) -> str:
    rows = ["| Parameter | Default | Allowed | Description |", "|---|---|---|---|"]
    for name, spec in template["Parameters"].items():
        default = spec.get("Default", "")
        default = f"`{default}`" if default != "" else "(empty)"
        allowed = ", ".join(f"`{v}`" for v in spec["AllowedValues"]) if "AllowedValues" in spec else ""
        if not allowed and ("MinValue" in spec or "MaxValue" in spec):
            allowed = f"{spec.get('MinValue', '')}–{spec.get('MaxValue', '')}"
        rows.append(f"| `{name}` | {default} | {allowed} | {_cell(spec['Description'])} |")
    return "\n".join(rows) + "\n"


def outputs_table(template: dict[str, Any]) -> str:
    rows = ["| Output | Description |", "|---|---|"]
    rows += [f"| `{key}` | {_cell(output['Description'])} |" for key, output in template["Outputs"].items()]
    return "\n".join(rows) + "\n"


def environments_table(template: dict[str, Any]) -> str:
    config = template["Mappings"]["EnvironmentConfig"]
    envs = list(config)
    unlabelled = set(config[envs[0]]) - set(SETTING_LABELS)
    if unlabelled:
        raise SystemExit(f"readme_tables.py: label the EnvironmentConfig settings {sorted(unlabelled)}")
    rows = ["| Setting | " + " | ".join(envs) + " |", "|---|" + "---|" * len(envs)]
    for key in config[envs[0]]:
        rows.append(f"| {SETTING_LABELS[key]} (`{key}`) | " + " | ".join(f"{config[e][key]}" for e in envs) + " |")
    return "\n".join(rows) + "\n"


def models_table() -> str:
    """Each registry model: its kind, price, and the generation parameters it
    takes with their ranges (backend/shared/registry.json, via shared.parameters)."""
    sys.path.insert(0, str(ROOT / "backend"))
    from shared.parameters import accepted
    from shared.registry import load_registry, provider_names

    names = provider_names()
    rows = ["| Model | Provider | Kind | Price (USD) | Parameters it takes |", "|---|---|---|---|---|"]
    for spec in load_registry().values():
        if spec.kind == "text":
            price = f"{spec.input_per_1k} / {spec.output_per_1k} per 1k tokens in / out"
        elif spec.billing == "tokens":
            price = (
                f"{spec.input_per_1k} / {spec.output_per_1k} per 1k tokens in / out (image tokens); "
                f"about {spec.per_image} per 1024x1024 image"
            )
        else:
            price = f"{spec.per_image} per 1024x1024 standard image"
        takes = "; ".join(f"`{name}` {what}" for name, what in accepted(spec, spec.kind).items())
        rows.append(f"| `{spec.id}` | {names[spec.provider]} | {spec.kind} | {price} | {_cell(takes)} |")
    return "\n".join(rows) + "\n"


def sections() -> dict[str, str]:
    template = load("template.yaml")
    return {
        "models": models_table(),
        "parameters": parameters_table(template),
        "outputs": outputs_table(template),
        "environments": environments_table(template),
        "cost": cost.markdown(cost.report()),
    }


def replace_section(readme: str, name: str, body: str) -> str:
    begin, end = f"<!-- {name}:begin (generated by make docs; do not edit) -->", f"<!-- {name}:end -->"
    if begin not in readme or end not in readme:
        raise SystemExit(f"README: no markers for section {name!r}: {begin} ... {end}")
    head, rest = readme.split(begin, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{begin}\n{body}{end}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    parser.add_argument("--check", action="store_true", help="fail if a section is stale; change nothing")
    args = parser.parse_args(argv)
    original = args.readme.read_text(encoding="utf-8")
    updated = original
    for name, body in sections().items():
        updated = replace_section(updated, name, body)
    if updated == original:
        print(f"{args.readme.name}: tables are current", file=sys.stderr)
        return 0
    if args.check:
        print(f"{args.readme.name}: generated tables are stale; run `make docs`", file=sys.stderr)
        return 1
    args.readme.write_text(updated, encoding="utf-8")
    print(f"{args.readme.name}: tables updated", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
