"""Prompt templates: a versioned, append-only library shared by the deployment's
API keys, rendered in Jinja2's sandbox. A missing variable is an error, never
an empty string."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.conditions import Key

from shared.dynamo import if_condition
from shared.errors import GenstackError, InvalidRequest
from shared.jobs import from_dynamo, iso

if TYPE_CHECKING:
    from jinja2 import nodes
    from jinja2.sandbox import SandboxedEnvironment

# Jinja2 is imported by the functions below, not here: only a request that uses
# a template parses or renders one, so the generate and templates functions'
# cold starts do not pay for the import (tests/integration/test_packages.py).


class TemplateNotFound(GenstackError):
    status_code = 404
    code = "TEMPLATE_NOT_FOUND"


class TemplateVersionConflict(GenstackError):
    status_code = 409
    code = "TEMPLATE_VERSION_CONFLICT"


@lru_cache(maxsize=1)
def environment() -> SandboxedEnvironment:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    # Prompts are plain text: no HTML autoescaping; the sandbox forbids access
    # to unsafe attributes and methods; StrictUndefined makes a missing variable fail.
    return SandboxedEnvironment(undefined=StrictUndefined, autoescape=False)


def _parse(source: str) -> nodes.Template:
    """The template's syntax tree; a syntax error is a 400 that says where."""
    from jinja2 import TemplateSyntaxError

    try:
        return environment().parse(source)
    except TemplateSyntaxError as exc:
        raise InvalidRequest(f"template syntax error on line {exc.lineno}: {exc.message}", details={"field": "template"}) from exc


def variables_of(source: str) -> list[str]:
    """The variables a template uses."""
    from jinja2 import meta

    return sorted(meta.find_undeclared_variables(_parse(source)))


def render(source: str, variables: dict[str, Any]) -> str:
    from jinja2 import UndefinedError, meta
    from jinja2.sandbox import SecurityError

    parsed = _parse(source)  # once: for its variables, then to compile
    missing = sorted(name for name in meta.find_undeclared_variables(parsed) if name not in variables)
    if missing:
        raise InvalidRequest(
            f"missing template variable(s): {', '.join(missing)}", details={"field": "variables", "missing": missing}
        )
    try:
        rendered = environment().from_string(parsed).render(**variables)
    except (UndefinedError, SecurityError, TypeError, ValueError) as exc:
        raise InvalidRequest(f"the template could not be rendered: {exc}", details={"field": "variables"}) from exc
    if not rendered.strip():
        raise InvalidRequest("the template rendered to an empty prompt", details={"field": "variables"})
    return rendered


class TemplateStore:
    def __init__(self, table: Any) -> None:
        self._table = table

    def create_version(self, template_id: str, *, text: str, description: str, kind: str, owner: str, now: datetime) -> dict:
        """Append the next version; versions are never overwritten."""
        variables = variables_of(text)
        latest = self.latest(template_id, missing_ok=True)
        version = (int(latest["version"]) + 1) if latest else 1
        item = {
            "templateId": template_id,
            "version": version,
            "template": text,
            "description": description,
            "kind": kind,
            "variables": variables,
            "createdBy": owner,
            "createdAt": iso(now),
        }
        if if_condition(self._table.put_item, Item=item, ConditionExpression="attribute_not_exists(version)") is None:
            raise TemplateVersionConflict(f"version {version} of {template_id} was just created by another request; retry")
        return view(item)

    def latest(self, template_id: str, *, missing_ok: bool = False) -> dict | None:
        items = self._table.query(
            KeyConditionExpression=Key("templateId").eq(template_id), ScanIndexForward=False, Limit=1, ConsistentRead=True
        ).get("Items", [])
        if not items and not missing_ok:
            raise TemplateNotFound(f"no template {template_id}")
        return items[0] if items else None

    def get(self, template_id: str, version: int | None = None) -> dict:
        if version is None:
            return self.latest(template_id)
        item = self._table.get_item(Key={"templateId": template_id, "version": version}).get("Item")
        if item is None:
            raise TemplateNotFound(f"no version {version} of template {template_id}")
        return item

    def list_latest(self) -> list[dict]:
        """The latest version of every template (a scan: the library is small)."""
        latest: dict[str, dict] = {}
        kwargs: dict[str, Any] = {"ProjectionExpression": "templateId, version, description, kind, variables, createdAt"}
        while True:
            page = self._table.scan(**kwargs)
            for item in page.get("Items", []):
                current = latest.get(item["templateId"])
                if current is None or item["version"] > current["version"]:
                    latest[item["templateId"]] = item
            if "LastEvaluatedKey" not in page:
                return [view(latest[k]) for k in sorted(latest)]
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def view(item: dict) -> dict:
    return {k: v for k, v in from_dynamo(item).items() if k != "createdBy"}
