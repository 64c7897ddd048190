"""What a deployment uploads: the bootstrap stack's artifact bucket (one per
account and region: Lambda reads code only from a bucket in its own region),
the functions built for the target (`sam build`, through build.sh), and the
templates and code packaged into that region's bucket (`sam package`)."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

from cfn_render import ROOT

from .config import StackRequest
from .console import PipelineError, say
from .session import Aws
from .stacks import deploy

BOOTSTRAP_STACK = "genstack-bootstrap"
BOOTSTRAP_TEMPLATE = ROOT / "infrastructure" / "bootstrap.yaml"
SCRIPTS = ROOT / "infrastructure" / "scripts"
SAM = ROOT / ".tools" / "sam" / "bin" / "sam"


def bootstrap(aws: Aws) -> str:
    """The artifact bucket of this account and region, its stack deployed first."""
    say(f"bootstrap stack {BOOTSTRAP_STACK} in {aws.region} (artifact bucket)")
    cfn = aws.client("cloudformation")
    request = StackRequest(BOOTSTRAP_STACK, template_file=BOOTSTRAP_TEMPLATE, tags={"Application": "genstack"}, yes=True)
    deploy(cfn, request, emulator=bool(aws.endpoint))
    outputs = cfn.describe_stacks(StackName=BOOTSTRAP_STACK)["Stacks"][0].get("Outputs", [])
    return next(o["OutputValue"] for o in outputs if o["OutputKey"] == "ArtifactBucketName")


def build(target: str) -> Path:
    """The functions and nested templates built for a target (aws or local);
    returns the built root template."""
    done = subprocess.run(["bash", str(SCRIPTS / "build.sh"), "--target", target], check=False)
    if done.returncode != 0:
        raise PipelineError(f"the build for {target} failed (above)")
    return ROOT / ".aws-sam" / target / "build" / "template.yaml"


def s3_url(aws: Aws, bucket: str, key: str) -> str:
    """A URL CloudFormation loads a template from: path style, in the bucket's region."""
    if aws.endpoint:
        return f"{aws.endpoint}/{bucket}/{key}"
    suffix = "amazonaws.com.cn" if aws.region.startswith("cn-") else "amazonaws.com"
    return f"https://s3.{aws.region}.{suffix}/{bucket}/{key}"


def package(aws: Aws, built: Path, bucket: str, prefix: str, out: Path) -> str:
    """Nested templates and code uploaded to the bucket, their references
    rewritten (sam package), then the root template uploaded too (it can exceed
    the 51,200-byte inline limit); returns the root template's URL."""
    say(f"packaging into s3://{bucket}/{prefix} ({aws.region})")
    out.parent.mkdir(parents=True, exist_ok=True)
    command = [str(SAM), "package", "--template-file", str(built), "--s3-bucket", bucket, "--s3-prefix", prefix]
    command += ["--output-template-file", str(out), "--region", aws.region, "--no-progressbar"]
    done = subprocess.run(command, env=aws.environment(), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise PipelineError(f"sam package failed in {aws.region}: {(done.stderr or done.stdout).strip()[-1500:]}")
    key = f"{prefix}/root-{hashlib.sha256(out.read_bytes()).hexdigest()[:16]}.yaml"
    aws.client("s3").upload_file(str(out), bucket, key)
    return s3_url(aws, bucket, key)
