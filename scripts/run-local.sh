#!/usr/bin/env bash
# Runs the platform locally on the emulators: installs and starts the Cosmos DB emulator and Azurite
# (127.0.0.1), creates the database and containers, seeds a demo campaign, starts the function app's
# handler on http://127.0.0.1:7071 and stops everything on Ctrl-C.
# Settings come from local.settings.json if you made one, else local.settings.sample.json.
source "$(dirname "$0")/lib.sh"
trap stop_started EXIT INT TERM

ensure_node_modules
SETTINGS="$ROOT/local.settings.json"
[ -f "$SETTINGS" ] || SETTINGS="$ROOT/local.settings.sample.json"
export_settings "$SETTINGS"
export ASPNETCORE_ENVIRONMENT="${ASPNETCORE_ENVIRONMENT:-Development}"

COSMOS_PORT=$(node -e 'console.log(new URL(process.argv[1]).port || 8081)' "$Cosmos__Endpoint")
start_cosmos "$COSMOS_PORT"
start_azurite 10000 10001 10002

log "Building the function app..."
dotnet build "$ROOT/functions/Marketing.Functions" -c Release --nologo -v quiet -o "$STATE_DIR/app"
dotnet "$STATE_DIR/app/Marketing.Functions.dll" provision --seed-demo

PORT="${FUNCTIONS_CUSTOMHANDLER_PORT:-7071}"
export FUNCTIONS_CUSTOMHANDLER_PORT="$PORT"
start_bg handler dotnet "$STATE_DIR/app/Marketing.Functions.dll"
wait_for_port "Function app" "$PORT" 60 "$STATE_DIR/handler.log"

cat <<INFO

  Marketing platform running at http://127.0.0.1:$PORT/api
    health:   curl http://127.0.0.1:$PORT/api/health
    OpenAPI:  http://127.0.0.1:$PORT/api/openapi.json
  Tokens (local dev issuer):
    CUSTOMER=\$(node scripts/token.mjs --sub alice --role customer)
    OPERATOR=\$(node scripts/token.mjs --sub olivia --role operator)
  Claim the demo coupon:
    curl -X POST http://127.0.0.1:$PORT/api/campaigns/cmp_demo/claims -H "Authorization: Bearer \$CUSTOMER" \\
         -H "Idempotency-Key: \$(cat /proc/sys/kernel/random/uuid)" -H "Content-Type: application/json" -d '{"channel":"app"}'
  Handler log: $STATE_DIR/handler.log      Ctrl-C stops everything.

INFO
wait "$(cat "$STATE_DIR/handler.pid")"
