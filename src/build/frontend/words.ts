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

function trimRightSpace(s: string): string {
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

/** One word as scanWords finds it; `start`/`end` are UTF-16 offsets in the input. */
interface ScannedWord {
  text: string;
  start: number;
  end: number;
}

/**
 * The word state machine BuildKit's parseWords and extractBuilderFlags share: words end at
 * unquoted whitespace, `'` and `"` quote, the escape character takes the next character
 * literally and is dropped at the very end of the input. With `keep` (parseWords) quotes and
 * escapes stay in the word and the escape does nothing inside single quotes; without
 * (extractBuilderFlags) they are removed and the escape works inside both kinds of quotes.
 * Every word is yielded, also one left empty by a dropped escape. Only BMP characters are
 * special, so scanning UTF-16 units gives the same words as scanning code points.
 */
function* scanWords(s: string, escape: string, keep: boolean): Generator<ScannedWord> {
  let phase: 'space' | 'word' | 'quote' = 'space';
  let word = '';
  let start = 0;
  let quote = '';
  for (let pos = 0; pos < s.length; pos++) {
    let ch = s[pos]!;
    if (phase === 'space') {
      if (isSpace(ch)) continue;
      phase = 'word';
      start = pos;
    }
    if (phase === 'word') {
      if (isSpace(ch)) {
        yield { text: word, start, end: pos };
        phase = 'space';
        word = '';
        continue;
      }
      if (ch === "'" || ch === '"') {
        quote = ch;
        phase = 'quote';
        if (keep) word += ch;
        continue;
      }
    } else if (ch === quote) {
      phase = 'word';
      if (keep) word += ch;
      continue;
    }
    if (ch === escape && (phase === 'word' || !keep || quote !== "'")) {
      if (pos + 1 === s.length) {
        phase = 'word'; // an escape at the very end is dropped
        continue;
      }
      if (keep) word += ch;
      ch = s[++pos]!;
    }
    word += ch;
  }
  if (phase !== 'space') yield { text: word, start, end: s.length };
}

/**
 * Splits into words at unquoted whitespace, keeping quotes and escape characters in the words
 * (BuildKit's parseWords, used for ENV/LABEL/ARG; kiln also uses it for COPY/ADD/VOLUME/EXPOSE
 * so that `"a b"` is one word). An escape character at the very end is dropped.
 */
export function splitWordsKeepQuotes(rest: string, escape: string): string[] {
  const words: string[] = [];
  // a quoted word keeps its quotes, so only a word that was a lone dropped escape is empty
  for (const w of scanWords(rest, escape, true)) if (w.text !== '') words.push(w.text);
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
  for (const w of scanWords(line, '\\', false)) {
    if (!line.startsWith('--', w.start)) return { flags, restStart: w.start };
    if (w.text === '--') return { flags, restStart: w.end };
    flags.push({ text: w.text, start: w.start });
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
