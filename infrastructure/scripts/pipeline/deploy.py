"""The whole deployment, in order, the same against AWS and an emulator (the
endpoint is the only difference) and for one region or several:

  preflight  tools installed, the parameters valid for the template (types,
             allowed values, Rules), the templates lint clean, credentials in
             every region; nothing is created before all of it passes
  build      functions for the target (AWS: the Lambda runtime; emulator: its
             host interpreter), once
  per region bootstrap (the region's artifact bucket), package into it, the root
             stack through a change set (--dry-run stops there), the emulator's
             IAM compensation (emulator only), outputs -> outputs/<env>.json,
             post-deploy checks (first key, smoke test, playground, starter templates)
"""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime

from cfn_render import ROOT

from . import artifacts, checks, emulator, outputs
from .config import DeployRequest, Settings, StackRequest, deploy_parameters, validate
from .console import PipelineError, record_to, say
from .session import MINISTACK_PY, Aws
from .stacks import deploy as deploy_stack

CFN_LINT = ROOT / ".venv" / "bin" / "cfn-lint"


def preflight(request: DeployRequest) -> tuple[Settings, dict[str, str], dict[str, Aws]]:
    """Everything that can be checked before anything is created."""
    missing = [str(tool.relative_to(ROOT)) for tool in (artifacts.SAM, CFN_LINT) if not tool.exists()]
    if request.target == "local" and not MINISTACK_PY.exists():
        missing.append(str(MINISTACK_PY.relative_to(ROOT)))  # the local build targets its interpreter
    if missing:
        raise PipelineError(f"not installed: {', '.join(missing)}; run: make install (nothing was deployed)")
    settings = Settings.of(request.environment)
    parameters = deploy_parameters(request.environment, list(request.overrides), request.endpoint)
    try:
        validate(parameters)
    except PipelineError as exc:
        raise PipelineError(f"{exc}; nothing was deployed") from exc
    say("parameters are valid for the template", "green")
    if request.lint:
        say("linting the templates (cfn-lint)")
        templates = [str(ROOT / "template.yaml"), str(ROOT / "infrastructure" / "*.yaml")]
        if subprocess.run([str(CFN_LINT), *templates], check=False).returncode != 0:
            raise PipelineError("the templates do not lint clean; nothing was deployed")
    sessions = {}
    for region in request.regions:
        aws = Aws(region, request.profile, request.endpoint, request.ca_bundle)
        who = aws.identity()
        say(f"deploying as {who['arn']} in account {who['account']}, region {region}", "green")
        sessions[region] = aws
    return settings, parameters, sessions


def run(request: DeployRequest) -> int:
    log = record_to(ROOT / ".deploy-logs" / f"{request.environment}-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.log")
    where = f" endpoint={request.endpoint}" if request.endpoint else ""
    say(f"genstack deploy: env={request.environment} regions={','.join(request.regions)}{where} (log: {log.relative_to(ROOT)})")
    settings, parameters, sessions = preflight(request)
    stack = request.stack_name or settings.stack_name
    say(f"stack {stack}; parameters: {' '.join(f'{k}={v}' for k, v in parameters.items())}")
    built = artifacts.build(request.target)
    for region, aws in sessions.items():
        bucket = artifacts.bootstrap(aws)
        packaged = ROOT / ".aws-sam" / request.target / f"packaged-{region}.yaml"
        template_url = artifacts.package(aws, built, bucket, settings.s3_prefix, packaged)
        stack_request = StackRequest(
            stack,
            template_url=template_url,
            parameters=parameters,
            tags=settings.tags,
            capabilities=settings.capabilities,
            dry_run=request.dry_run,
            confirm=settings.confirm_changeset,
            yes=request.yes,
            termination_protection=request.environment == "prod",
        )
        status = deploy_stack(aws.client("cloudformation"), stack_request, emulator=bool(aws.endpoint))
        if status in ("DRY_RUN", "NOT_CONFIRMED"):
            continue
        if aws.endpoint:
            emulator.compensate(aws, stack)
        info = outputs.collect(aws, stack, request.environment)
        outputs.write(info, request.outputs_for(region))
        checks.post_deploy(aws, info, seed_templates=request.seed, smoke_test=request.smoke)
        say(f"genstack {request.environment} is deployed in {region} (stack {stack})", "green")
    if request.dry_run:
        say(f"dry run finished; {stack} was not changed (its change set is deleted)", "green")
    return 0
