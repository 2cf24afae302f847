#!/usr/bin/env bash
# Produces the deployable function app folder: host.json, one <Function>/function.json per declared
# function (generated from the code), and the handler self-contained for linux-x64 with ReadyToRun.
# Usage: bash scripts/publish.sh [output-dir]   (default: artifacts/publish)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
OUT="${1:-$ROOT/artifacts/publish}"
rm -rf "$OUT"
dotnet publish "$ROOT/functions/Marketing.Functions" -c Release -r linux-x64 --self-contained \
  -p:PublishReadyToRun=true -o "$OUT" --nologo
chmod +x "$OUT/Marketing.Functions"
echo "Published to $OUT"
