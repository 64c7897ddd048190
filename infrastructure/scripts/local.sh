#!/usr/bin/env bash
# The whole genstack system on a local AWS emulator (ministack), no AWS account:
#   up      install what is missing, start ministack in the background (unless it
#           already answers on the port), deploy into it through the pipeline
#           (pipeline.sh deploy --endpoint, the same path as AWS), serve the
#           playground, and print the API URL, a key and a curl example.
#           Run again to update in place.
#   start   only start ministack (for `make deploy ENDPOINT=...`, the pipeline).
#   down    stop the ministack this script started on the port.
#   status  say whether ministack answers and what the stack's status is.
# What only `make local` does: start and stop the emulator, the page server on
# loopback, the quick-start printout, and an AlarmEmail placeholder for a
# local staging or prod (their Rules ask for one).
# Options (or environment): --port (GENSTACK_LOCAL_PORT, 4566),
#   --stack-name (GENSTACK_LOCAL_STACK, genstack-local),
#   --outputs FILE (GENSTACK_LOCAL_OUTPUTS, outputs/local.json): the deployment's
#   outputs file (the pipeline's one format, as outputs/<env>.json on AWS),
#   --env dev|staging|prod (GENSTACK_LOCAL_ENV, dev): the environment to deploy
#   (its EnvironmentConfig row; DeployTarget=local-emulator leaves out only
#   the WAF association, which the emulator cannot create),
#   --parameter KEY=VALUE (repeatable; GENSTACK_LOCAL_PARAMETERS, space-separated):
#   more template parameters (the end-to-end tests shorten OutputLinkSeconds),
#   --playground-port N (GENSTACK_PLAYGROUND_PORT, 8321; 0: no playground): where
#   `up` serves the playground page (frontend/) on loopback, the API beside it.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

usage() { echo "usage: $0 up|start|down|status [--port N] [--stack-name NAME] [--outputs FILE] [--env dev|staging|prod] [--parameter KEY=VALUE] [--playground-port N]"; }
[[ $# -ge 1 ]] || { usage; exit 2; }
cmd="$1"; shift
port="${GENSTACK_LOCAL_PORT:-4566}"
stack="${GENSTACK_LOCAL_STACK:-genstack-local}"
outputs="${GENSTACK_LOCAL_OUTPUTS:-$GENSTACK_ROOT/outputs/local.json}"
environment="${GENSTACK_LOCAL_ENV:-dev}"
playground_port="${GENSTACK_PLAYGROUND_PORT:-8321}"
read -r -a parameters <<<"${GENSTACK_LOCAL_PARAMETERS:-}"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --port) port="${2:?}"; shift 2 ;;
    --stack-name) stack="${2:?}"; shift 2 ;;
    --outputs) outputs="${2:?}"; shift 2 ;;
    --env) environment="${2:?}"; shift 2 ;;
    --parameter) parameters+=("${2:?}"); shift 2 ;;
    --playground-port) playground_port="${2:?}"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage; die "unknown argument: $1" ;;
  esac
done
[[ "$port" =~ ^[0-9]+$ ]] || die "--port must be a number"
[[ "$playground_port" =~ ^[0-9]+$ ]] || die "--playground-port must be a number"
[[ "$environment" =~ ^(dev|staging|prod)$ ]] || die "--env must be dev, staging or prod"
[[ "$stack" =~ ^[A-Za-z][A-Za-z0-9-]{0,40}$ ]] || die "--stack-name must start with a letter and hold letters, digits and hyphens (at most 41)"
for parameter in "${parameters[@]}"; do
  [[ "$parameter" =~ ^[A-Za-z0-9]+=[^[:space:]]*$ ]] || die "--parameter must be KEY=VALUE (got '$parameter')"
done

state_dir="$GENSTACK_ROOT/.local"
pid_file="$state_dir/ministack-$port.pid"
playground_pid="$state_dir/playground-$playground_port.pid"  # one page server per port
log_file="$state_dir/ministack-$port.log"
use_local_endpoint "$port"

# The emulator serves HTTPS with a self-signed certificate (made once, cached
# under the temp directory); every client here trusts exactly that one.
trust_emulator() {
  AWS_CA_BUNDLE="$("$MINISTACK_PY" -c 'from ministack.core.tls import resolve_tls_material as r; print(r()[0])')"
  export AWS_CA_BUNDLE
}
AWS_CA_BUNDLE=""
healthy() { [[ -s "$AWS_CA_BUNDLE" ]] && curl -sf -m 2 --cacert "$AWS_CA_BUNDLE" "https://127.0.0.1:$port/_ministack/health" >/dev/null 2>&1; }

start_emulator() {
  if healthy; then
    log "ministack already answers on port $port; reusing it"
    return
  fi
  mkdir -p "$state_dir"
  log "starting ministack $MINISTACK_VERSION on 127.0.0.1:$port (log: ${log_file#"$GENSTACK_ROOT"/})"
  # Bound to loopback only. setsid: it outlives this script, like a service.
  # AUTH=true: the emulator evaluates IAM policies (identity, resource and
  # boundary), so every function runs with only its role's permissions, as on
  # AWS. USE_SSL=1: HTTPS, so aws:SecureTransport holds and the TLS-only
  # bucket, queue and topic policies apply as they do on AWS. The functions
  # it runs are given its certificate to trust.
  GATEWAY_PORT="$port" BIND_HOST=127.0.0.1 MINISTACK_REGION="$AWS_DEFAULT_REGION" AUTH=true USE_SSL=1 \
    setsid "$MINISTACK_PY" -m hypercorn -c "file:$("$MINISTACK_PY" -c 'import ministack.core.hypercorn_conf as c; print(c.__file__)')" \
    ministack.app:app --bind "127.0.0.1:$port" --keep-alive 75 >"$log_file" 2>&1 < /dev/null &
  echo $! > "$pid_file"
  for _ in $(seq 1 60); do
    healthy && { ok "ministack is up (pid $(cat "$pid_file"))"; return; }
    kill -0 "$(cat "$pid_file")" 2>/dev/null || { tail -20 "$log_file" >&2; die "ministack exited during start-up"; }
    sleep 0.5
  done
  die "ministack did not answer on port $port within 30 s (log: $log_file)"
}

# The playground page on loopback, forwarding /api/ to this stack's API
# (infrastructure/scripts/playground.py); replaced on every `up`.
stop_playground() {
  if [[ -f "$playground_pid" ]] && kill -0 "$(cat "$playground_pid")" 2>/dev/null; then
    kill "$(cat "$playground_pid")" 2>/dev/null || true
  fi
  rm -f "$playground_pid"
}
start_playground() {
  stop_playground
  [[ "$playground_port" != 0 ]] || return 0
  local api_url
  api_url="$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["apiUrl"])' "$outputs")"
  setsid "$PY" "$GENSTACK_ROOT/infrastructure/scripts/playground.py" serve --api-url "$api_url" \
    --ca-bundle "$AWS_CA_BUNDLE" --port "$playground_port" >"$state_dir/playground-$playground_port.log" 2>&1 < /dev/null &
  echo $! > "$playground_pid"
  for _ in $(seq 1 20); do
    curl -sf -m 1 "http://127.0.0.1:$playground_port/" >/dev/null 2>&1 && return 0
    sleep 0.25
  done
  # The stack is up all the same: say why the page is not.
  warn "the playground did not start on port $playground_port (log: .local/playground-$playground_port.log); GENSTACK_PLAYGROUND_PORT picks another"
  stop_playground
  return 1
}

# The deployment itself is the pipeline's, as for AWS (pipeline.sh deploy
# --endpoint): lint, parameters, bootstrap, build, package, change set, the
# emulator's IAM compensation, outputs, smoke test, starter templates.
deploy() {
  # prod refuses to deploy without somewhere to send alarms (template Rules);
  # locally they go to a placeholder address that nothing reads.
  local extra=()
  [[ "$environment" == dev ]] || extra+=(--parameter AlarmEmail=alarms@example.com)
  for parameter in "${parameters[@]}"; do extra+=(--parameter "$parameter"); done
  bash "$GENSTACK_ROOT/infrastructure/scripts/pipeline.sh" deploy --env "$environment" --region "$AWS_DEFAULT_REGION" \
    --endpoint "$AWS_ENDPOINT_URL" --ca-bundle "$AWS_CA_BUNDLE" --stack-name "$stack" --outputs-file "$outputs" \
    --yes "${extra[@]}" \
    || die "deploy failed (above; log in .deploy-logs/). A changed layer parameter cannot be updated on the emulator: make local-stop, then make local"
}

case "$cmd" in
  up)
    bash "$GENSTACK_ROOT/infrastructure/scripts/install.sh" --tools ministack  # pipeline.sh installs the rest
    mkdir -p "$state_dir"
    trust_emulator
    start_emulator
    deploy
    playground_url=""
    if start_playground && [[ "$playground_port" != 0 ]]; then playground_url="http://127.0.0.1:$playground_port/"; fi
    "$PY" "$GENSTACK_ROOT/infrastructure/scripts/quickstart.py" "$outputs" --playground-url "$playground_url"
    ;;
  start)
    bash "$GENSTACK_ROOT/infrastructure/scripts/install.sh" --tools ministack
    mkdir -p "$state_dir"
    trust_emulator
    start_emulator
    echo "$AWS_ENDPOINT_URL"
    ;;
  down)
    stop_playground
    [[ -x "$MINISTACK_PY" ]] && trust_emulator
    if [[ -f "$pid_file" ]] && kill -0 "$(cat "$pid_file")" 2>/dev/null; then
      pid="$(cat "$pid_file")"
      kill -- "-$pid" 2>/dev/null || kill "$pid"
      for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
      rm -f "$pid_file"
      ok "ministack on port $port stopped (its state was in memory and is gone)"
    elif healthy; then
      warn "a ministack answers on port $port but this script did not start it; leaving it running"
    else
      log "no ministack running on port $port"
    fi
    ;;
  status)
    [[ -x "$MINISTACK_PY" ]] && trust_emulator
    if healthy; then
      ok "ministack answers on port $port"
      "$PY" - "$stack" <<'PY' || warn "stack $stack is not deployed"
import sys, boto3
print("stack", sys.argv[1], boto3.client("cloudformation").describe_stacks(StackName=sys.argv[1])["Stacks"][0]["StackStatus"])
PY
    else
      log "ministack does not answer on port $port"
    fi
    ;;
  *) usage; exit 2 ;;
esac
