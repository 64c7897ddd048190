"""A stack's events, streamed while it changes (nested stacks included), and
the first real failure of a deployment named in one line."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from .console import PipelineError, line


def short_name(stack: str) -> str:
    """A stack's name, from its name or its id (an ARN)."""
    return stack.split("/")[1] if stack.startswith("arn:") else stack


def stack_status(cfn: Any, stack: str) -> str | None:
    try:
        return cfn.describe_stacks(StackName=stack)["Stacks"][0]["StackStatus"]
    except ClientError as exc:
        if "does not exist" in str(exc):
            return None
        raise


def nested_stacks(cfn: Any, stack: str) -> list[str]:
    """The ids of every stack nested under this one, depth first."""
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


def events_since(cfn: Any, stack: str, since: datetime) -> list[dict[str, Any]]:
    """The events of the stack and its nested stacks since a time, oldest first
    (a page is newest first; reversed, equal time stamps keep their order)."""
    events = []
    for name in [stack, *nested_stacks(cfn, stack)]:
        try:
            page = cfn.describe_stack_events(StackName=name)["StackEvents"]
        except ClientError:
            continue
        events += [e for e in reversed(page) if e["Timestamp"] >= since]
    return sorted(events, key=lambda e: e["Timestamp"])


def print_event(event: dict[str, Any]) -> None:
    status = event.get("ResourceStatus", "")
    colour = "red" if "FAILED" in status or "ROLLBACK" in status else "green" if status.endswith("COMPLETE") else "dim"
    reason = f"  {event['ResourceStatusReason']}" if event.get("ResourceStatusReason") else ""
    when = event["Timestamp"].strftime("%H:%M:%S")
    stack = short_name(event["StackName"])
    line(f"{when}  {stack:<40.40} {event['LogicalResourceId']:<32.32} {status}{reason}", colour)


def wait_until_settled(cfn: Any, stack: str, since: datetime, timeout: float = 3600, poll: float = 2) -> str:
    """Stream the events of the stack and its nested stacks until it settles;
    returns its final status (DELETE_COMPLETE once it is gone)."""
    seen: set[str] = set()
    deadline = time.monotonic() + timeout
    while True:
        status = stack_status(cfn, stack)
        for event in events_since(cfn, stack, since):
            if event["EventId"] not in seen:
                seen.add(event["EventId"])
                print_event(event)
        if status is None:
            return "DELETE_COMPLETE"
        if not status.endswith("_IN_PROGRESS"):
            return status
        if time.monotonic() > deadline:
            raise PipelineError(f"{stack} still {status} after {timeout:.0f} s")
        time.sleep(poll)


def first_failure(cfn: Any, stack: str, since: datetime) -> str:
    """The earliest failed resource of a deployment, across nested stacks,
    skipping the cascade ("cancelled", "embedded stack ... failed")."""
    failures = [
        e
        for e in events_since(cfn, stack, since)
        if e.get("ResourceStatus", "").endswith("FAILED")
        and e["ResourceType"] != "AWS::CloudFormation::Stack"
        and "cancelled" not in (e.get("ResourceStatusReason") or "").lower()
        and "embedded stack" not in (e.get("ResourceStatusReason") or "").lower()
    ]
    if not failures:
        return "no failed resource recorded; see the stack events above"
    event = failures[0]
    where = short_name(event["StackName"])
    return f"{event['LogicalResourceId']} ({event['ResourceType']}) in {where}: {event.get('ResourceStatusReason', '')}"
