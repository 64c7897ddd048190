"""genstack's deploy pipeline: deploy, delete, outputs, validate, taskcat.

pipeline.sh runs it (after installing what a command needs), and `make deploy`,
`make delete`, `make local` and `make taskcat` run pipeline.sh."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from . import deploy, outputs, regions, teardown
from .config import ENVIRONMENTS, DeployRequest, Settings, deploy_parameters, validate
from .console import PipelineError, say
from .session import Aws

STACK_NAME = r"^[A-Za-z][A-Za-z0-9-]{0,40}$"


def stack_name(text: str) -> str:
    if not re.fullmatch(STACK_NAME, text):
        raise argparse.ArgumentTypeError("must start with a letter and hold letters, digits and hyphens (at most 41)")
    return text


def parser() -> argparse.ArgumentParser:
    main = argparse.ArgumentParser(prog="pipeline", description=__doc__.splitlines()[0])
    commands = main.add_subparsers(dest="command", required=True, metavar="command")

    def where(p: argparse.ArgumentParser, many: bool = False) -> None:
        help_ = "AWS region (repeatable: a release in several regions)" if many else "AWS region"
        p.add_argument("--region", action="append" if many else "store", help=help_)
        p.add_argument("--profile", help="AWS profile (not used with --endpoint)")
        p.add_argument("--endpoint", help="a local emulator's URL (https://127.0.0.1:4566): its credentials and build")
        p.add_argument("--ca-bundle", help="the certificate to trust at the endpoint (default: ministack's)")

    d = commands.add_parser("deploy", help="preflight, build, bootstrap, package, change set, outputs, post-deploy checks")
    d.add_argument("--env", required=True, choices=ENVIRONMENTS)
    where(d, many=True)
    d.add_argument("--stack-name", type=stack_name, help="default: samconfig.toml's stack_name for --env")
    d.add_argument("--outputs-file", type=Path, help="default: outputs/<env>.json (outputs/<env>-<region>.json for several)")
    d.add_argument("--parameter", action="append", default=[], metavar="KEY=VALUE", help="a template parameter (repeatable)")
    d.add_argument("--dry-run", action="store_true", help="print the change set and stop")
    d.add_argument("--yes", action="store_true", help="do not ask before executing (prod asks)")
    d.add_argument("--no-seed", action="store_true", help="do not add the starter templates")
    d.add_argument("--no-smoke", action="store_true", help="skip the smoke test")
    d.add_argument("--skip-lint", action="store_true", help="skip cfn-lint (make test lints)")

    x = commands.add_parser("delete", help="empty the stack's buckets, delete it, list what is retained")
    x.add_argument("--env", required=True, choices=ENVIRONMENTS)
    where(x, many=True)
    x.add_argument("--stack-name", type=stack_name)

    o = commands.add_parser("outputs", help="write a deployed stack's outputs file again")
    o.add_argument("--env", required=True, choices=ENVIRONMENTS)
    where(o)
    o.add_argument("--stack-name", type=stack_name)
    o.add_argument("--outputs-file", type=Path)

    v = commands.add_parser("validate", help="check an environment's parameters against the template, offline")
    v.add_argument("--env", required=True, choices=ENVIRONMENTS)
    v.add_argument("--endpoint")
    v.add_argument("--parameter", action="append", default=[], metavar="KEY=VALUE")

    t = commands.add_parser("taskcat", help="package in every region of .taskcat.yml, taskcat test run, smoke test, delete")
    t.add_argument("--profile")
    t.add_argument("--test", help="one scenario of .taskcat.yml")
    return main


def dispatch(args: argparse.Namespace) -> int:
    if args.command == "deploy":
        request = DeployRequest(
            environment=args.env,
            regions=tuple(dict.fromkeys(args.region or ["us-east-1"])),
            profile=args.profile,
            endpoint=args.endpoint,
            ca_bundle=args.ca_bundle,
            stack_name=args.stack_name,
            outputs_file=args.outputs_file,
            overrides=tuple(args.parameter),
            dry_run=args.dry_run,
            yes=args.yes,
            seed=not args.no_seed,
            smoke=not args.no_smoke,
            lint=not args.skip_lint,
        )
        return deploy.run(request)
    if args.command == "validate":
        validate(deploy_parameters(args.env, args.parameter, args.endpoint))
        say("parameters are valid for the template", "green")
        return 0
    if args.command == "taskcat":
        return regions.run(args.profile, args.test)
    stack = args.stack_name or Settings.of(args.env).stack_name
    if args.command == "delete":
        for region in dict.fromkeys(args.region or ["us-east-1"]):
            aws = Aws(region, args.profile, args.endpoint, args.ca_bundle)
            aws.identity()
            teardown.delete(aws, stack)
        return 0
    aws = Aws(args.region or "us-east-1", args.profile, args.endpoint, args.ca_bundle)
    aws.identity()
    info = outputs.collect(aws, stack, args.env)
    outputs.write(info, args.outputs_file or DeployRequest(args.env, (aws.region,)).outputs_for(aws.region))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return dispatch(args)
    except PipelineError as exc:
        say(f"error: {exc}", "red")
    except (NoCredentialsError, NoRegionError) as exc:
        say(f"error: {exc}. Configure credentials (AWS_PROFILE, or make deploy PROFILE=...)", "red")
    except ClientError as exc:
        say(f"error: {exc.response['Error'].get('Code')}: {exc.response['Error'].get('Message')}", "red")
    except BotoCoreError as exc:  # no connection, TLS, ...
        say(f"error: {exc}", "red")
    return 1


if __name__ == "__main__":
    sys.exit(main())
