/**
 * The shell patterns of `${a#pat}`, `${a%pat}` and `${a/pat/repl}` as BuildKit's lexer
 * implements them: `*` (shortest or longest run), `?` (one character), `\*` `\?` `\\` literal,
 * `\}` and `\/` drop the backslash; no bracket expressions. Errors are plain `Error`s whose
 * message the caller wraps.
 */

const REGEX_SPECIAL = new Set(['[', ']', '{', '}', '.', '+', '(', ')', '|', '^', '$']);

/** Compiles a shell pattern; `greedy` picks `.*` over `.*?` for `*`, `anchored` matches at the start only. */
export function shellPatternToRegex(pattern: string, greedy: boolean, anchored: boolean): RegExp {
  const cps = Array.from(pattern);
  let out = anchored ? '^' : '';
  for (let i = 0; i < cps.length; i++) {
    let tok = cps[i]!;
    if (tok === '*') {
      out += greedy ? '.*' : '.*?';
      continue;
    }
    if (tok === '?') {
      out += '.';
      continue;
    }
    if (tok === '\\') {
      const peek = cps[i + 1];
      // `}` and `/` are escaped only to get them past the ${} parser
      if (peek === '}' || peek === '/') continue;
      i++;
      tok = cps[i] ?? '';
      if (tok !== '*' && tok !== '?' && tok !== '\\') throw new Error(`invalid escape '\\${tok}'`);
      out += '\\' + tok;
      continue;
    }
    out += REGEX_SPECIAL.has(tok) ? '\\' + tok : tok;
  }
  return new RegExp(out, 'u');
}

/** `${value#pattern}` (shortest) or `${value##pattern}` (greedy). */
export function trimPrefix(pattern: string, value: string, greedy: boolean): string {
  const m = shellPatternToRegex(pattern, greedy, true).exec(value);
  return m ? value.slice(m.index + m[0].length) : value;
}

/** `${value%pattern}` / `${value%%pattern}`: the same search on the reversed pattern and value. */
export function trimSuffix(pattern: string, value: string, greedy: boolean): string {
  return reverse(trimPrefix(reversePattern(pattern), reverse(value), greedy));
}

/** `${value/pattern/replacement}` (first match) or `${value//pattern/replacement}` (all). */
export function replacePattern(pattern: string, value: string, replacement: string, all: boolean): string {
  const re = shellPatternToRegex(pattern, true, false);
  if (!all) {
    const m = re.exec(value);
    return m ? value.slice(0, m.index) + replacement + value.slice(m.index + m[0].length) : value;
  }
  return value.replace(new RegExp(re.source, 'gu'), () => replacement);
}

function reverse(s: string): string {
  return Array.from(s).reverse().join('');
}

/** Reverses a pattern keeping each `\x` escape pair in order (a\*c → c\*a). */
function reversePattern(pattern: string): string {
  const cps = Array.from(pattern);
  const out: string[] = new Array<string>(cps.length);
  const last = cps.length - 1;
  for (let i = 0; i <= last; ) {
    const tok = cps[i]!;
    const o = last - i;
    if (tok === '\\' && i !== last) {
      out[o - 1] = tok;
      out[o] = cps[i + 1]!;
      i += 2;
    } else {
      out[o] = tok;
      i++;
    }
  }
  return out.join('');
}
