// Money arrives in minor units (an integer); how many digits a unit has depends on the currency (CNY 2, JPY 0), so
// the formatter asks Intl for the currency's digits instead of assuming 100.
export function money(minor: number, currency: string, locale: string): string {
  const format = new Intl.NumberFormat(locale, { style: 'currency', currency });
  const digits = format.resolvedOptions().maximumFractionDigits ?? 2;
  return format.format(minor / 10 ** digits);
}

export function count(value: number, locale: string): string {
  return new Intl.NumberFormat(locale).format(value);
}

// Instants are shown in a named time zone (the platform's for the overview, a campaign's for its own pages), never
// in the browser's: an operator in another zone must see the dates the campaign runs by.
export function instant(iso: string, timeZone: string, locale: string): string {
  return new Intl.DateTimeFormat(locale, { timeZone, dateStyle: 'medium', timeStyle: 'short' }).format(new Date(iso));
}

export function duration(seconds: number, locale: string): string {
  const units: [Intl.RelativeTimeFormatUnit, number][] = [['day', 86400], ['hour', 3600], ['minute', 60], ['second', 1]];
  const [unit, size] = units.find(([, s]) => seconds >= s) ?? units[units.length - 1];
  return new Intl.NumberFormat(locale, { style: 'unit', unit, unitDisplay: 'long' }).format(Math.floor(seconds / size));
}
