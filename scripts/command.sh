#!/usr/bin/env bash
# Runs one of the function app's commands (functions/Marketing.Functions/Hosting/Commands.cs) with the local
# run's settings: local.settings.json if you made one, else local.settings.sample.json, a variable already set
# in the environment winning. Start the emulators first (bash scripts/run-local.sh in another terminal).
# Usage: bash scripts/command.sh provision [--seed-demo] [--console-origin URL] | reconcile-ledger | recount-stats [--campaign ID] [--write] | functions-json DIR
# Exit code: the command's (reconcile-ledger: 0 sound, 1 violations listed; recount-stats: 0 the stored figures match
# the recount, 1 days differ), 2 for missing settings or usage.
# The app is built (Release) into artifacts/local/command, which stays; nothing is started in the background.
NO_RUN_STATE=1 # starts nothing in the background
source "$(dirname "$0")/lib.sh"

if [ $# -eq 0 ]; then
  echo "usage: bash scripts/command.sh provision [--seed-demo] [--console-origin URL] | reconcile-ledger | recount-stats [--campaign ID] [--write] | functions-json DIR" >&2
  exit 2
fi
load_local_settings
build_app command
exec dotnet "$APP_DLL" "$@"
