/**
 * Go's path/filepath.Match, the glob dialect of COPY/ADD sources, for one path component:
 *
 *   `*`       any run of characters (dot files included: Go has no dot-file rule)
 *   `?`       any one character
 *   `[...]`   a class of characters and `lo-hi` ranges; `[^...]` negates
 *   `\c`      the character c itself (also inside classes)
 *
 * Malformed patterns (an unclosed or empty class, a range without an end, a trailing `\`)
 * are reported as such — Go returns ErrBadPattern for exactly these.
 */

/** A compiled component pattern. */
export type ComponentMatcher = (name: string) => boolean;

/** True when `p` has an unescaped `*`, `?` or `[` (fsutil's containsWildcards). */
export function containsWildcards(p: string): boolean {
  for (let i = 0; i < p.length; i++) {
    const ch = p[i];
    if (ch === '\\') i++;
    else if (ch === '*' || ch === '?' || ch === '[') return true;
  }
  return false;
}

/**
 * `ch` as a literal in a `u`-flag regexp: `-` may be escaped only inside a class (`\-` outside
 * one is a SyntaxError there), so it is escaped only when `inClass`.
 */
function reEscape(ch: string, inClass = false): string {
  return /[\\^$.*+?()[\]{}|/]/.test(ch) || (inClass && ch === '-') ? `\\${ch}` : ch;
}

/**
 * Compiles one component pattern (no "/" handling: callers split paths into components);
 * null when the pattern is malformed.
 */
export function compileComponent(pattern: string): ComponentMatcher | null {
  const chars = Array.from(pattern); // code points, as Go decodes runes
  let re = '^';
  let i = 0;
  while (i < chars.length) {
    const ch = chars[i++];
    if (ch === '*') {
      re += '[^/]*';
    } else if (ch === '?') {
      re += '[^/]';
    } else if (ch === '\\') {
      if (i >= chars.length) return null;
      re += reEscape(chars[i++]);
    } else if (ch === '[') {
      let cls = '[';
      if (chars[i] === '^') {
        cls += '^';
        i++;
      }
      let ranges = 0;
      for (;;) {
        if (i >= chars.length) return null;
        if (chars[i] === ']' && ranges > 0) {
          i++;
          break;
        }
        const lo = classChar();
        if (lo === null) return null;
        let hi = lo;
        if (chars[i] === '-') {
          i++;
          const h = classChar();
          if (h === null) return null;
          hi = h;
        }
        // Go accepts an inverted range (lo > hi) and matches nothing with it: leave it out.
        if ((lo.codePointAt(0) as number) <= (hi.codePointAt(0) as number)) {
          cls += lo === hi ? reEscape(lo, true) : `${reEscape(lo, true)}-${reEscape(hi, true)}`;
        }
        ranges++;
      }
      // A class left empty by inverted ranges matches nothing; its negation matches anything.
      re += cls === '[' ? '(?!)' : cls === '[^' ? '[^/]' : `${cls}]`;
    } else {
      re += reEscape(ch);
    }
  }
  const rx = new RegExp(`${re}$`, 'u');
  return (name) => rx.test(name);

  /** One class character (getEsc in Go): not "-" or "]" unescaped, and something must follow. */
  function classChar(): string | null {
    if (i >= chars.length || chars[i] === '-' || chars[i] === ']') return null;
    if (chars[i] === '\\') {
      i++;
      if (i >= chars.length) return null;
    }
    const c = chars[i++];
    if (i >= chars.length) return null;
    return c;
  }
}
