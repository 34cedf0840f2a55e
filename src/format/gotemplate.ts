/**
 * A compiler for the subset of Go's text/template that podman users write in `--format`.
 *
 * Contract: `compile(src)` parses once into closures; `execute(data)` runs them and returns the
 * text Go would write, for JavaScript data read through the value model of ./units (numbers
 * that are integers print as Go ints; objects are Go maps or structs, see `isGoMap`).
 *  - Text, actions `{{ }}`, trim markers `{{- ` / ` -}}`, comments (slash-star … star-slash).
 *  - Operands: `.`, `.A.B` (struct field, map key, or a method of a class instance, called with
 *    any arguments that follow), `$`, `$x.A`,
 *    `(pipeline).A`, strings "…" and `…`, chars 'a', numbers, true/false/nil.
 *  - Pipelines `a | b c` (the value is passed as b's last argument), `$x := p`, `$x = p`.
 *  - `if`/`else if`/`else`, `with`/`else with`/`else`, `range` (arrays, maps sorted by key,
 *    integers; `$i, $v :=`; `else`; `break`, `continue`), `end`.
 *  - Functions: Go's and or not len index slice eq ne lt le gt ge print printf println html
 *    urlquery call; podman's json lower upper title join split truncate pad; plus `funcs`.
 *  - Not supported: define/template/block (an error), `js`, complex numbers, custom delimiters.
 * Missing struct field → error "can't evaluate field X in type T"; missing map key, or any
 * field of null/undefined → `<no value>` when printed, as Go's default missingkey (`index` of a
 * missing key gives "" when the map's values are all strings, as for Go's map[string]string).
 * Plain objects under Labels, Annotations, ExposedPorts, Volumes and Data are always maps. Errors are
 * KilnError('E_TEMPLATE', 'template: NAME:LINE:COL: …') with Go's wording and a hint.
 */
import { KilnError } from '../errors';
import { At, BUILTINS, Cmd, Ctx, Exec, Fn, HINT, Sig, State, Val, callFn, chain, execErr, lookupVar, printValue, setVar, truth, where } from './template-runtime';
import { fmtArg, sortedEntries } from './units';

/** Re-exported for callers that only need the compiler. */
export { BUILTIN_FUNCS, truth } from './template-runtime';

export type TemplateFunc = (...args: unknown[]) => unknown;
export interface CompileOptions { name?: string; funcs?: Record<string, TemplateFunc> }
/** `root` is what `$` denotes (default: the data); `header` renders a podman header row (lenient with strings). */
export interface ExecOptions { root?: unknown; header?: boolean }
export interface Template {
  readonly name: string;
  readonly source: string;
  /** First names of the `.Field` chains the template reads (used to derive table headers). */
  readonly fields: ReadonlySet<string>;
  execute(data: unknown, opts?: ExecOptions): string;
}


// ---------------------------------------------------------------- lexer

type TT = 'text' | 'open' | 'close' | 'field' | 'var' | 'dot' | 'ident' | 'kw' | 'str' | 'num' | 'bool' | 'nil' | 'pipe' | 'lparen' | 'rparen' | 'comma' | 'declare' | 'assign' | 'eof';
interface Tok { t: TT; v: string; pos: number; end: number; sp: boolean; val?: unknown }
const KEYWORDS = new Set(['if', 'else', 'end', 'range', 'with', 'break', 'continue', 'define', 'template', 'block']);
const isSpace = (c: string | undefined) => c === ' ' || c === '\t' || c === '\r' || c === '\n';
const isAlnum = (c: string | undefined) => c !== undefined && /[\p{L}\p{Nd}_]/u.test(c);
const isDigit = (c: string | undefined) => c !== undefined && c >= '0' && c <= '9';
const NUM_RE = /[+-]?(?:0[xX][0-9a-fA-F_]*(?:\.[0-9a-fA-F_]*)?(?:[pP][+-]?[0-9_]+)?|0[bB][01_]+|0[oO][0-7_]+|[0-9_]*\.?[0-9_]*(?:[eE][+-]?[0-9_]+)?)/y;
const SIMPLE_ESC: Record<string, string> = { a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '\\': '\\', "'": "'", '"': '"' };

function unquote(body: string): string {
  if (!body.includes('\\')) return body;
  const parts: Buffer[] = [];
  for (let i = 0; i < body.length; i++) {
    const c = body[i];
    if (c !== '\\') { parts.push(Buffer.from(c)); continue; }
    const e = body[++i];
    if (e in SIMPLE_ESC) parts.push(Buffer.from(SIMPLE_ESC[e]));
    else if (e === 'x') { parts.push(Buffer.from([parseInt(body.slice(i + 1, i + 3), 16)])); i += 2; }
    else if (e === 'u' || e === 'U') { const n = e === 'u' ? 4 : 8; parts.push(Buffer.from(String.fromCodePoint(parseInt(body.slice(i + 1, i + 1 + n), 16)))); i += n; }
    else if (e >= '0' && e <= '7') { parts.push(Buffer.from([parseInt(body.slice(i, i + 3), 8)])); i += 2; }
    else throw new Error(`invalid syntax`);
  }
  return Buffer.concat(parts).toString('utf8');
}

function parseNumber(s: string): number {
  let t = s.replace(/_/g, ''), neg = false;
  if (t[0] === '+' || t[0] === '-') { neg = t[0] === '-'; t = t.slice(1); }
  const v = /^0[0-7]+$/.test(t) ? parseInt(t, 8) : /^0[xX].*[.pP]/.test(t) ? NaN : Number(t);
  return neg ? -v : v;
}

// ---------------------------------------------------------------- parser / compiler

interface Operand extends At { kind: 'field' | 'var' | 'dot' | 'ident' | 'lit' | 'nil' | 'pipe' | 'chain'; names: string[]; name?: string; value?: unknown; pipe?: Pipe; recv?: Operand }
interface Pipe { run: Val; decl: string[]; assign: boolean }

class Parser {
  private i = 0;
  private vars: string[] = ['$'];
  private rangeDepth = 0;
  private act = 0;
  private readonly toks: Tok[];
  readonly fields = new Set<string>();

  constructor(private readonly c: Ctx, private readonly funcs: Map<string, Fn>) {
    this.toks = this.lex();
  }

  private fail(pos: number, msg: string, hint = HINT): never {
    const end = this.c.src.indexOf('}}', this.act);
    const action = this.c.src.slice(this.act, end < 0 ? this.c.src.length : end + 2);
    const shown = action.length > 60 ? `${action.slice(0, 57)}...` : action;
    throw new KilnError('E_TEMPLATE', `${where(this.c, pos)}: ${msg}${action.startsWith('{{') ? ` in ${shown}` : ''}`, { hint });
  }

  private lex(): Tok[] {
    const src = this.c.src, n = src.length, toks: Tok[] = [];
    let i = 0, trimNext = false;
    for (;;) {
      const j = src.indexOf('{{', i);
      let text = src.slice(i, j < 0 ? n : j);
      const ltrim = j >= 0 && src[j + 2] === '-' && isSpace(src[j + 3]);
      if (trimNext) text = text.replace(/^[ \t\r\n]+/, '');
      if (ltrim) text = text.replace(/[ \t\r\n]+$/, '');
      if (text) toks.push({ t: 'text', v: text, pos: i, end: j < 0 ? n : j, sp: false });
      if (j < 0) break;
      this.act = j;
      let k = j + (ltrim ? 4 : 2), sp = false, depth = 0;
      const rtrim = () => isSpace(src[k]) && src[k + 1] === '-' && src.startsWith('}}', k + 2);
      if (src.startsWith('/*', k)) {
        const e = src.indexOf('*/', k + 2);
        if (e < 0) this.fail(j, 'unclosed comment');
        k = e + 2;
        trimNext = rtrim();
        if (!trimNext && !src.startsWith('}}', k)) this.fail(j, 'comment ends before closing delimiter');
        i = k + (trimNext ? 4 : 2);
        continue;
      }
      toks.push({ t: 'open', v: '{{', pos: j, end: k, sp: false });
      for (;;) {
        if (k >= n) this.fail(j, 'unclosed action');
        trimNext = rtrim();
        if (trimNext || src.startsWith('}}', k)) {
          if (depth > 0) this.fail(k, 'unclosed left paren');
          toks.push({ t: 'close', v: '}}', pos: k, end: k + (trimNext ? 4 : 2), sp });
          k += trimNext ? 4 : 2;
          break;
        }
        const c = src[k], start = k;
        if (isSpace(c)) { sp = true; k++; continue; }
        let t: TT, val: unknown;
        const word = () => { while (isAlnum(src[k])) k++; if (!(k >= n || isSpace(src[k]) || '.,|:()'.includes(src[k]) || src.startsWith('}}', k))) this.fail(k, `bad character U+${src.codePointAt(k)!.toString(16).toUpperCase().padStart(4, '0')} '${src[k]}'`); };
        if (c === '|') { t = 'pipe'; k++; } else if (c === '(') { t = 'lparen'; depth++; k++; } else if (c === ')') {
          if (--depth < 0) this.fail(k, 'unexpected right paren');
          t = 'rparen'; k++;
        } else if (c === ',') { t = 'comma'; k++; } else if (c === '=') { t = 'assign'; k++; } else if (c === ':') {
          if (src[k + 1] !== '=') this.fail(k, 'expected :=');
          t = 'declare'; k += 2;
        } else if (c === '"' || c === "'") {
          for (k++; src[k] !== c; k++) {
            if (src[k] === '\\') k++;
            if (k >= n || src[k] === '\n') this.fail(start, c === '"' ? 'unterminated quoted string' : 'unterminated character constant');
          }
          k++;
          try { val = unquote(src.slice(start + 1, k - 1)); } catch { this.fail(start, `invalid syntax: ${src.slice(start, k)}`); }
          if (c === "'") { const cps = [...(val as string)]; if (cps.length !== 1) this.fail(start, `malformed character constant: ${src.slice(start, k)}`); val = cps[0].codePointAt(0); }
          t = c === '"' ? 'str' : 'num';
        } else if (c === '`') {
          const e = src.indexOf('`', k + 1);
          if (e < 0) this.fail(start, 'unterminated raw quoted string');
          t = 'str'; val = src.slice(k + 1, e); k = e + 1;
        } else if (c === '$') { k++; word(); t = 'var'; } else if (c === '.' && !isDigit(src[k + 1])) {
          k++;
          if (isAlnum(src[k])) { word(); t = 'field'; } else t = 'dot';
        } else if (isDigit(c) || ((c === '+' || c === '-' || c === '.') && (isDigit(src[k + 1]) || src[k + 1] === '.'))) {
          NUM_RE.lastIndex = k; NUM_RE.exec(src); k = NUM_RE.lastIndex;
          val = parseNumber(src.slice(start, k));
          if (isAlnum(src[k]) || src[k] === '.' || Number.isNaN(val)) { while (isAlnum(src[k]) || src[k] === '.') k++; this.fail(start, `bad number syntax: "${src.slice(start, k)}"`); }
          t = 'num';
        } else if (isAlnum(c)) {
          word();
          const w = src.slice(start, k);
          t = KEYWORDS.has(w) ? 'kw' : w === 'true' || w === 'false' ? 'bool' : w === 'nil' ? 'nil' : 'ident';
          if (t === 'bool') val = w === 'true';
        } else this.fail(k, `unrecognized character in action: ${JSON.stringify(c)}`);
        toks.push({ t, v: src.slice(start, k), pos: start, end: k, sp, val });
        sp = false;
      }
      i = k;
    }
    toks.push({ t: 'eof', v: '', pos: n, end: n, sp: false });
    return toks;
  }

  private peek(): Tok { return this.toks[this.i]; }
  private next(): Tok { return this.toks[this.i++]; }
  private unexpected(t: Tok, ctx: string): never {
    const d = t.t === 'eof' ? 'EOF' : t.t === 'kw' ? `<${t.v}>` : JSON.stringify(t.v.length > 10 ? `${t.v.slice(0, 10)}...` : t.v);
    return this.fail(t.pos, `unexpected ${d} in ${ctx}`);
  }
  private expectClose(ctx: string): void { const t = this.next(); if (t.t !== 'close') this.unexpected(t, ctx); }

  parseTop(): Exec { return this.list(false).run; }

  private list(inCtl: boolean): { run: Exec; end: 'end' | 'else' | 'eof' } {
    const items: Exec[] = [];
    let end: 'end' | 'else' | 'eof' = 'eof';
    for (;;) {
      const t = this.next();
      if (t.t === 'eof') { if (inCtl) this.fail(t.pos, 'unexpected EOF'); break; }
      if (t.t === 'text') { const v = t.v; items.push((s) => { s.out += v; return 0; }); continue; }
      this.act = t.pos;
      const k = this.peek();
      if (k.t === 'kw') {
        this.next();
        if (k.v === 'end' || k.v === 'else') {
          if (!inCtl) this.fail(k.pos, `unexpected {{${k.v}}}`);
          if (k.v === 'end') this.expectClose('end');
          end = k.v;
          break;
        }
        if (k.v === 'if' || k.v === 'with' || k.v === 'range') { items.push(this.control(k.v)); continue; }
        if (k.v === 'break' || k.v === 'continue') {
          if (!this.rangeDepth) this.fail(k.pos, `{{${k.v}}} outside {{range}}`);
          this.expectClose(k.v);
          const sig: Sig = k.v === 'break' ? 1 : 2;
          items.push(() => sig);
          continue;
        }
        this.fail(k.pos, `{{${k.v}}} is not supported`, 'kiln templates cannot define or include other templates; inline the text instead');
      }
      const at: At = { pos: k.pos, text: '' };
      const p = this.pipeline('command', 'close', false);
      at.text = this.c.src.slice(k.pos, this.toks[this.i - 1].pos).trim();
      const run = p.run;
      items.push(p.decl.length ? (s, dot) => { run(s, dot); return 0; } : (s, dot) => { s.out += printValue(s, run(s, dot), at); return 0; });
    }
    const run: Exec = items.length === 1 ? items[0] : (s, dot) => { for (const f of items) { const r = f(s, dot); if (r) return r; } return 0; };
    return { run, end };
  }

  private control(kind: 'if' | 'with' | 'range'): Exec {
    const saved = this.vars.length, at: At = { pos: this.peek().pos, text: kind };
    const pp = this.pipeline(kind, 'close', kind === 'range'), pipe = pp.run, names = pp.decl, nDecl = names.length;
    if (kind === 'range') this.rangeDepth++;
    const body = this.list(true);
    if (kind === 'range') this.rangeDepth--;
    let elseRun: Exec | undefined;
    if (body.end === 'else') {
      const k = this.peek();
      if (k.t === 'kw' && k.v === kind && kind !== 'range') { this.next(); elseRun = this.control(kind); } else {
        this.expectClose('else');
        const e = this.list(true);
        if (e.end !== 'end') this.fail(this.toks[this.i - 1].pos, 'expected end; found {{else}}');
        elseRun = e.run;
      }
    }
    this.vars.length = saved;
    const run = body.run;
    if (kind === 'if' || kind === 'with') {
      return (s, dot) => {
        const mark = s.vars.length, v = pipe(s, dot);
        const r = truth(v) ? run(s, kind === 'with' ? v : dot) : elseRun ? elseRun(s, dot) : 0;
        s.vars.length = mark;
        return r;
      };
    }
    return (s, dot) => {
      const mark = s.vars.length, v = pipe(s, dot), inner = s.vars.length;
      let any = false;
      const one = (k: unknown, e: unknown): Sig => {
        any = true;
        if (pp.assign) { setVar(s, at, names[nDecl - 1], e); if (nDecl > 1) setVar(s, at, names[0], k); }
        else if (nDecl) { s.vars[inner - 1].v = e; if (nDecl > 1) s.vars[inner - 2].v = k; }
        const r = run(s, e);
        s.vars.length = inner;
        return r;
      };
      if (Array.isArray(v)) { for (let i = 0; i < v.length; i++) if (one(i, v[i]) === 1) break; }
      else if (typeof v === 'number' && Number.isInteger(v)) { for (let i = 0; i < v; i++) if (one(i, i) === 1) break; }
      else if (v instanceof Map || (typeof v === 'object' && v !== null && !(v instanceof Date))) { for (const [k, e] of sortedEntries(v)) if (one(k, e) === 1) break; }
      else if (s.header && typeof v === 'string') one(0, v);
      else if (v !== null && v !== undefined) throw execErr(s, at, `range can't iterate over ${fmtArg(v, 'v')}`);
      const r = !any && elseRun ? elseRun(s, dot) : 0;
      s.vars.length = mark;
      return r;
    };
  }

  private pipeline(ctx: string, end: 'close' | 'rparen', isRange: boolean): Pipe {
    const decl: string[] = [];
    let assign = false;
    const v = this.peek(), nx = this.toks[this.i + 1];
    if (v.t === 'var' && (nx.t === 'declare' || nx.t === 'assign')) { this.i += 2; decl.push(v.v); assign = nx.t === 'assign'; }
    else if (v.t === 'var' && nx.t === 'comma') {
      const v2 = this.toks[this.i + 2], d2 = this.toks[this.i + 3];
      if (!isRange) this.fail(nx.pos, `too many declarations in ${ctx}`);
      if (v2.t !== 'var' || (d2.t !== 'declare' && d2.t !== 'assign')) this.fail(nx.pos, 'range can only initialize variables');
      this.i += 4; decl.push(v.v, v2.v); assign = d2.t === 'assign';
    }
    if (assign) for (const d of decl) if (!this.vars.includes(d)) this.fail(v.pos, `undefined variable "${d}"`);
    const cmds: Cmd[] = [];
    for (;;) {
      const t = this.peek();
      if (t.t === end) { this.next(); break; }
      const op = this.operand();
      if (!op) this.unexpected(t, ctx);
      if (cmds.length > 0 && (op.kind === 'lit' || op.kind === 'dot' || op.kind === 'nil')) this.fail(op.pos, `non executable command in pipeline stage ${cmds.length + 1}`);
      cmds.push(this.command(op));
      if (this.peek().t === 'pipe') { this.next(); if (this.peek().t === end) this.fail(this.peek().pos, `missing command after | in ${ctx}`); }
    }
    if (cmds.length === 0) this.fail(this.toks[this.i - 1].pos, `missing value for ${ctx}`);
    if (!assign) this.vars.push(...decl);
    const at: At = { pos: v.pos, text: decl.join(', ') };
    const one = cmds.length === 1 ? cmds[0] : undefined;
    const run: Val = (s, dot) => {
      let r: unknown;
      if (one) r = one(s, dot, undefined, false);
      else for (let k = 0; k < cmds.length; k++) r = cmds[k](s, dot, r, k > 0);
      for (const d of decl) if (assign) setVar(s, at, d, r); else s.vars.push({ n: d, v: r });
      return r;
    };
    return { run, decl, assign };
  }

  /** Parses the arguments after `first` up to `|`, `}}` or `)`, and compiles the command. */
  private command(first: Operand): Cmd {
    const ops = [first];
    for (;;) {
      const t = this.peek();
      if (t.t === 'close' || t.t === 'rparen' || t.t === 'pipe') break;
      if (!t.sp) this.unexpected(t, 'operand');
      const op = this.operand();
      if (!op) this.unexpected(t, 'operand');
      ops.push(op);
    }
    const at: At = { pos: first.pos, text: this.c.src.slice(first.pos, this.toks[this.i - 1].end) };
    const args = ops.slice(1).map((o) => this.arg(o));
    const noArgs = (s: State, hasFin: boolean) => { if (args.length > 0 || hasFin) throw execErr(s, at, `can't give argument to non-function ${first.text}`); };
    switch (first.kind) {
      case 'field': return (s, dot, fin, hasFin) => chain(s, first, dot, dot, first.names, args, fin, hasFin);
      case 'var': {
        const name = first.name!;
        if (!first.names.length) return (s, _dot, _f, hasFin) => { noArgs(s, hasFin); return lookupVar(s, name); };
        return (s, dot, fin, hasFin) => chain(s, first, dot, lookupVar(s, name), first.names, args, fin, hasFin);
      }
      case 'chain': { const recv = this.arg(first.recv!); return (s, dot, fin, hasFin) => chain(s, first, dot, recv(s, dot), first.names, args, fin, hasFin); }
      case 'ident': { const name = first.name!, fn = this.funcs.get(name)!; return (s, dot, fin, hasFin) => callFn(s, at, name, fn, dot, args, fin, hasFin); }
      case 'nil': return this.fail(first.pos, 'nil is not a command');
      default: { const v = this.arg(first); return (s, dot, _f, hasFin) => { noArgs(s, hasFin); return v(s, dot); }; }
    }
  }

  private arg(o: Operand): Val {
    switch (o.kind) {
      case 'field': return (s, dot) => chain(s, o, dot, dot, o.names, [], undefined, false);
      case 'var': { const name = o.name!; return o.names.length ? (s, dot) => chain(s, o, dot, lookupVar(s, name), o.names, [], undefined, false) : (s) => lookupVar(s, name); }
      case 'chain': { const recv = this.arg(o.recv!); return (s, dot) => chain(s, o, dot, recv(s, dot), o.names, [], undefined, false); }
      case 'ident': { const fn = this.funcs.get(o.name!)!, name = o.name!; return (s, dot) => callFn(s, o, name, fn, dot, [], undefined, false); }
      case 'pipe': return o.pipe!.run;
      case 'dot': return (_s, dot) => dot;
      default: { const v = o.value; return () => v; }
    }
  }

  private operand(): Operand | undefined {
    const t = this.peek();
    let o: Operand;
    const mk = (kind: Operand['kind'], extra: Partial<Operand> = {}): Operand => ({ kind, names: [], pos: t.pos, text: t.v, ...extra });
    switch (t.t) {
      case 'ident':
        if (!this.funcs.has(t.v)) this.fail(t.pos, `function "${t.v}" not defined`, `available functions: ${[...this.funcs.keys()].sort().join(', ')}`);
        o = mk('ident', { name: t.v }); break;
      case 'dot': o = mk('dot'); break;
      case 'nil': o = mk('nil', { value: null }); break;
      case 'var':
        if (!this.vars.includes(t.v)) this.fail(t.pos, `undefined variable "${t.v}"`);
        o = mk('var', { name: t.v }); break;
      case 'field': o = mk('field', { names: [t.v.slice(1)] }); this.fields.add(t.v.slice(1)); break;
      case 'str': case 'num': case 'bool': o = mk('lit', { value: t.val }); break;
      case 'lparen': {
        this.next();
        const pipe = this.pipeline('parenthesized pipeline', 'rparen', false);
        o = mk('pipe', { pipe, text: this.c.src.slice(t.pos, this.toks[this.i - 1].end) });
        this.i--;
        break;
      }
      default: return undefined;
    }
    this.next();
    while (this.peek().t === 'field' && !this.peek().sp) {
      const f = this.next();
      if (o.kind === 'lit' || o.kind === 'dot' || o.kind === 'nil') this.fail(f.pos, `unexpected . after term "${o.text}"`);
      if (o.kind === 'ident' || o.kind === 'pipe') o = { kind: 'chain', names: [], pos: o.pos, text: o.text, recv: o };
      o.names.push(f.v.slice(1));
      o.text = this.c.src.slice(o.pos, f.end);
    }
    return o;
  }
}

/** Compiles a template once; the result executes any number of times. */
export function compile(source: string, opts: CompileOptions = {}): Template {
  const c: Ctx = { name: opts.name ?? 'format', src: source };
  const funcs = new Map<string, Fn>(Object.entries(BUILTINS));
  for (const [k, f] of Object.entries(opts.funcs ?? {})) funcs.set(k, { min: 0, max: -1, f: (a) => f(...a) });
  const p = new Parser(c, funcs);
  const root = p.parseTop();
  return {
    name: c.name,
    source,
    fields: p.fields,
    execute(data: unknown, eo: ExecOptions = {}): string {
      const s: State = { out: '', vars: [{ n: '$', v: 'root' in eo ? eo.root : data }], header: eo.header === true, c };
      try { root(s, data); } catch (e) {
        if (e instanceof KilnError) throw e;
        throw new KilnError('E_TEMPLATE', `template: ${c.name}: ${e instanceof Error ? e.message : String(e)}`, { hint: HINT, cause: e });
      }
      return s.out;
    },
  };
}

/** Compiles and executes in one call (prefer `compile` when formatting many values). */
export function executeTemplate(source: string, data: unknown, opts: CompileOptions & ExecOptions = {}): string {
  return compile(source, opts).execute(data, opts);
}
