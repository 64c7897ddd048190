"""Render genstack's CloudFormation templates offline for given parameters.

What CloudFormation would decide before creating anything is decided here:
parameter defaults and AllowedValues, Rules, Conditions, Fn::FindInMap, Fn::If,
Ref to parameters and pseudo parameters, the string functions over resolved
values, AWS::NoValue, condition-dependent DeletionPolicy (LanguageExtensions),
SAM Globals for functions, and nested stacks with local TemplateURLs (rendered
with the parameters their parent passes, and their outputs fed back to the
parent's Fn::GetAtt). What only a deployment knows (a resource's Ref or
attribute) stays an `Unresolved` marker.

The cost script (cost.py) and the template tests use it to see what each
environment really deploys. It is not a CloudFormation engine: it covers the
intrinsics these templates use and fails loudly on any other.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from cfnlint.decode import cfn_yaml

from cfn_values import NO_VALUE, RenderError, Unresolved, param_value, parameter_values, scalar, with_globals

__all__ = ["NO_VALUE", "ROOT", "RenderError", "Rendered", "Unresolved", "load", "render"]

ROOT = Path(__file__).resolve().parents[2]

PSEUDO = {
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::StackName": "genstack",
    "AWS::StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/genstack/0",
    "AWS::NotificationARNs": [],
}
AZS = ["us-east-1a", "us-east-1b", "us-east-1c"]


@dataclass
class Rendered:
    """One template, rendered: its active resources with resolved properties."""

    path: str
    parameters: dict[str, Any]
    conditions: dict[str, bool]
    resources: dict[str, dict[str, Any]]
    outputs: dict[str, Any]
    rule_failures: list[str]
    children: dict[str, Rendered] = field(default_factory=dict)

    def walk(self, prefix: str = ""):
        """(stack path, logical id, resource) of this template and every nested one."""
        here = prefix or Path(self.path).stem
        for logical_id, resource in self.resources.items():
            yield here, logical_id, resource
        for logical_id, child in self.children.items():
            yield from child.walk(f"{here}/{logical_id}")

    def of_type(self, type_: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v["Type"] == type_}

    def props(self, logical_id: str) -> dict[str, Any]:
        return self.resources[logical_id].get("Properties", {})


def load(relative: str) -> dict[str, Any]:
    return cfn_yaml.load(str(ROOT / relative))


def render(relative: str = "template.yaml", parameters: dict[str, Any] | None = None, stack_name: str = "genstack") -> Rendered:
    """Render a template (path relative to the repository) and its nested stacks."""
    return _Renderer(relative, load(relative), dict(parameters or {}), stack_name).rendered


class _Renderer:
    def __init__(self, path: str, template: dict[str, Any], given: dict[str, Any], stack_name: str) -> None:
        self.path = path
        self.template = template
        self.stack_name = stack_name
        self.params = parameter_values(path, template.get("Parameters", {}), given)
        self.children: dict[str, Rendered] = {}
        self._conditions: dict[str, bool] = {}

    # ----------------------------------------------------------- conditions
    def condition(self, name: str) -> bool:
        if name not in self._conditions:
            value = self.resolve(self.template["Conditions"][name])
            if not isinstance(value, bool):
                raise RenderError(f"{self.path}: condition {name} did not resolve to a boolean")
            self._conditions[name] = value
        return self._conditions[name]

    # ----------------------------------------------------------- intrinsics
    def resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            items = [self.resolve(n) for n in node]
            return [i for i in items if i is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) != 1 or not next(iter(node)).startswith(("Fn::", "Ref", "Condition")):
            out = {k: self.resolve(v) for k, v in node.items()}
            return {k: v for k, v in out.items() if v is not NO_VALUE}
        ((fn, arg),) = node.items()
        if fn == "Ref":
            return self._ref(arg)
        if fn == "Condition":
            return self.condition(arg)
        if fn == "Fn::If":
            name, yes, no = arg
            return self.resolve(yes if self.condition(name) else no)
        if fn == "Fn::Equals":
            a, b = (self.resolve(x) for x in arg)
            return scalar(a) == scalar(b)
        if fn == "Fn::Not":
            return not self.resolve(arg[0])
        if fn == "Fn::And":
            return all(self.resolve(x) for x in arg)
        if fn == "Fn::Or":
            return any(self.resolve(x) for x in arg)
        if fn == "Fn::FindInMap":
            mapping, top, second = (self.resolve(x) for x in arg)
            return self.template["Mappings"][mapping][str(top)][str(second)]
        if fn == "Fn::Sub":
            return self._sub(arg)
        if fn == "Fn::Join":
            delimiter, values = arg[0], self.resolve(arg[1])
            if isinstance(values, Unresolved):
                return Unresolved(f"{{Join:{values}}}")
            joined = delimiter.join(str(v) for v in values)
            return Unresolved(joined) if any(isinstance(v, Unresolved) for v in values) else joined
        if fn == "Fn::Split":
            delimiter, value = arg[0], self.resolve(arg[1])
            if isinstance(value, Unresolved):
                return Unresolved(f"{{Split:{value}}}")
            return value.split(delimiter)
        if fn == "Fn::Select":
            index, values = self.resolve(arg[0]), self.resolve(arg[1])
            if isinstance(values, Unresolved):
                return Unresolved(f"{{Select:{index}:{values}}}")
            return values[int(index)]
        if fn == "Fn::GetAZs":
            return list(AZS)
        if fn == "Fn::GetAtt":
            return self._get_att(arg)
        if fn in ("Fn::Cidr", "Fn::ImportValue", "Fn::Base64", "Fn::Length", "Fn::ToJsonString"):
            return Unresolved(f"{{{fn}}}")
        raise RenderError(f"{self.path}: intrinsic {fn} is not supported by the renderer")

    def _ref(self, name: str) -> Any:
        if name in self.params:
            return self.params[name]
        if name == "AWS::NoValue":
            return NO_VALUE
        if name == "AWS::StackName":
            return self.stack_name
        if name in PSEUDO:
            return PSEUDO[name]
        if name.split(".", 1)[0] in self.template.get("Resources", {}):  # also SAM's "Api.Stage"
            return Unresolved(f"{{Ref:{name}}}")
        raise RenderError(f"{self.path}: Ref to unknown {name}")

    def _get_att(self, arg: Any) -> Any:
        logical_id, attribute = arg.split(".", 1) if isinstance(arg, str) else arg
        resource = self.template["Resources"].get(logical_id)
        if resource is None:
            raise RenderError(f"{self.path}: GetAtt of unknown resource {logical_id}")
        if resource["Type"] == "AWS::CloudFormation::Stack" and attribute.startswith("Outputs."):
            child = self.child(logical_id)
            return child.outputs[attribute.removeprefix("Outputs.")]
        return Unresolved(f"{{GetAtt:{logical_id}.{attribute}}}")

    def _sub(self, arg: Any) -> Any:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], {k: self.resolve(v) for k, v in arg[1].items()})
        unresolved = False

        def replace(match: re.Match[str]) -> str:
            nonlocal unresolved
            name = match.group(1)
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                value = variables[name]
            elif "." in name:
                value = self._get_att(name)
            else:
                value = self._ref(name)
            if isinstance(value, Unresolved):
                unresolved = True
            return str(value)

        result = re.sub(r"\$\{([^}]+)\}", replace, text)
        return Unresolved(result) if unresolved else result

    # ------------------------------------------------------------ rendering
    def child(self, logical_id: str) -> Rendered:
        if logical_id not in self.children:
            props = self.template["Resources"][logical_id]["Properties"]
            url = props["TemplateURL"]
            child_path = str(Path(self.path).parent / url)
            given = {k: param_value(self.resolve(v)) for k, v in props.get("Parameters", {}).items()}
            given = {k: v for k, v in given.items() if v is not NO_VALUE}
            self.children[logical_id] = _Renderer(child_path, load(child_path), given, f"{self.stack_name}-{logical_id}").rendered
        return self.children[logical_id]

    def _active(self, resource: dict[str, Any]) -> bool:
        return "Condition" not in resource or self.condition(resource["Condition"])

    @cached_property
    def rendered(self) -> Rendered:
        failures = []
        for name, rule in self.template.get("Rules", {}).items():
            if "RuleCondition" in rule and not self.resolve(rule["RuleCondition"]):
                continue
            for assertion in rule["Assertions"]:
                if not self.resolve(assertion["Assert"]):
                    failures.append(f"{name}: {assertion.get('AssertDescription', '')}")
        resources = {}
        for logical_id, resource in self.template.get("Resources", {}).items():
            if not self._active(resource):
                continue
            resource = with_globals(self.template, resource, self.resolve)
            out = {k: self.resolve(v) for k, v in resource.items() if k != "Condition"}
            resources[logical_id] = {k: v for k, v in out.items() if v is not NO_VALUE}
            if resource["Type"] == "AWS::CloudFormation::Stack":
                self.child(logical_id)
        outputs = {}
        for key, output in self.template.get("Outputs", {}).items():
            if self._active(output):
                outputs[key] = self.resolve(output["Value"])
        conditions = {name: self.condition(name) for name in self.template.get("Conditions", {})}
        return Rendered(self.path, self.params, conditions, resources, outputs, failures, self.children)
