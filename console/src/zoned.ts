// What the create/edit form converts between what an operator types and what the API takes: local date and time in a
// named zone ↔ instants, and money in major units ↔ minor units.

// The wall-clock reading of an instant in a zone, as if that reading were UTC (milliseconds).
function wallClock(ms: number, zone: string): number {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-US', {
      timeZone: zone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit',
    }).formatToParts(new Date(ms)).map((p) => [p.type, p.value]),
  );
  return Date.UTC(+parts.year, +parts.month - 1, +parts.day, +parts.hour, +parts.minute, +parts.second);
}

// The zone's offset from UTC at an instant, in milliseconds (east positive).
function offsetAt(ms: number, zone: string): number {
  return wallClock(Math.floor(ms / 1000) * 1000, zone) - Math.floor(ms / 1000) * 1000;
}

export function isZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

// "2027-03-28T02:30" (an <input type=datetime-local> value) in `zone` → the instant it names, as ISO 8601 UTC.
//
// A local time names an instant only through the zone's offset at that instant, which daylight saving changes, so the
// offset cannot be taken from "now" or from the browser's zone. The candidates are the offsets in force a day before
// and a day after (no zone changes its offset twice within two days); a candidate offset o is right when the instant
// `wall − o` really has offset o. Then:
// - one candidate: the usual case;
// - none: the time falls in the hour the clocks skip in spring (e.g. 02:30 on the last Sunday of March in
//   Europe/Berlin) and names no instant: 'skipped', and the form asks for another time rather than guessing;
// - two: the time happens twice in autumn (clocks go back); the earlier instant is taken (the first time the wall clock
//   shows it), so a claim window starts no later than the operator could mean.
export function localToInstant(local: string, zone: string): string | 'skipped' | null {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?$/.exec(local);
  if (!m || !isZone(zone)) return null;
  const wall = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +(m[6] ?? 0));
  const day = 86_400_000;
  const offsets = [...new Set([offsetAt(wall - day, zone), offsetAt(wall + day, zone)])];
  const instants = offsets.map((o) => wall - o).filter((t) => offsetAt(t, zone) === wall - t).sort((a, b) => a - b);
  if (instants.length === 0) return 'skipped';
  return new Date(instants[0]).toISOString();
}

// An instant → the value an <input type=datetime-local> shows for it in `zone` ("2027-03-28T03:30"), to the minute.
export function instantToLocal(iso: string, zone: string): string {
  const wall = new Date(wallClock(new Date(iso).getTime(), isZone(zone) ? zone : 'UTC'));
  return wall.toISOString().slice(0, 16);
}

// How many digits the currency's minor unit has (CNY 2, JPY 0), from Intl; 2 for a code Intl does not know (the API
// then names the currency as the problem).
export function currencyDigits(currency: string): number {
  try {
    return new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions().maximumFractionDigits ?? 2;
  } catch {
    return 2;
  }
}

// "12.5" in a currency of 2 digits → 1250 minor units; null when it is not a plain amount with at most that many
// decimals. Worked on the digits, not by multiplying a float (0.29 * 100 is 28.999999999999996).
export function majorToMinor(text: string, digits: number): number | null {
  const m = /^(\d+)(?:\.(\d*))?$/.exec(text.trim().replace(/,/g, ''));
  if (!m || (m[2]?.length ?? 0) > digits) return null;
  const minor = Number(m[1] + (m[2] ?? '').padEnd(digits, '0'));
  return Number.isSafeInteger(minor) ? minor : null;
}

// 1250 minor units, 2 digits → "12.50" (what the input shows when a campaign is edited).
export function minorToMajor(minor: number, digits: number): string {
  if (digits === 0) return String(minor);
  const text = String(Math.abs(minor)).padStart(digits + 1, '0');
  return `${minor < 0 ? '-' : ''}${text.slice(0, -digits)}.${text.slice(-digits)}`;
}
