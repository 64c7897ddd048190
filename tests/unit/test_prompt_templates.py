"""Prompt templates: each key's own library (versions, sharing, pages,
deletion), POST /generate through a template, and the bounded template
language under attack."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from generate import app as generate_app
from prompt_templates import app as templates_app
from shared.errors import InvalidRequest
from shared.prompt_language import check, render
from tests.templates import ROOT
from tests.unit.conftest import body_of, load_event

ALICE, BOB = "k1a2b3c4d5", "kbob000002"


def event(method: str, path: str, body=None, query=None, resource=None, key=ALICE):
    e = load_event("generate.json")
    e.update(httpMethod=method, path=path, resource=resource or path, queryStringParameters=query)
    e["requestContext"]["identity"]["apiKeyId"] = key
    e["headers"]["x-api-key"] = f"value-of-{key}"
    e["body"] = json.dumps(body) if body is not None else None
    if body is None:
        e["headers"].pop("Content-Type", None)
    if resource and "{templateId}" in resource:
        e["pathParameters"] = {"templateId": path.rsplit("/", 1)[1]}
    return e


def create(context, template_id="haiku", text="Write a haiku about {{ topic }} in {{ language }}.", key=ALICE, **extra):
    body = {"templateId": template_id, "template": text, **extra}
    return templates_app.handler(event("POST", "/templates", body, key=key), context)


def get(context, template_id, version=None, key=ALICE, owner=None):
    query = {k: str(v) for k, v in (("version", version), ("owner", owner)) if v}
    return templates_app.handler(
        event("GET", f"/templates/{template_id}", query=query or None, resource="/templates/{templateId}", key=key), context
    )


def listing(context, key=ALICE, **query):
    return templates_app.handler(
        event("GET", "/templates", query={k: str(v) for k, v in query.items()} or None, key=key), context
    )


def share(context, template_id, shared, key=ALICE):
    return templates_app.handler(
        event("PATCH", f"/templates/{template_id}", {"shared": shared}, resource="/templates/{templateId}", key=key), context
    )


def delete(context, template_id, key=ALICE):
    return templates_app.handler(
        event("DELETE", f"/templates/{template_id}", resource="/templates/{templateId}", key=key), context
    )


def test_versions_are_appended_and_the_latest_is_served(aws, context):
    first = create(context)
    assert first["statusCode"] == 201
    assert body_of(first)["version"] == 1
    assert body_of(first)["variables"] == ["language", "topic"]
    assert body_of(first)["owner"] == ALICE
    assert body_of(first)["shared"] is False
    second = body_of(create(context, text="A limerick about {{ topic }}."))
    assert second["version"] == 2
    assert body_of(get(context, "haiku"))["template"] == "A limerick about {{ topic }}."
    assert body_of(get(context, "haiku", 1))["template"].startswith("Write a haiku")
    listed = body_of(listing(context))["templates"]
    assert [(t["templateId"], t["version"]) for t in listed] == [("haiku", 2)]
    assert "template" not in listed[0]  # a listing carries no text


def test_another_keys_template_is_invisible_and_untouchable(aws, context):
    create(context)
    # Bob sees nothing of Alice's private template: not by id, not with her owner id, not listed.
    for response in (get(context, "haiku", key=BOB), get(context, "haiku", key=BOB, owner=ALICE)):
        assert (response["statusCode"], body_of(response)["error"]["code"]) == (404, "TEMPLATE_NOT_FOUND")
    assert body_of(listing(context, key=BOB))["templates"] == []
    assert body_of(listing(context, key=BOB, scope="shared"))["templates"] == []
    # Bob's "haiku" is his own, in his own namespace: Alice's is unchanged.
    mine = body_of(create(context, key=BOB, text="Bob's {{ x }}"))
    assert (mine["version"], mine["owner"]) == (1, BOB)
    assert body_of(get(context, "haiku"))["template"].startswith("Write a haiku")
    assert body_of(get(context, "haiku"))["version"] == 1
    # Bob cannot share, unshare or delete Alice's; his calls touch only his own.
    assert share(context, "nothing-of-bobs", True, key=BOB)["statusCode"] == 404
    assert delete(context, "haiku", key=BOB)["statusCode"] == 200  # his own haiku
    assert body_of(get(context, "haiku"))["version"] == 1  # Alice's survives


def test_a_shared_template_is_readable_and_usable_but_only_its_owner_changes_it(aws, context):
    create(context, shared=True)
    listed = body_of(listing(context, key=BOB, scope="shared"))["templates"]
    assert [(t["templateId"], t["owner"], t["shared"]) for t in listed] == [("haiku", ALICE, True)]
    read = get(context, "haiku", key=BOB, owner=ALICE)
    assert read["statusCode"] == 200
    assert body_of(read)["template"].startswith("Write a haiku")
    job = generate_with(context, key=BOB, template={"id": "haiku", "owner": ALICE}, variables={"topic": "q", "language": "en"})
    assert job["statusCode"] == 202
    stored = aws.jobs_table.get_item(Key={"jobId": body_of(job)["jobId"]})["Item"]
    assert stored["template"] == {"id": "haiku", "owner": ALICE, "version": 1}
    assert stored["owner"] == BOB
    # Unshared: gone for Bob again, still Alice's.
    assert body_of(share(context, "haiku", False))["shared"] is False
    assert get(context, "haiku", key=BOB, owner=ALICE)["statusCode"] == 404
    assert body_of(listing(context, key=BOB, scope="shared"))["templates"] == []
    assert get(context, "haiku")["statusCode"] == 200


def test_a_new_version_keeps_the_templates_sharing_unless_told(aws, context):
    create(context, shared=True)
    assert body_of(create(context, text="v2 {{ topic }}"))["shared"] is True
    assert body_of(create(context, text="v3 {{ topic }}", shared=False))["shared"] is False
    assert get(context, "haiku", key=BOB, owner=ALICE)["statusCode"] == 404


def test_listing_is_paginated_per_caller(aws, context):
    for n in range(7):
        create(context, template_id=f"t{n}", text="x {{ a }}")
    create(context, template_id="bobs", text="y", key=BOB)
    seen, token = [], None
    while True:
        page = body_of(listing(context, limit=3, **({"nextToken": token} if token else {})))
        assert len(page["templates"]) <= 3
        seen += [t["templateId"] for t in page["templates"]]
        token = page.get("nextToken")
        if not token:
            break
    assert seen == [f"t{n}" for n in range(7)]
    # A token is only good for the key it was given to.
    first = body_of(listing(context, limit=3))["nextToken"]
    refused = listing(context, key=BOB, nextToken=first)
    assert refused["statusCode"] == 400
    assert body_of(refused)["error"]["details"]["field"] == "nextToken"


def test_deleting_removes_every_version(aws, context):
    for n in range(3):
        create(context, text=f"v{n} {{{{ topic }}}}")
    response = delete(context, "haiku")
    assert (response["statusCode"], body_of(response)["versions"]) == (200, 3)
    assert aws.templates_table.scan()["Count"] == 0
    assert get(context, "haiku")["statusCode"] == 404
    assert delete(context, "haiku")["statusCode"] == 404
    # The id can be used again, from version 1.
    assert body_of(create(context))["version"] == 1


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


def generate_with(context, key=ALICE, **body):
    return generate_app.handler(event("POST", "/generate", {"models": ["amazon.nova-micro-v1:0"], **body}, key=key), context)


def test_generate_renders_the_template_into_the_job(aws, context):
    create(context)
    response = generate_with(context, template={"id": "haiku"}, variables={"topic": "queues", "language": "French"})
    assert response["statusCode"] == 202
    job = aws.jobs_table.get_item(Key={"jobId": body_of(response)["jobId"]})["Item"]
    assert job["prompt"] == "Write a haiku about queues in French."
    assert job["template"] == {"id": "haiku", "owner": ALICE, "version": 1}


def test_missing_variables_are_named(aws, context):
    create(context)
    response = generate_with(context, template={"id": "haiku"}, variables={"topic": "queues"})
    assert response["statusCode"] == 400
    assert body_of(response)["error"]["details"] == {"field": "variables", "missing": ["language"]}
    assert aws.jobs_table.scan()["Count"] == 0


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"prompt": "hi", "template": {"id": "haiku"}}, "exactly one of prompt, template and messages"),
        ({"prompt": "hi", "variables": {"a": "b"}}, "has variables but no template"),
        ({"template": {"id": "haiku", "version": 0}}, "template.version"),
        ({"template": {"id": "haiku", "owner": "not/an/owner"}}, "template.owner"),
    ],
)
def test_prompt_and_template_are_exclusive(aws, context, body, fragment):
    response = generate_with(context, **body)
    assert response["statusCode"] == 400
    assert fragment in body_of(response)["error"]["message"]


def test_generate_with_an_unknown_template_is_a_404(aws, context):
    response = generate_with(context, template={"id": "missing"})
    assert (response["statusCode"], body_of(response)["error"]["code"]) == (404, "TEMPLATE_NOT_FOUND")


# ------------------------------------------------------------ the language


def test_the_language_takes_variables_filters_and_conditions():
    source = (
        "Dear {{ name | title }},{% if vip %} thank you for staying with us{% elif tier == 'new' %} welcome"
        "{% else %} hello{% endif %}. Tone: {{ tone | default('neutral') }}. {{ notes | truncate(12) }}"
    )
    checked = check(source)
    assert checked.variables == ("name", "notes", "tier", "tone", "vip")
    assert checked.required == ("name", "notes", "tier", "vip")  # tone is only ever under default
    rendered = render(source, {"name": "ada", "vip": False, "tier": "new", "notes": "a" * 40}, max_chars=1000)
    assert rendered == "Dear Ada, welcome. Tone: neutral. aaaaaaaaa..."


# Every construct that could evaluate something unbounded, and what it is refused as.
BOMBS = {
    "{{ 9 ** (9 ** 8) }}": "arithmetic",  # constant folding once ran for minutes
    "{{ 'x' * 10**9 }}": "arithmetic",
    "{% for i in range(10**9) %}x{% endfor %}": "loops",
    "{% for a in x %}{% for b in x %}{% for c in x %}.{% endfor %}{% endfor %}{% endfor %}": "loops",
    "{{ range(99999999) | list }}": "filter 'list'",
    "{{ 1 / 0 }}": "arithmetic",
    "{{ 10 // 0 }}": "arithmetic",
    "{{ x ~ x ~ x }}": "~ operator",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}": "calls",
    "{{ topic.__class__ }}": "attribute access",
    "{{ x[0] }}": "item access",
    "{% set y = 1 %}{{ y }}": "assignments",
    "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}": "macros",
    "{% include 'other' %}": "includes",
    "{% extends 'base' %}": "inheritance",
    "{{ x | center(1000000000) }}": "filter 'center'",
    "{{ x | replace('a', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa') }}": "filter 'replace'",
    "{{ x | truncate(n) }}": "must be constants",
    "{{ " + "9" * 5000 + " }}": "constant",  # longer than Python converts
    "{{ 99999999999999999999 }}": "integer constant",
    "{{ " + "(" * 200 + "x" + ")" * 200 + " }}": "nests",
    "{% if a %}" * 40 + "x" + "{% endif %}" * 40: "nests",
    "{{ _private }}": "underscore",
    "{{ lipsum(100000) }}": "calls",
    "{{ cycler }}{{ joiner }}{{ namespace() }}": "calls",
}


@pytest.mark.parametrize("source", list(BOMBS))
def test_template_bombs_are_refused_at_once_with_what_is_wrong(aws, context, source):
    started = time.monotonic()
    response = create(context, text=source)
    elapsed = time.monotonic() - started
    assert response["statusCode"] == 400, body_of(response)
    message = body_of(response)["error"]["message"]
    assert BOMBS[source] in message, message
    assert elapsed < 1.0
    assert aws.templates_table.scan()["Count"] == 0  # nothing stored


def test_output_stops_at_the_prompt_limit_without_building_the_whole_string():
    source = "{{ v }}" * 2000  # 2,000 references to a 20,000-character variable: 40 MB if built
    started = time.monotonic()
    with pytest.raises(InvalidRequest, match="more than 20000 characters") as raised:
        render(source, {"v": "x" * 20_000}, max_chars=20_000)
    assert time.monotonic() - started < 0.5
    assert raised.value.details["field"] == "variables"


def test_rendering_has_a_time_budget():
    ticks = iter(range(0, 100_000, 2))
    with pytest.raises(InvalidRequest, match=r"longer than 1\.0 s"):
        render("{{ a }}{{ a }}", {"a": "x"}, max_chars=100, clock=lambda: next(ticks))


@pytest.mark.parametrize(
    ("source", "variables"),
    [
        ("{{ n | int }}", {"n": "9" * 5000}),  # Python's integer string limit
        ("{{ a | truncate(5) }}", {"a": 3}),
        ("{% if a < b %}x{% endif %}", {"a": "s", "b": 1}),  # str < int: TypeError
    ],
)
def test_a_value_a_template_cannot_take_is_a_400(source, variables):
    with pytest.raises(InvalidRequest) as raised:
        render(source, variables, max_chars=20_000)
    assert raised.value.status_code == 400


def test_rendering_to_nothing_is_refused():
    with pytest.raises(InvalidRequest, match="empty prompt"):
        render("{{ blank }}", {"blank": "   "}, max_chars=100)


# ----------------------------------------------------------- hypothesis
# Templates built from the language's own pieces (and pieces it refuses),
# stored through the route and rendered through POST /generate: whatever
# comes out is a 201/202 or a 400 with the contract's body, quickly.

NAMES = st.sampled_from(["a", "b", "topic", "x1"])
PIECES = st.one_of(
    st.text(alphabet=st.characters(blacklist_characters="{}%#", blacklist_categories=("Cs",)), max_size=20),
    NAMES.map(lambda n: f"{{{{ {n} }}}}"),
    st.tuples(NAMES, st.sampled_from(["upper", "title", "trim", "length", "default('d')", "truncate(3)", "center(9)"])).map(
        lambda p: f"{{{{ {p[0]} | {p[1]} }}}}"
    ),
    st.tuples(NAMES, st.sampled_from(["== 'x'", "is defined", "in ('a', 'b')", "> 3", "* 9", "** 99"])).map(
        lambda p: f"{{% if {p[0]} {p[1]} %}}yes{{% else %}}no{{% endif %}}"
    ),
    st.sampled_from(["{{", "}}", "{%", "%}", "{% endif %}", "{{ a.b }}", "{{ a() }}", "{% for i in a %}", "{{ 9**9 }}"]),
)
VALUES = st.one_of(st.text(max_size=30), st.integers(-(10**6), 10**6), st.booleans(), st.floats(allow_nan=False, width=32))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(pieces=st.lists(PIECES, min_size=1, max_size=12), variables=st.dictionaries(NAMES, VALUES, max_size=4))
@example(pieces=["{{ a }}"], variables={"a": float("inf")})  # found by CI: a non-finite number is refused, named
def test_generated_templates_store_and_render_or_are_refused_clearly(aws, context, pieces, variables):
    source = "".join(pieces)
    started = time.monotonic()
    created = create(context, template_id="gen", text=source)
    assert created["statusCode"] in (201, 400), created
    if created["statusCode"] == 400:
        error = body_of(created)["error"]
        assert error["code"] == "INVALID_REQUEST"
        assert error["message"]
        return
    job = generate_with(context, template={"id": "gen"}, variables=variables)
    assert job["statusCode"] in (202, 400), job
    if job["statusCode"] == 400:
        details = body_of(job)["error"]["details"]
        # A rendering problem names its field; a refused value (an infinite
        # float) is a validation error naming the variable.
        fields = [d["field"] for d in details] if isinstance(details, list) else [details["field"]]
        assert all(f in ("variables", "prompt") or f.startswith("variables.") for f in fields), details
    assert time.monotonic() - started < 2.0


def test_the_starter_templates_are_in_the_language_and_shared():
    seeds = json.loads((ROOT / "infrastructure" / "seed" / "templates.json").read_text())
    for seed in seeds:
        assert check(seed["template"]).required, seed["templateId"]
        assert seed["shared"] is True  # a team library: every key of the deployment may use them
