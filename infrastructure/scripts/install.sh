#!/usr/bin/env bash
# Installs everything genstack's make targets need, idempotently:
#   .tools/uv          uv itself (from PyPI)
#   .venv              the project environment: runtime deps, test and lint tools
#   .tools/<tool>      ministack, sam-cli, checkov, taskcat, each on its own
# Re-running is cheap: an environment is rebuilt only when its pins change.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

usage() { echo "usage: $0 [--tools all|none|ministack,sam,checkov,taskcat,schemathesis,browser]"; }
want="all"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --tools) want="${2:?}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage; die "unknown argument: $1" ;;
  esac
done

command -v python3 >/dev/null || die "python3 (3.11 or newer) is required"
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || die "python3 must be 3.11 or newer (found $(python3 -V))"
BASE_PY="$(command -v python3)"

# stamp NAME CONTENT: true when the environment NAME was built from CONTENT.
stamp_ok() { [[ -f "$1/.genstack-stamp" && "$(cat "$1/.genstack-stamp")" == "$2" ]]; }
stamp_set() { printf '%s' "$2" > "$1/.genstack-stamp"; }

mkdir -p "$TOOLS"
if ! stamp_ok "$TOOLS/uv" "$UV_VERSION"; then
  log "installing uv $UV_VERSION"
  rm -rf "$TOOLS/uv"
  "$BASE_PY" -m venv "$TOOLS/uv"
  "$TOOLS/uv/bin/python" -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
  stamp_set "$TOOLS/uv" "$UV_VERSION"
fi

# tool_env NAME [--compile-bytecode] PACKAGES...: a dedicated environment for one tool.
tool_env() {
  local name="$1"; shift
  local dir="$TOOLS/$name" spec="$*"
  if stamp_ok "$dir" "$spec"; then return; fi
  log "installing $name ($spec)"
  rm -rf "$dir"
  "$UV" venv --quiet --python "$BASE_PY" "$dir"
  VIRTUAL_ENV="$dir" "$UV" pip install --quiet "$@"
  stamp_set "$dir" "$spec"
}

dev_spec="$(cat "$GENSTACK_ROOT/requirements-dev.txt" "$GENSTACK_ROOT"/backend/requirements*.txt | sha256sum | cut -c1-16)"
if ! stamp_ok "$VENV" "$dev_spec"; then
  log "installing the project environment (.venv)"
  rm -rf "$VENV"
  "$UV" venv --quiet --python "$BASE_PY" "$VENV"
  VIRTUAL_ENV="$VENV" "$UV" pip install --quiet -r "$GENSTACK_ROOT/backend/requirements.txt" \
    -r "$GENSTACK_ROOT/backend/requirements-charts.txt" -r "$GENSTACK_ROOT/requirements-dev.txt"
  stamp_set "$VENV" "$dev_spec"
fi

selected() { [[ "$want" == all || ",$want," == *",$1,"* ]]; }
# boto3 beside ministack: the functions it runs import boto3 from its environment.
# With its bytecode, as the Lambda runtime's boto3 has it: this machine's
# PYTHONDONTWRITEBYTECODE would otherwise have every function, and make bench's
# boto3 baseline, compile boto3 from source at each start.
selected ministack && tool_env ministack --compile-bytecode "ministack==$MINISTACK_VERSION" "aws-sam-translator==$SAM_TRANSLATOR_VERSION" boto3
selected sam && tool_env sam "aws-sam-cli==$SAM_CLI_VERSION"
selected checkov && tool_env checkov "checkov==$CHECKOV_VERSION"
# taskcat imports pkg_resources, gone from setuptools 81.
selected taskcat && tool_env taskcat "taskcat==$TASKCAT_VERSION" "setuptools<81"
selected schemathesis && tool_env schemathesis "schemathesis==$SCHEMATHESIS_VERSION"
# The playground's browser test: Debian's chromium and its driver (nothing
# downloads a browser), and axe-core from the npm registry, pinned.
if selected browser; then
  if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    log "installing Debian's chromium and chromium-driver"
    sudo_=(); [[ "$(id -u)" == 0 ]] || sudo_=(sudo)
    "${sudo_[@]}" apt-get install -y --no-install-recommends chromium chromium-driver >/dev/null 2>&1 \
      || { "${sudo_[@]}" apt-get update >/dev/null && "${sudo_[@]}" apt-get install -y --no-install-recommends chromium chromium-driver >/dev/null; } \
      || die "could not install chromium and chromium-driver (apt-get); the playground's browser test needs them"
  fi
  if ! stamp_ok "$TOOLS/axe" "$AXE_CORE_VERSION"; then
    command -v npm >/dev/null || die "npm is needed to install axe-core for the playground's browser test"
    log "installing axe-core $AXE_CORE_VERSION"
    rm -rf "$TOOLS/axe" && mkdir -p "$TOOLS/axe"
    npm install --silent --no-audit --no-fund --prefix "$TOOLS/axe" "axe-core@$AXE_CORE_VERSION" >/dev/null
    stamp_set "$TOOLS/axe" "$AXE_CORE_VERSION"
  fi
fi
ok "install complete"
