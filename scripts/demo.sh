#!/usr/bin/env bash
# Drives docs/getting-started.md end to end against the local run, with curl and node only (no jq):
# campaign → claim → quote/lock/confirm → refund → commission rules → promoter → referral visit → an order event
# (paid after both) → release (the ReleaseCommissions timer, run now) → payout batch.
# Start the platform first, in another terminal: bash scripts/run-local.sh (it makes the holding period 0 days
# locally, so the release below makes the commission available at once; with a longer one it stays pending).
# Usage: bash scripts/demo.sh    Port: FUNCTIONS_CUSTOMHANDLER_PORT if set, else 7071.
# Every id is new per run (a suffix), so the demo can run again on the same local run. Exit code 1 if a step did not
# answer what the walk-through says; the last line printed is the promoter's line of the payout batch.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PORT=${FUNCTIONS_CUSTOMHANDLER_PORT:-7071}
HOST="http://127.0.0.1:$PORT"
API="$HOST/api"
OUT=$(mktemp)
trap 'rm -f "$OUT"' EXIT

if ! curl --silent --fail "$API/health" >/dev/null; then
  echo "The platform is not running on 127.0.0.1:$PORT: start it with bash scripts/run-local.sh" >&2
  exit 2
fi

# json EXPR: evaluates a JavaScript expression over the JSON on stdin (as `j`) and prints it.
json() { node -e 'const text = require("fs").readFileSync(0, "utf8"); if (!text) process.exit(1); const j = JSON.parse(text); const v = eval(process.argv[1]);
  console.log(typeof v === "string" ? v : JSON.stringify(v));' "$1"; }
# call EXPECTED METHOD PATH TOKEN [BODY] [HEADER...]: one request; prints what it answered, fails on another status.
call() {
  local expected=$1 method=$2 path=$3 token=$4 body=${5:-} status
  local args=(--silent --show-error -o "$OUT" -w '%{http_code}' -X "$method" "$HOST$path" -H "Authorization: Bearer $token")
  [ -n "$body" ] && args+=(-H "Content-Type: application/json" --data "$body")
  for header in "${@:6}"; do args+=(-H "$header"); done
  status=$(curl "${args[@]}")
  echo "  $method $path → $status" >&2
  if [ "$status" != "$expected" ]; then
    echo "  expected $expected, got: $(cat "$OUT")" >&2
    exit 1
  fi
  cat "$OUT"
}
token() { node "$ROOT/scripts/token.mjs" --sub "$1" --role "$2"; }
now() { node -e 'console.log(new Date(Date.now() + Number(process.argv[1] || 0) * 60000).toISOString())' -- "${1:-0}"; }

RUN=$(node -e 'console.log(require("crypto").randomBytes(4).toString("hex"))')
BUYER="buyer-$RUN" PROMOTER_ID="promoter-$RUN" ORDER="o-demo-$RUN"
OPERATOR=$(token olivia operator)
APPROVER=$(token avery approver)
ORDERS=$(token order-service order_system)
BUYER_TOKEN=$(token "$BUYER" customer)
PROMOTER=$(token "$PROMOTER_ID" customer)

echo "1. An operator creates a campaign (draft) and submits it; an approver (someone else) approves it; the operator publishes it:" >&2
CAMPAIGN=$(call 201 POST /api/campaigns "$OPERATOR" "{\"name\":\"Demo $RUN: spend 100 save 20\",\"kind\":\"amount_off\",
  \"amountOff\":2000,\"minimumSpend\":10000,\"currency\":\"CNY\",\"categories\":[],\"newCustomersOnly\":false,
  \"channels\":[\"app\"],\"claimStartsAt\":\"$(now -1)\",\"claimEndsAt\":\"$(now 1440)\",
  \"validity\":{\"type\":\"relative\",\"days\":7},\"totalQuantity\":100,\"perCustomerLimit\":1,
  \"timeZone\":\"Asia/Shanghai\",\"budget\":100000,\"returnOnRefund\":true}" | json j.id)
call 200 POST "/api/campaigns/$CAMPAIGN/submit" "$OPERATOR" | json 'j.status' >&2
call 200 POST "/api/campaigns/$CAMPAIGN/approve" "$APPROVER" | json 'j.status' >&2
call 200 POST "/api/campaigns/$CAMPAIGN/publish" "$OPERATOR" | json 'j.status' >&2

echo "2. A customer claims a coupon (the Idempotency-Key makes a retry safe):" >&2
COUPON=$(call 201 POST "/api/campaigns/$CAMPAIGN/claims" "$BUYER_TOKEN" '{"channel":"app"}' "Idempotency-Key: claim-$RUN" | json j.id)
echo "  coupon $COUPON" >&2

LINES='[{"sku":"bk-1","category":"books","unitPrice":12000,"quantity":1}]'
echo "3. The order system quotes the cart, locks the coupon on an order, and confirms it (paid):" >&2
call 200 POST /api/redemptions/quote "$ORDERS" "{\"customerId\":\"$BUYER\",\"channel\":\"app\",\"currency\":\"CNY\",\"lines\":$LINES}" \
  | json '"best: " + JSON.stringify(j.best)' >&2
call 201 POST /api/redemptions "$ORDERS" "{\"orderId\":\"$ORDER\",\"customerId\":\"$BUYER\",\"couponId\":\"$COUPON\",
  \"order\":{\"channel\":\"app\",\"currency\":\"CNY\",\"lines\":$LINES}}" | json '"locked, discount " + j.discount' >&2
call 200 POST "/api/redemptions/$ORDER/confirm" "$ORDERS" | json '"state " + j.state' >&2

echo "4. The order is refunded: the budget gets the discount back, and the coupon returns (returnOnRefund):" >&2
call 200 POST "/api/redemptions/$ORDER/refund" "$ORDERS" '{"reason":"demo refund"}' \
  | json '"state " + j.state + ", coupon returned: " + j.couponReturned' >&2
call 200 GET "/api/campaigns/$CAMPAIGN/budget" "$OPERATOR" | json '"budget left " + j.left + " of " + j.total' >&2

echo "5. Commission rules (10 % level 1, 2 % level 2), in force from now:" >&2
call 200 PUT /api/commission-rules "$OPERATOR" '{"level1":{"defaultBps":1000},"level2":{"defaultBps":200}}' >/dev/null

echo "6. A customer registers as a promoter and gets a referral code:" >&2
CODE=$(call 201 POST /api/promoters "$PROMOTER" | json j.code)
echo "  code $CODE" >&2

echo "7. The buyer visits through the code: bound to the promoter from now:" >&2
call 200 POST /api/referrals/visits "$BUYER_TOKEN" "{\"code\":\"$CODE\"}" | json '"binding: " + j.status' >&2

echo "8. The order system's paid event for a new order (after the rules and the visit), delivered as the host would:" >&2
PAYLOAD=$(node -e '
  const [buyer, order, at] = process.argv.slice(1);
  const body = JSON.stringify({ eventId: "ev-" + order, type: "paid", orderId: order, buyerId: buyer, occurredAt: at,
    currency: "CNY", lines: [{ lineId: "l1", category: "books", amount: 12000 }] });
  console.log(JSON.stringify({ Data: { message: body }, Metadata: { MessageId: "m-" + order, DeliveryCount: 1 } }));' \
  "$BUYER" "$ORDER-2" "$(now)")
curl --silent --show-error --fail-with-body -X POST "$HOST/SettleCommission" -H "Content-Type: application/json" \
  --data "$PAYLOAD" | json 'JSON.stringify(j.ReturnValue ?? j)' >&2
echo >&2

echo "9. Release: the ReleaseCommissions timer, run now (held 0 days locally, the entries were written available already;
   with a holding period the run after it ends moves them pending → available):" >&2
FUNCTIONS_CUSTOMHANDLER_PORT=$PORT bash "$ROOT/scripts/timer.sh" ReleaseCommissions | json 'JSON.stringify(j.ReturnValue)' >&2
call 200 GET /api/promoters/me/balance "$PROMOTER" | json '"balance: " + JSON.stringify(j)' >&2

echo "10. A payout batch pays every promoter with at least 1.00 available (CSV):" >&2
call 201 POST /api/payouts "$OPERATOR" "{\"batchId\":\"demo-$RUN\",\"minimum\":100}" >/dev/null
PAID_LINE=$(grep -F ",$PROMOTER_ID," "$OUT") || { echo "  the batch holds no line for $PROMOTER_ID:" >&2; cat "$OUT" >&2; exit 1; }

echo "11. Statistics: the AggregateStats timer, run now, folds everything above; the campaign's figures and the programme's:" >&2
FUNCTIONS_CUSTOMHANDLER_PORT=$PORT bash "$ROOT/scripts/timer.sh" AggregateStats | json 'j.Logs.join(" ")' >&2
call 200 GET "/api/campaigns/$CAMPAIGN/stats" "$OPERATOR" \
  | json '"campaign: claims " + j.totals.claims + ", redemptions " + j.totals.redemptions + ", refunds " + j.totals.refunds + ", discount net " + j.totals.discount + ", as of " + j.asOf' >&2
call 200 GET "/api/stats/distribution" "$OPERATOR" \
  | json '"programme: visits " + j.totals.visits + ", bindings " + j.totals.bindings + ", paid orders " + j.totals.paidOrders + ", commission " + j.totals.commission' >&2

echo "promoter $PROMOTER_ID in batch demo-$RUN:" >&2
echo "$PAID_LINE"
