#!/usr/bin/env bash
# Cold start benchmark (not part of the test suite: it times things). Publishes the function app as deployed
# (scripts/publish.sh) and the bare yardstick tests/ColdStart.Bare with the same publish flags, starts the Cosmos
# DB emulator with the sample settings (database provisioned, demo campaign seeded), then times process start →
# first HTTP 200, alternating, N times each (scripts/coldstart.mjs):
#   bare app   GET /api/health
#   function app   GET /api/health
#   function app   GET /api/campaigns/claimable?channel=app with a customer token (Cosmos client, JwtBearer, a query)
# and prints the medians and their ratios to the bare app. Figures: docs/benchmarks.md.
# Usage: bash scripts/coldstart.sh [--runs N] [--app DIR] [--bare DIR] [--compare LABEL=DIR]...
#   --app / --bare reuse folders published before (e.g. by an earlier run with KEEP_RUN_STATE=1) instead of publishing.
#   --compare adds another published function app (e.g. an older commit: git archive it, run its scripts/publish.sh
#   into DIR) to the same alternating run, both routes, so before/after figures come from one run.
source "$(dirname "$0")/lib.sh"
trap stop_started EXIT INT TERM

RUNS=7 APP="" BARE="" COMPARE=()
while [ $# -gt 0 ]; do
  case $1 in
    --runs) RUNS=$2; shift 2 ;;
    --app) APP=$(realpath "$2"); shift 2 ;;
    --bare) BARE=$(realpath "$2"); shift 2 ;;
    --compare) COMPARE+=("${2%%=*}=$(realpath "${2#*=}")"); shift 2 ;;
    *) echo "usage: bash scripts/coldstart.sh [--runs N] [--app DIR] [--bare DIR] [--compare LABEL=DIR]..." >&2; exit 2 ;;
  esac
done

if [ -z "$APP" ]; then
  log "Publishing the function app (scripts/publish.sh)..."
  APP="$STATE_DIR/app"
  bash "$ROOT/scripts/publish.sh" "$APP" >/dev/null
fi
if [ -z "$BARE" ]; then
  log "Publishing the bare app..."
  BARE="$STATE_DIR/bare"
  # The same flags as scripts/publish.sh: self-contained linux-x64 with ReadyToRun. Change both together.
  dotnet publish "$ROOT/tests/ColdStart.Bare" -c Release -r linux-x64 --self-contained \
    -p:PublishReadyToRun=true -o "$BARE" --nologo -v quiet
fi

# Sample settings exported (as the host would give them as app settings), emulator on a free port.
start_cosmos_on_free_port
# As in Azure: no ASPNETCORE_ENVIRONMENT / DOTNET_ENVIRONMENT, so both apps run as Production.
unset ASPNETCORE_ENVIRONMENT DOTNET_ENVIRONMENT
(cd "$APP" && ./Marketing.Functions provision --seed-demo) >"$STATE_DIR/provision.log" 2>&1 \
  || { cat "$STATE_DIR/provision.log" >&2; exit 1; }

export COLDSTART_LOG_DIR="$STATE_DIR"
COLDSTART_TOKEN=$(node "$ROOT/scripts/token.mjs" --sub coldstart-customer --role customer --minutes 240)
export COLDSTART_TOKEN
CLAIMABLE="/api/campaigns/claimable?channel=app"
CASES=(--case "bare /api/health" "$BARE/ColdStart.Bare" /api/health
  --case "app /api/health" "$APP/Marketing.Functions" /api/health
  --case "app /api/campaigns/claimable" "$APP/Marketing.Functions" "$CLAIMABLE")
for other in "${COMPARE[@]}"; do
  CASES+=(--case "${other%%=*} /api/health" "${other#*=}/Marketing.Functions" /api/health
    --case "${other%%=*} /api/campaigns/claimable" "${other#*=}/Marketing.Functions" "$CLAIMABLE")
done
log "Timing $RUNS alternating runs of each case (after one warm-up run each)..."
node "$ROOT/scripts/coldstart.mjs" --runs "$RUNS" "${CASES[@]}"
