# Shared helpers for the run and test scripts. Source it; do not run it.
# Everything it starts is recorded by PID under $STATE_DIR and stopped by stop_started.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
STATE_DIR="${STATE_DIR:-$ROOT/.emulators/run-$$}"
# A script that starts nothing in the background (command.sh, timer.sh) sets NO_RUN_STATE=1: no folder for it.
[ "${NO_RUN_STATE:-0}" = 1 ] || mkdir -p "$STATE_DIR"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# npm ci only when node_modules is missing or older than the lock file.
ensure_node_modules() {
  if [ ! -f "$ROOT/node_modules/.package-lock.json" ] || [ "$ROOT/package-lock.json" -nt "$ROOT/node_modules/.package-lock.json" ]; then
    log "Installing emulators (npm ci)..."
    (cd "$ROOT" && npm ci --no-audit --no-fund --loglevel=error)
  fi
}

# The operator console (console/, docs/console.md): npm ci when its node_modules is missing or older than its lock file,
# then type-check and build into console/dist, which the function app's project copies next to the handler. Skipped when
# dist is newer than every source, so a rerun costs nothing; a build output is never committed.
build_console() {
  local dir="$ROOT/console"
  if [ ! -f "$dir/node_modules/.package-lock.json" ] || [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
    log "Installing the console's packages (npm ci)..."
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
  fi
  if [ -f "$dir/dist/index.html" ] && [ -z "$(find "$dir/src" "$dir/index.html" "$dir/package-lock.json" "$dir/vite.config.ts" \
      "$dir/tsconfig.json" -newer "$dir/dist/index.html" -print -quit)" ]; then
    return 0
  fi
  log "Building the console (tsc + vite build)..."
  (cd "$dir" && node_modules/.bin/tsc -p . && node_modules/.bin/vite build --logLevel warn) >&2
}

# The browser the console's tests drive (Debian's chromium, driven by playwright-core with executablePath: nothing is
# downloaded by Playwright) and a CJK font so Chinese renders in screenshots. Installed with apt-get when missing;
# needs root or password-less sudo. CHROMIUM names another executable to use instead.
ensure_browser() {
  local missing=()
  [ -n "${CHROMIUM:-}" ] || command -v chromium >/dev/null || missing+=(chromium)
  fc-list :lang=zh 2>/dev/null | grep -q . || missing+=(fonts-noto-cjk)
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=()
  [ "$(id -u)" = 0 ] || sudo=(sudo -n)
  log "Installing ${missing[*]} (apt-get)..."
  "${sudo[@]}" apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}" >&2
}

free_port() {
  node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"
}

# wait_for_port NAME PORT SECONDS LOGFILE
wait_for_port() {
  local name=$1 port=$2 seconds=$3 logfile=$4 i
  for ((i = 0; i < seconds * 10; i++)); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  log "$name did not start listening on 127.0.0.1:$port within ${seconds}s; its log:"
  cat "$logfile" >&2 || true
  return 1
}

# start_bg NAME COMMAND... — runs in the background, records the PID.
start_bg() {
  local name=$1; shift
  "$@" >"$STATE_DIR/$name.log" 2>&1 &
  echo $! >"$STATE_DIR/$name.pid"
}

start_cosmos() {
  local port=$1
  start_bg cosmos node "$ROOT/scripts/cosmos-emulator.js" --port "$port"
  wait_for_port "Cosmos DB emulator" "$port" 30 "$STATE_DIR/cosmos.log"
  log "Cosmos DB emulator on http://127.0.0.1:$port/ (pid $(cat "$STATE_DIR/cosmos.pid"))"
}

# The throw-away setup of the test and benchmark scripts: emulators installed, sample settings exported,
# the Cosmos emulator started on a free port and Cosmos__Endpoint pointing at it.
start_cosmos_on_free_port() {
  ensure_node_modules
  export_settings "$ROOT/local.settings.sample.json"
  local port
  port=$(free_port)
  start_cosmos "$port"
  export Cosmos__Endpoint="http://127.0.0.1:$port/"
}

start_azurite() {
  local blob=$1 queue=$2 table=$3
  mkdir -p "$STATE_DIR/azurite"
  start_bg azurite node "$ROOT/node_modules/azurite/dist/src/azurite.js" --silent --skipApiVersionCheck \
    --blobHost 127.0.0.1 --blobPort "$blob" --queueHost 127.0.0.1 --queuePort "$queue" \
    --tableHost 127.0.0.1 --tablePort "$table" --location "$STATE_DIR/azurite"
  wait_for_port "Azurite" "$blob" 30 "$STATE_DIR/azurite.log"
  # The app's blobs (Hosting/Blobs.cs) on this Azurite: its well-known dev account and key (not a secret).
  export Blobs__ConnectionString="DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:$blob/devstoreaccount1;"
  log "Azurite blob on http://127.0.0.1:$blob/devstoreaccount1 (pid $(cat "$STATE_DIR/azurite.pid"))"
  # Campaign media go to the Azurite just started, whatever port it got (docs/media.md).
  export Media__BlobEndpoint="http://127.0.0.1:$blob/devstoreaccount1"
}

# Exports every "Values" entry of a local.settings.json-shaped file as an environment variable.
# Values are passed NUL-separated and exported as data, never evaluated as shell code.
# With --keep-environment a variable already set (even to "") keeps its value: the file fills in the rest.
export_settings() {
  local file=$1 keep=${2:-} pair name
  while IFS= read -r -d '' pair; do
    name=${pair%%=*}
    if [ "$keep" = --keep-environment ] && [ -n "${!name+set}" ]; then continue; fi
    export "$pair"
  done < <(node -e '
    const v = require(require("path").resolve(process.argv[1])).Values || {};
    for (const [k, val] of Object.entries(v))
      if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) process.stdout.write(`${k}=${String(val)}\0`);' "$file")
}

# The local run's settings, as scripts/run-local.sh, scripts/command.sh and scripts/timer.sh all take them:
# local.settings.json if you made one, else local.settings.sample.json; a variable already set in the
# environment wins (as with scripts/token.mjs), so `Cosmos__Database=other bash scripts/...` works.
load_local_settings() {
  local file="$ROOT/local.settings.json"
  [ -f "$file" ] || file="$ROOT/local.settings.sample.json"
  export_settings "$file" --keep-environment
}

# Builds the function app (Release) into a folder that stays after the script exits: artifacts/local/<name>.
# run-local serves from artifacts/local/app; scripts/command.sh runs commands from artifacts/local/command, so a
# rebuild for a command never rewrites the files of a handler that is running.
build_app() {
  local out="$ROOT/artifacts/local/$1"
  build_console
  log "Building the function app into ${out#"$ROOT"/}..."
  dotnet build "$ROOT/functions/Marketing.Functions" -c Release --nologo -v quiet -o "$out" >&2
  APP_DLL="$out/Marketing.Functions.dll"
}

stop_started() {
  local pidfile pid
  for pidfile in "$STATE_DIR"/*.pid; do
    [ -e "$pidfile" ] || continue
    pid=$(cat "$pidfile")
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
  done
  # Emulator data and logs of this run are throw-away; keep them with KEEP_RUN_STATE=1 to debug.
  [ "${KEEP_RUN_STATE:-0}" = 1 ] || rm -rf "$STATE_DIR"
}
