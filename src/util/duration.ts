/**
 * Go durations ("300ms", "1.5h", "1h30m", "10s"), as Containerfile flags (HEALTHCHECK) and
 * podman's command-line flags take them: one parser, Go's time.ParseDuration.
 */
import { KilnError } from '../errors';

const UNIT_NS: Record<string, bigint> = {
  ns: 1n,
  us: 1000n,
  'µs': 1000n, // U+00B5
  'μs': 1000n, // U+03BC
  ms: 1000000n,
  s: 1000000000n,
  m: 60000000000n,
  h: 3600000000000n,
};

/** Go's time.ParseDuration in nanoseconds ("1m30s", "1.5h", "300ms", "0"); undefined if invalid. */
export function parseGoDuration(s: string): number | undefined {
  let rest = s;
  let neg = false;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    neg = rest.startsWith('-');
    rest = rest.slice(1);
  }
  if (rest === '0') return 0;
  if (rest === '') return undefined;
  let total = 0n;
  const part = /^(\d*)(?:\.(\d*))?(ns|us|µs|μs|ms|s|m|h)/u;
  while (rest !== '') {
    const m = part.exec(rest);
    if (!m || (m[1] === '' && (m[2] ?? '') === '')) return undefined;
    const unit = UNIT_NS[m[3]!]!;
    const frac = m[2] ?? '';
    total += BigInt(m[1] || '0') * unit;
    if (frac !== '') total += (BigInt(frac) * unit) / 10n ** BigInt(frac.length);
    rest = rest.slice(m[0].length);
  }
  if (total > 9223372036854775807n) return undefined;
  return Number(neg ? -total : total);
}

/** Milliseconds in `v` for a flag; a bare number is seconds. `flag` names the option in the error. */
export function parseDuration(v: string, flag: string): number {
  if (/^\d+(\.\d+)?$/.test(v)) return Number(v) * 1000;
  const ns = parseGoDuration(v);
  if (ns === undefined || ns < 0) throw new KilnError('E_INVALID_ARGUMENT', `${flag} ${JSON.stringify(v)}: not a duration (examples: 90s, 10m, 1h30m)`);
  return ns / 1e6;
}
