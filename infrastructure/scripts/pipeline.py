"""The AWS-facing steps of the deploy pipeline (deploy.sh runs them in order).

Each subcommand talks to CloudFormation, S3 or the deployed API through boto3,
so the pipeline needs no AWS CLI, and works the same against AWS and against a
local emulator (--endpoint; the only difference).

  identity                       who and where we deploy (sts get-caller-identity)
  bootstrap                      create or update the genstack-bootstrap stack of this
                                 account and region; prints its artifact bucket
  config     --env E             samconfig.toml's [E] settings, as shell assignments
  validate   --env E             parameters checked against the template (types,
                                 allowed values, Rules) before anything is created
  stack      --stack S ...       create or update one stack through a change set:
                                 --dry-run prints it and stops; an empty change set
                                 is a success; events are streamed; a failure names
                                 the first failing resource, nested stacks included
  outputs    --stack S --out F   root and nested stack outputs -> JSON file
  post-deploy --outputs F        first key check, starter templates, smoke test
  delete     --stack S           empty the buckets CloudFormation will delete, delete
                                 the stack, list what was retained
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import ssl
import sys
import time
import tomllib
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from cfn_render import ROOT, RenderError, render

SAMCONFIG = ROOT / "samconfig.toml"
SEED_TEMPLATES = ROOT / "infrastructure" / "seed" / "templates.json"
BOOTSTRAP_STACK = "genstack-bootstrap"
STATEFUL = {"AWS::DynamoDB::Table", "AWS::S3::Bucket", "AWS::KMS::Key", "AWS::Logs::LogGroup", "AWS::SQS::Queue"}
TERMINAL_OK = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"}
TERMINAL_BAD = {
    "CREATE_FAILED",
    "ROLLBACK_COMPLETE",
    "ROLLBACK_FAILED",
    "UPDATE_ROLLBACK_COMPLETE",
    "UPDATE_ROLLBACK_FAILED",
    "DELETE_FAILED",
    "UPDATE_FAILED",
}
TTY = sys.stderr.isatty()


def paint(text: str, colour: str) -> str:
    codes = {"red": "31", "green": "32", "yellow": "33", "bold": "1", "dim": "2"}
    return f"\033[{codes[colour]}m{text}\033[0m" if TTY else text


def say(message: str, colour: str | None = None) -> None:
    stamp = datetime.now(UTC).strftime("%H:%M:%S")
    print(f"[{stamp}] {paint(message, colour) if colour else message}", file=sys.stderr, flush=True)


class PipelineError(Exception):
    """A failure to report in one sentence, without a traceback."""


# ------------------------------------------------------------------ clients
class Aws:
    def __init__(self, region: str | None, profile: str | None, endpoint: str | None) -> None:
        self.session = boto3.Session(profile_name=profile or None, region_name=region or None)
        self.endpoint = endpoint or None
        self.region = self.session.region_name
        if not self.region:
            raise PipelineError("no region: pass --region (make deploy REGION=...) or set AWS_REGION")

    def client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.endpoint)


def aws_from(args: argparse.Namespace) -> Aws:
    return Aws(args.region, args.profile, args.endpoint)


# ------------------------------------------------------------------ config
def samconfig(environment: str) -> dict[str, Any]:
    config = tomllib.loads(SAMCONFIG.read_text(encoding="utf-8"))
    if environment not in config:
        raise PipelineError(f"samconfig.toml has no [{environment}] section")
    return config[environment]["deploy"]["parameters"]


def key_values(text: str) -> dict[str, str]:
    """samconfig's "K=V K2='v 2'" strings, as a dict."""
    pairs = {}
    for item in shlex.split(text or ""):
        key, sep, value = item.partition("=")
        if not sep:
            raise PipelineError(f"expected Key=Value, got {item!r}")
        pairs[key] = value
    return pairs


def deploy_parameters(environment: str, overrides: list[str], endpoint: str | None) -> dict[str, str]:
    params = key_values(samconfig(environment).get("parameter_overrides", ""))
    params.update(key_values(" ".join(shlex.quote(o) for o in overrides)))
    if endpoint and "DeployTarget" not in params:
        params["DeployTarget"] = "local-emulator"
    return params


def validate(parameters: dict[str, str]) -> None:
    """What CloudFormation would refuse, refused before anything is created."""
    try:
        rendered = render(parameters=parameters)
    except RenderError as exc:
        raise PipelineError(f"invalid parameters: {exc}") from exc
    if rendered.rule_failures:
        raise PipelineError("the parameters contradict each other: " + "; ".join(rendered.rule_failures))


# ------------------------------------------------------------------ stacks
def stack_status(cfn: Any, stack: str) -> str | None:
    try:
        return cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise


def wait_until_settled(cfn: Any, stack: str, since: datetime, timeout: float = 3600) -> str:
    """Stream the events of the stack and its nested stacks until it settles."""
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    while True:
        status = stack_status(cfn, stack)
        for event in sorted(new_events(cfn, stack, since, seen), key=lambda e: e["Timestamp"]):
            print_event(event)
        if status is None:
            return "DELETE_COMPLETE"
        if not status.endswith("_IN_PROGRESS"):
            return status
        if time.monotonic() > deadline:
            raise PipelineError(f"{stack} still {status} after {timeout:.0f} s")
        time.sleep(2)


def nested_stacks(cfn: Any, stack: str) -> list[str]:
    found = []
    try:
        resources = cfn.describe_stack_resources(StackName=stack)["StackResources"]
    except ClientError:
        return found
    for resource in resources:
        if resource["ResourceType"] == "AWS::CloudFormation::Stack" and resource.get("PhysicalResourceId"):
            found.append(resource["PhysicalResourceId"])
            found += nested_stacks(cfn, resource["PhysicalResourceId"])
    return found


def new_events(cfn: Any, stack: str, since: datetime, seen: set[str]) -> list[dict[str, Any]]:
    events = []
    for name in [stack, *nested_stacks(cfn, stack)]:
        try:
            page = cfn.describe_stack_events(StackName=name)["StackEvents"]
        except ClientError:
            continue
        for event in reversed(page):  # oldest first, so that equal timestamps keep their order
            if event["EventId"] in seen or event["Timestamp"] < since:
                continue
            seen.add(event["EventId"])
            events.append(event)
    return events


def print_event(event: dict[str, Any]) -> None:
    status = event.get("ResourceStatus", "")
    colour = "red" if "FAILED" in status or "ROLLBACK" in status else "green" if status.endswith("COMPLETE") else "dim"
    stack = short_name(event["StackName"])
    reason = f"  {event['ResourceStatusReason']}" if event.get("ResourceStatusReason") else ""
    when = event["Timestamp"].strftime("%H:%M:%S")
    line = f"{when}  {stack:<40.40} {event['LogicalResourceId']:<32.32} {status}{reason}"
    print(paint(line, colour), file=sys.stderr, flush=True)


def first_failure(cfn: Any, stack: str, since: datetime) -> str:
    """The earliest failed resource of a deployment, across nested stacks,
    skipping the cascade ("cancelled", "embedded stack ... failed")."""
    failures = []
    for name in [stack, *nested_stacks(cfn, stack)]:
        try:
            events = cfn.describe_stack_events(StackName=name)["StackEvents"]
        except ClientError:
            continue
        for event in events:
            reason = event.get("ResourceStatusReason", "") or ""
            if event["Timestamp"] < since or not event.get("ResourceStatus", "").endswith("FAILED"):
                continue
            if (
                "cancelled" in reason.lower()
                or "embedded stack" in reason.lower()
                or event["ResourceType"] == "AWS::CloudFormation::Stack"
            ):
                continue
            failures.append(event)
    if not failures:
        return "no failed resource recorded; see the stack events above"
    event = min(failures, key=lambda e: e["Timestamp"])
    where = short_name(event["StackName"])
    return f"{event['LogicalResourceId']} ({event['ResourceType']}) in {where}: {event.get('ResourceStatusReason', '')}"


def short_name(stack: str) -> str:
    """A stack's name, from its name or its id (an ARN)."""
    return stack.split("/")[1] if stack.startswith("arn:") else stack


def prepare_stack(cfn: Any, stack: str) -> str:
    """Bring an existing stack into a state that accepts a change set; returns
    the change set type (CREATE or UPDATE)."""
    status = stack_status(cfn, stack)
    if status is None or status == "REVIEW_IN_PROGRESS":
        return "CREATE"
    if status.endswith("_IN_PROGRESS"):
        raise PipelineError(f"{stack} is {status}: another operation is running; wait for it to finish")
    if status in ("ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "DELETE_FAILED"):
        # A failed first creation cannot be updated (AWS refuses): delete it.
        say(f"{stack} is {status} (its creation failed); deleting it before creating it again", "yellow")
        since = datetime.now(UTC)
        cfn.delete_stack(StackName=stack)
        if wait_until_settled(cfn, stack, since) != "DELETE_COMPLETE":
            raise PipelineError(f"could not delete {stack}: {first_failure(cfn, stack, since)}")
        return "CREATE"
    if status == "UPDATE_ROLLBACK_FAILED":
        say(f"{stack} is UPDATE_ROLLBACK_FAILED; continuing the rollback first", "yellow")
        since = datetime.now(UTC)
        cfn.continue_update_rollback(StackName=stack)
        settled = wait_until_settled(cfn, stack, since)
        if settled != "UPDATE_ROLLBACK_COMPLETE":
            raise PipelineError(
                f"{stack} could not finish its rollback ({settled}): {first_failure(cfn, stack, since)}. "
                "Fix the resource by hand, or continue-update-rollback --resources-to-skip it"
            )
    return "UPDATE"


def describe_changes(cfn: Any, change_set_id: str, indent: str = "  ") -> list[dict[str, Any]]:
    changes: list[dict[str, Any]] = []
    pages, token = [], None
    while True:
        page = cfn.describe_change_set(ChangeSetName=change_set_id, **({"NextToken": token} if token else {}))
        pages.append(page)
        token = page.get("NextToken")
        if not token:
            break
    for page in pages:
        for change in page.get("Changes", []):
            rc = change["ResourceChange"]
            action, replacement = rc["Action"], rc.get("Replacement", "False")
            stateful = rc["ResourceType"] in STATEFUL and (action == "Remove" or replacement in ("True", "Conditional"))
            mark = paint("  <- REPLACES OR REMOVES STATEFUL DATA", "red") if stateful else ""
            replaced = f" (replacement: {replacement})" if action == "Modify" else ""
            colour = {"Add": "green", "Remove": "red"}.get(action, "yellow")
            print(
                f"{indent}{paint(f'{action:<7}', colour)} {rc['LogicalResourceId']:<34} {rc['ResourceType']}{replaced}{mark}",
                file=sys.stderr,
            )
            changes.append({**rc, "stateful": stateful})
            if rc.get("ChangeSetId"):  # a nested stack's own change set
                changes += describe_changes(cfn, rc["ChangeSetId"], indent + "    ")
    return changes


def deploy_stack(aws: Aws, args: argparse.Namespace) -> int:
    cfn = aws.client("cloudformation")
    stack = args.stack
    change_type = prepare_stack(cfn, stack)
    name = f"genstack-{datetime.now(UTC).strftime('%Y%m%d%H%M%S')}"
    request: dict[str, Any] = {
        "StackName": stack,
        "ChangeSetName": name,
        "ChangeSetType": change_type,
        "Parameters": [
            {"ParameterKey": k, "ParameterValue": v}
            for k, v in key_values(" ".join(shlex.quote(p) for p in args.parameter)).items()
        ],
        "Capabilities": args.capabilities.split(),
        "Tags": [{"Key": k, "Value": v} for k, v in key_values(" ".join(shlex.quote(t) for t in args.tag)).items()],
        "Description": f"genstack deploy {datetime.now(UTC).isoformat(timespec='seconds')}",
    }
    if args.template_url:
        request["TemplateURL"] = args.template_url
    else:
        request["TemplateBody"] = Path(args.template_file).read_text(encoding="utf-8")
    if not aws.endpoint:
        request["IncludeNestedStacks"] = True  # nested stacks' own changes in the change set
    say(f"creating change set {name} ({change_type}) for {stack}")
    try:
        change_set_id = cfn.create_change_set(**request)["Id"]
    except ClientError as exc:
        raise PipelineError(f"CloudFormation refused the change set: {exc.response['Error']['Message']}") from exc
    status, reason = wait_change_set(cfn, change_set_id)
    if status == "FAILED":
        cfn.delete_change_set(ChangeSetName=change_set_id)
        if "didn't contain changes" in reason or "No updates" in reason:
            if change_type == "CREATE":
                cfn.delete_stack(StackName=stack)  # the empty REVIEW_IN_PROGRESS shell
            say(f"{stack}: no changes; nothing to deploy", "green")
            return 0
        raise PipelineError(f"change set failed: {reason}")
    say(f"change set for {stack}:", "bold")
    changes = describe_changes(cfn, change_set_id)
    if any(c["stateful"] for c in changes):
        say("this change set replaces or removes stateful resources (marked above)", "red")
    if args.dry_run:
        cfn.delete_change_set(ChangeSetName=change_set_id)
        if change_type == "CREATE":
            cfn.delete_stack(StackName=stack)
        say(f"dry run: {len(changes)} change(s) listed, nothing executed", "green")
        return 0
    if args.confirm and not args.yes:
        if not sys.stdin.isatty():
            cfn.delete_change_set(ChangeSetName=change_set_id)
            raise PipelineError("this environment asks for confirmation (confirm_changeset); rerun on a terminal or with --yes")
        answer = input("Execute this change set? [y/N] ").strip().lower()
        if answer != "y":
            cfn.delete_change_set(ChangeSetName=change_set_id)
            say("not executed; change set deleted", "yellow")
            return 0
    since = datetime.now(UTC)
    cfn.execute_change_set(ChangeSetName=change_set_id)
    say(f"executing; events of {stack} and its nested stacks follow")
    settled = wait_until_settled(cfn, stack, since)
    if settled not in TERMINAL_OK:
        raise PipelineError(f"{stack} ended {settled}; first failure: {first_failure(cfn, stack, since)}")
    if args.termination_protection:
        try:
            cfn.update_termination_protection(StackName=stack, EnableTerminationProtection=True)
        except ClientError as exc:  # an emulator may not implement it
            say(f"could not enable termination protection: {exc.response['Error']['Message']}", "yellow")
    say(f"{stack} is {settled}", "green")
    return 0


def wait_change_set(cfn: Any, change_set_id: str, timeout: float = 600) -> tuple[str, str]:
    deadline = time.monotonic() + timeout
    while True:
        described = cfn.describe_change_set(ChangeSetName=change_set_id)
        status = described["Status"]
        if status in ("CREATE_COMPLETE", "FAILED"):
            return status, described.get("StatusReason", "")
        if time.monotonic() > deadline:
            raise PipelineError(f"change set still {status} after {timeout:.0f} s")
        time.sleep(1)


# ----------------------------------------------------------------- outputs
def invoke_url(outputs: dict[str, str], endpoint: str | None) -> str:
    """The API's invoke URL: the ApiUrl output on AWS; on the emulator, its data
    plane (ministack serves REST APIs at /_aws/execute-api/{apiId}/{stage}/...)."""
    if endpoint:
        return f"{endpoint.rstrip('/')}/_aws/execute-api/{outputs['ApiId']}/v1"
    return outputs["ApiUrl"]


def openai_url(outputs: dict[str, str], endpoint: str | None) -> str:
    """The OpenAI-compatible API's base URL (an OpenAI SDK's base_url), the same way."""
    if endpoint:
        return f"{endpoint.rstrip('/')}/_aws/execute-api/{outputs['OpenAiApiId']}/openai/v1"
    return outputs["OpenAiBaseUrl"]


def collect_outputs(aws: Aws, stack: str, environment: str) -> dict[str, Any]:
    cfn = aws.client("cloudformation")
    described = cfn.describe_stacks(StackName=stack)["Stacks"][0]

    def outputs_of(d: dict[str, Any]) -> dict[str, str]:
        return {o["OutputKey"]: o["OutputValue"] for o in d.get("Outputs", [])}

    nested = {}
    for resource in cfn.describe_stack_resources(StackName=stack)["StackResources"]:
        if resource["ResourceType"] == "AWS::CloudFormation::Stack":
            child = cfn.describe_stacks(StackName=resource["PhysicalResourceId"])["Stacks"][0]
            nested[resource["LogicalResourceId"]] = outputs_of(child)
    outputs = outputs_of(described)
    return {
        "stackName": stack,
        "environment": environment,
        "region": aws.region,
        "endpoint": aws.endpoint,
        "status": described["StackStatus"],
        "parameters": {p["ParameterKey"]: p.get("ParameterValue", "") for p in described.get("Parameters", [])},
        "outputs": outputs,
        "nested": nested,
        # Where clients call the API (python -m genstack --outputs reads it).
        "apiUrl": invoke_url(outputs, aws.endpoint) if "ApiId" in outputs else None,
        "openAiBaseUrl": openai_url(outputs, aws.endpoint) if "OpenAiApiId" in outputs else None,
        "collectedAt": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def bootstrap(aws: Aws) -> str:
    """The artifact bucket of this account and region, its stack deployed first."""
    args = argparse.Namespace(
        stack=BOOTSTRAP_STACK,
        template_url=None,
        template_file=str(ROOT / "infrastructure" / "bootstrap.yaml"),
        parameter=[],
        tag=["Application=genstack"],
        capabilities="",
        dry_run=False,
        confirm=False,
        yes=True,
        termination_protection=False,
    )
    deploy_stack(aws, args)
    return collect_outputs(aws, BOOTSTRAP_STACK, "")["outputs"]["ArtifactBucketName"]


# ------------------------------------------------------------- post-deploy
def http(method: str, url: str, key: str | None = None, body: Any = None) -> tuple[int, Any]:
    headers = {"content-type": "application/json"} if body is not None else {}
    if key:
        headers["x-api-key"] = key
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    context = ssl.create_default_context(cafile=os.environ.get("AWS_CA_BUNDLE") or None)
    try:
        with urllib.request.urlopen(request, timeout=30, context=context) as response:
            raw, status = response.read(), response.status
    except urllib.error.HTTPError as error:
        raw, status = error.read(), error.code
    try:
        return status, json.loads(raw) if raw else None
    except ValueError:
        return status, raw.decode(errors="replace")


def post_deploy(aws: Aws, info: dict[str, Any], *, seed: bool, smoke: bool) -> None:
    apigw = aws.client("apigateway")
    key_id = info["outputs"]["ApiKeyId"]
    try:
        key = apigw.get_api_key(apiKey=key_id, includeValue=True)
    except ClientError as exc:
        raise PipelineError(f"the first API key {key_id} is missing: {exc.response['Error']['Message']}") from exc
    if not key.get("enabled", True):
        apigw.update_api_key(apiKey=key_id, patchOperations=[{"op": "replace", "path": "/enabled", "value": "true"}])
        say(f"the first API key {key_id} was disabled; enabled it again", "yellow")
    say(f"first API key: {key_id} (value: make api-key, or aws apigateway get-api-key --api-key {key_id} --include-value)")
    base = info["apiUrl"]
    if smoke:
        status, body = http("GET", f"{base}/health")
        if status != 200:
            raise PipelineError(f"smoke test: GET /health answered {status} {body}")
        # A new key can take a few seconds to reach every API Gateway node.
        deadline = time.monotonic() + 90
        while True:
            status, body = http("GET", f"{base}/jobs?limit=1", key=key["value"])
            if status == 200 or time.monotonic() > deadline:
                break
            time.sleep(3)
        if status != 200:
            raise PipelineError(f"smoke test: GET /jobs with the first key answered {status} {body}")
        say("smoke test passed: /health, and /jobs with the first key", "green")
    if "PlaygroundUrl" in info["outputs"]:
        from playground import publish

        say(f"playground: {publish(aws.client('s3'), info)} (paste an API key)", "green")
    if seed:
        seeded = []
        for template in json.loads(SEED_TEMPLATES.read_text(encoding="utf-8")):
            status, _ = http("GET", f"{base}/templates/{template['templateId']}", key=key["value"])
            if status == 404:
                status, body = http("POST", f"{base}/templates", key=key["value"], body=template)
                if status != 201:
                    raise PipelineError(f"seeding template {template['templateId']}: {status} {body}")
                seeded.append(template["templateId"])
            elif status != 200:
                raise PipelineError(f"reading template {template['templateId']}: {status}")
        say(f"starter templates: {', '.join(seeded) or 'already present'}", "green")


# ------------------------------------------------------------------ delete
def delete(aws: Aws, stack: str) -> int:
    cfn, s3 = aws.client("cloudformation"), aws.client("s3")
    if stack_status(cfn, stack) is None:
        say(f"{stack} does not exist; nothing to delete", "green")
        return 0
    described = cfn.describe_stacks(StackName=stack)["Stacks"][0]
    if described.get("EnableTerminationProtection"):
        raise PipelineError(
            f"{stack} has termination protection; turn it off first: "
            f"aws cloudformation update-termination-protection --no-enable-termination-protection --stack-name {stack}"
        )
    parameters = {p["ParameterKey"]: p["ParameterValue"] for p in described.get("Parameters", [])}
    # Which resources CloudFormation keeps: the DeletionPolicy of each, as the
    # deployed parameters resolve it.
    rendered = render(parameters=parameters)
    policies = {(path.rsplit("/", 1)[-1], lid): res.get("DeletionPolicy", "Delete") for path, lid, res in rendered.walk()}
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
    return 0


def empty_bucket(s3: Any, bucket: str) -> int:
    """Every version and delete marker, as S3 requires before a bucket goes."""
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


# -------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "command", choices=["identity", "bootstrap", "config", "validate", "stack", "outputs", "post-deploy", "delete"]
    )
    parser.add_argument("--env", choices=["dev", "staging", "prod"])
    parser.add_argument("--region")
    parser.add_argument("--profile")
    parser.add_argument("--endpoint")
    parser.add_argument("--stack")
    parser.add_argument("--template-url")
    parser.add_argument("--template-file")
    parser.add_argument("--parameter", action="append", default=[], help="Key=Value (repeatable)")
    parser.add_argument("--tag", action="append", default=[], help="Key=Value (repeatable)")
    parser.add_argument("--capabilities", default="CAPABILITY_IAM CAPABILITY_AUTO_EXPAND")
    parser.add_argument("--dry-run", action="store_true")
    parser.add_argument("--confirm", action="store_true", help="ask before executing the change set")
    parser.add_argument("--yes", action="store_true", help="do not ask")
    parser.add_argument("--termination-protection", action="store_true")
    parser.add_argument("--out")
    parser.add_argument("--outputs")
    parser.add_argument("--no-seed", action="store_true")
    parser.add_argument("--no-smoke", action="store_true")
    args = parser.parse_args(argv)
    try:
        if args.command == "config":
            config = samconfig(args.env)
            params = deploy_parameters(args.env, args.parameter, args.endpoint)
            print(f"stack_name={shlex.quote(config['stack_name'])}")
            print(f"s3_prefix={shlex.quote(config.get('s3_prefix', config['stack_name']))}")
            print(f"capabilities={shlex.quote(config.get('capabilities', 'CAPABILITY_IAM'))}")
            print(f"confirm_changeset={'true' if config.get('confirm_changeset') else 'false'}")
            print("parameters=(" + " ".join(shlex.quote(f"{k}={v}") for k, v in params.items()) + ")")
            print("tags=(" + " ".join(shlex.quote(t) for t in shlex.split(config.get("tags", ""))) + ")")
            return 0
        if args.command == "validate":
            validate(deploy_parameters(args.env, args.parameter, args.endpoint))
            say("parameters are valid for the template", "green")
            return 0
        aws = aws_from(args)
        if args.command == "identity":
            who = aws.client("sts").get_caller_identity()
            print(f"account={who['Account']}")
            print(f"arn={shlex.quote(who['Arn'])}")
            print(f"region={aws.region}")
            return 0
        if args.command == "bootstrap":
            print(bootstrap(aws))
            return 0
        if args.command == "stack":
            return deploy_stack(aws, args)
        if args.command == "outputs":
            info = collect_outputs(aws, args.stack, args.env or "")
            Path(args.out).parent.mkdir(parents=True, exist_ok=True)
            Path(args.out).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
            say(f"outputs of {args.stack} and its {len(info['nested'])} nested stacks -> {args.out}", "green")
            return 0
        if args.command == "post-deploy":
            info = json.loads(Path(args.outputs).read_text(encoding="utf-8"))
            post_deploy(aws, info, seed=not args.no_seed, smoke=not args.no_smoke)
            return 0
        if args.command == "delete":
            return delete(aws, args.stack)
    except PipelineError as exc:
        say(f"error: {exc}", "red")
        return 1
    except (NoCredentialsError, NoRegionError) as exc:
        say(f"error: {exc}. Configure credentials (AWS_PROFILE, or make deploy PROFILE=...)", "red")
        return 1
    except ClientError as exc:
        say(f"error: {exc.response['Error'].get('Code')}: {exc.response['Error'].get('Message')}", "red")
        return 1
    except BotoCoreError as exc:  # no connection, TLS, ...
        say(f"error: {exc}", "red")
        return 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
