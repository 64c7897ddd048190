#!/usr/bin/env bash
# The entry point of genstack's deploy pipeline (infrastructure/scripts/pipeline/):
# installs what the command needs, before it touches any stack, then runs it.
#
#   pipeline.sh deploy   --env dev|staging|prod [--region R ...] [--profile P]
#                        [--endpoint URL [--ca-bundle PEM]] [--stack-name S]
#                        [--outputs-file F] [--parameter K=V ...] [--dry-run] [--yes]
#   pipeline.sh delete   --env E [--region R] [--profile P] [--endpoint URL] [--stack-name S]
#   pipeline.sh outputs  --env E [...]         write outputs/<env>.json again
#   pipeline.sh validate --env E [--parameter K=V ...]   offline
#   pipeline.sh taskcat  [--profile P] [--test NAME]
#
# `make deploy`, `make delete`, `make taskcat` and `make local` call it;
# `python -m pipeline <command> --help` tells each command's options.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

usage() { sed -n '4,11p' "$0" | sed 's/^# \{0,1\}//' >&2; }
[[ $# -ge 1 && "$1" =~ ^(deploy|delete|outputs|validate|taskcat)$ ]] || { usage; die "a command first: deploy, delete, outputs, validate or taskcat"; }

# What each command runs: sam builds and packages; the local build targets
# ministack's interpreter, so an --endpoint needs its environment too.
tools=sam
case "$1" in
  taskcat) tools=sam,taskcat ;;
  validate) tools=none ;;
esac
[[ " $* " == *" --endpoint"* ]] && tools="$tools,ministack"
bash "$GENSTACK_ROOT/infrastructure/scripts/install.sh" --tools "$tools" >&2 \
  || die "could not install what the pipeline needs (above); nothing was deployed"

export PYTHONPATH="$GENSTACK_ROOT/infrastructure/scripts${PYTHONPATH:+:$PYTHONPATH}"
cd "$GENSTACK_ROOT"
exec "$PY" -m pipeline "$@"
