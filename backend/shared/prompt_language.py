"""The prompt template language: a small, bounded subset of Jinja2.

A template is text with `{{ name }}` substitutions, a few filters, and
`{% if %}` blocks. Nothing else: no loops, no arithmetic, no calls, no
attribute or item access, no macros, no includes. So rendering costs time and
memory linear in the template and its variables, and never more than the
prompt it may produce; every template anyone can store has that bound.

Jinja2 parses (its lexer and parser are linear and evaluate nothing); this
module then checks the syntax tree against the subset *before* anything is
compiled or rendered. Evaluating is where the cost was: Jinja's optimizer folds
constants while compiling, and `meta.find_undeclared_variables` compiles, so
`{{ 9 ** (9 ** 8) }}` ran for minutes inside C code that no signal interrupts.
Here variables are read off the tree, the optimizer is off, and rendering
streams, stopping as soon as the output passes the prompt limit or the time
budget. Why a subset rather than full Jinja: docs/decisions.md.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from shared.errors import InvalidRequest

if TYPE_CHECKING:
    from jinja2 import nodes
    from jinja2.sandbox import SandboxedEnvironment

# Jinja2 is imported by the functions below, not at module level: only a
# request that uses a template parses or renders one, so the generate and
# templates functions' cold starts do not pay for the import.

MAX_TEMPLATE_CHARS = 20_000
MAX_DEPTH = 16  # nesting of {% if %} blocks and expressions
MAX_NODES = 5_000
MAX_CONSTANT_CHARS = 2_000
MAX_INTEGER = 10**12
MAX_TUPLE_ITEMS = 64
RENDER_SECONDS = 1.0

# Filters whose output is at most a constant factor of their input (none
# repeats or pads it) and that take no argument or constant ones.
FILTERS = frozenset(
    {"upper", "lower", "title", "capitalize", "trim", "default", "d", "truncate", "length", "wordcount", "string"}
)
TESTS = frozenset({"defined", "undefined", "none", "number", "string", "boolean"})
COMPARISONS = frozenset({"eq", "ne", "lt", "gt", "lteq", "gteq", "in", "notin"})
# Filters and tests that make their subject optional: a variable seen only there may be left out.
_OPTIONAL_FILTERS = frozenset({"default", "d"})
_OPTIONAL_TESTS = frozenset({"defined", "undefined"})

_WHAT = {
    "For": "loops ({% for %})",
    "Macro": "macros",
    "CallBlock": "call blocks",
    "Call": "function and method calls",
    "Getattr": "attribute access (a.b)",
    "Getitem": "item access (a[b])",
    "Slice": "slices",
    "Concat": "the ~ operator (write {{ a }}{{ b }})",
    "Include": "includes",
    "Import": "imports",
    "FromImport": "imports",
    "Extends": "template inheritance",
    "Block": "blocks",
    "Assign": "assignments ({% set %})",
    "AssignBlock": "assignments ({% set %})",
    "With": "{% with %}",
    "FilterBlock": "filter blocks",
    "Scope": "scopes",
    "Dict": "dict literals",
    "List": "list literals (use a tuple: ('a', 'b'))",
}
_ARITHMETIC = {"Add", "Sub", "Mul", "Div", "FloorDiv", "Mod", "Pow", "Neg", "Pos"}


@dataclass(frozen=True)
class Checked:
    """A template that passed the checks, with the variables it uses."""

    tree: Any  # jinja2.nodes.Template
    variables: tuple[str, ...]  # every variable, sorted
    required: tuple[str, ...]  # those a render must be given (not only under default or is defined)


@lru_cache(maxsize=1)
def environment() -> SandboxedEnvironment:
    from jinja2 import StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    # Prompts are plain text: no HTML autoescaping. optimized=False: the
    # optimizer evaluates constant expressions at compile time. The sandbox
    # stays as a second wall (the subset already forbids attribute access),
    # and StrictUndefined makes a variable that is used but not given an error.
    return SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, optimized=False)


def refuse(message: str, *, field: str = "template", **details: Any) -> InvalidRequest:
    return InvalidRequest(message, details={"field": field, **details})


def parse(source: str) -> nodes.Template:
    """The syntax tree; a syntax error (or a template too deep or too long to parse) is a 400 that says where."""
    from jinja2 import TemplateSyntaxError

    if len(source) > MAX_TEMPLATE_CHARS:
        raise refuse(f"the template is {len(source)} characters long; the limit is {MAX_TEMPLATE_CHARS}")
    try:
        return environment().parse(source)
    except TemplateSyntaxError as exc:
        raise refuse(f"template syntax error on line {exc.lineno}: {exc.message}") from exc
    except RecursionError as exc:
        raise refuse("the template nests too deeply to parse") from exc
    except ValueError as exc:  # an integer literal longer than Python converts (4,300 digits)
        raise refuse(f"the template has a constant genstack does not take: {str(exc)[:120]}") from exc


def _line(node: Any) -> str:
    return f" on line {node.lineno}" if getattr(node, "lineno", None) else ""


class _Checker:
    def __init__(self) -> None:
        self.count = 0
        self.names: set[str] = set()
        self.required: set[str] = set()

    def visit(self, node: Any, depth: int, *, optional_subject: bool = False) -> None:
        from jinja2 import nodes

        self.count += 1
        if self.count > MAX_NODES:
            raise refuse(f"the template has more than {MAX_NODES} elements")
        if depth > MAX_DEPTH:
            raise refuse(f"the template nests more than {MAX_DEPTH} levels deep{_line(node)}")
        kind = type(node).__name__
        if kind in _ARITHMETIC:
            raise refuse(f"templates do not do arithmetic{_line(node)}: prompts are text")
        if isinstance(node, nodes.Name):
            if node.ctx != "load":
                raise refuse(f"templates do not assign variables{_line(node)}")
            if node.name.startswith("_"):
                raise refuse(f"variable names may not start with an underscore{_line(node)}")
            self.names.add(node.name)
            if not optional_subject:
                self.required.add(node.name)
            return
        if isinstance(node, nodes.Const):
            self._constant(node)
            return
        if isinstance(node, nodes.TemplateData):
            return
        if isinstance(node, nodes.Filter):
            if node.name not in FILTERS:
                raise refuse(f"the filter '{node.name}'{_line(node)} is not available; filters: {', '.join(sorted(FILTERS))}")
            self._constant_arguments(node, depth)
            if node.node is not None:
                self.visit(node.node, depth + 1, optional_subject=node.name in _OPTIONAL_FILTERS)
            return
        if isinstance(node, nodes.Test):
            if node.name not in TESTS:
                raise refuse(f"the test 'is {node.name}'{_line(node)} is not available; tests: {', '.join(sorted(TESTS))}")
            self._constant_arguments(node, depth)
            self.visit(node.node, depth + 1, optional_subject=node.name in _OPTIONAL_TESTS)
            return
        if isinstance(node, nodes.Compare):
            for operand in node.ops:
                if operand.op not in COMPARISONS:
                    raise refuse(f"the comparison '{operand.op}'{_line(node)} is not available")
        if isinstance(node, nodes.Tuple) and len(node.items) > MAX_TUPLE_ITEMS:
            raise refuse(f"a tuple{_line(node)} has more than {MAX_TUPLE_ITEMS} items")
        allowed = (
            nodes.Template,
            nodes.Output,
            nodes.If,
            nodes.CondExpr,
            nodes.And,
            nodes.Or,
            nodes.Not,
            nodes.Compare,
            nodes.Operand,
            nodes.Tuple,
        )
        if not isinstance(node, allowed):
            what = _WHAT.get(kind, kind)
            raise refuse(
                f"templates do not support {what}{_line(node)}; they take {{{{ variables }}}}, filters and {{% if %}} blocks only"
            )
        for child in node.iter_child_nodes():
            self.visit(child, depth + 1)

    def _constant(self, node: Any) -> None:
        value = node.value
        if isinstance(value, bool) or value is None:
            return
        if isinstance(value, int) and abs(value) > MAX_INTEGER:
            raise refuse(f"the integer constant{_line(node)} is larger than {MAX_INTEGER}")
        if isinstance(value, str) and len(value) > MAX_CONSTANT_CHARS:
            raise refuse(f"a string constant{_line(node)} is longer than {MAX_CONSTANT_CHARS} characters")
        if not isinstance(value, str | int | float):
            raise refuse(f"the constant{_line(node)} is not a string or a number")

    def _constant_arguments(self, node: Any, depth: int) -> None:
        from jinja2 import nodes

        arguments = [*node.args, *(kw.value for kw in node.kwargs)]
        if node.dyn_args is not None or node.dyn_kwargs is not None or not all(isinstance(a, nodes.Const) for a in arguments):
            raise refuse(f"the arguments of '{node.name}'{_line(node)} must be constants")
        for argument in arguments:
            self.visit(argument, depth + 1)


def check(source: str) -> Checked:
    """Parse and check a template; InvalidRequest (400) says what is not allowed and where."""
    tree = parse(source)
    checker = _Checker()
    checker.visit(tree, 0)
    return Checked(tree=tree, variables=tuple(sorted(checker.names)), required=tuple(sorted(checker.required)))


def render(
    source: str,
    variables: dict[str, Any],
    *,
    max_chars: int,
    seconds: float = RENDER_SECONDS,
    clock: Any = time.monotonic,
) -> str:
    """The prompt a template makes of `variables`. Stops, with a 400, as soon
    as the output passes `max_chars` or rendering takes longer than `seconds`;
    a missing variable, a value a filter cannot take, anything else a
    template does wrong, is a 400 too, never a 500."""
    checked = check(source)
    missing = [name for name in checked.required if name not in variables]
    if missing:
        raise refuse(f"missing template variable(s): {', '.join(missing)}", field="variables", missing=missing)
    try:
        template = environment().from_string(checked.tree)
    except RecursionError as exc:  # compiling is recursive in the nesting the checks bound
        raise refuse("the template nests too deeply to compile") from exc
    deadline = clock() + seconds
    parts: list[str] = []
    size = 0
    try:
        for chunk in template.generate(**{k: v for k, v in variables.items() if k in checked.variables}):
            size += len(chunk)
            if size > max_chars:
                raise refuse(
                    f"the template renders to more than {max_chars} characters, the prompt limit",
                    field="variables",
                    maxChars=max_chars,
                )
            if clock() > deadline:
                raise refuse(f"the template took longer than {seconds} s to render", field="variables")
            parts.append(chunk)
    except InvalidRequest:
        raise
    except Exception as exc:
        raise refuse(f"the template could not be rendered: {type(exc).__name__}: {str(exc)[:200]}", field="variables") from exc
    rendered = "".join(parts)
    if not rendered.strip():
        raise refuse("the template rendered to an empty prompt", field="variables")
    return rendered
