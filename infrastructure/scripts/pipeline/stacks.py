"""One stack created or updated through a change set: printed first (stateful
replacements marked), executed unless it is a dry run, its events streamed.
An empty change set is a success; a failed first creation is deleted before
it is created again (AWS refuses to update a stack in ROLLBACK_COMPLETE)."""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from .config import StackRequest
from .console import PipelineError, line, paint, say
from .events import first_failure, stack_status, wait_until_settled

STATEFUL = {"AWS::DynamoDB::Table", "AWS::S3::Bucket", "AWS::KMS::Key", "AWS::Logs::LogGroup", "AWS::SQS::Queue"}
SETTLED_OK = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"}


def prepare(cfn: Any, stack: str) -> str:
    """Bring an existing stack into a state that accepts a change set; returns
    the change set type (CREATE or UPDATE)."""
    status = stack_status(cfn, stack)
    if status is None or status == "REVIEW_IN_PROGRESS":
        return "CREATE"
    if status.endswith("_IN_PROGRESS"):
        raise PipelineError(f"{stack} is {status}: another operation is running; wait for it to finish")
    if status in ("ROLLBACK_COMPLETE", "ROLLBACK_FAILED", "DELETE_FAILED"):
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
    """Print a change set (and its nested stacks' change sets); returns its changes."""
    changes: list[dict[str, Any]] = []
    token = None
    while True:
        page = cfn.describe_change_set(ChangeSetName=change_set_id, **({"NextToken": token} if token else {}))
        for change in page.get("Changes", []):
            rc = change["ResourceChange"]
            action, replacement = rc["Action"], rc.get("Replacement", "False")
            stateful = rc["ResourceType"] in STATEFUL and (action == "Remove" or replacement in ("True", "Conditional"))
            mark = paint("  <- REPLACES OR REMOVES STATEFUL DATA", "red") if stateful else ""
            replaced = f" (replacement: {replacement})" if action == "Modify" else ""
            verb = paint(f"{action:<7}", {"Add": "green", "Remove": "red"}.get(action, "yellow"))
            line(f"{indent}{verb} {rc['LogicalResourceId']:<34} {rc['ResourceType']}{replaced}{mark}")
            changes.append({**rc, "stateful": stateful})
            if rc.get("ChangeSetId"):  # a nested stack's own change set
                changes += describe_changes(cfn, rc["ChangeSetId"], indent + "    ")
        token = page.get("NextToken")
        if not token:
            return changes


def wait_change_set(cfn: Any, change_set_id: str, timeout: float = 600) -> tuple[str, str]:
    deadline = time.monotonic() + timeout
    while True:
        described = cfn.describe_change_set(ChangeSetName=change_set_id)
        if described["Status"] in ("CREATE_COMPLETE", "FAILED"):
            return described["Status"], described.get("StatusReason", "")
        if time.monotonic() > deadline:
            raise PipelineError(f"change set still {described['Status']} after {timeout:.0f} s")
        time.sleep(1)


def change_set_request(request: StackRequest, change_type: str, emulator: bool) -> dict[str, Any]:
    now = datetime.now(UTC)
    body: dict[str, Any] = {
        "StackName": request.stack,
        "ChangeSetName": f"genstack-{now.strftime('%Y%m%d%H%M%S')}",
        "ChangeSetType": change_type,
        "Parameters": [{"ParameterKey": k, "ParameterValue": v} for k, v in request.parameters.items()],
        "Capabilities": list(request.capabilities),
        "Tags": [{"Key": k, "Value": v} for k, v in request.tags.items()],
        "Description": f"genstack deploy {now.isoformat(timespec='seconds')}",
    }
    if request.template_url:
        body["TemplateURL"] = request.template_url
    elif request.template_file:
        body["TemplateBody"] = request.template_file.read_text(encoding="utf-8")
    else:
        raise PipelineError(f"{request.stack}: no template (a URL or a file) to deploy")
    if not emulator:
        body["IncludeNestedStacks"] = True  # nested stacks' own changes in the change set
    return body


def confirmed(request: StackRequest) -> bool:
    if not request.confirm or request.yes:
        return True
    if not sys.stdin.isatty():
        raise PipelineError("this environment asks for confirmation (confirm_changeset); rerun on a terminal or with --yes")
    return input("Execute this change set? [y/N] ").strip().lower() == "y"


def deploy(cfn: Any, request: StackRequest, *, emulator: bool = False) -> str:
    """Create or update one stack; returns its status after ("NO_CHANGES" if none)."""
    stack = request.stack
    change_type = prepare(cfn, stack)
    body = change_set_request(request, change_type, emulator)
    say(f"creating change set {body['ChangeSetName']} ({change_type}) for {stack}")
    try:
        change_set_id = cfn.create_change_set(**body)["Id"]
    except ClientError as exc:
        raise PipelineError(f"CloudFormation refused the change set: {exc.response['Error']['Message']}") from exc

    def discard() -> None:
        cfn.delete_change_set(ChangeSetName=change_set_id)
        if change_type == "CREATE":
            cfn.delete_stack(StackName=stack)  # the empty REVIEW_IN_PROGRESS shell

    status, reason = wait_change_set(cfn, change_set_id)
    if status == "FAILED":
        discard()
        if "didn't contain changes" in reason or "No updates" in reason:
            say(f"{stack}: no changes; nothing to deploy", "green")
            return "NO_CHANGES"
        raise PipelineError(f"change set failed: {reason}")
    say(f"change set for {stack}:", "bold")
    changes = describe_changes(cfn, change_set_id)
    if any(c["stateful"] for c in changes):
        say("this change set replaces or removes stateful resources (marked above)", "red")
    if request.dry_run:
        discard()
        say(f"dry run: {len(changes)} change(s) listed, nothing executed", "green")
        return "DRY_RUN"
    if not confirmed(request):
        discard()
        say("not executed; change set deleted", "yellow")
        return "NOT_CONFIRMED"
    since = datetime.now(UTC)
    cfn.execute_change_set(ChangeSetName=change_set_id)
    say(f"executing; events of {stack} and its nested stacks follow")
    settled = wait_until_settled(cfn, stack, since)
    if settled not in SETTLED_OK:
        raise PipelineError(f"{stack} ended {settled}; first failure: {first_failure(cfn, stack, since)}")
    if request.termination_protection:
        try:
            cfn.update_termination_protection(StackName=stack, EnableTerminationProtection=True)
        except ClientError as exc:  # an emulator may not implement it
            say(f"could not enable termination protection: {exc.response['Error']['Message']}", "yellow")
    say(f"{stack} is {settled}", "green")
    return settled
