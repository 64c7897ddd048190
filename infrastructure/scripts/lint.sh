#!/usr/bin/env bash
# Every static check genstack runs: templates (cfn-lint, sam validate --lint,
# checkov, taskcat lint) and Python (ruff check, ruff format --check).
# Exits non-zero if any check fails, after running them all.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$GENSTACK_ROOT"

failed=()
run() {
  local name="$1"; shift
  log "lint: $name"
  if "$@"; then ok "lint: $name passed"; else failed+=("$name"); warn "lint: $name FAILED"; fi
}

run cfn-lint "$VENV/bin/cfn-lint"  # templates and rules from .cfnlintrc.yaml
run "sam validate --lint" "$SAM" validate --lint --template-file template.yaml
# checkov on every template; inline skips in the templates carry their reason.
run checkov "$TOOLS/checkov/bin/checkov" --quiet --compact --skip-download --framework cloudformation \
  -f template.yaml infrastructure/network.yaml infrastructure/storage.yaml infrastructure/database.yaml \
  infrastructure/iam.yaml infrastructure/api.yaml infrastructure/monitoring.yaml
run "taskcat lint" "$TOOLS/taskcat/bin/taskcat" lint
run "ruff check" "$VENV/bin/ruff" check .
run "ruff format" "$VENV/bin/ruff" format --check --quiet .

if ((${#failed[@]})); then die "lint failed: ${failed[*]}"; fi
ok "all lint checks passed"
