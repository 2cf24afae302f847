#!/usr/bin/env bash
# Produces the deployable function app: a folder with host.json, one <Function>/function.json per
# declared function (generated from the code at publish), and the handler published self-contained for
# linux-x64 with ReadyToRun; plus the same folder as a zip with the executable bit preserved.
# Usage: bash scripts/publish.sh [output-dir]   (default: artifacts/publish, zip: <output-dir>.zip)
# Called by the README, by azd (prepackage hook), by the tests and by scripts/coldstart.sh (which publishes its
# bare yardstick with the same flags: change both together).
NO_RUN_STATE=1 source "$(dirname "$0")/lib.sh"
OUT="$(realpath -m "${1:-$ROOT/artifacts/publish}")"
rm -rf "$OUT" "$OUT.zip"
# The operator console is part of the deployable: built first, copied in as console/ by the project.
build_console
dotnet publish "$ROOT/functions/Marketing.Functions" -c Release -r linux-x64 --self-contained \
  -p:PublishReadyToRun=true -o "$OUT" --nologo -v quiet
chmod +x "$OUT/Marketing.Functions"
# Nothing local belongs in a deployment.
rm -f "$OUT/local.settings.json" "$OUT/appsettings.Development.json"
dotnet run "$ROOT/scripts/zip.cs" -- "$OUT" "$OUT.zip"
echo "Published to $OUT and $OUT.zip"
