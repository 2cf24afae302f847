#!/usr/bin/env bash
# Runs every test against real emulators: installs them (npm ci), starts Cosmos DB emulator and Azurite
# on free loopback ports, runs `dotnet test`, and stops everything it started (by PID), pass or fail.
# Usage: bash scripts/test.sh [extra dotnet test arguments]
source "$(dirname "$0")/lib.sh"
trap stop_started EXIT INT TERM

ensure_node_modules
export_settings "$ROOT/local.settings.sample.json"

COSMOS_PORT=$(free_port)
start_cosmos "$COSMOS_PORT"
start_azurite "$(free_port)" "$(free_port)" "$(free_port)"

export Cosmos__Endpoint="http://127.0.0.1:$COSMOS_PORT/"
export Cosmos__Database="marketing-tests"

log "Building and running tests..."
cd "$ROOT"
dotnet test Serverless.sln --nologo "$@"
