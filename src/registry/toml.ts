/**
 * A minimal TOML reader, enough for containers-registries.conf(5): comments, `[table]`,
 * `[[array.of.tables]]` (dotted names append to the last element of each parent array, as TOML
 * says), bare and quoted keys (dotted keys too), basic ("…" with escapes) and literal ('…')
 * strings, booleans, integers and (multi-line) arrays of those. Inline tables, multi-line
 * strings, floats and dates are not supported and are reported as errors naming `file:line`.
 * (A full library such as `smol-toml` would be the one to add if more of TOML is needed.)
 */
import { KilnError } from '../errors';

export type TomlValue = string | boolean | number | TomlValue[] | TomlTable;
export interface TomlTable { [key: string]: TomlValue }

class Cursor {
  pos = 0;
  line = 1;
  constructor(readonly text: string, readonly file: string) {}

  fail(msg: string): never {
    throw new KilnError('E_INVALID_ARGUMENT', `${this.file}:${this.line}: invalid TOML: ${msg}`);
  }
  peek(): string {
    return this.text[this.pos] ?? '';
  }
  next(): string {
    const c = this.text[this.pos++] ?? '';
    if (c === '\n') this.line++;
    return c;
  }
  /** Skips spaces and tabs (and, when `newlines`, newlines and comments too). */
  skip(newlines: boolean): void {
    for (;;) {
      const c = this.peek();
      if (c === ' ' || c === '\t' || c === '\r') this.pos++;
      else if (c === '#') while (this.pos < this.text.length && this.peek() !== '\n') this.pos++;
      else if (newlines && c === '\n') this.next();
      else return;
    }
  }
  /** After a statement: only a comment may follow on the line. */
  endOfLine(): void {
    this.skip(false);
    const c = this.peek();
    if (c === '') return;
    if (c !== '\n') this.fail(`unexpected ${JSON.stringify(c)} after the value`);
    this.next();
  }
}

const BARE = /[A-Za-z0-9_-]/;

function parseKeyPart(c: Cursor): string {
  const q = c.peek();
  if (q === '"' || q === "'") return checkKey(c, parseString(c));
  let k = '';
  while (BARE.test(c.peek())) k += c.next();
  if (k === '') c.fail(`expected a key, found ${JSON.stringify(c.peek() || 'end of file')}`);
  return k;
}

function checkKey(c: Cursor, k: string): string {
  if (k === '__proto__') c.fail('the key __proto__ is not allowed');
  return k;
}

/** A possibly dotted key: `a.b."c d"`. */
function parseKey(c: Cursor): string[] {
  const parts = [parseKeyPart(c)];
  for (;;) {
    c.skip(false);
    if (c.peek() !== '.') return parts;
    c.next();
    c.skip(false);
    parts.push(parseKeyPart(c));
  }
}

const ESCAPES: Record<string, string> = { b: '\b', t: '\t', n: '\n', f: '\f', r: '\r', '"': '"', '\\': '\\' };

function parseString(c: Cursor): string {
  const quote = c.next();
  if (c.text.startsWith(quote.repeat(2), c.pos)) {
    if (c.text[c.pos + 2] === quote) c.fail('multi-line strings are not supported');
    c.pos += 2;
    return '';
  }
  let s = '';
  for (;;) {
    const ch = c.next();
    if (ch === '' || ch === '\n') c.fail('unterminated string');
    if (ch === quote) return s;
    if (ch === '\\' && quote === '"') {
      const e = c.next();
      if (e === 'u' || e === 'U') {
        const n = e === 'u' ? 4 : 8;
        const hex = c.text.slice(c.pos, c.pos + n);
        if (!/^[0-9A-Fa-f]+$/.test(hex) || hex.length !== n) c.fail(`bad \\${e} escape`);
        c.pos += n;
        s += String.fromCodePoint(parseInt(hex, 16));
      } else if (e in ESCAPES) s += ESCAPES[e];
      else c.fail(`bad escape \\${e}`);
    } else s += ch;
  }
}

function parseValue(c: Cursor): TomlValue {
  const ch = c.peek();
  if (ch === '"' || ch === "'") return parseString(c);
  if (ch === '[') {
    c.next();
    const arr: TomlValue[] = [];
    for (;;) {
      c.skip(true);
      if (c.peek() === ']') {
        c.next();
        return arr;
      }
      arr.push(parseValue(c));
      c.skip(true);
      const sep = c.next();
      if (sep === ']') return arr;
      if (sep !== ',') c.fail(`expected "," or "]" in array, found ${JSON.stringify(sep || 'end of file')}`);
    }
  }
  if (ch === '{') c.fail('inline tables are not supported');
  const m = /^[^\s,\]#]+/.exec(c.text.slice(c.pos));
  const word = m ? m[0] : '';
  c.pos += word.length;
  if (word === 'true') return true;
  if (word === 'false') return false;
  if (/^[+-]?\d[\d_]*$/.test(word)) return Number(word.replace(/_/g, ''));
  return c.fail(`unsupported value ${JSON.stringify(word || ch)}`);
}

function isTable(v: TomlValue | undefined): v is TomlTable {
  return typeof v === 'object' && !Array.isArray(v);
}

/** Walks `path` from `root`, creating tables; an array of tables continues at its last element. */
function descend(c: Cursor, root: TomlTable, path: string[]): TomlTable {
  let t = root;
  for (const p of path) {
    let v = Object.hasOwn(t, p) ? t[p] : undefined;
    if (v === undefined) t[p] = v = {};
    if (Array.isArray(v)) v = v[v.length - 1];
    if (!isTable(v)) c.fail(`${path.join('.')}: ${p} is not a table`);
    t = v;
  }
  return t;
}

/** Parses TOML text; `file` is used in error messages. */
export function parseToml(text: string, file = '<toml>'): TomlTable {
  const c = new Cursor(text, file);
  const root: TomlTable = {};
  let current = root;
  const defined = new Set<string>();
  for (;;) {
    c.skip(true);
    if (c.pos >= text.length) return root;
    if (c.peek() === '[') {
      c.next();
      const isArray = c.peek() === '[';
      if (isArray) c.next();
      c.skip(false);
      const path = parseKey(c);
      for (const close of isArray ? ']]' : ']') if (c.next() !== close) c.fail(`expected "${isArray ? ']]' : ']'}" after table name`);
      const parent = descend(c, root, path.slice(0, -1));
      const last = path[path.length - 1]!;
      if (isArray) {
        const existing: TomlValue = (Object.hasOwn(parent, last) ? parent[last] : undefined) ?? [];
        if (!Array.isArray(existing)) return c.fail(`${path.join(".")} is already defined as a table`);
        const t: TomlTable = {};
        existing.push(t);
        parent[last] = existing;
        current = t;
      } else {
        const name = path.join('.');
        if (defined.has(name)) c.fail(`table [${name}] is defined twice`);
        defined.add(name);
        current = descend(c, root, path);
      }
      c.endOfLine();
      continue;
    }
    const key = parseKey(c);
    c.skip(false);
    if (c.next() !== '=') c.fail(`expected "=" after key ${key.join('.')}`);
    c.skip(false);
    const value = parseValue(c);
    const target = descend(c, current, key.slice(0, -1));
    const last = key[key.length - 1]!;
    if (Object.hasOwn(target, last)) c.fail(`key ${key.join('.')} is defined twice`);
    target[last] = value;
    c.endOfLine();
  }
}
