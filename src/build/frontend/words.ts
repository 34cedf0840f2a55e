/**
 * The word-level tokenisers of BuildKit's Dockerfile parser (parser/line_parsers.go,
 * parser/split_command.go), working on one instruction's text with continuation lines joined.
 * None of them expands variables; quotes and escapes are kept for expand.ts unless stated.
 */
import { isSpace } from './expand';

/** BuildKit's reWhitespace: `[\t\v\f\r ]+`. */
export const WHITESPACE = /[\t\v\f\r ]+/;

/** Go's strings.TrimSpace / TrimLeft(unicode.IsSpace). */
export function trimSpace(s: string): string {
  return trimRightSpace(trimLeftSpace(s));
}

export function trimLeftSpace(s: string): string {
  const cps = Array.from(s);
  let i = 0;
  while (i < cps.length && isSpace(cps[i]!)) i++;
  return cps.slice(i).join('');
}

export function trimRightSpace(s: string): string {
  const cps = Array.from(s);
  let j = cps.length;
  while (j > 0 && isSpace(cps[j - 1]!)) j--;
  return cps.slice(0, j).join('');
}

/** Splits on runs of [\t\v\f\r ]; "" gives no words. */
export function splitWhitespace(rest: string): string[] {
  if (rest === '') return [];
  return rest.split(WHITESPACE);
}

/**
 * Splits into words at unquoted whitespace, keeping quotes and escape characters in the words
 * (BuildKit's parseWords, used for ENV/LABEL/ARG; kiln also uses it for COPY/ADD/VOLUME/EXPOSE
 * so that `"a b"` is one word). An escape character at the very end is dropped.
 */
export function splitWordsKeepQuotes(rest: string, escape: string): string[] {
  const cps = Array.from(rest);
  const words: string[] = [];
  let phase: 'space' | 'word' | 'quote' = 'space';
  let word = '';
  let quote = '';
  let blankOK = false;
  for (let pos = 0; pos <= cps.length; pos++) {
    let ch = cps[pos] ?? '';
    if (phase === 'space') {
      if (pos === cps.length) break;
      if (isSpace(ch)) continue;
      phase = 'word';
    }
    if (pos === cps.length) {
      if (blankOK || word.length > 0) words.push(word);
      break;
    }
    if (phase === 'word') {
      if (isSpace(ch)) {
        phase = 'space';
        if (blankOK || word.length > 0) words.push(word);
        word = '';
        blankOK = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOK = true;
        phase = 'quote';
      } else if (ch === escape) {
        if (pos + 1 === cps.length) continue; // an escape at the very end is dropped
        word += ch;
        ch = cps[++pos]!;
      }
      word += ch;
      continue;
    }
    // in quotes: the escape character works in double quotes only
    if (ch === quote) {
      phase = 'word';
    } else if (ch === escape && quote !== "'") {
      if (pos + 1 === cps.length) {
        phase = 'word';
        continue;
      }
      word += ch;
      ch = cps[++pos]!;
    }
    word += ch;
  }
  return words;
}

export interface FlagWord {
  /** the flag with quotes and backslash escapes removed, e.g. `--mount=type=cache,target=/x` */
  text: string;
  /** offset (UTF-16) of the flag's first character in the input */
  start: number;
}

/**
 * Takes the leading `--flag[=value]` words off an instruction's arguments (BuildKit's
 * extractBuilderFlags: quotes and `\` escapes are processed in flags, whatever the escape
 * directive; a bare `--` ends the flags). Returns the flags and the offset where the rest starts.
 */
export function extractFlags(line: string): { flags: FlagWord[]; restStart: number } {
  const flags: FlagWord[] = [];
  let phase: 'space' | 'word' | 'quote' = 'space';
  let word = '';
  let start = 0;
  let quote = '';
  let blankOK = false;
  for (let pos = 0; pos <= line.length; pos++) {
    let ch = pos < line.length ? line[pos]! : '';
    if (phase === 'space') {
      if (pos === line.length) break;
      if (isSpace(ch)) continue;
      if (ch !== '-' || line[pos + 1] !== '-') return { flags, restStart: pos };
      phase = 'word';
      start = pos;
    }
    if (pos === line.length) {
      if (word !== '--' && (blankOK || word.length > 0)) flags.push({ text: word, start });
      break;
    }
    if (phase === 'word') {
      if (isSpace(ch)) {
        phase = 'space';
        if (word === '--') return { flags, restStart: pos };
        if (blankOK || word.length > 0) flags.push({ text: word, start });
        word = '';
        blankOK = false;
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        blankOK = true;
        phase = 'quote';
        continue;
      }
      if (ch === '\\') {
        if (pos + 1 === line.length) continue;
        ch = line[++pos]!;
      }
      word += ch;
      continue;
    }
    // in quotes
    if (ch === quote) {
      phase = 'word';
      continue;
    }
    if (ch === '\\') {
      if (pos + 1 === line.length) {
        phase = 'word';
        continue;
      }
      ch = line[++pos]!;
    }
    word += ch;
  }
  return { flags, restStart: line.length };
}

export class JsonArrayError extends Error {}

/**
 * BuildKit's parseJSON: the text is a JSON array form if it starts with `[` and parses as a JSON
 * array; undefined when it is not (then it is shell form). An array holding anything but strings
 * is an error, not shell form.
 */
export function parseJsonArray(rest: string): string[] | undefined {
  const t = trimLeftSpace(rest);
  if (!t.startsWith('[')) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(t);
  } catch {
    return undefined;
  }
  if (!Array.isArray(v)) return undefined;
  if (!v.every((x) => typeof x === 'string')) {
    throw new JsonArrayError('when using JSON array syntax, arrays must be comprised of strings only');
  }
  return v as string[];
}
