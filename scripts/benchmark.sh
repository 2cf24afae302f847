#!/usr/bin/env bash
# Claim benchmark on the local emulators (not part of the test suite): starts the Cosmos DB emulator,
# runs tests/Marketing.LoadTest, stops what it started. Extra arguments go to the load tool,
# e.g. bash scripts/benchmark.sh --claims 4000 --concurrency 32
source "$(dirname "$0")/lib.sh"
trap stop_started EXIT INT TERM
start_cosmos_on_free_port
export FUNCTIONS_CUSTOMHANDLER_PORT=$(free_port)
dotnet run -c Release --project "$ROOT/tests/Marketing.LoadTest" -- "$@"
