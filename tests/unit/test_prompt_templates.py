"""Prompt templates: the library routes, and POST /generate through a template."""

from __future__ import annotations

import json

import pytest

from generate import app as generate_app
from prompt_templates import app as templates_app
from shared.errors import InvalidRequest
from shared.templates import render, variables_of
from tests.unit.conftest import body_of, load_event


def event(method: str, path: str, body=None, query=None, resource=None):
    e = load_event("generate.json")
    e.update(httpMethod=method, path=path, resource=resource or path, queryStringParameters=query)
    e["body"] = json.dumps(body) if body is not None else None
    if body is None:
        e["headers"].pop("Content-Type", None)
    return e


def create(context, template_id="haiku", text="Write a haiku about {{ topic }} in {{ language }}.", **extra):
    return templates_app.handler(event("POST", "/templates", {"templateId": template_id, "template": text, **extra}), context)


def get(context, template_id, version=None):
    query = {"version": str(version)} if version else None
    return templates_app.handler(
        event("GET", f"/templates/{template_id}", query=query, resource="/templates/{templateId}"), context
    )


def test_versions_are_appended_and_the_latest_is_served(aws, context):
    first = create(context)
    assert first["statusCode"] == 201
    assert body_of(first)["version"] == 1
    assert body_of(first)["variables"] == ["language", "topic"]
    second = body_of(create(context, text="A limerick about {{ topic }}."))
    assert second["version"] == 2
    assert body_of(get(context, "haiku"))["template"] == "A limerick about {{ topic }}."
    assert body_of(get(context, "haiku", 1))["template"].startswith("Write a haiku")
    listed = body_of(templates_app.handler(event("GET", "/templates"), context))["templates"]
    assert [(t["templateId"], t["version"]) for t in listed] == [("haiku", 2)]
    assert "createdBy" not in listed[0]


def test_a_syntax_error_says_where(aws, context):
    response = create(context, text="Hello {{ name ")
    assert response["statusCode"] == 400
    assert "line 1" in body_of(response)["error"]["message"]


@pytest.mark.parametrize("template_id", ["Has-Caps", "-leading", "x" * 65, "with space"])
def test_template_ids_are_slugs(aws, context, template_id):
    assert create(context, template_id=template_id)["statusCode"] == 400


def test_unknown_templates_and_versions_are_404(aws, context):
    assert get(context, "nope")["statusCode"] == 404
    create(context)
    response = get(context, "haiku", 7)
    assert response["statusCode"] == 404
    assert body_of(response)["error"]["code"] == "TEMPLATE_NOT_FOUND"


def generate_with(context, **body):
    return generate_app.handler(event("POST", "/generate", {"models": ["amazon.nova-micro-v1:0"], **body}), context)


def test_generate_renders_the_template_into_the_job(aws, context):
    create(context)
    response = generate_with(context, template={"id": "haiku"}, variables={"topic": "queues", "language": "French"})
    assert response["statusCode"] == 202
    job = aws.jobs_table.get_item(Key={"jobId": body_of(response)["jobId"]})["Item"]
    assert job["prompt"] == "Write a haiku about queues in French."
    assert job["template"] == {"id": "haiku", "version": 1}


def test_missing_variables_are_named(aws, context):
    create(context)
    response = generate_with(context, template={"id": "haiku"}, variables={"topic": "queues"})
    assert response["statusCode"] == 400
    assert body_of(response)["error"]["details"] == {"field": "variables", "missing": ["language"]}
    assert aws.jobs_table.scan()["Count"] == 0


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"prompt": "hi", "template": {"id": "haiku"}}, "exactly one of prompt and template"),
        ({"prompt": "hi", "variables": {"a": "b"}}, "has variables but no template"),
        ({"template": {"id": "haiku", "version": 0}}, "template.version"),
    ],
)
def test_prompt_and_template_are_exclusive(aws, context, body, fragment):
    response = generate_with(context, **body)
    assert response["statusCode"] == 400
    assert fragment in body_of(response)["error"]["message"]


def test_generate_with_an_unknown_template_is_a_404(aws, context):
    response = generate_with(context, template={"id": "missing"})
    assert (response["statusCode"], body_of(response)["error"]["code"]) == (404, "TEMPLATE_NOT_FOUND")


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ topic.__class__.__init__.__globals__ }}",
    ],
)
def test_the_sandbox_refuses_unsafe_access(source):
    with pytest.raises(InvalidRequest, match="could not be rendered"):
        render(source, {"topic": "x"})


def test_rendering_to_nothing_is_refused():
    with pytest.raises(InvalidRequest, match="empty prompt"):
        render("{{ blank }}", {"blank": "   "})


def test_variables_include_loops_and_filters():
    assert variables_of("{% for x in items %}{{ x | upper }}{% endfor %} {{ title }}") == ["items", "title"]
