/**
 * Go-style durations ("300ms", "1.5h", "1h30m", "10s"), as podman's flags take them.
 */
import { KilnError } from '../errors';

const UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Milliseconds in `v`; `flag` names the option in the error. A bare number is seconds. */
export function parseDuration(v: string, flag: string): number {
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v) * 1000;
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let total = 0;
  let pos = 0;
  for (let m = re.exec(v); m; m = re.exec(v)) {
    total += Number(m[1]) * UNITS[m[2]];
    pos = re.lastIndex;
  }
  if (v === '' || pos !== v.length) throw new KilnError('E_INVALID_ARGUMENT', `${flag} ${JSON.stringify(v)}: not a duration (examples: 90s, 10m, 1h30m)`);
  return total;
}
