/**
 * .containerignore / .dockerignore, with the semantics of moby/buildkit's dockerignore.ReadAll
 * and moby/patternmatcher:
 * - one pattern a line; lines starting with `#` are comments; blank lines are skipped;
 * - a pattern is trimmed and path-cleaned (`./a//b/` → `a/b`), a leading `/` is dropped;
 * - `*` matches any run of non-`/` characters, `?` one non-`/` character, `[a-z]` a class,
 *   `\x` escapes, `**` any number of directories (also none);
 * - `!pattern` re-includes what an earlier pattern excluded; the last matching pattern wins;
 * - a path is ignored when it or one of its parent directories matches (so `dir` ignores
 *   everything below `dir`).
 * Paths given to the matcher are relative to the context, `/`-separated, without `./`.
 */
import * as path from 'node:path';
import { KilnError } from '../../errors';

/** Parses ignore-file text into patterns (exceptions keep their leading `!`). */
export function parseIgnoreFile(text: string): string[] {
  const out: string[] = [];
  const lines = (text.startsWith('\ufeff') ? text.slice(1) : text).split('\n');
  for (const line of lines) {
    if (line.startsWith('#')) continue;
    let p = line.trim();
    if (p === '') continue;
    const invert = p.startsWith('!');
    if (invert) p = p.slice(1).trim();
    if (p.length > 0) {
      p = cleanPath(p);
      if (p.length > 1 && p.startsWith('/')) p = p.slice(1);
    }
    out.push(invert ? '!' + p : p);
  }
  return out;
}

/**
 * The ignore files to look for, in order of preference: `<Containerfile>.containerignore`,
 * `<Containerfile>.dockerignore` (next to the Containerfile), then `.containerignore` and
 * `.dockerignore` in the context directory. The caller uses the first that exists.
 */
export function ignoreFileCandidates(containerfilePath: string, contextDir: string): string[] {
  return [`${containerfilePath}.containerignore`, `${containerfilePath}.dockerignore`, path.join(contextDir, '.containerignore'), path.join(contextDir, '.dockerignore')];
}

type MatchType = 'exact' | 'prefix' | 'suffix' | 'regexp';

interface Pattern {
  exclusion: boolean;
  cleaned: string;
  type: MatchType;
  regexp?: RegExp;
  /** the pattern's path components, for mayIncludeUnder */
  dirs: string[];
  /** dirs compiled by componentRegex, filled in as mayIncludeUnder needs them */
  dirRes: RegExp[];
}

export class IgnoreMatcher {
  private readonly patterns: Pattern[];
  readonly hasExceptions: boolean;

  /** `patterns` as parseIgnoreFile returns them (COPY --exclude values work too). */
  constructor(patterns: string[]) {
    this.patterns = [];
    for (const raw of patterns) {
      let p = raw.trim();
      if (p === '') continue;
      p = cleanPath(p);
      const exclusion = p.startsWith('!');
      if (exclusion) {
        if (p.length === 1) throw new KilnError('E_INVALID_ARGUMENT', 'illegal exclusion pattern: "!"');
        p = p.slice(1);
      }
      this.patterns.push({ exclusion, cleaned: p, dirs: p.split('/'), dirRes: [], ...compile(p) });
    }
    this.hasExceptions = this.patterns.some((p) => p.exclusion);
  }

  /** Whether `relPath` is excluded from the context (patternmatcher's MatchesOrParentMatches). */
  ignores(relPath: string, _isDir = false): boolean {
    const file = cleanPath(relPath);
    const parent = path.posix.dirname(file);
    const parentDirs = parent === '.' ? [] : parent.split('/');
    let matched = false;
    for (const p of this.patterns) {
      // an inclusion cannot change an already-matched path, nor an exclusion an unmatched one
      if (p.exclusion !== matched) continue;
      let match = matchPattern(p, file);
      for (let i = 0; !match && i < parentDirs.length; i++) match = matchPattern(p, parentDirs.slice(0, i + 1).join('/'));
      if (match) matched = !p.exclusion;
    }
    return matched;
  }

  /**
   * For an ignored directory: whether some `!` exception could re-include something below it,
   * so that a walker must still descend into it. Conservative: true when unsure (`**`).
   */
  mayIncludeUnder(relDir: string): boolean {
    const dir = cleanPath(relDir);
    const dirs = dir === '.' ? [] : dir.split('/');
    return this.patterns.some((p) => {
      if (!p.exclusion) return false;
      for (let i = 0; i < p.dirs.length; i++) {
        const part = p.dirs[i]!;
        if (part.includes('**')) return true;
        if (i >= dirs.length) return true; // the pattern goes deeper than dir and matched so far
        if (!(p.dirRes[i] ??= componentRegex(part)).test(dirs[i]!)) return false;
      }
      return true; // the exception matches dir or one of its parents
    });
  }
}

/** Go's path.Clean for `/`-separated paths (also turns "" into "."). */
function cleanPath(p: string): string {
  const abs = p.startsWith('/');
  const out: string[] = [];
  for (const part of p.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (out.length > 0 && out[out.length - 1] !== '..') out.pop();
      else if (!abs) out.push('..');
      continue;
    }
    out.push(part);
  }
  const joined = out.join('/');
  return abs ? '/' + joined : joined === '' ? '.' : joined;
}

/**
 * Translates a pattern to patternmatcher's match type (and regexp), as Pattern.compile does:
 * plain patterns compare exactly, `dir/**` by prefix, a leading `**` (then `/name`) by suffix,
 * the rest by regexp.
 */
function compile(pattern: string): { type: MatchType; regexp?: RegExp } {
  let re = '^';
  let type: MatchType = 'exact';
  let inClass = false;
  const cps = Array.from(pattern);
  for (let i = 0; i < cps.length; i++) {
    const ch = cps[i]!;
    if (ch === '*' && cps[i + 1] === '*') {
      const first = i === 0;
      i++;
      if (cps[i + 1] === '/') i++; // treat **/ as **
      if (i + 1 >= cps.length) {
        // a trailing ** matches everything below, like .gitignore
        if (type === 'exact') type = 'prefix';
        else {
          re += '.*';
          type = 'regexp';
        }
      } else {
        re += '(.*/)?';
        type = 'regexp';
      }
      if (first) type = 'suffix';
    } else if (ch === '*') {
      re += '[^/]*';
      type = 'regexp';
    } else if (ch === '?') {
      re += '[^/]';
      type = 'regexp';
    } else if ('.+()|{}$'.includes(ch)) {
      re += '\\' + ch;
    } else if (ch === '\\') {
      if (i + 1 < cps.length) {
        re += '\\' + cps[++i]!;
        type = 'regexp';
      } else {
        re += '\\\\';
      }
    } else if (ch === '[' || ch === ']') {
      inClass = ch === '[';
      re += ch;
      type = 'regexp';
    } else {
      // a literal ^ (Go would keep it as an anchor that never matches)
      re += ch === '^' && !inClass ? '\\^' : ch;
    }
  }
  if (type !== 'regexp') return { type };
  try {
    return { type, regexp: new RegExp(re + '$') };
  } catch (e) {
    throw new KilnError('E_INVALID_ARGUMENT', `invalid ignore pattern ${JSON.stringify(pattern)}: ${(e as Error).message}`);
  }
}

function matchPattern(p: Pattern, file: string): boolean {
  switch (p.type) {
    case 'exact':
      return file === p.cleaned;
    case 'prefix':
      return file.startsWith(p.cleaned.slice(0, -2));
    case 'suffix': {
      const suffix = p.cleaned.slice(2);
      if (file.endsWith(suffix)) return true;
      return suffix.startsWith('/') && file === suffix.slice(1);
    }
    case 'regexp':
      return p.regexp!.test(file);
  }
}

/** One path component of a pattern as an anchored regexp (for mayIncludeUnder). */
function componentRegex(part: string): RegExp {
  const { type, regexp } = compile(part);
  if (type === 'regexp') return regexp!;
  return new RegExp('^' + part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') + '$');
}
