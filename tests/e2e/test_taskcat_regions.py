"""taskcat's packaging, for real, in every region .taskcat.yml names: the
pipeline's own code (pipeline/regions.py) bootstraps each region's artifact
bucket in the local stack (which keeps its state per region, as AWS does),
runs `sam package` into it on the AWS build, and writes the config taskcat
runs. Every scenario's region must get a template whose code and nested
templates all live in that region (Lambda reads code only from its own
region), and taskcat itself must accept the config."""

from __future__ import annotations

import re
import subprocess

import pytest
import yaml

from pipeline import regions
from pipeline.session import Aws
from tests.e2e.conftest import Deployment
from tests.templates import ROOT

pytestmark = pytest.mark.e2e
CONFIG = yaml.safe_load((ROOT / ".taskcat.yml").read_text())


def s3_references(text: str, endpoint: str) -> list[tuple[str, str]]:
    """(bucket, key) of every S3 object a packaged template names: s3://bucket/key
    (code) and path-style URLs (nested templates) at S3 or, here, at the emulator."""
    host = rf"(?:s3://|{re.escape(endpoint)}/|https://s3[a-z0-9.-]*\.amazonaws\.com(?:\.cn)?/)"
    return re.findall(host + r"([a-z0-9][a-z0-9.-]+)/([^\s'\"]+)", text)


@pytest.fixture(scope="module")
def packaged(deployment: Deployment) -> dict[str, tuple[Aws, str]]:
    names = sorted({r for rs in regions.scenario_regions(CONFIG).values() for r in rs})
    sessions = {r: Aws(r, endpoint=deployment.endpoint, ca_bundle=deployment.ca_bundle) for r in names}
    built = ROOT / ".aws-sam" / "aws" / "build" / "template.yaml"
    assert built.exists(), "make test builds for AWS first"
    regions.package_regions(sessions, built)
    generated = regions.WORK / ".taskcat.yml"
    generated.write_text(yaml.safe_dump(regions.regional_config(CONFIG), sort_keys=False))
    return {r: (aws, regions.packaged_path(r).read_text()) for r, aws in sessions.items()}


def test_every_scenario_region_has_a_template_whose_code_lives_in_that_region(packaged, deployment):
    scenarios = regions.scenario_regions(CONFIG)
    assert {r for rs in scenarios.values() for r in rs} == set(packaged)
    assert len(packaged) >= 3, ".taskcat.yml runs in three regions"
    for region, (aws, text) in packaged.items():
        references = s3_references(text, deployment.endpoint)
        assert len(references) >= 15, (region, "every function's code and every layer's template")
        s3 = aws.client("s3")
        for bucket, key in {(b, k) for b, k in references if "bootstrap" in b}:
            location = s3.get_bucket_location(Bucket=bucket).get("LocationConstraint")
            assert (location or "us-east-1") == region, (region, bucket, location)
            s3.head_object(Bucket=bucket, Key=key)  # uploaded, not only named
        others = {b for b, _ in references if "bootstrap" not in b}
        assert not others, f"{region}'s template points outside its artifact bucket: {others}"


def test_the_generated_config_runs_each_scenario_on_its_region_template_and_taskcat_accepts_it(packaged):
    generated = yaml.safe_load((regions.WORK / ".taskcat.yml").read_text())
    for test in generated["tests"].values():
        (region,) = test["regions"]
        assert (ROOT / test["template"]).read_text() == packaged[region][1]
    lint = [str(ROOT / ".tools/taskcat/bin/taskcat"), "lint", "--input-file", str(regions.WORK / ".taskcat.yml")]
    done = subprocess.run(lint, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for region in packaged:
        assert f"Linting passed for file: {regions.packaged_path(region)}" in done.stdout + done.stderr
