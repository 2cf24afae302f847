#!/usr/bin/env bash
# Runs a timer function of the local run now. Without the Functions host nothing fires timers on their
# schedule: the host would POST the custom-handler invocation below to /<Function>, so this script does the same
# (a realistic timer value: last run 5 minutes ago, not past due) and prints the handler's answer
# ({"Outputs":..,"Logs":[...],"ReturnValue":..}). Start the platform first: bash scripts/run-local.sh.
# Usage: bash scripts/timer.sh ExpireCoupons | ReleaseCommissions | ReconcileStock | AggregateStats | SendReminders | AuditRepair
# SendReminders answers its queue messages in Outputs.notifications, which the host would send to the notifications
# queue for DeliverNotifications. Locally there is no Service Bus: this script stands in for it and hands each message
# to /DeliverNotifications as the host would deliver it, so the providers' calls reach the local notification sink
# (started by run-local.sh; it prints each call and keeps it in .emulators/notification-sink.jsonl).
# The port is FUNCTIONS_CUSTOMHANDLER_PORT if set, else 7071 (run-local's). Exit code 1 if the run failed.
set -euo pipefail
TIMERS="ExpireCoupons ReleaseCommissions ReconcileStock AggregateStats SendReminders AuditRepair"
name=${1:-}
if [[ " $TIMERS " != *" $name "* ]] || [ -z "$name" ]; then
  echo "usage: bash scripts/timer.sh ${TIMERS// / | }" >&2
  exit 2
fi
port=${FUNCTIONS_CUSTOMHANDLER_PORT:-7071}
payload=$(node -e '
  const now = new Date(), at = (m) => new Date(now.getTime() + m * 60000).toISOString();
  // The host sends the trigger value as a JSON string inside the payload (encoded a second time).
  const timer = JSON.stringify({ Schedule: { AdjustForDST: true },
    ScheduleStatus: { Last: at(-5), Next: at(5), LastUpdated: at(-5) }, IsPastDue: false });
  console.log(JSON.stringify({ Data: { timer }, Metadata: { timer,
    sys: { MethodName: process.argv[1], UtcNow: now.toISOString(), RandGuid: crypto.randomUUID() } } }));' "$name")
# --fail-with-body: a failed run (non-2xx) prints its problem and exits non-zero.
if ! answer=$(curl --silent --show-error --fail-with-body -X POST "http://127.0.0.1:$port/$name" \
  -H "Content-Type: application/json" --data "$payload"); then
  echo "$answer" >&2
  echo "$name failed (is the platform running on 127.0.0.1:$port? bash scripts/run-local.sh)" >&2
  exit 1
fi
echo "$answer"
# The queue's stand-in: each message of Outputs.notifications delivered to DeliverNotifications as the host would.
node -e '
  const [answer, port] = process.argv.slice(1);
  const messages = [].concat((JSON.parse(answer).Outputs || {}).notifications || []);
  (async () => {
    for (const message of messages) {
      const now = new Date().toISOString();
      const body = { Data: { message: JSON.stringify(message) }, Metadata: { MessageId: crypto.randomUUID(), DeliveryCount: 1,
        EnqueuedTimeUtc: now, sys: { MethodName: "DeliverNotifications", UtcNow: now } } };
      const res = await fetch(`http://127.0.0.1:${port}/DeliverNotifications`, { method: "POST",
        headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
      const text = await res.text();
      let outcome = text;
      try { outcome = JSON.parse(text).ReturnValue.Outcome; } catch {}
      console.log(`delivered ${message.channel} message ${message.recordId}: ${res.status} ${outcome}`);
    }
  })().catch(e => { console.error(e.message); process.exit(1); });' "$answer" "$port"
