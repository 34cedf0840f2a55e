/**
 * The run-time half of the Go-template engine (see gotemplate.ts): the state a compiled
 * template runs with, Go's truth and value printing, field and variable lookup, and the
 * built-in functions (Go's and podman's). The parser in gotemplate.ts compiles to closures
 * over these.
 */
import { KilnError } from '../errors';
import { fmtArg, goJson, goMap, goSprint, goSprintf, goSprintln, goTypeName, isGoMap } from './units';
import type { TemplateFunc } from './gotemplate';

export const HINT = `--format takes a Go template such as '{{.ID}} {{.Size}}', 'table {{.ID}}\\t{{.Size}}', '{{json .}}' or 'json'`;

export interface Ctx { name: string; src: string }
export interface State { out: string; vars: { n: string; v: unknown }[]; header: boolean; c: Ctx }
export interface At { pos: number; text: string }
export type Sig = 0 | 1 | 2; // normal, break, continue
export type Exec = (s: State, dot: unknown) => Sig;
export type Val = (s: State, dot: unknown) => unknown;
export type Cmd = (s: State, dot: unknown, fin: unknown, hasFin: boolean) => unknown;

export function where(c: Ctx, pos: number): string {
  const before = c.src.slice(0, pos), nl = before.lastIndexOf('\n');
  return `template: ${c.name}:${before.split('\n').length}:${pos - nl - 1}`;
}
export function execErr(s: State, at: At, msg: string, hint?: string): KilnError {
  return new KilnError('E_TEMPLATE', `${where(s.c, at.pos)}: executing "${s.c.name}" at <${at.text}>: ${msg}`, { hint: hint ?? HINT });
}
/** A function-argument error that Go reports without the "error calling F:" prefix. */
class ArgError extends Error {}

/** Go's truth: false for nil, false, 0, "" and empty arrays/maps; structs are true. */
export function truth(v: unknown): boolean {
  if (v === undefined || v === null) return false;
  switch (typeof v) {
    case 'boolean': return v;
    case 'string': return v.length > 0;
    case 'number': return v !== 0;
    case 'bigint': return v !== 0n;
    case 'object':
      if (Array.isArray(v)) return v.length > 0;
      if (v instanceof Map) return v.size > 0;
      return v instanceof Date || !isGoMap(v) || Object.keys(v).length > 0;
    default: return true;
  }
}

export function printValue(s: State, v: unknown, at: At): string {
  if (typeof v === 'string') return v;
  if (v === undefined || v === null) return '<no value>';
  if (typeof v === 'number' && Number.isSafeInteger(v)) return String(v);
  if (typeof v === 'function') throw execErr(s, at, `can't print ${at.text} of type func`);
  return fmtArg(v, 'v');
}

const hasOwn = (o: object, k: string) => Object.prototype.hasOwnProperty.call(o, k);
/** Fields that are Go maps in podman's inspect/list types whatever their keys look like. */
const MAP_FIELDS = new Set(['Labels', 'Annotations', 'ExposedPorts', 'Volumes', 'Data']);
function hasMethod(o: object, k: string): boolean {
  const p = Object.getPrototypeOf(o);
  return p !== null && p !== Object.prototype && p !== Array.prototype && k in o && !(k in Object.prototype);
}

function getField(s: State, at: At, dot: unknown, recv: unknown, name: string, args: Val[], fin: unknown, hasFin: boolean): unknown {
  if (recv === undefined || recv === null) return undefined;
  const hasArgs = args.length > 0 || hasFin;
  if (typeof recv === 'object') {
    const o = recv as Record<string, unknown>;
    let found: boolean, own = true, v: unknown;
    if (o instanceof Map) { found = o.has(name); v = o.get(name); } else {
      found = hasOwn(o, name) || (own = false) || (!Array.isArray(o) && hasMethod(o, name));
      v = found ? o[name] : undefined;
    }
    if (!own && typeof v === 'function') { // a method (from the prototype); own function members are func values
      const argv = args.map((a) => a(s, dot));
      if (hasFin) argv.push(fin);
      try { return (v as TemplateFunc).apply(o, argv); } catch (e) { throw execErr(s, at, `error calling ${name}: ${e instanceof Error ? e.message : String(e)}`); }
    }
    const map = (!found || hasArgs) && !Array.isArray(o) && !(o instanceof Date) && isGoMap(o);
    if (found && MAP_FIELDS.has(name) && typeof v === 'object' && v !== null && Object.getPrototypeOf(v) === Object.prototype) goMap(v);
    if (found || map) {
      if (hasArgs) throw execErr(s, at, map ? `${name} is not a method but has arguments` : `${name} has arguments but cannot be invoked as function`);
      return v;
    }
    const keys = Array.isArray(o) ? [] : Object.keys(o);
    throw execErr(s, at, `can't evaluate field ${name} in type ${goTypeName(o)}`, keys.length ? `fields here (case-sensitive): ${keys.join(', ')}` : undefined);
  }
  if (s.header && typeof recv === 'string') return recv;
  throw execErr(s, at, `can't evaluate field ${name} in type ${goTypeName(recv)}`);
}

export function chain(s: State, at: At, dot: unknown, recv: unknown, names: string[], args: Val[], fin: unknown, hasFin: boolean): unknown {
  const last = names.length - 1;
  for (let i = 0; i < last; i++) recv = getField(s, at, dot, recv, names[i], [], undefined, false);
  return getField(s, at, dot, recv, names[last], args, fin, hasFin);
}

export function lookupVar(s: State, name: string): unknown {
  for (let i = s.vars.length - 1; i >= 0; i--) if (s.vars[i].n === name) return s.vars[i].v;
  return undefined;
}
export function setVar(s: State, at: At, name: string, v: unknown): void {
  for (let i = s.vars.length - 1; i >= 0; i--) if (s.vars[i].n === name) { s.vars[i].v = v; return; }
  throw execErr(s, at, `undefined variable: ${name}`);
}

// ---------------------------------------------------------------- functions

export interface Fn { min: number; max: number; f: (a: unknown[], s: State) => unknown; lazy?: boolean }
const wantStr = (v: unknown): string => { if (typeof v !== 'string') throw new ArgError(`wrong type for value; expected string; got ${goTypeName(v)}`); return v; };
const wantInt = (v: unknown): number => { if (typeof v !== 'number' || !Number.isInteger(v)) throw new ArgError(`wrong type for value; expected int; got ${goTypeName(v)}`); return v; };
const argText = (a: unknown[]): string => (a.length === 1 && typeof a[0] === 'string' ? a[0] : goSprint(a));
const kind = (v: unknown) => (v === null || v === undefined ? 'nil' : typeof v === 'bigint' ? 'number' : typeof v);

function eq1(a: unknown, b: unknown): boolean {
  const ka = kind(a), kb = kind(b);
  if (ka === 'nil' || kb === 'nil') return ka === kb;
  if (ka === 'object' || kb === 'object' || ka === 'function' || kb === 'function') throw new Error('invalid type for comparison');
  if (ka !== kb) throw new Error('incompatible types for comparison');
  return ka === 'number' ? Number(a) === Number(b) : a === b;
}
function lt(a: unknown, b: unknown): boolean {
  const ka = kind(a), kb = kind(b);
  if ((ka !== 'number' && ka !== 'string') || (kb !== 'number' && kb !== 'string')) throw new Error('invalid type for comparison');
  if (ka !== kb) throw new Error('incompatible types for comparison');
  return (a as number) < (b as number);
}
function mapZero(o: object): unknown {
  const vals = o instanceof Map ? [...o.values()] : Object.values(o);
  return vals.every((x) => typeof x === 'string') ? '' : undefined;
}
function index(a: unknown[], s: State): unknown {
  let v = a[0];
  for (const k of a.slice(1)) {
    if (v === null || v === undefined) return undefined;
    if (s.header && typeof v === 'string' && typeof k === 'string') return v;
    if (Array.isArray(v) || typeof v === 'string') {
      if (typeof k !== 'number' || !Number.isInteger(k)) throw new ArgError(`cannot index slice/array with type ${goTypeName(k)}`);
      const n = typeof v === 'string' ? Buffer.byteLength(v) : v.length;
      if (k < 0 || k >= n) throw new Error(`index out of range: ${k}`);
      v = typeof v === 'string' ? Buffer.from(v)[k] : v[k];
    } else if (v instanceof Map) v = v.has(k) ? v.get(k) : mapZero(v);
    else if (typeof v === 'object' && !(v instanceof Date)) {
      if (typeof k !== 'string') throw new ArgError(`value has type ${goTypeName(k)}; should be string`);
      v = hasOwn(v, k) ? (v as Record<string, unknown>)[k] : mapZero(v);
    } else throw new ArgError(`can't index item of type ${goTypeName(v)}`);
  }
  return v;
}
function slice(a: unknown[]): unknown {
  const v = a[0];
  if (typeof v !== 'string' && !Array.isArray(v)) throw new ArgError(`can't slice item of type ${goTypeName(v)}`);
  const idx = a.slice(1).map(wantInt);
  const i = idx[0] ?? 0, j = idx[1] ?? v.length;
  if (i < 0 || j < i || j > v.length) throw new Error(`index out of range: ${j < i ? i : j}`);
  return v.slice(i, j);
}
function isTitleSep(c: string): boolean {
  if (c.charCodeAt(0) < 0x80) return !/[A-Za-z0-9_]/.test(c);
  return /\s/u.test(c);
}

export const BUILTINS: Record<string, Fn> = {
  and: { min: 1, max: -1, lazy: true, f: () => undefined },
  or: { min: 1, max: -1, lazy: true, f: () => undefined },
  not: { min: 1, max: 1, f: ([x]) => !truth(x) },
  len: { min: 1, max: 1, f: ([x]) => {
    if (x === null || x === undefined) return 0;
    if (typeof x === 'string') return Buffer.byteLength(x);
    if (Array.isArray(x)) return x.length;
    if (x instanceof Map) return x.size;
    if (typeof x === 'object' && !(x instanceof Date)) return Object.keys(x).length;
    throw new Error(`len of type ${goTypeName(x)}`);
  } },
  index: { min: 1, max: -1, f: index },
  slice: { min: 1, max: 4, f: slice },
  eq: { min: 1, max: -1, f: ([a, ...b]) => { if (!b.length) throw new Error('missing argument for comparison'); return b.some((x) => eq1(a, x)); } },
  ne: { min: 2, max: 2, f: ([a, b]) => !eq1(a, b) },
  lt: { min: 2, max: 2, f: ([a, b]) => lt(a, b) },
  le: { min: 2, max: 2, f: ([a, b]) => lt(a, b) || eq1(a, b) },
  gt: { min: 2, max: 2, f: ([a, b]) => !lt(a, b) && !eq1(a, b) },
  ge: { min: 2, max: 2, f: ([a, b]) => !lt(a, b) },
  print: { min: 0, max: -1, f: (a) => goSprint(a) },
  printf: { min: 1, max: -1, f: ([f, ...a]) => goSprintf(wantStr(f), a) },
  println: { min: 0, max: -1, f: (a) => goSprintln(a) },
  html: { min: 0, max: -1, f: (a) => argText(a).replace(/[\0"'&<>]/g, (c) => ({ '\0': '\uFFFD', '"': '&#34;', "'": '&#39;', '&': '&amp;', '<': '&lt;', '>': '&gt;' })[c]!) },
  urlquery: { min: 0, max: -1, f: (a) => encodeURIComponent(argText(a)).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`).replace(/%20/g, '+') },
  call: { min: 1, max: -1, f: ([fn, ...a]) => { if (typeof fn !== 'function') throw new Error(`non-function of type ${goTypeName(fn)}`); return (fn as TemplateFunc)(...a); } },
  json: { min: 1, max: 1, f: ([v]) => goJson(v, { escapeHTML: false }) },
  lower: { min: 1, max: 1, f: ([v]) => wantStr(v).toLowerCase() },
  upper: { min: 1, max: 1, f: ([v]) => wantStr(v).toUpperCase() },
  title: { min: 1, max: 1, f: ([v]) => { let prev = ' ', out = ''; for (const c of wantStr(v)) { out += isTitleSep(prev) ? c.toUpperCase() : c; prev = c; } return out; } },
  join: { min: 2, max: 2, f: ([a, sep], s) => {
    if (s.header && typeof a === 'string') return a;
    if (a === null || a === undefined) return '';
    if (!Array.isArray(a)) throw new ArgError(`wrong type for value; expected []string; got ${goTypeName(a)}`);
    return a.map((x) => (typeof x === 'string' ? x : fmtArg(x, 'v'))).join(wantStr(sep));
  } },
  split: { min: 2, max: 2, f: ([v, sep]) => (wantStr(sep) === '' ? [...wantStr(v)] : wantStr(v).split(sep as string)) },
  truncate: { min: 2, max: 2, f: ([v, n]) => { const str = wantStr(v), k = wantInt(n); if (k < 0) throw new Error(`slice bounds out of range [:${k}]`); return str.length < k ? str : str.slice(0, k); } },
  pad: { min: 3, max: 3, f: ([v, p, q]) => { const str = wantStr(v); return str === '' ? str : ' '.repeat(Math.max(wantInt(p), 0)) + str + ' '.repeat(Math.max(wantInt(q), 0)); } },
};
/** Names of the functions every template can call. */
export const BUILTIN_FUNCS: readonly string[] = Object.keys(BUILTINS).sort();

export function callFn(s: State, at: At, name: string, fn: Fn, dot: unknown, args: Val[], fin: unknown, hasFin: boolean): unknown {
  const n = args.length + (hasFin ? 1 : 0);
  if (n < fn.min || (fn.max >= 0 && n > fn.max)) throw execErr(s, at, `wrong number of args for ${name}: want ${fn.max < 0 ? 'at least ' : ''}${fn.min === fn.max || fn.max < 0 ? fn.min : `${fn.min}..${fn.max}`} got ${n}`);
  if (fn.lazy) {
    let v: unknown;
    for (const a of args) { v = a(s, dot); if (truth(v) === (name === 'or')) return v; }
    return hasFin ? fin : v;
  }
  const argv = args.map((a) => a(s, dot));
  if (hasFin) argv.push(fin);
  try { return fn.f(argv, s); } catch (e) {
    if (e instanceof KilnError) throw e;
    const msg = e instanceof Error ? e.message : String(e);
    throw execErr(s, at, e instanceof ArgError ? msg : `error calling ${name}: ${msg}`);
  }
}

