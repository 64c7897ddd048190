#!/usr/bin/env bash
# Builds the functions and nested templates with `sam build`, without Docker,
# for one of two targets:
#   aws    the Lambda runtime: Python 3.13 wheels for arm64 (template Runtime/Architectures)
#   local  the local emulator, which runs functions on its own host interpreter:
#          wheels for that interpreter's version and this machine's architecture
# Output: .aws-sam/<target>/build/template.yaml. Each target has its own tree:
# SAM keeps its build cache index (build.toml) beside the build directory.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

usage() { echo "usage: $0 --target aws|local"; }
target=""
while [[ $# -gt 0 ]]; do
  case "$1" in
    --target) target="${2:-}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage; die "unknown argument: $1" ;;
  esac
done
[[ -x "$SAM" ]] || die "sam-cli is not installed; run: make install"

case "$target" in
  aws)
    export GENSTACK_PYTHON_VERSION=3.13 GENSTACK_PYTHON_PLATFORM=aarch64-manylinux2014 ;;
  local)
    [[ -x "$MINISTACK_PY" ]] || die "ministack is not installed; run: make install"
    GENSTACK_PYTHON_VERSION="$("$MINISTACK_PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
    GENSTACK_PYTHON_PLATFORM="$(uname -m)-manylinux2014"
    export GENSTACK_PYTHON_VERSION GENSTACK_PYTHON_PLATFORM ;;
  *) usage; die "--target must be aws or local" ;;
esac

out="$GENSTACK_ROOT/.aws-sam/$target"
build_dir="$out/build"
mkdir -p "$out"
log "building for $target (Python $GENSTACK_PYTHON_VERSION, $GENSTACK_PYTHON_PLATFORM) into ${build_dir#"$GENSTACK_ROOT"/}"
# The makefile builder calls uv to vendor wheels.
export UV
cd "$GENSTACK_ROOT"
"$SAM" build --template-file template.yaml --build-dir "$build_dir" \
  --cache-dir "$out/cache" --cached >"$out/build.log" 2>&1 \
  || { tail -30 "$out/build.log" >&2; die "sam build failed (log: ${out#"$GENSTACK_ROOT"/}/build.log)"; }
# backend/precompile.py ships bytecode compiled by the target Python; without one
# here the functions still work, and start slower: say so where it is seen.
if grep -q "^precompile: no Python" "$out/build.log"; then
  warn "$(grep -m1 "^precompile: no Python" "$out/build.log" | sed 's/^precompile: //; s/; [A-Za-z]*Function ships/; the functions ship/')"
fi
ok "built $(find "$build_dir" -maxdepth 1 -mindepth 1 -type d | wc -l) artifacts for $target"
