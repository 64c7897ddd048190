# shellcheck shell=bash
# Shared by the genstack scripts: paths, pinned tool versions, logging.
# Source it; do not run it.

GENSTACK_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
export GENSTACK_ROOT

# Pinned tool versions. Each tool lives in its own environment under .tools/
# because they pin conflicting dependencies (botocore, boto3, cfn-lint, ...).
UV_VERSION="0.13.8"
MINISTACK_VERSION="1.5.33"
SAM_TRANSLATOR_VERSION="1.115.0"   # beside ministack: its CloudFormation runs the SAM transform
SAM_CLI_VERSION="1.170.0"
CHECKOV_VERSION="3.3.30"
TASKCAT_VERSION="0.9.58"
SCHEMATHESIS_VERSION="4.32.5"
AXE_CORE_VERSION="4.14.1"          # the playground's accessibility check (npm), run in Debian's chromium

VENV="$GENSTACK_ROOT/.venv"
TOOLS="$GENSTACK_ROOT/.tools"
UV="$TOOLS/uv/bin/uv"
PY="$VENV/bin/python"
SAM="$TOOLS/sam/bin/sam"
MINISTACK_PY="$TOOLS/ministack/bin/python"
AXE_JS="$TOOLS/axe/node_modules/axe-core/axe.min.js"

export SAM_CLI_TELEMETRY=0
export AWS_DEFAULT_REGION="${AWS_DEFAULT_REGION:-${AWS_REGION:-us-east-1}}"

if [[ -t 1 ]]; then _B=$'\033[1m'; _R=$'\033[31m'; _G=$'\033[32m'; _Y=$'\033[33m'; _N=$'\033[0m'; else _B=; _R=; _G=; _Y=; _N=; fi

log()  { printf '%s[%s]%s %s\n' "$_B" "$(date -u +%H:%M:%S)" "$_N" "$*" >&2; }
ok()   { printf '%s[%s] %s%s\n' "$_G" "$(date -u +%H:%M:%S)" "$*" "$_N" >&2; }
warn() { printf '%s[%s] warning: %s%s\n' "$_Y" "$(date -u +%H:%M:%S)" "$*" "$_N" >&2; }
die()  { printf '%s[%s] error: %s%s\n' "$_R" "$(date -u +%H:%M:%S)" "$*" "$_N" >&2; exit 1; }

# Environment for talking to the local emulator: fixed dummy credentials, the
# endpoint override, and the account id ministack uses.
use_local_endpoint() {
  local port="$1"
  export AWS_ENDPOINT_URL="https://127.0.0.1:${port}"
  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
  unset AWS_PROFILE AWS_SESSION_TOKEN
}
