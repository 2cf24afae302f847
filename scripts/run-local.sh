#!/usr/bin/env bash
# Runs the platform locally on the emulators: installs and starts the Cosmos DB emulator and Azurite
# (127.0.0.1), creates the database and containers, seeds a demo campaign, starts the function app's
# handler on http://127.0.0.1:7071 and stops everything it started on Ctrl-C, SIGINT or SIGTERM (also when
# run in the background: `bash scripts/run-local.sh &` then `kill -INT %1` or `kill %1`).
# Settings come from local.settings.json if you made one, else local.settings.sample.json; a variable already
# set in the environment wins. Ports: Cosmos__Endpoint's, FUNCTIONS_CUSTOMHANDLER_PORT (7071) and
# AZURITE_BLOB_PORT/AZURITE_QUEUE_PORT/AZURITE_TABLE_PORT (10000-10002), so two runs can sit side by side.
# Logs (handler.log, cosmos.log, azurite.log) are kept after exit in .emulators/local-<date>-<time>/ (the
# banner prints it; .emulators/local-latest points at the newest); nothing deletes them: rm -rf .emulators/ does.

# A shell that starts a script with `&` makes it ignore SIGINT, and bash cannot trap a signal ignored on entry:
# start again once with SIGINT and SIGTERM back to their defaults, so the traps below see them.
if [ "${RUN_LOCAL_SIGNALS_RESET:-}" != 1 ] && env --default-signal=INT true 2>/dev/null; then
  RUN_LOCAL_SIGNALS_RESET=1 exec env --default-signal=INT,TERM bash "$0" "$@"
fi

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
if [ -z "${STATE_DIR:-}" ]; then
  STATE_DIR="$ROOT/.emulators/local-$(date +%Y%m%d-%H%M%S)"
  mkdir -p "$STATE_DIR"
  ln -sfn "$(basename "$STATE_DIR")" "$ROOT/.emulators/local-latest"
fi
# This run's logs are what one reads after it: keep them (lib.sh removes a test run's state unless asked).
KEEP_RUN_STATE=1
source "$ROOT/scripts/lib.sh"
# Stop what we started on exit, whatever the cause; a signal ends the script (exit runs the EXIT trap) instead of
# letting it go on with its next step.
trap stop_started EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ensure_node_modules
# Locally a commission need not wait 7 days to be paid out: the holding period is 0 days (released by the next
# ReleaseCommissions run: bash scripts/timer.sh ReleaseCommissions), unless the environment or a
# local.settings.json of yours sets Commissions__HoldingDays. The sample keeps Azure's default (7), which the tests use.
if [ -z "${Commissions__HoldingDays:-}" ] && ! grep -qs '"Commissions__HoldingDays"' "$ROOT/local.settings.json"; then
  export Commissions__HoldingDays=0
fi
# Likewise a reminder keeps a minute (not an hour) from a coupon's claim and expiry, so a coupon claimed now is reminded
# by the SendReminders run a minute later (docs/notifications.md, "Locally"), unless Reminders__MarginMinutes is set.
if [ -z "${Reminders__MarginMinutes:-}" ] && ! grep -qs '"Reminders__MarginMinutes"' "$ROOT/local.settings.json"; then
  export Reminders__MarginMinutes=1
fi
load_local_settings
export ASPNETCORE_ENVIRONMENT="${ASPNETCORE_ENVIRONMENT:-Development}"
# ASP.NET Core writes ~6 Information lines per request; locally only its warnings (also with an older
# local.settings.json that lacks the setting). Logging__LogLevel__Microsoft=Information brings them back.
export Logging__LogLevel__Microsoft="${Logging__LogLevel__Microsoft:-Warning}"

COSMOS_PORT=$(node -e 'console.log(new URL(process.argv[1]).port || 8081)' "$Cosmos__Endpoint")
start_cosmos "$COSMOS_PORT"
start_azurite "${AZURITE_BLOB_PORT:-10000}" "${AZURITE_QUEUE_PORT:-10001}" "${AZURITE_TABLE_PORT:-10002}"

build_app app
PORT="${FUNCTIONS_CUSTOMHANDLER_PORT:-7071}"
# The console at http://127.0.0.1:$PORT/console/ uploads campaign media straight to Azurite: provision allows that origin
# (a CORS rule set with the Blob SDK, as the Bicep declares it in Azure).
dotnet "$APP_DLL" provision --seed-demo --console-origin "http://127.0.0.1:$PORT"

export FUNCTIONS_CUSTOMHANDLER_PORT="$PORT"
start_bg handler dotnet "$APP_DLL"
# The notification providers' local stand-in: the sample settings point every channel's webhook at it.
SINK_PORT="${NOTIFICATION_SINK_PORT:-7079}"
NOTIFICATION_SINK_PORT="$SINK_PORT" start_bg notification-sink node "$ROOT/scripts/notification-sink.mjs"
wait_for_port "Function app" "$PORT" 60 "$STATE_DIR/handler.log"

cat <<INFO

  Marketing platform running at http://127.0.0.1:$PORT/api
    health:   curl http://127.0.0.1:$PORT/api/health
    OpenAPI:  http://127.0.0.1:$PORT/api/openapi.json
    API reference (browser): http://127.0.0.1:$PORT/api/reference
    Operator console (browser): http://127.0.0.1:$PORT/console/  (local sign-in: pick a user and a role)
  Tokens (local dev issuer), one per role:
    CUSTOMER=\$(node scripts/token.mjs --sub alice --role customer)
    OPERATOR=\$(node scripts/token.mjs --sub olivia --role operator)
    ADMIN=\$(node scripts/token.mjs --sub ada --role admin)
    ORDERS=\$(node scripts/token.mjs --sub order-service --role order_system)
    PROMOTER=\$(node scripts/token.mjs --sub alice --role promoter)
    FINANCE=\$(node scripts/token.mjs --sub fiona --role finance)
    APPROVER=\$(node scripts/token.mjs --sub avery --role approver)
  Claim the demo coupon:
    curl -X POST http://127.0.0.1:$PORT/api/campaigns/cmp_demo/claims -H "Authorization: Bearer \$CUSTOMER" \\
         -H "Idempotency-Key: \$(cat /proc/sys/kernel/random/uuid)" -H "Content-Type: application/json" -d '{"channel":"app"}'
  Walk-through (docs/getting-started.md), driven end to end: bash scripts/demo.sh
  Commissions are held $Commissions__HoldingDays days here (Commissions__HoldingDays).
  Timers do not fire by themselves here; run one now:
    bash scripts/timer.sh ExpireCoupons      (or ReleaseCommissions, ReconcileStock, AggregateStats, SendReminders, AuditRepair)
  Notifications: SendReminders' messages go to the in-app inbox (GET /api/me/notifications) and, through
    scripts/timer.sh standing in for the queue, to the local provider sink on 127.0.0.1:$SINK_PORT
    (log: $STATE_DIR/notification-sink.log; docs/notifications.md, "Locally").
  Commands against this run: bash scripts/command.sh reconcile-ledger
  Logs (kept after exit): $STATE_DIR/      Ctrl-C stops everything.

INFO
# Interrupted by a trapped signal, wait returns at once and the trap ends the script.
wait "$(cat "$STATE_DIR/handler.pid")"
