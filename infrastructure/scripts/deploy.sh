#!/usr/bin/env bash
# The genstack deploy pipeline. One command, the same against AWS and against a
# local emulator (--endpoint is the only difference):
#
#   preflight  tools, credentials (sts get-caller-identity), region, templates
#              lint clean, parameters valid for the template (types, Rules)
#   bootstrap  the per-account-and-region artifact bucket (infrastructure/bootstrap.yaml)
#   build      functions for the target (AWS: Python 3.13 arm64; emulator: host Python)
#   package    sam package: nested templates and code uploaded, TemplateURLs rewritten
#   deploy     a change set on the root stack: printed (replacements of stateful
#              resources highlighted); --dry-run stops here; an empty change set
#              is a success; prod asks before executing (samconfig confirm_changeset)
#   outputs    root and nested stack outputs -> outputs/<env>.json
#   post       first key checked, starter prompt templates seeded, smoke test
#
# --delete empties the buckets CloudFormation will delete (every version), deletes
# the stack through CloudFormation and lists what prod retains. Every run also
# writes its log to .deploy-logs/.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

usage() {
  cat <<USAGE
usage: $0 --env dev|staging|prod [--region R] [--profile P] [--endpoint URL [--ca-bundle PEM]]
          [--stack-name NAME] [--outputs-file F] [--parameter Key=Value ...] [--dry-run] [--delete] [--yes]
          [--no-seed] [--no-smoke] [--skip-lint]
  Settings come from samconfig.toml's [env] section; --parameter overrides one.
USAGE
}

outputs_file="" ca_bundle="" env_name="" region="${AWS_REGION:-${AWS_DEFAULT_REGION:-}}" profile="${AWS_PROFILE:-}" endpoint="" stack_override=""
dry_run=false delete=false yes=false seed=true smoke=true lint=true
overrides=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --env) env_name="${2:?--env needs a value}"; shift 2 ;;
    --region) region="${2:?}"; shift 2 ;;
    --profile) profile="${2:?}"; shift 2 ;;
    --endpoint) endpoint="${2:?}"; shift 2 ;;
    --ca-bundle) ca_bundle="${2:?}"; shift 2 ;;
    --stack-name) stack_override="${2:?}"; shift 2 ;;
    --outputs-file) outputs_file="${2:?}"; shift 2 ;;
    --parameter) overrides+=("${2:?}"); shift 2 ;;
    --dry-run) dry_run=true; shift ;;
    --delete) delete=true; shift ;;
    --yes) yes=true; shift ;;
    --no-seed) seed=false; shift ;;
    --no-smoke) smoke=false; shift ;;
    --skip-lint) lint=false; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown argument: $1" ;;
  esac
done
[[ "$env_name" =~ ^(dev|staging|prod)$ ]] || { usage >&2; die "--env must be dev, staging or prod"; }
[[ -z "$stack_override" || "$stack_override" =~ ^[A-Za-z][A-Za-z0-9-]{0,40}$ ]] || die "--stack-name must start with a letter and hold letters, digits and hyphens"
[[ -n "$region" ]] || region=us-east-1
export AWS_DEFAULT_REGION="$region" AWS_REGION="$region"
[[ -n "$profile" ]] && export AWS_PROFILE="$profile"

log_dir="$GENSTACK_ROOT/.deploy-logs"
mkdir -p "$log_dir"
log_file="$log_dir/$env_name-$(date -u +%Y%m%dT%H%M%SZ).log"
exec > >(tee -a "$log_file") 2> >(tee -a "$log_file" >&2)
log "genstack deploy: env=$env_name region=$region${endpoint:+ endpoint=$endpoint} (log: ${log_file#"$GENSTACK_ROOT"/})"

# ------------------------------------------------------------------ preflight
bash "$GENSTACK_ROOT/infrastructure/scripts/install.sh" --tools sam >/dev/null
[[ -x "$SAM" && -x "$PY" ]] || die "tools missing after install (sam, .venv)"
target=aws
if [[ -n "$endpoint" ]]; then
  # A local emulator: its dummy credentials and certificate; functions run on
  # the host interpreter there, so the local build.
  export AWS_ENDPOINT_URL="$endpoint" AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
  unset AWS_PROFILE AWS_SESSION_TOKEN
  if [[ -n "$ca_bundle" ]]; then
    export AWS_CA_BUNDLE="$ca_bundle"
  elif [[ "$endpoint" == https://* && -x "$MINISTACK_PY" ]]; then
    # ministack's self-signed certificate (what `make local` trusts too)
    AWS_CA_BUNDLE="$("$MINISTACK_PY" -c 'from ministack.core.tls import resolve_tls_material as r; print(r()[0])')"
    export AWS_CA_BUNDLE
  fi
  target=local
fi
pipeline=("$PY" "$GENSTACK_ROOT/infrastructure/scripts/pipeline.py" --region "$region" ${endpoint:+--endpoint "$endpoint"})
param_args=()
for o in "${overrides[@]}"; do param_args+=(--parameter "$o"); done

config="$("${pipeline[@]}" config --env "$env_name" "${param_args[@]}")" || die "cannot read samconfig.toml's [$env_name] settings"
eval "$config"
stack="${stack_override:-$stack_name}"
log "stack $stack; parameters: ${parameters[*]}"

if ! identity="$("${pipeline[@]}" identity 2>&1)"; then
  echo "$identity" >&2
  die "no usable AWS credentials for region $region (set AWS_PROFILE or pass --profile; for the local stack pass --endpoint)"
fi
eval "$identity"
ok "deploying as $arn in account $account, region $region"

if $delete; then
  "${pipeline[@]}" delete --stack "$stack"
  exit $?
fi

if $lint; then
  log "linting the templates (cfn-lint)"
  "$GENSTACK_ROOT/.venv/bin/cfn-lint" "$GENSTACK_ROOT/template.yaml" "$GENSTACK_ROOT/infrastructure/*.yaml" || die "the templates do not lint clean"
fi
validate_args=()
for p in "${parameters[@]}"; do validate_args+=(--parameter "$p"); done
"${pipeline[@]}" validate --env "$env_name" "${validate_args[@]}" || die "fix the parameters above; nothing was deployed"

# ------------------------------------------------------------------ bootstrap
log "bootstrap stack genstack-bootstrap (artifact bucket)"
bucket="$("${pipeline[@]}" bootstrap)"

# ------------------------------------------------------------ build, package
bash "$GENSTACK_ROOT/infrastructure/scripts/build.sh" --target "$target"
packaged="$GENSTACK_ROOT/.aws-sam/$target/packaged.yaml"
log "packaging into s3://$bucket/$s3_prefix"
"$SAM" package --template-file "$GENSTACK_ROOT/.aws-sam/$target/build/template.yaml" --s3-bucket "$bucket" \
  --s3-prefix "$s3_prefix" --output-template-file "$packaged" --region "$region" --no-progressbar >/dev/null
# The root template goes to the bucket too (it can exceed the 51,200-byte inline limit).
root_key="$s3_prefix/root-$(sha256sum "$packaged" | cut -c1-16).yaml"
"$PY" - "$packaged" "$bucket" "$root_key" <<'PY'
import sys, boto3
boto3.client("s3").upload_file(sys.argv[1], sys.argv[2], sys.argv[3])
PY
if [[ -n "$endpoint" ]]; then template_url="${endpoint%/}/$bucket/$root_key"
else template_url="https://s3.$region.amazonaws.com/$bucket/$root_key"; fi

# ---------------------------------------------------------------------- deploy
stack_args=(--stack "$stack" --template-url "$template_url" --capabilities "$capabilities")
for p in "${parameters[@]}"; do stack_args+=(--parameter "$p"); done
for t in "${tags[@]}"; do stack_args+=(--tag "$t"); done
$dry_run && stack_args+=(--dry-run)
$yes && stack_args+=(--yes)
[[ "$confirm_changeset" == true ]] && stack_args+=(--confirm)
[[ "$env_name" == prod ]] && stack_args+=(--termination-protection)
"${pipeline[@]}" stack "${stack_args[@]}"
$dry_run && { ok "dry run finished; nothing was changed"; exit 0; }

# ---------------------------------------------------------- outputs, post-deploy
if [[ -n "$endpoint" ]]; then
  # On the emulator only: it authorises Converse under another action name.
  "$PY" "$GENSTACK_ROOT/infrastructure/scripts/emulator_iam_compat.py" --stack-name "$stack" --endpoint "$endpoint" >&2
fi
outputs_file="${outputs_file:-$GENSTACK_ROOT/outputs/$env_name.json}"
"${pipeline[@]}" outputs --stack "$stack" --env "$env_name" --out "$outputs_file"
post_args=(--outputs "$outputs_file")
$seed || post_args+=(--no-seed)
$smoke || post_args+=(--no-smoke)
"${pipeline[@]}" post-deploy "${post_args[@]}"
ok "genstack $env_name is deployed (stack $stack); outputs in ${outputs_file#"$GENSTACK_ROOT"/}"
