"""The three ways to deploy (sam deploy --config-env, make deploy / the pipeline, taskcat)
read the same templates; these tests fail when they drift apart: a parameter a
config sets that the template does not declare, an environment whose settings
the template would refuse, an output the pipeline reads that no stack exports."""

from __future__ import annotations

import re
import tomllib

import pytest
import yaml

# The handlers, imported at collection like every handler test's (before
# pytest-socket refuses sockets). openapi.py reads their routes.
import enhance.app  # noqa: F401
import generate.app  # noqa: F401
import prompt_templates.app  # noqa: F401
import status.app  # noqa: F401
from cfn_render import render
from pipeline import artifacts
from pipeline.config import deploy_parameters, key_values, validate
from pipeline.console import PipelineError
from tests.templates import ROOT, load, root

ENVS = ("dev", "staging", "prod")
SAMCONFIG = tomllib.loads((ROOT / "samconfig.toml").read_text())
TASKCAT = yaml.safe_load((ROOT / ".taskcat.yml").read_text())
PARAMETERS = set(root()["Parameters"])


def overrides(env: str) -> dict[str, str]:
    return key_values(SAMCONFIG[env]["deploy"]["parameters"]["parameter_overrides"])


@pytest.mark.parametrize("env", ENVS)
def test_each_environment_has_its_stack_capabilities_and_tags(env):
    config = SAMCONFIG[env]["deploy"]["parameters"]
    assert config["stack_name"] == f"genstack-{env}"
    # IAM roles are created; nested stacks and the SAM transform need AUTO_EXPAND.
    assert set(config["capabilities"].split()) == {"CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"}
    assert key_values(config["tags"]) == {"Application": "genstack", "Environment": env}
    assert config["confirm_changeset"] is (env == "prod")
    assert config["fail_on_empty_changeset"] is False


@pytest.mark.parametrize("env", ENVS)
def test_samconfig_sets_only_declared_parameters_and_the_template_accepts_them(env):
    params = overrides(env)
    assert set(params) <= PARAMETERS
    assert params["Environment"] == env
    # What the template would refuse (types, allowed values, Rules), with the
    # one value an operator must add in prod (AlarmEmail, asked by --guided).
    extra = {"AlarmEmail": "ops@example.com"} if env == "prod" and "AlarmEmail" not in params else {}
    assert render(parameters=params | extra).rule_failures == []


def test_prod_without_an_alarm_address_is_refused_by_the_pipeline_with_the_reason():
    with pytest.raises(PipelineError, match="AlarmEmail"):
        validate(deploy_parameters("prod", [], None))
    validate(deploy_parameters("prod", ["AlarmEmail=ops@example.com"], None))


def test_the_default_section_is_dev():
    assert SAMCONFIG["default"]["deploy"]["parameters"] == SAMCONFIG["dev"]["deploy"]["parameters"]


@pytest.mark.parametrize("env", ["default", *ENVS])
def test_sam_deploy_with_a_config_env_deploys_the_built_template(env):
    """`sam deploy --config-env ENV` after `make build`: the template build.sh
    writes for AWS, the one the pipeline builds and packages (never template.yaml)."""
    template = SAMCONFIG[env]["deploy"]["parameters"]["template_file"]
    assert ROOT / template == artifacts.ROOT / ".aws-sam" / "aws" / "build" / "template.yaml"
    build = (ROOT / "infrastructure/scripts/build.sh").read_text()
    assert 'out="$GENSTACK_ROOT/.aws-sam/$target"' in build
    assert 'build_dir="$out/build"' in build
    assert '--build-dir "$build_dir"' in build


def test_guided_answers_go_to_an_ignored_copy_as_the_readme_says():
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert "samconfig.user.toml" in ignored
    readme = (ROOT / "README.md").read_text()
    assert "cp samconfig.toml samconfig.user.toml" in readme
    assert 'sam deploy --guided --config-file "$PWD/samconfig.user.toml"' in readme


def test_the_local_endpoint_adds_only_the_emulator_target():
    assert deploy_parameters("dev", [], "https://127.0.0.1:4566") == overrides("dev") | {"DeployTarget": "local-emulator"}
    assert deploy_parameters("dev", ["DeployTarget=aws"], "https://x")["DeployTarget"] == "aws"


def test_every_output_the_pipeline_reads_is_exported_by_a_stack():
    exported = set(root()["Outputs"]) | set(load("infrastructure/bootstrap.yaml")["Outputs"])
    code = "".join(p.read_text() for p in sorted((ROOT / "infrastructure/scripts/pipeline").glob("*.py")))
    read = set(re.findall(r"""\["outputs"\]\["(\w+)"\]""", code))
    assert read, "the pattern finds the pipeline's reads"
    assert read <= exported, read - exported


def test_taskcat_uses_declared_parameters_and_shares_values_once():
    project = TASKCAT["project"]
    assert set(project.get("parameters", {})) <= PARAMETERS
    for name, test in TASKCAT["tests"].items():
        assert set(test.get("parameters", {})) <= PARAMETERS, name
        shared = set(test.get("parameters", {})) & set(project.get("parameters", {}))
        assert not shared, f"{name} repeats project parameters {shared}"
    environments = {test["parameters"].get("Environment", "dev") for test in TASKCAT["tests"].values()}
    assert {"dev", "prod"} <= environments
    assert any(len(test.get("regions", project["regions"])) >= 2 for test in TASKCAT["tests"].values())


def test_the_published_openapi_description_is_current_and_covers_every_route():
    import json

    import openapi

    assert openapi.main(["--check"]) == 0, "run `make docs`"
    spec = json.loads((ROOT / "docs/openapi.json").read_text())
    routes = set()
    for fn in root()["Resources"].values():
        for event in fn.get("Properties", {}).get("Events", {}).values():
            if event["Type"] == "Api" and event["Properties"]["Method"] != "options":
                # A greedy {name+} is {name} in OpenAPI.
                routes.add((event["Properties"]["Method"], event["Properties"]["Path"].replace("+}", "}")))
    documented = {(m, path) for path, operations in spec["paths"].items() for m in operations if m != "servers"}
    assert routes == documented
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method == "servers":  # the /v1 routes' own API
                assert path.startswith("/v1/")
                continue
            assert ("security" in operation) is (path != "/health")
