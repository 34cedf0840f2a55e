/**
 * Variable substitution and quote removal, as BuildKit's shell lexer
 * (frontend/dockerfile/shell/lex.go) does them. Supported: `$a`, `${a}`, `${a:-w}` `${a-w}`,
 * `${a:+w}` `${a+w}`, `${a:?msg}` `${a?msg}`, `${a#p}` `${a##p}` `${a%p}` `${a%%p}` and
 * `${a/p/r}` `${a//p/r}`; single quotes keep everything literal, double quotes keep everything
 * but `$` and the escape character (which there escapes only `"`, `$` and itself); outside
 * quotes the escape character makes the next character literal and is dropped at the end.
 * Unset variables expand to "". Words are split only on unquoted whitespace, and text that
 * came from a variable outside quotes is split too (like the shell's field splitting).
 *
 * Which instructions the executor expands (Dockerfile reference): ADD, COPY (sources, dest,
 * --chown, --chmod, --exclude...), ENV and LABEL (keys and values), EXPOSE (expandWords: a
 * variable may hold several ports), FROM (global ARGs only, done by stages.ts), STOPSIGNAL, USER,
 * VOLUME, WORKDIR, ARG defaults, RUN --mount values, and ONBUILD triggers when they run. Each
 * source/dest/key/value is expanded on its own with expandWord; COPY heredoc bodies with
 * expandHeredoc when `expand` is set. RUN, CMD, ENTRYPOINT, SHELL and HEALTHCHECK are not
 * expanded (the shell does it at run time).
 */
import { KilnError } from '../../errors';
import { replacePattern, trimPrefix, trimSuffix } from './shell-pattern';

export type EscapeChar = '\\' | '`';
export type Env = Readonly<Record<string, string>>;

export interface LexOptions {
  escape: string;
  /** keep the quote characters in the result (still honouring what they quote) */
  rawQuotes?: boolean;
  /** keep escape characters in the result */
  rawEscapes?: boolean;
  /** treat quotes as ordinary characters (heredoc bodies) */
  skipProcessQuotes?: boolean;
  /** leave references to unset variables as written */
  skipUnsetEnv?: boolean;
}

/** Expands one word (no splitting): ENV/LABEL keys and values, WORKDIR, USER, COPY sources... */
export function expandWord(word: string, env: Env, escape: EscapeChar = '\\', where?: string): string {
  return run(word, env, { escape }, where).result;
}

/** Expands and splits into words on unquoted whitespace (EXPOSE; a shell-form word list). Empty words are dropped. */
export function expandWords(text: string, env: Env, escape: EscapeChar = '\\', where?: string): string[] {
  return run(text, env, { escape }, where).words;
}

/**
 * Expands a COPY/ADD heredoc body (`<<EOF`, not `<<'EOF'`) as BuildKit does: variables are
 * replaced, quotes are ordinary characters, and `\` (always backslash) escapes the next character.
 */
export function expandHeredoc(content: string, env: Env, where?: string): string {
  return run(content, env, { escape: '\\', skipProcessQuotes: true }, where).result;
}

/** The lexer with explicit options (used by the parser to find heredoc words). Throws E_CONTAINERFILE. */
export function lex(text: string, env: Env, opts: LexOptions, where?: string): { result: string; words: string[] } {
  return run(text, env, opts, where);
}

function run(text: string, env: Env, opts: LexOptions, where?: string): { result: string; words: string[] } {
  try {
    return new ShellWord(text, env, opts).process();
  } catch (e) {
    if (!(e instanceof LexError)) throw e;
    const prefix = where === undefined ? '' : `${where}: `;
    throw new KilnError('E_CONTAINERFILE', `${prefix}failed to process ${JSON.stringify(text)}: ${e.message}`);
  }
}

class LexError extends Error {}

const SPECIAL_PARAMS = new Set(['@', '*', '#', '?', '-', '$', '!', '0']);

/** Go's unicode.IsSpace. */
export function isSpace(ch: string): boolean {
  switch (ch) {
    case ' ':
    case '\t':
    case '\n':
    case '\v':
    case '\f':
    case '\r':
    case '\u0085':
    case '\u00a0':
      return true;
  }
  return ch.codePointAt(0)! > 0xff && /^\p{White_Space}$/u.test(ch);
}

const isLetter = (ch: string) => /^\p{L}$/u.test(ch);
const isDigit = (ch: string) => /^\p{Nd}$/u.test(ch);

/** Accumulates words the way BuildKit's wordsStruct does. */
class Words {
  private buf = '';
  private inWord = false;
  private readonly words: string[] = [];

  addChar(ch: string): void {
    if (isSpace(ch)) {
      if (this.inWord && this.buf.length > 0) {
        this.words.push(this.buf);
        this.buf = '';
        this.inWord = false;
      }
    } else {
      this.addRaw(ch);
    }
  }

  addString(s: string): void {
    for (const ch of s) this.addChar(ch);
  }

  addRaw(s: string): void {
    this.buf += s;
    this.inWord = true;
  }

  get(): string[] {
    if (this.buf.length > 0) {
      this.words.push(this.buf);
      this.buf = '';
      this.inWord = false;
    }
    return this.words;
  }
}

class ShellWord {
  private readonly cps: string[];
  private pos = 0;
  private rawEscapes: boolean;

  constructor(
    text: string,
    private readonly env: Env,
    private readonly opts: LexOptions,
  ) {
    this.cps = Array.from(text);
    this.rawEscapes = opts.rawEscapes ?? false;
  }

  process(): { result: string; words: string[] } {
    return this.processStopOn(undefined, this.rawEscapes);
  }

  private peek(): string | undefined {
    return this.cps[this.pos];
  }

  private next(): string | undefined {
    const ch = this.cps[this.pos];
    if (ch !== undefined) this.pos++;
    return ch;
  }

  private processStopOn(stop: string | undefined, rawEscapes: boolean): { result: string; words: string[] } {
    const saved = this.rawEscapes;
    this.rawEscapes = rawEscapes;
    try {
      let result = '';
      const words = new Words();
      const quotes = !this.opts.skipProcessQuotes;
      for (let ch = this.peek(); ch !== undefined; ch = this.peek()) {
        if (stop !== undefined && ch === stop) {
          this.next();
          return { result, words: words.get() };
        }
        if (ch === '$') {
          const tmp = this.processDollar();
          result += tmp;
          words.addString(tmp);
          continue;
        }
        if (quotes && (ch === "'" || ch === '"')) {
          const tmp = ch === "'" ? this.processSingleQuote() : this.processDoubleQuote();
          result += tmp;
          words.addRaw(tmp);
          continue;
        }
        this.next();
        if (ch === this.opts.escape) {
          if (this.rawEscapes) {
            words.addRaw(ch);
            result += ch;
          }
          const escaped = this.next();
          if (escaped === undefined) break;
          words.addRaw(escaped);
          result += escaped;
        } else {
          words.addChar(ch);
          result += ch;
        }
      }
      if (stop !== undefined) throw new LexError(`unexpected end of statement while looking for matching ${stop}`);
      return { result, words: words.get() };
    } finally {
      this.rawEscapes = saved;
    }
  }

  private processSingleQuote(): string {
    const raw = this.opts.rawQuotes ?? false;
    let result = raw ? this.next()! : (this.next(), '');
    for (;;) {
      const ch = this.next();
      if (ch === undefined) throw new LexError('unexpected end of statement while looking for matching single-quote');
      if (ch === "'") return raw ? result + ch : result;
      result += ch;
    }
  }

  private processDoubleQuote(): string {
    const raw = this.opts.rawQuotes ?? false;
    let result = raw ? this.next()! : (this.next(), '');
    for (;;) {
      const peek = this.peek();
      if (peek === undefined) throw new LexError('unexpected end of statement while looking for matching double-quote');
      if (peek === '"') {
        this.next();
        return raw ? result + '"' : result;
      }
      if (peek === '$') {
        result += this.processDollar();
        continue;
      }
      let ch = this.next()!;
      if (ch === this.opts.escape) {
        if (this.rawEscapes) result += ch;
        const after = this.peek();
        if (after === undefined) continue;
        if (after === '"' || after === '$' || after === this.opts.escape) ch = this.next()!;
      }
      result += ch;
    }
  }

  private lookup(name: string): string | undefined {
    return Object.hasOwn(this.env, name) ? this.env[name] : undefined;
  }

  private processDollar(): string {
    this.next(); // '$'
    if (this.peek() !== '{') {
      const name = this.processName();
      if (name === '') return '$';
      const value = this.lookup(name);
      if (value === undefined && this.opts.skipUnsetEnv) return '$' + name;
      return value ?? '';
    }
    this.next(); // '{'
    const first = this.peek();
    if (first === undefined) throw new LexError("syntax error: missing '}'");
    if (first === '{' || first === '}' || first === ':') throw new LexError('syntax error: bad substitution');
    const name = this.processName();
    let ch = this.next();
    if (ch === undefined) throw new LexError("syntax error: missing '}'");
    let chs = ch;
    if (ch === '}') {
      const value = this.lookup(name);
      if (value === undefined && this.opts.skipUnsetEnv) return '${' + name + '}';
      return value ?? '';
    }
    if (ch === '/') return this.processReplace(name);
    let nullIsUnset = false;
    if (ch === ':') {
      nullIsUnset = true;
      ch = this.next() ?? '';
      chs += ch;
    } else if (!['+', '-', '?', '#', '%'].includes(ch)) {
      throw new LexError(`unsupported modifier (${chs}) in substitution`);
    }
    const patternOp = ch === '#' || ch === '%';
    if (nullIsUnset && patternOp) throw new LexError(`unsupported modifier (${chs}) in substitution`);
    let word = this.stopOnBrace(patternOp);
    const value = this.lookup(name);
    if (value === undefined && this.opts.skipUnsetEnv) return '${' + name + chs + word + '}';
    const unset = value === undefined || (nullIsUnset && value === '');
    switch (ch) {
      case '-':
        return unset ? word : value!;
      case '+':
        return unset ? '' : word;
      case '?':
        if (value === undefined) throw new LexError(`${name}: ${word !== '' ? word : 'is not allowed to be unset'}`);
        if (unset) throw new LexError(`${name}: ${word !== '' ? word : 'is not allowed to be empty'}`);
        return value;
      case '#':
      case '%': {
        let greedy = false;
        if (word.startsWith(ch)) {
          greedy = true;
          word = word.slice(1);
        }
        try {
          return ch === '%' ? trimSuffix(word, value ?? '', greedy) : trimPrefix(word, value ?? '', greedy);
        } catch (e) {
          throw new LexError(`invalid pattern (${word}) in substitution: ${(e as Error).message}`);
        }
      }
      default:
        throw new LexError(`unsupported modifier (${chs}) in substitution`);
    }
  }

  /** `${name/pattern/replacement}` after the first '/'. */
  private processReplace(name: string): string {
    const all = this.peek() === '/';
    if (all) this.next();
    let pattern: string;
    try {
      pattern = this.processStopOn('/', true).result;
    } catch (e) {
      if (e instanceof LexError && this.peek() === undefined) throw new LexError("syntax error: missing '/' in ${}");
      throw e;
    }
    const replacement = this.stopOnBrace(true);
    const value = this.lookup(name);
    if (value === undefined && this.opts.skipUnsetEnv) return '${' + name + '/' + pattern + '/' + replacement + '}';
    try {
      return replacePattern(pattern, value ?? '', replacement, all);
    } catch (e) {
      throw new LexError(`invalid pattern (${pattern}) in substitution: ${(e as Error).message}`);
    }
  }

  private stopOnBrace(rawEscapes: boolean): string {
    try {
      return this.processStopOn('}', rawEscapes).result;
    } catch (e) {
      if (e instanceof LexError && this.peek() === undefined) throw new LexError("syntax error: missing '}'");
      throw e;
    }
  }

  /** A variable name: letters, digits and `_`; or a run of digits; or one special parameter. */
  private processName(): string {
    let name = '';
    for (let ch = this.peek(); ch !== undefined; ch = this.peek()) {
      if (name === '' && isDigit(ch)) {
        while (this.peek() !== undefined && isDigit(this.peek()!)) name += this.next();
        return name;
      }
      if (name === '' && SPECIAL_PARAMS.has(ch)) return this.next()!;
      if (!isLetter(ch) && !isDigit(ch) && ch !== '_') break;
      name += this.next();
    }
    return name;
  }
}
