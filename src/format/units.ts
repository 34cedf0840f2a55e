/**
 * Go-exact formatting primitives behind kiln's podman-compatible output.
 *
 * Contract: each function prints what the Go routine it names prints for the same value, within
 * JavaScript's value model: a number is a Go `int` when `Number.isInteger`, otherwise a
 * `float64`; null/undefined is a nil interface; an array is `[]interface {}`; an object is
 * either a Go map or a struct (see `isGoMap`); a Date is a `time.Time` in UTC.
 *  - sizes and durations: docker/go-units (`HumanSizeWithPrecision`, `HumanDuration`) and the
 *    podman `images`/`history` SIZE and CREATED columns built on them;
 *  - times: `time.Time.String()` and `time.RFC3339Nano`;
 *  - numbers: `strconv.FormatFloat` ('e', 'f', 'g'; exact decimal, round-half-even);
 *  - values: `fmt` (%v printing, Sprint, Sprintf verbs) and `encoding/json` (Marshal/Indent).
 */
import { KilnError } from '../errors';

// ---------------------------------------------------------------- Go value model

const mapMarks = new WeakSet<object>();
const structMarks = new WeakSet<object>();

/** Marks `o` as a Go map: missing keys read as `<no value>`, printed `map[k:v]`, JSON keys sorted. */
export function goMap<T extends object>(o: T): T { mapMarks.add(o); structMarks.delete(o); return o; }
/** Marks `o` as a Go struct: missing fields are template errors, printed `{v1 v2}`, JSON in key order. */
export function goStruct<T extends object>(o: T): T { structMarks.add(o); mapMarks.delete(o); return o; }

/**
 * Whether an object stands for a Go map rather than a struct. `Map`s and objects marked with
 * `goMap` are maps; class instances and objects marked with `goStruct` are structs; a plain
 * object is a struct when it has keys and every key starts with an ASCII capital (Go's exported
 * field names, e.g. `{ID, Size}`), otherwise a map (`{}` and labels like `{"org.foo": "x"}`).
 */
export function isGoMap(o: object): boolean {
  if (o instanceof Map || mapMarks.has(o)) return true;
  if (structMarks.has(o) || Array.isArray(o) || o instanceof Date) return false;
  const proto = Object.getPrototypeOf(o);
  if (proto !== Object.prototype && proto !== null) return false;
  const keys = Object.keys(o);
  for (const k of keys) { const c = k.charCodeAt(0); if (c < 65 || c > 90) return true; }
  return keys.length === 0;
}

/** Go's name for the type of `v`, as fmt's `%T` and template errors print it. */
export function goTypeName(v: unknown): string {
  if (v === null || v === undefined) return '<nil>';
  switch (typeof v) {
    case 'string': return 'string';
    case 'number': return Number.isInteger(v) ? 'int' : 'float64';
    case 'bigint': return 'int64';
    case 'boolean': return 'bool';
    case 'function': return 'func';
    default:
  }
  if (Array.isArray(v)) return '[]interface {}';
  if (v instanceof Date) return 'time.Time';
  if (isGoMap(v as object)) return 'map[string]interface {}';
  const c = (v as { constructor?: { name?: string } }).constructor?.name;
  return c && c !== 'Object' ? c : 'struct';
}

/** Entries of a map-like value with keys in Go's fmt/json order (numbers numerically, else by string). */
export function sortedEntries(o: object): [unknown, unknown][] {
  const e: [unknown, unknown][] = o instanceof Map ? [...o.entries()] : Object.entries(o);
  return e.sort(([a], [b]) => (typeof a === 'number' && typeof b === 'number' ? a - b : String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0));
}

// ---------------------------------------------------------------- strconv.FormatFloat

interface Digits { d: string; dp: number } // value = 0.d × 10^dp, d without leading/trailing zeros

function exactDigits(x: number): Digits {
  if (x === 0) return { d: '', dp: 0 };
  const dv = new DataView(new ArrayBuffer(8));
  dv.setFloat64(0, x);
  const hi = dv.getUint32(0), bexp = (hi >>> 20) & 0x7ff;
  let mant = (BigInt(hi & 0xfffff) << 32n) | BigInt(dv.getUint32(4));
  let e = -1074;
  if (bexp !== 0) { mant |= 1n << 52n; e = bexp - 1075; }
  const s = e >= 0 ? (mant << BigInt(e)).toString() : (mant * 5n ** BigInt(-e)).toString();
  const dp = e >= 0 ? s.length : s.length + e;
  return { d: s.replace(/0+$/, ''), dp };
}

function shortestDigits(x: number): Digits {
  if (x === 0) return { d: '', dp: 0 };
  const [m, ex] = x.toExponential().split('e');
  return { d: m.replace('.', '').replace(/0+$/, ''), dp: Number(ex) + 1 };
}

/** Rounds to `nd` significant digits, half to even on exact ties (Go's decimal.Round). */
function roundDigits(g: Digits, nd: number): Digits {
  if (nd < 0) return { d: '', dp: 0 };
  if (g.d.length <= nd) return g;
  const c = g.d.charCodeAt(nd) - 48;
  const up = c > 5 || (c === 5 && (g.d.length > nd + 1 || (nd > 0 && (g.d.charCodeAt(nd - 1) - 48) % 2 === 1)));
  let head = g.d.slice(0, nd);
  if (!up) return { d: head.replace(/0+$/, ''), dp: head ? g.dp : 0 };
  let i = nd - 1;
  while (i >= 0 && head[i] === '9') i--;
  if (i < 0) return { d: '1', dp: g.dp + 1 };
  head = head.slice(0, i) + String.fromCharCode(head.charCodeAt(i) + 1);
  return { d: head, dp: g.dp };
}

function fmtE(g: Digits, prec: number, e: string): string {
  let s = g.d[0] ?? '0';
  if (prec > 0) s += '.' + g.d.slice(1, prec + 1).padEnd(prec, '0');
  const exp = g.d.length === 0 ? 0 : g.dp - 1;
  return `${s}${e}${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
}

function fmtF(g: Digits, prec: number): string {
  let s = g.dp > 0 ? g.d.slice(0, g.dp).padEnd(g.dp, '0') : '0';
  if (prec > 0) {
    s += '.';
    for (let i = 1; i <= prec; i++) { const j = g.dp + i - 1; s += j >= 0 && j < g.d.length ? g.d[j] : '0'; }
  }
  return s;
}

/** Go's `strconv.FormatFloat(x, fmt, prec, 64)`; prec < 0 means the shortest exact representation. */
export function goFormatFloat(x: number, fmt: 'e' | 'E' | 'f' | 'g' | 'G', prec: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (!Number.isFinite(x)) return x > 0 ? '+Inf' : '-Inf';
  const neg = x < 0 || Object.is(x, -0) ? '-' : '';
  const abs = Math.abs(x), shortest = prec < 0, f = fmt.toLowerCase();
  let g: Digits;
  if (shortest) {
    g = shortestDigits(abs);
    prec = f === 'e' ? Math.max(g.d.length - 1, 0) : f === 'f' ? Math.max(g.d.length - g.dp, 0) : g.d.length;
  } else {
    if (f === 'g' && prec === 0) prec = 1;
    const ex = exactDigits(abs);
    g = roundDigits(ex, f === 'e' ? prec + 1 : f === 'f' ? ex.dp + prec : prec);
  }
  if (f === 'e') return neg + fmtE(g, prec, fmt);
  if (f === 'f') return neg + fmtF(g, prec);
  let eprec = prec;
  if (eprec > g.d.length && g.d.length >= g.dp) eprec = g.d.length;
  if (shortest) eprec = 6;
  const exp = g.dp - 1;
  if (g.d.length > 0 && (exp < -4 || exp >= eprec)) return neg + fmtE(g, Math.min(prec, g.d.length) - 1, fmt === 'G' ? 'E' : 'e');
  return neg + fmtF(g, Math.max((prec > g.dp ? g.d.length : prec) - g.dp, 0));
}

// ---------------------------------------------------------------- go-units sizes and durations

const SI = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB', 'ZB', 'YB'];

/** go-units `HumanSizeWithPrecision(size, precision)` (default 4 = `HumanSize`): "1.024kB", "1e+04YB". */
export function goUnitsHumanSize(size: number, precision = 4): string {
  let i = 0;
  while (size >= 1000 && i < SI.length - 1) { size /= 1000; i++; }
  return goFormatFloat(size, 'g', precision) + SI[i];
}

/**
 * podman's SIZE column (`images`, `history`): go-units with 3 significant digits and a space
 * before the unit, e.g. "123 B", "5.6 kB", "1.23 MB", "1e+03 kB" (sic, for 999.5 kB).
 */
export function humanSize(bytes: number, precision = 3): string {
  const key = `${bytes}/${precision}`;
  const hit = sizeCache.get(key);
  if (hit !== undefined) return hit;
  const s = goUnitsHumanSize(bytes, precision);
  let j = s.length - 1;
  while (j >= 0 && (s[j] < '0' || s[j] > '9')) j--;
  const out = `${s.slice(0, j + 1)} ${s.slice(j + 1)}`;
  sizeCache.set(key, out);
  return out;
}

/** Listings repeat sizes (images sharing layers) and exact formatting is not cheap. */
const sizeCache = new Map<string, string>();

/** go-units `HumanDuration` for a span in milliseconds: "Less than a second" … "3 years". */
export function humanDuration(ms: number): string {
  if (!Number.isFinite(ms)) ms = 0;
  const seconds = Math.trunc(ms / 1000);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.trunc(ms / 60000);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.trunc(ms / 3600000 + 0.5);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.trunc(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.trunc(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.trunc(hours / 24 / 30)} months`;
  return `${Math.trunc(Math.trunc(ms / 3600000) / 24 / 365)} years`;
}

type TimeLike = Date | number | string;
function toDate(t: TimeLike): Date {
  const d = t instanceof Date ? t : new Date(t);
  if (Number.isNaN(d.getTime())) throw new KilnError('E_INVALID_ARGUMENT', `invalid time value: ${String(t)}`, { hint: 'pass a Date, epoch milliseconds or an RFC 3339 string' });
  return d;
}

/** podman's CREATED column: `HumanDuration(now - t) + " ago"`. */
export function timeAgo(t: TimeLike, now: TimeLike = Date.now()): string {
  return `${humanDuration(toDate(now).getTime() - toDate(t).getTime())} ago`;
}

// ---------------------------------------------------------------- Go time strings (UTC)

function ymdhms(d: Date, sep: string): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${p(d.getUTCFullYear(), 4)}-${p(d.getUTCMonth() + 1)}-${p(d.getUTCDate())}${sep}${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}`;
}
function fraction(d: Date, nanos?: number): string {
  const n = nanos ?? d.getUTCMilliseconds() * 1e6;
  return n > 0 ? `.${String(Math.trunc(n)).padStart(9, '0').replace(/0+$/, '')}` : '';
}

/**
 * Go's `time.Time.String()` in UTC: "2024-01-02 15:04:05.123456789 +0000 UTC" (fraction with
 * trailing zeros removed, omitted when zero). `nanos` (0..999999999) replaces the
 * sub-second part, which a Date only holds to the millisecond.
 */
export function goTimeString(t: TimeLike, nanos?: number): string {
  const d = toDate(t);
  return `${ymdhms(d, ' ')}${fraction(d, nanos)} +0000 UTC`;
}

/** Go's `time.RFC3339Nano` in UTC: "2024-01-02T15:04:05.1234Z" (trailing zeros removed). */
export function rfc3339Nano(t: TimeLike, nanos?: number): string {
  const d = toDate(t);
  return `${ymdhms(d, 'T')}${fraction(d, nanos)}Z`;
}

/** Parses RFC 3339 (as in OCI `created`) keeping all nine fraction digits: {date, nanos}. */
export function parseRfc3339(s: string): { date: Date; nanos: number } {
  const m = /^(\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d)(?:\.(\d{1,9})\d*)?([Zz]|[+-]\d\d:\d\d)$/.exec(s);
  const date = m ? new Date(`${m[1].replace(/[t ]/, 'T')}${m[3].toUpperCase()}`) : new Date(NaN);
  if (!m || Number.isNaN(date.getTime())) throw new KilnError('E_INVALID_ARGUMENT', `invalid RFC 3339 time: ${JSON.stringify(s)}`, { hint: 'expected e.g. 2024-01-02T15:04:05.123456789Z' });
  const nanos = m[2] ? Number(m[2].padEnd(9, '0')) : 0;
  date.setTime(date.getTime() + Math.floor(nanos / 1e6));
  return { date, nanos };
}

// ---------------------------------------------------------------- fmt

/** A parsed fmt verb: flags, width and precision (-1 when absent). */
export interface FmtSpec { minus: boolean; plus: boolean; sharp: boolean; space: boolean; zero: boolean; width: number; prec: number }
const PLAIN: FmtSpec = { minus: false, plus: false, sharp: false, space: false, zero: false, width: -1, prec: -1 };

function runeLen(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) { const c = s.charCodeAt(i); if (c < 0xd800 || c > 0xdbff) n++; }
  return n;
}
function pad(s: string, sp: FmtSpec): string {
  const n = sp.width - runeLen(s);
  if (n <= 0) return s;
  return sp.minus ? s + ' '.repeat(n) : ' '.repeat(n) + s;
}

const IS_PRINT = /[\p{L}\p{M}\p{N}\p{P}\p{S} ]/u;
const ESC: Record<string, string> = { '\x07': '\\a', '\b': '\\b', '\f': '\\f', '\n': '\\n', '\r': '\\r', '\t': '\\t', '\v': '\\v' };
function quoteRune(ch: string, q: string): string {
  if (ch === q || ch === '\\') return `\\${ch}`;
  if (IS_PRINT.test(ch)) return ch;
  if (ESC[ch]) return ESC[ch];
  const c = ch.codePointAt(0)!;
  const hex = c.toString(16);
  return c < 0x20 || c === 0x7f ? `\\x${hex.padStart(2, '0')}` : c < 0x10000 ? `\\u${hex.padStart(4, '0')}` : `\\U${hex.padStart(8, '0')}`;
}
/** Go's `strconv.Quote`. */
export function goQuote(s: string): string {
  let out = '"';
  for (const ch of s) out += quoteRune(ch, '"');
  return `${out}"`;
}

function fmtInt(n: number | bigint, verb: string, sp: FmtSpec): string {
  const neg = n < 0;
  const base = verb === 'b' ? 2 : verb === 'o' || verb === 'O' ? 8 : verb === 'x' || verb === 'X' ? 16 : 10;
  let digits = (neg ? -BigInt(n) : BigInt(n)).toString(base);
  if (verb === 'X') digits = digits.toUpperCase();
  if (sp.prec >= 0) digits = sp.prec === 0 && BigInt(n) === 0n ? '' : digits.padStart(sp.prec, '0');
  let prefix = verb === 'O' ? '0o' : '';
  if (sp.sharp) prefix = base === 16 ? (verb === 'X' ? '0X' : '0x') : base === 2 ? '0b' : base === 8 && digits[0] !== '0' ? '0' : prefix;
  const sign = neg ? '-' : sp.plus ? '+' : sp.space ? ' ' : '';
  if (sp.zero && !sp.minus && sp.prec < 0 && sp.width > 0) digits = digits.padStart(sp.width - sign.length, '0');
  return pad(sign + prefix + digits, sp);
}

function fmtFloat(x: number, verb: string, sp: FmtSpec): string {
  const v = verb === 'v' ? 'g' : verb === 'F' ? 'f' : verb;
  const prec = sp.prec >= 0 ? sp.prec : 'eEf'.includes(v) ? 6 : -1;
  let num = goFormatFloat(x, v as 'e' | 'E' | 'f' | 'g' | 'G', prec);
  if (num[0] !== '-' && num[0] !== '+') num = `+${num}`;
  if (sp.space && num[0] === '+' && !sp.plus) num = ` ${num.slice(1)}`;
  if (num[1] === 'I' || num[1] === 'N') return pad(num[1] === 'N' && !sp.space && !sp.plus ? num.slice(1) : num, sp);
  if (sp.plus || num[0] !== '+') {
    if (sp.zero && !sp.minus && sp.width > num.length) return num[0] + '0'.repeat(sp.width - num.length) + num.slice(1);
    return pad(num, sp);
  }
  return sp.zero && !sp.minus && sp.width > num.length - 1 ? num.slice(1).padStart(sp.width, '0') : pad(num.slice(1), sp);
}

function badVerb(verb: string, v: unknown): string {
  return v === null || v === undefined ? `%!${verb}(<nil>)` : `%!${verb}(${goTypeName(v)}=${goSprint([v])})`;
}

/** Formats one operand for a verb the way Go's fmt does, recursing into slices, maps and structs. */
export function fmtArg(v: unknown, verb: string, sp: FmtSpec = PLAIN, nested = false): string {
  if (verb === 'T') return pad(goTypeName(v), sp);
  if (v === null || v === undefined) return nested || verb === 'v' ? pad('<nil>', sp) : badVerb(verb, v);
  if (v instanceof Date) v = goTimeString(v);
  switch (typeof v) {
    case 'string':
      if (verb === 'v' || verb === 's') return pad(sp.prec >= 0 ? [...v].slice(0, sp.prec).join('') : v, sp);
      if (verb === 'q') return pad(goQuote(v), sp);
      if (verb === 'x' || verb === 'X') { const h = Buffer.from(v).toString('hex'); return pad(verb === 'X' ? h.toUpperCase() : h, sp); }
      return badVerb(verb, v);
    case 'boolean':
      return verb === 'v' || verb === 't' ? pad(String(v), sp) : badVerb(verb, v);
    case 'bigint':
    case 'number':
      if (typeof v === 'bigint' || Number.isInteger(v)) {
        if ('vdboOxX'.includes(verb)) return fmtInt(v, verb === 'v' ? 'd' : verb, sp);
        if (verb === 'c') return pad(String.fromCodePoint(Number(v)), sp);
        if (verb === 'q') return pad(`'${quoteRune(String.fromCodePoint(Number(v)), "'")}'`, sp);
        if (verb === 'U') return pad(`U+${Number(v).toString(16).toUpperCase().padStart(4, '0')}`, sp);
      }
      return 'veEfFgG'.includes(verb) ? fmtFloat(Number(v), verb, sp) : badVerb(verb, v);
    case 'function':
      return pad('<func>', sp);
    default:
  }
  if (Array.isArray(v)) return `[${v.map((e) => fmtArg(e, verb, sp, true)).join(' ')}]`;
  const o = v as object;
  if (isGoMap(o)) return `map[${sortedEntries(o).map(([k, e]) => `${fmtArg(k, verb, sp, true)}:${fmtArg(e, verb, sp, true)}`).join(' ')}]`;
  return `{${Object.entries(o).filter(([, e]) => typeof e !== 'function').map(([k, e]) => (sp.plus ? `${k}:` : '') + fmtArg(e, verb, sp, true)).join(' ')}}`;
}

/** Go's `fmt.Sprint`: %v of each operand, a space between operands when neither is a string. */
export function goSprint(args: unknown[]): string {
  let out = '';
  for (let i = 0; i < args.length; i++) {
    if (i > 0 && typeof args[i] !== 'string' && typeof args[i - 1] !== 'string') out += ' ';
    out += fmtArg(args[i], 'v');
  }
  return out;
}

/** Go's `fmt.Sprintln`: operands separated by spaces, then a newline. */
export function goSprintln(args: unknown[]): string {
  return `${args.map((a) => fmtArg(a, 'v')).join(' ')}\n`;
}

/** Go's `fmt.Sprintf`: flags `-+# 0`, width/precision (digits or `*`), verbs v s q d b o O x X c U e E f F g G t T %. */
export function goSprintf(format: string, args: unknown[]): string {
  let out = '', argi = 0, i = 0;
  const n = format.length;
  while (i < n) {
    const j = format.indexOf('%', i);
    if (j < 0) { out += format.slice(i); break; }
    out += format.slice(i, j);
    i = j + 1;
    const sp: FmtSpec = { ...PLAIN };
    for (; i < n; i++) {
      const c = format[i];
      if (c === '-') sp.minus = true; else if (c === '+') sp.plus = true; else if (c === '#') sp.sharp = true;
      else if (c === ' ') sp.space = true; else if (c === '0') sp.zero = true; else break;
    }
    const num = (): number => { let v = -1; while (i < n && format[i] >= '0' && format[i] <= '9') v = (v < 0 ? 0 : v * 10) + format.charCodeAt(i++) - 48; return v; };
    let bad = '';
    if (format[i] === '*') {
      i++;
      const a = args[argi++];
      if (typeof a === 'number' && Number.isInteger(a)) { sp.width = Math.abs(a); if (a < 0) sp.minus = true; } else bad = '%!(BADWIDTH)';
    } else sp.width = num();
    if (format[i] === '.') {
      i++;
      if (format[i] === '*') {
        i++;
        const a = args[argi++];
        if (typeof a === 'number' && Number.isInteger(a) && a >= 0) sp.prec = a; else bad += '%!(BADPREC)';
      } else sp.prec = Math.max(num(), 0);
    }
    out += bad;
    if (i >= n) { out += '%!(NOVERB)'; break; }
    const verb = String.fromCodePoint(format.codePointAt(i)!);
    i += verb.length;
    if (verb === '%') { out += '%'; continue; }
    if (argi >= args.length) { out += `%!${verb}(MISSING)`; continue; }
    out += fmtArg(args[argi++], verb, sp);
  }
  if (argi < args.length) out += `%!(EXTRA ${args.slice(argi).map((a) => (a === null || a === undefined ? '<nil>' : `${goTypeName(a)}=${fmtArg(a, 'v')}`)).join(', ')})`;
  return out;
}

// ---------------------------------------------------------------- encoding/json

// eslint-disable-next-line no-control-regex
const JSON_ESC = /["\\\u0000-\u001f\u2028\u2029<>&\ud800-\udfff]/;
function jsonString(s: string, html: boolean): string {
  if (!JSON_ESC.test(s)) return `"${s}"`;
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const ch = s[i], c = s.charCodeAt(i);
    if (ch === '"' || ch === '\\') out += `\\${ch}`;
    else if (c < 0x20) out += ESC[ch] && ch !== '\x07' && ch !== '\v' ? ESC[ch] : `\\u00${c.toString(16).padStart(2, '0')}`;
    else if (c === 0x2028 || c === 0x2029 || (html && (ch === '<' || ch === '>' || ch === '&'))) out += `\\u${c.toString(16).padStart(4, '0')}`;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && s.charCodeAt(i + 1) >= 0xdc00 && s.charCodeAt(i + 1) <= 0xdfff) out += s[i] + s[++i];
    else if (c >= 0xd800 && c <= 0xdfff) out += '\\ufffd';
    else out += ch;
  }
  return `${out}"`;
}

/**
 * Go's `json.Marshal` (compact) or `json.MarshalIndent(v, "", indent)`. `escapeHTML` (default
 * true, as Marshal) writes `<>&` as \u003c \u003e \u0026; U+2028/9 are always escaped. Go maps
 * (see `isGoMap`) have sorted keys, structs keep key order; undefined and function members are
 * omitted; Dates are RFC3339Nano strings; Uint8Arrays are base64 (Go's []byte).
 */
export function goJson(v: unknown, opts: { indent?: string; escapeHTML?: boolean } = {}): string {
  const html = opts.escapeHTML ?? true, ind = opts.indent ?? '';
  const enc = (x: unknown, prefix: string): string => {
    if (x === null || x === undefined || typeof x === 'function' || typeof x === 'symbol') return 'null';
    if (typeof x === 'string') return jsonString(x, html);
    if (typeof x === 'number') return Number.isFinite(x) ? String(x) : 'null';
    if (typeof x === 'bigint' || typeof x === 'boolean') return String(x);
    if (x instanceof Date) return jsonString(rfc3339Nano(x), html);
    if (x instanceof Uint8Array) return `"${Buffer.from(x).toString('base64')}"`;
    const toJSON = (x as { toJSON?: () => unknown }).toJSON;
    if (typeof toJSON === 'function') return enc(toJSON.call(x), prefix);
    const inner = prefix + ind, nl = ind ? `\n${inner}` : '', sep = ind ? ': ' : ':';
    if (Array.isArray(x)) return x.length === 0 ? '[]' : `[${nl}${x.map((e) => enc(e, inner)).join(`,${nl}`)}${ind ? `\n${prefix}` : ''}]`;
    const entries = (isGoMap(x) ? sortedEntries(x) : Object.entries(x)).filter(([, e]) => e !== undefined && typeof e !== 'function');
    if (entries.length === 0) return '{}';
    return `{${nl}${entries.map(([k, e]) => `${jsonString(String(k), html)}${sep}${enc(e, inner)}`).join(`,${nl}`)}${ind ? `\n${prefix}` : ''}}`;
  };
  return enc(v, '');
}
