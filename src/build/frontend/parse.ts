/**
 * Pass 1 of the front end: Containerfile text → raw instructions with 1-based line ranges.
 *
 * Follows BuildKit's parser (frontend/dockerfile/parser/parser.go) line for line rather than
 * dockerfile-ast, whose continuation and heredoc handling differ from BuildKit's (an escaped
 * escape character `\\` at the end of a line continues the line there; a body line ending in
 * `\` swallows the heredoc terminator). The rules:
 * - parser directives (`# escape=`, `# syntax=`, `# check=`) only in the leading comment block;
 *   a blank line, another comment or an instruction ends it; each may appear once;
 * - a line whose last non-blank character is the escape character (not itself escaped)
 *   continues on the next line; comment lines and blank lines inside a continuation are skipped
 *   (blank ones produce a warning, as in BuildKit);
 * - `#` starts a comment only at the beginning of a line (after blanks);
 * - RUN, COPY and ADD (also as ONBUILD triggers) in shell form may use heredocs: each `<<WORD`
 *   (`<<-WORD`, `<<"WORD"`, `<<'WORD'`, `2<<WORD`) on the joined line takes the lines after the
 *   instruction up to a line equal to WORD (tabs before it allowed with `<<-`).
 */
import { KilnError } from '../../errors';
import { lex, type EscapeChar } from './expand';
import type { Heredoc, Loc } from './types';
import { extractFlags, JsonArrayError, parseJsonArray, trimLeftSpace, trimSpace, WHITESPACE } from './words';

export interface RawFlag {
  /** without the leading `--` */
  name: string;
  /** the text after `=`, quotes and `\` escapes removed; null when the flag had no `=` */
  value: string | null;
  /** the flag's own line (flags may sit on continuation lines) */
  loc: Loc;
}

export interface RawInstruction {
  /** upper-cased, as written otherwise (unknown keywords are kept for the error) */
  keyword: string;
  flags: RawFlag[];
  /** the arguments after the flags, continuation lines joined, trimmed; heredoc bodies not included */
  args: string;
  /** the JSON array when `args` is in exec form (only computed for RUN CMD ENTRYPOINT SHELL COPY ADD VOLUME) */
  json?: string[];
  /** heredocs in order of their `<<` words; `content` exactly as in the file (not chomped yet) */
  heredocs: Heredoc[];
  loc: Loc;
  /** the joined instruction line (keyword, flags and arguments), as BuildKit's Node.Original */
  original: string;
  /** the file's escape character, for splitting the arguments into words */
  escape: EscapeChar;
}

export interface ParsedFile {
  file: string;
  escape: EscapeChar;
  syntax?: string;
  instructions: RawInstruction[];
  /** e.g. empty continuation lines, which BuildKit warns about */
  warnings: string[];
}

const JSON_KEYWORDS = new Set(['RUN', 'CMD', 'ENTRYPOINT', 'SHELL', 'COPY', 'ADD', 'VOLUME']);
const HEREDOC_KEYWORDS = new Set(['RUN', 'COPY', 'ADD']);
const DIRECTIVE_RE = /^([a-zA-Z][a-zA-Z0-9]*)[\t\n\f\r ]*=[\t\n\f\r ]*(.+?)[\t\n\f\r ]*$/;

export function parseContainerfile(text: string, file: string): ParsedFile {
  if (trimSpace(text) === '') throw new KilnError('E_CONTAINERFILE', `${file}: the Containerfile is empty`);
  const lines = splitLines(text.startsWith('\ufeff') ? text.slice(1) : text);
  const out: ParsedFile = { file, escape: '\\', instructions: [], warnings: [] };
  const directives = new DirectiveScanner(file, out);
  let i = 0;
  while (i < lines.length) {
    const lineNo = i + 1;
    let token = trimLeftSpace(trimNewline(lines[i++]!));
    directives.scan(token, lineNo);
    if (token.startsWith('#')) token = '';
    let [line, eol] = trimContinuation(token, out.escape);
    if (eol && line === '') continue;
    const segments: Segment[] = [{ offset: 0, line: lineNo }];
    let endLine = lineNo;
    let emptyContinuation = false;
    while (!eol && i < lines.length) {
      const raw = trimNewline(lines[i++]!);
      endLine = i;
      if (trimLeftSpace(raw).startsWith('#')) continue;
      if (trimLeftSpace(raw) === '') {
        emptyContinuation = true;
        continue;
      }
      const [cont, e] = trimContinuation(raw, out.escape);
      eol = e;
      segments.push({ offset: line.length, line: endLine });
      line += cont;
    }
    if (emptyContinuation) out.warnings.push(`${file}:${lineNo}: empty continuation line (BuildKit will make this an error)`);
    const ins = splitInstruction(line, segments, file, out.escape);
    if (canContainHeredoc(ins, file)) {
      for (const h of heredocsFromLine(line, file, lineNo)) {
        let terminated = false;
        while (i < lines.length) {
          const raw = lines[i++]!;
          endLine = i;
          let candidate = trimNewline(raw);
          if (h.chomp) candidate = candidate.replace(/^\t+/, '');
          if (candidate === h.name) {
            terminated = true;
            break;
          }
          h.content += raw;
        }
        if (!terminated) throw new KilnError('E_CONTAINERFILE', `${file}:${lineNo}: unterminated heredoc <<${h.name}`);
        ins.heredocs.push(h);
      }
    }
    ins.loc.endLine = endLine;
    out.instructions.push(ins);
  }
  if (out.instructions.length === 0) throw new KilnError('E_CONTAINERFILE', `${file}: file with no instructions`);
  return out;
}

/**
 * Recognises one heredoc word (`<<EOF`, `<<-EOF`, `<<"EOF"`, `3<<EOF`) as BuildKit's
 * ParseHeredoc does; undefined if the word is not one. `expand` is false when any part of the
 * delimiter is quoted.
 */
export function parseHeredocWord(word: string): { name: string; expand: boolean; chomp: boolean } | undefined {
  const m = /^(\d*)<<(-?)([^<]*)$/.exec(word);
  if (!m || m[3] === '') return undefined;
  const rest = m[3]!;
  const words = lex(rest, {}, { escape: '\\', skipUnsetEnv: true }).words;
  if (words.length !== 1) return undefined;
  const raw = lex(rest, {}, { escape: '\\', skipUnsetEnv: true, rawQuotes: true }).words;
  const quotes = (s: string) => s.split('').filter((c) => c === "'" || c === '"').length;
  return { name: words[0]!, expand: quotes(words[0]!) === quotes(raw[0] ?? ''), chomp: m[2] === '-' };
}

/** Removes leading tabs from every line (the `<<-` rule). */
export function chompHeredoc(content: string): string {
  return content.replace(/^\t+/gm, '');
}

interface Segment {
  /** offset in the joined line where this source line's text starts */
  offset: number;
  line: number;
}

function lineAt(segments: Segment[], offset: number): number {
  let line = segments[0]!.line;
  for (const s of segments) if (s.offset <= offset) line = s.line;
  return line;
}

/** BuildKit's splitCommand + extractBuilderFlags on the joined line. */
function splitInstruction(line: string, segments: Segment[], file: string, escape: EscapeChar): RawInstruction {
  const lead = line.length - trimLeftSpace(line).length;
  const trimmed = trimSpace(line);
  const ws = WHITESPACE.exec(trimmed);
  const keyword = ws ? trimmed.slice(0, ws.index) : trimmed;
  const restOffset = lead + (ws ? ws.index + ws[0].length : trimmed.length);
  const rest = ws ? trimmed.slice(ws.index + ws[0].length) : '';
  const { flags, restStart } = extractFlags(rest);
  const startLine = segments[0]!.line;
  const ins: RawInstruction = {
    keyword: keyword.toUpperCase(),
    flags: flags.map((f) => {
      const eq = f.text.indexOf('=');
      const fl = lineAt(segments, restOffset + f.start);
      return {
        name: eq < 0 ? f.text.slice(2) : f.text.slice(2, eq),
        value: eq < 0 ? null : f.text.slice(eq + 1),
        loc: { file, line: fl, endLine: fl },
      };
    }),
    args: trimSpace(rest.slice(restStart)),
    heredocs: [],
    loc: { file, line: startLine, endLine: startLine },
    original: line,
    escape,
  };
  if (JSON_KEYWORDS.has(ins.keyword)) {
    try {
      const json = parseJsonArray(ins.args);
      if (json !== undefined) ins.json = json;
    } catch (e) {
      if (e instanceof JsonArrayError) throw new KilnError('E_CONTAINERFILE', `${file}:${startLine}: ${ins.keyword}: ${e.message}`);
      throw e;
    }
  }
  return ins;
}

/** RUN/COPY/ADD in shell form, directly or as the trigger of an ONBUILD. */
function canContainHeredoc(ins: RawInstruction, file: string): boolean {
  if (ins.keyword === 'ONBUILD') {
    const child = splitInstruction(ins.args, [{ offset: 0, line: ins.loc.line }], file, ins.escape);
    return HEREDOC_KEYWORDS.has(child.keyword) && child.json === undefined;
  }
  return HEREDOC_KEYWORDS.has(ins.keyword) && ins.json === undefined;
}

function heredocsFromLine(line: string, file: string, lineNo: number): Heredoc[] {
  let words: string[];
  try {
    words = lex(line, {}, { escape: '\\', rawQuotes: true, rawEscapes: true, skipUnsetEnv: true }).words;
  } catch {
    return []; // as BuildKit: a line the lexer cannot read has no heredocs
  }
  const docs: Heredoc[] = [];
  for (const w of words) {
    let h: ReturnType<typeof parseHeredocWord>;
    try {
      h = parseHeredocWord(w);
    } catch (e) {
      throw new KilnError('E_CONTAINERFILE', `${file}:${lineNo}: ${(e as Error).message}`);
    }
    if (h) docs.push({ name: h.name, content: '', expand: h.expand, chomp: h.chomp });
  }
  return docs;
}

/** Lines with their line endings kept (BuildKit's scanLines). */
function splitLines(text: string): string[] {
  const lines = text.split(/(?<=\n)/);
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
  return lines;
}

function trimNewline(s: string): string {
  return s.replace(/[\r\n]+$/, '');
}

/**
 * BuildKit's lineContinuationRegex: the escape character, then only blanks, at the end of the
 * line, and not preceded by another escape character (or alone on the line).
 */
function trimContinuation(line: string, escape: EscapeChar): [string, boolean] {
  const e = escape === '\\' ? '\\\\' : '`';
  const m = new RegExp(`([^${e}])${e}[ \\t]*$|^${e}[ \\t]*$`).exec(line);
  if (!m) return [line, true];
  return [line.slice(0, m.index) + (m[1] ?? ''), false];
}

class DirectiveScanner {
  private done = false;
  private readonly seen = new Set<string>();

  constructor(
    private readonly file: string,
    private readonly out: ParsedFile,
  ) {}

  /** Looks at a line (left-trimmed) while still in the leading comment block. */
  scan(token: string, lineNo: number): void {
    if (this.done) return;
    if (!token.startsWith('#')) {
      this.done = true;
      return;
    }
    const m = DIRECTIVE_RE.exec(trimLeftSpace(token.slice(1)));
    const key = m?.[1]!.toLowerCase();
    if (!m || (key !== 'escape' && key !== 'syntax' && key !== 'check')) {
      this.done = true;
      return;
    }
    if (this.seen.has(key)) throw new KilnError('E_CONTAINERFILE', `${this.file}:${lineNo}: only one ${key} parser directive can be used`);
    this.seen.add(key);
    const value = m[2]!;
    if (key === 'escape') {
      if (value !== '\\' && value !== '`') {
        throw new KilnError('E_CONTAINERFILE', `${this.file}:${lineNo}: invalid escape token '${value}' does not match \` or \\`);
      }
      this.out.escape = value;
    } else if (key === 'syntax') {
      this.out.syntax = value;
    }
  }
}
