"""taskcat across regions. Lambda reads function code only from a bucket in its
own region, and taskcat does not package SAM templates: so every region a
scenario of .taskcat.yml runs in gets its own packaged template, in that
region's artifact bucket, and the generated taskcat config runs each scenario
once per region with that region's template."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from typing import Any

import yaml

from cfn_render import ROOT

from . import artifacts, checks, outputs, teardown
from .console import PipelineError, say
from .session import Aws

TASKCAT_CONFIG = ROOT / ".taskcat.yml"
TASKCAT = ROOT / ".tools" / "taskcat" / "bin" / "taskcat"
WORK = ROOT / ".aws-sam" / "taskcat"
STACK_PREFIX = "tCaT-genstack-"


def scenario_regions(config: dict[str, Any], only: str | None = None) -> dict[str, list[str]]:
    """Each scenario's regions (its own, or the project's)."""
    if only and only not in config["tests"]:
        raise PipelineError(f".taskcat.yml has no test {only!r} (it has {', '.join(config['tests'])})")
    default = config["project"].get("regions", [])
    return {name: list(test.get("regions", default)) for name, test in config["tests"].items() if only in (None, name)}


def packaged_path(region: str) -> Path:
    return WORK / f"packaged-{region}.yaml"


def regional_config(config: dict[str, Any], only: str | None = None) -> dict[str, Any]:
    """The config taskcat runs: one test per scenario and region, each with the
    template packaged in its region (a scenario with one region keeps its name)."""
    scenarios = scenario_regions(config, only)
    tests = {}
    for name, regions in scenarios.items():
        for region in regions:
            test = copy.deepcopy(config["tests"][name])
            test["regions"] = [region]
            test["template"] = str(packaged_path(region).relative_to(ROOT))
            tests[name if len(regions) == 1 else f"{name}-{region}"] = test
    generated = copy.deepcopy(config)
    generated["tests"] = tests
    generated["project"]["template"] = next(iter(tests.values()))["template"]
    return generated


def package_regions(sessions: dict[str, Aws], built: Path) -> dict[str, Path]:
    """The built template packaged into each region's artifact bucket."""
    packaged = {}
    for region, aws in sessions.items():
        bucket = artifacts.bootstrap(aws)
        artifacts.package(aws, built, bucket, "taskcat", packaged_path(region))
        packaged[region] = packaged_path(region)
    return packaged


def run(profile: str | None, only: str | None = None) -> int:
    config = yaml.safe_load(TASKCAT_CONFIG.read_text(encoding="utf-8"))
    regions = sorted({r for rs in scenario_regions(config, only).values() for r in rs})
    sessions = {region: Aws(region, profile) for region in regions}
    if subprocess.run([str(TASKCAT), "lint"], cwd=ROOT, capture_output=True, check=False).returncode != 0:
        raise PipelineError("taskcat lint failed; run .tools/taskcat/bin/taskcat lint for details")
    for aws in sessions.values():  # before anything is built or created: taskcat creates stacks in AWS
        aws.identity()
    package_regions(sessions, artifacts.build("aws"))
    generated = WORK / ".taskcat.yml"
    generated.write_text(yaml.safe_dump(regional_config(config, only), sort_keys=False), encoding="utf-8")
    say(f"taskcat test run over {', '.join(regions)} ({generated.relative_to(ROOT)})")
    command = [str(TASKCAT), "test", "run", "--project-root", str(ROOT), "--input-file", str(generated), "--no-delete"]
    if subprocess.run(command, cwd=ROOT, check=False).returncode != 0:
        raise PipelineError("taskcat test run failed (report: taskcat_outputs/)")
    for aws in sessions.values():  # each stack smoke-tested through its API, then deleted
        for stack in created_stacks(aws):
            info = outputs.collect(aws, stack, "")
            checks.post_deploy(aws, info, seed_templates=False)
            teardown.delete(aws, stack)
    say("taskcat regression passed", "green")
    return 0


def created_stacks(aws: Aws) -> list[str]:
    """The root stacks taskcat created in the session's region (nested ones carry a ParentId)."""
    cfn, found = aws.client("cloudformation"), []
    for page in cfn.get_paginator("list_stacks").paginate(StackStatusFilter=["CREATE_COMPLETE"]):
        found += [
            s["StackName"] for s in page["StackSummaries"] if s["StackName"].startswith(STACK_PREFIX) and "ParentId" not in s
        ]
    return found
