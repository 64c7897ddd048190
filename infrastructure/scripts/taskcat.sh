#!/usr/bin/env bash
# taskcat regression runs (`make taskcat`). taskcat does not run SAM packaging,
# so this script builds for AWS, packages into the pipeline's artifact bucket
# (genstack-bootstrap), writes a taskcat config whose template is the packaged
# one, and runs `taskcat test run` with it. Every step that needs AWS needs
# credentials: without them the script stops there and says so.
# Options: --region R (the packaging region; taskcat copies to the test regions
# itself), --profile P, --test NAME (one scenario of .taskcat.yml).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

usage() { echo "usage: $0 [--region R] [--profile P] [--test NAME]"; }
region="${AWS_REGION:-${AWS_DEFAULT_REGION:-us-east-1}}" profile="${AWS_PROFILE:-}" only=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --region) region="${2:?}"; shift 2 ;;
    --profile) profile="${2:?}"; shift 2 ;;
    --test) only="${2:?}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
export AWS_DEFAULT_REGION="$region" AWS_REGION="$region"
[[ -n "$profile" ]] && export AWS_PROFILE="$profile"

bash "$GENSTACK_ROOT/infrastructure/scripts/install.sh" --tools sam,taskcat >/dev/null
log "taskcat lint (offline)"
(cd "$GENSTACK_ROOT" && "$TOOLS/taskcat/bin/taskcat" lint >/dev/null 2>&1) || die "taskcat lint failed; run it for details"
bash "$GENSTACK_ROOT/infrastructure/scripts/build.sh" --target aws

pipeline=("$PY" "$GENSTACK_ROOT/infrastructure/scripts/pipeline.py" --region "$region")
if ! identity="$("${pipeline[@]}" identity 2>&1)"; then
  echo "$identity" | tail -1 >&2
  die "stopped before packaging: taskcat test run creates stacks in AWS and needs credentials (set AWS_PROFILE or pass PROFILE=...). Built and linted; nothing was created."
fi
eval "$identity"
log "packaging for taskcat as $arn"
bucket="$("${pipeline[@]}" bootstrap)"
work="$GENSTACK_ROOT/.aws-sam/taskcat"
mkdir -p "$work"
"$SAM" package --template-file "$GENSTACK_ROOT/.aws-sam/aws/build/template.yaml" --s3-bucket "$bucket" \
  --s3-prefix taskcat --output-template-file "$work/packaged.yaml" --region "$region" --no-progressbar >/dev/null
# The same scenarios, pointed at the packaged template.
"$PY" - "$GENSTACK_ROOT/.taskcat.yml" "$work/.taskcat.yml" <<'PY'
import sys, yaml
config = yaml.safe_load(open(sys.argv[1]))
config["project"]["template"] = ".aws-sam/taskcat/packaged.yaml"
yaml.safe_dump(config, open(sys.argv[2], "w"), sort_keys=False)
PY
log "taskcat test run${only:+ (test $only)}"
args=(test run --project-root "$GENSTACK_ROOT" --input-file "$work/.taskcat.yml" --no-delete)
[[ -n "$only" ]] && args+=(--test-names "$only")
(cd "$GENSTACK_ROOT" && "$TOOLS/taskcat/bin/taskcat" "${args[@]}") || die "taskcat test run failed (report: taskcat_outputs/)"
# Smoke-test every stack taskcat created (in every test region), then delete
# it through the pipeline, which empties its buckets first.
"$PY" - "$work/.taskcat.yml" > "$work/stacks.txt" <<'PY'
import sys, boto3, yaml
config = yaml.safe_load(open(sys.argv[1]))
regions = set(config["project"]["regions"])
for test in config["tests"].values():
    regions |= set(test.get("regions", []))
for region in sorted(regions):
    cfn = boto3.client("cloudformation", region_name=region)
    for page in cfn.get_paginator("list_stacks").paginate(StackStatusFilter=["CREATE_COMPLETE"]):
        for s in page["StackSummaries"]:
            if s["StackName"].startswith("tCaT-genstack-") and "ParentId" not in s:
                print(region, s["StackName"])
PY
while read -r stack_region stack; do
  out="$work/$stack.json"
  regional=("$PY" "$GENSTACK_ROOT/infrastructure/scripts/pipeline.py" --region "$stack_region")
  "${regional[@]}" outputs --stack "$stack" --out "$out"
  "${regional[@]}" post-deploy --outputs "$out" --no-seed
  "${regional[@]}" delete --stack "$stack"
done < "$work/stacks.txt"
ok "taskcat regression passed"
