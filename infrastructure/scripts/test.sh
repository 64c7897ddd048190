#!/usr/bin/env bash
# `make test`: install, lint, build both targets, then one pytest run over
# unit tests (no network), integration tests (the built packages) and
# end-to-end tests (a ministack of their own on GENSTACK_E2E_PORT, 4599).
# Extra arguments go to pytest.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
cd "$GENSTACK_ROOT"

started=$SECONDS
bash infrastructure/scripts/install.sh
bash infrastructure/scripts/lint.sh
bash infrastructure/scripts/build.sh --target aws
bash infrastructure/scripts/build.sh --target local
log "tests: unit, integration, end-to-end"
"$PY" -m pytest tests "$@"
ok "make test passed in $((SECONDS - started)) s"
