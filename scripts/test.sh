#!/usr/bin/env bash
# Runs every test against real emulators: installs them (npm ci), starts Cosmos DB emulator and Azurite
# on free loopback ports, builds the console (and installs chromium for its browser tests when missing), runs `dotnet test`, and stops everything it started (by PID), pass or fail.
# Usage: bash scripts/test.sh [extra dotnet test arguments]
source "$(dirname "$0")/lib.sh"
trap stop_started EXIT INT TERM

ensure_browser
build_console
start_cosmos_on_free_port
start_azurite "$(free_port)" "$(free_port)" "$(free_port)"
export Cosmos__Database="marketing-tests"

log "Building and running tests..."
cd "$ROOT"
rm -f "$ROOT"/artifacts/test-artifacts/console/budgets*.txt
set +e
dotnet test Serverless.sln --nologo "$@" 2>&1 | tee "$STATE_DIR/dotnet-test.log"
status=${PIPESTATUS[0]}
set -e
# One plain summary line (N passed, N failed) summed over test assemblies, for humans and CI alike.
awk '/^(Passed|Failed)! +- /{ gsub(/,/, ""); for (i = 1; i <= NF; i++) { if ($i == "Failed:") f += $(i+1); if ($i == "Passed:") p += $(i+1) } }
     END { if (p + f > 0) printf "Tests: %d passed, %d failed\n", p, f }' "$STATE_DIR/dotnet-test.log"
# The console's budgets (docs/benchmarks.md), measured by ConsoleBrowserTests in a real browser.
cat "$ROOT"/artifacts/test-artifacts/console/budgets*.txt 2>/dev/null || true
exit "$status"
