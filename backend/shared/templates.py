"""Prompt templates: each API key's own versioned library, private unless its
owner shares it with the deployment's other keys.

Table layout (Templates, keyed on owner + sk):
- a head item per template, sk "T#<templateId>": the latest version number,
  whether it is shared, and what a listing shows (no template text);
- an item per version, sk "V#<templateId>#<version, 6 digits>": the text.
A new version writes both in one transaction, so the head never names a
version that does not exist. A shared head also carries the shared-index keys
(sharedScope, sharedSort), a sparse index that lists the shared templates.

Only the owner can add versions, share, unshare or delete: the caller's own
namespace is the only one any write touches. Another key's template is
invisible (404, the same as a missing one) unless it is shared, and then it
can only be read and used."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from shared.errors import GenstackError, InvalidRequest
from shared.jobs import from_dynamo, iso
from shared.prompt_language import check

SHARED_INDEX = "shared-index"
SHARED_SCOPE = "shared"
MAX_VERSIONS = 1_000


class TemplateNotFound(GenstackError):
    status_code = 404
    code = "TEMPLATE_NOT_FOUND"


class TemplateVersionConflict(GenstackError):
    status_code = 409
    code = "TEMPLATE_VERSION_CONFLICT"


def head_key(owner: str, template_id: str) -> dict[str, str]:
    return {"owner": owner, "sk": f"T#{template_id}"}


def version_key(owner: str, template_id: str, version: int) -> dict[str, str]:
    return {"owner": owner, "sk": f"V#{template_id}#{version:06d}"}


def _not_found(template_id: str, owner: str | None, version: int | None = None) -> TemplateNotFound:
    whose = f" of {owner}" if owner else ""
    if version is not None:
        return TemplateNotFound(f"no version {version} of template {template_id}{whose}")
    return TemplateNotFound(f"no template {template_id}{whose} for this API key")


class TemplateStore:
    def __init__(self, table: Any) -> None:
        self._table = table

    # ------------------------------------------------------------ writes
    def create_version(
        self,
        template_id: str,
        *,
        owner: str,
        text: str,
        description: str,
        kind: str,
        shared: bool | None,
        now: datetime,
    ) -> dict[str, Any]:
        """Append the next version of the caller's template (the first creates
        it). `shared` None keeps the template's sharing as it is (private for
        a new one)."""
        checked = check(text)
        head = self._table.get_item(Key=head_key(owner, template_id), ConsistentRead=True).get("Item")
        previous = int(head["latestVersion"]) if head else 0
        if previous >= MAX_VERSIONS:
            raise InvalidRequest(
                f"template {template_id} has {MAX_VERSIONS} versions, the most one may have; delete it or use a new id",
                details={"field": "templateId"},
            )
        version = previous + 1
        is_shared = bool(head.get("shared")) if shared is None and head else bool(shared)
        stamp = iso(now)
        created = head["createdAt"] if head else stamp
        version_item = {
            **version_key(owner, template_id, version),
            "templateId": template_id,
            "version": version,
            "template": text,
            "description": description,
            "kind": kind,
            "variables": list(checked.variables),
            "requiredVariables": list(checked.required),
            "createdAt": stamp,
        }
        head_item: dict[str, Any] = {
            **head_key(owner, template_id),
            "templateId": template_id,
            "latestVersion": version,
            "description": description,
            "kind": kind,
            "variables": list(checked.variables),
            "shared": is_shared,
            "createdAt": created,
            "updatedAt": stamp,
        }
        if is_shared:
            head_item.update(sharedScope=SHARED_SCOPE, sharedSort=f"{template_id}#{owner}")
        condition, values = "attribute_not_exists(sk)", {}
        if head:
            condition, values = "latestVersion = :previous", {":previous": previous}
        head_put: dict[str, Any] = {"TableName": self._table.name, "Item": head_item, "ConditionExpression": condition}
        if values:
            head_put["ExpressionAttributeValues"] = values
        try:
            self._table.meta.client.transact_write_items(
                TransactItems=[
                    {"Put": head_put},
                    # No condition of its own: the head's guards the race, and a version
                    # item left behind by an interrupted delete is overwritten.
                    {"Put": {"TableName": self._table.name, "Item": version_item}},
                ]
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "TransactionCanceledException":
                raise TemplateVersionConflict(
                    f"another request created version {version} of {template_id} at the same time; retry"
                ) from exc
            raise
        return version_view(version_item, owner=owner, shared=is_shared)

    def set_sharing(self, template_id: str, *, owner: str, shared: bool, now: datetime) -> dict[str, Any]:
        """Share or stop sharing the caller's template (every version)."""
        if shared:
            update = "SET #shared = :shared, updatedAt = :now, sharedScope = :scope, sharedSort = :sort"
            values: dict[str, Any] = {":scope": SHARED_SCOPE, ":sort": f"{template_id}#{owner}"}
        else:
            update, values = "SET #shared = :shared, updatedAt = :now REMOVE sharedScope, sharedSort", {}
        try:
            item = self._table.update_item(
                Key=head_key(owner, template_id),
                UpdateExpression=update,
                ConditionExpression="attribute_exists(sk)",
                ExpressionAttributeNames={"#shared": "shared"},  # a reserved word in DynamoDB
                ExpressionAttributeValues={":shared": shared, ":now": iso(now), **values},
                ReturnValues="ALL_NEW",
            )["Attributes"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                raise _not_found(template_id, None) from exc
            raise
        return head_view(item)

    def delete(self, template_id: str, *, owner: str) -> int:
        """Delete the caller's template and every version; how many versions were removed."""
        head = self._table.get_item(Key=head_key(owner, template_id), ConsistentRead=True).get("Item")
        if head is None:
            raise _not_found(template_id, None)
        # The head first: once it is gone nothing can read or use the
        # template, and a crash leaves only unreachable version items, which
        # the next create of the same id overwrites (versions restart at 1).
        self._table.delete_item(Key=head_key(owner, template_id))
        removed, kwargs = (
            0,
            {
                "KeyConditionExpression": Key("owner").eq(owner) & Key("sk").begins_with(f"V#{template_id}#"),
                "ProjectionExpression": "#owner, sk",
                "ExpressionAttributeNames": {"#owner": "owner"},
            },
        )
        with self._table.batch_writer() as batch:
            while True:
                page = self._table.query(**kwargs)
                for item in page.get("Items", []):
                    batch.delete_item(Key={"owner": item["owner"], "sk": item["sk"]})
                    removed += 1
                if "LastEvaluatedKey" not in page:
                    break
                kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return removed

    # ------------------------------------------------------------- reads
    def get(self, template_id: str, *, caller: str, owner: str | None = None, version: int | None = None) -> dict[str, Any]:
        """A version (the latest when `version` is None) of a template the
        caller may read: its own, or another key's shared one. Anything else
        is a 404 indistinguishable from a missing template."""
        owner = owner or caller
        head = self._table.get_item(Key=head_key(owner, template_id), ConsistentRead=True).get("Item")
        if head is None or (owner != caller and not head.get("shared")):
            raise _not_found(template_id, owner if owner != caller else None)
        number = int(head["latestVersion"]) if version is None else version
        item = self._table.get_item(Key=version_key(owner, template_id, number), ConsistentRead=True).get("Item")
        if item is None:
            raise _not_found(template_id, owner if owner != caller else None, version)
        return version_view(item, owner=owner, shared=bool(head.get("shared")))

    def list_own(self, owner: str, *, limit: int, token: str | None) -> dict[str, Any]:
        """One page of the caller's templates (heads: no text), by id."""
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": Key("owner").eq(owner) & Key("sk").begins_with("T#"),
            "Limit": limit,
        }
        if token:
            kwargs["ExclusiveStartKey"] = decode_token(token, {"owner", "sk"}, lambda key: key["owner"] == owner)
        page = self._table.query(**kwargs)
        return _page(page, head_view)

    def list_shared(self, *, limit: int, token: str | None) -> dict[str, Any]:
        """One page of every key's shared templates, by id then owner."""
        kwargs: dict[str, Any] = {
            "IndexName": SHARED_INDEX,
            "KeyConditionExpression": Key("sharedScope").eq(SHARED_SCOPE),
            "Limit": limit,
        }
        if token:
            kwargs["ExclusiveStartKey"] = decode_token(
                token, {"owner", "sk", "sharedScope", "sharedSort"}, lambda key: key["sharedScope"] == SHARED_SCOPE
            )
        page = self._table.query(**kwargs)
        return _page(page, head_view)


def _page(page: dict[str, Any], view: Any) -> dict[str, Any]:
    result: dict[str, Any] = {"templates": [view(item) for item in page.get("Items", [])]}
    if page.get("LastEvaluatedKey"):
        result["nextToken"] = encode_token(page["LastEvaluatedKey"])
    return result


def encode_token(last_key: dict[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps(last_key, separators=(",", ":")).encode()).decode().rstrip("=")


def decode_token(token: str, fields: set[str], belongs: Any) -> dict[str, str]:
    """The page key a nextToken carries: one this API made, for this caller."""
    try:
        key = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (binascii.Error, ValueError):
        key = None
    valid = isinstance(key, dict) and set(key) == fields and all(isinstance(v, str) for v in key.values())
    if not valid or not belongs(key):
        raise InvalidRequest("nextToken is not a token this API returned to this key", details={"field": "nextToken"})
    return key


def version_view(item: dict[str, Any], *, owner: str, shared: bool) -> dict[str, Any]:
    item = from_dynamo(item)
    view = {
        k: item[k]
        for k in ("templateId", "version", "template", "description", "kind", "variables", "requiredVariables", "createdAt")
        if k in item
    }
    return {**view, "owner": owner, "shared": shared}


def head_view(item: dict[str, Any]) -> dict[str, Any]:
    item = from_dynamo(item)
    return {
        "templateId": item["templateId"],
        "owner": item["owner"],
        "version": item["latestVersion"],
        "description": item.get("description", ""),
        "kind": item.get("kind", "text"),
        "variables": item.get("variables", []),
        "shared": bool(item.get("shared")),
        "createdAt": item.get("createdAt"),
        "updatedAt": item.get("updatedAt"),
    }
