/**
 * Which files a COPY/ADD source list means: `selectSources(root, patterns, opts)`.
 *
 * Contract (BuildKit's Dockerfile frontend with its fsutil copier, which is what Docker does):
 * - Each pattern is a path relative to `root` (the build context or another stage's rootfs); a
 *   leading "/" is allowed and `..` is clamped at the root, so nothing outside can be named.
 * - A pattern with an unescaped `*`, `?` or `[` is a glob (filepath.Match, see glob.ts), also
 *   in directory components. Its matches are listed in lexical order; directories are matched
 *   but never descended into through a symlink. Without wildcards the path is taken literally.
 * - A matched path that is a symlink is followed (inside `root`): the target's content is
 *   copied under the link's name. Inside a copied directory symlinks stay symlinks.
 * - `filter` (.containerignore) hides files from the build context: an ignored file is neither
 *   matched nor copied, and naming an ignored path literally fails as if it did not exist. An
 *   ignored directory stays visible only as the parent of non-ignored paths below it
 *   (`!` exceptions), as Docker sends such parents with the context.
 * - `excludes` (--exclude) use the same pattern semantics (IgnoreMatcher), relative to each copied source: to
 *   the paths inside a copied directory, and to a glob match's path below the glob's first
 *   wildcard-free directories (so `--exclude=*.txt hom*` drops homer.txt). A literally named
 *   source is never excluded itself.
 * - Sockets are skipped (they cannot be copied). Everything else is listed with its lstat.
 * A pattern matching nothing fails with E_BUILD naming `what` and the pattern.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { KilnError } from '../../errors';
import { IgnoreMatcher } from '../frontend/ignore';
import { compileComponent, containsWildcards } from './glob';
import { relativeTo, resolveInRoot } from '../../util/rootpath';

/** What .containerignore / --exclude matching offers (IgnoreMatcher implements it). */
export interface PathFilter {
  ignores(relPath: string, isDir?: boolean): boolean;
  mayIncludeUnder(relDir: string): boolean;
}

/** One thing inside a copied directory. */
export interface Entry {
  /** path below the selected directory, "/"-separated */
  rel: string;
  /** host path */
  path: string;
  st: fs.BigIntStats;
  /** symlink target, for symlinks */
  link?: string;
}

export interface Selected {
  /** the source as written */
  pattern: string;
  /** the matched path relative to root, "/"-separated, "" for the root itself */
  relPath: string;
  /** relPath without the part before a `/./` pivot in the pattern: what --parents recreates */
  parentsRel: string;
  /** host path of what is copied: relPath with symlinks followed inside root */
  realPath: string;
  isDir: boolean;
  /** matched by a glob (several sources then need a directory destination) */
  wildcard: boolean;
  /** lstat of realPath */
  st: fs.BigIntStats;
  /** for a directory: everything below it that is copied, parents before children; else [] */
  entries: Entry[];
}

export interface SelectOptions {
  /** .containerignore, only for the build context; paths relative to root */
  filter?: PathFilter;
  /** --exclude patterns */
  excludes?: string[];
  /** names the instruction in errors: "COPY at Containerfile:7" */
  what: string;
  /** where the sources come from, for errors; default "the build context" */
  sourceName?: string;
}

/** "a/./b/../c" → "a/c": the path below the root that Docker's filepath.Join("/", p) names. */
export function cleanRel(p: string): string {
  return path.posix.normalize(`/${p}`).replace(/^\/+|\/+$/g, '');
}

/** Splits a pattern at its --parents pivot ("x/./y" → x is dropped); the prefix is cleaned. */
function splitPivot(pattern: string): { prefix: string; full: string } {
  const body = pattern.replace(/^(\.?\/)+/, '');
  const at = body.indexOf('/./');
  const full = cleanRel(pattern);
  if (at < 0) return { prefix: '', full };
  return { prefix: cleanRel(body.slice(0, at)), full };
}

function stripPrefix(rel: string, prefix: string): string {
  if (prefix === '') return rel;
  if (rel === prefix) return '';
  return rel.startsWith(`${prefix}/`) ? rel.slice(prefix.length + 1) : rel;
}

const BIG = { bigint: true } as const;
const YIELD_EVERY = 2000;

function lstat(p: string): fs.BigIntStats | undefined {
  try {
    return fs.lstatSync(p, { ...BIG, throwIfNoEntry: false });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw e;
  }
}

function join(a: string, b: string): string {
  return a === '' ? b : b === '' ? a : `${a}/${b}`;
}

/** True when `rel` (relative to the filter's root) is hidden by `f`, parents included. */
function hidden(f: PathFilter | undefined, rel: string, isDir: boolean): boolean {
  if (!f || rel === '') return false;
  const parts = rel.split('/');
  for (let i = 1; i < parts.length; i++) {
    const dir = parts.slice(0, i).join('/');
    if (f.ignores(dir, true) && !f.mayIncludeUnder(dir)) return true;
  }
  return f.ignores(rel, isDir) && !(isDir && f.mayIncludeUnder(rel));
}

export async function selectSources(root: string, patterns: string[], opts: SelectOptions): Promise<Selected[]> {
  const base = path.resolve(root);
  const excl = opts.excludes && opts.excludes.length > 0 ? new IgnoreMatcher(opts.excludes) : undefined;
  const out: Selected[] = [];
  for (const pattern of patterns) {
    const { prefix, full } = splitPivot(pattern);
    const found: { rel: string; wildcard: boolean }[] = [];
    if (!containsWildcards(full)) {
      found.push({ rel: full, wildcard: false });
    } else {
      for (const rel of globMatches(base, full, opts, excl)) found.push({ rel, wildcard: true });
      if (found.length === 0) throw new KilnError('E_BUILD', `${opts.what}: no source files were specified`, { hint: `nothing in the source matches ${JSON.stringify(pattern)}` });
    }
    for (const { rel, wildcard } of found) {
      const realPath = resolveInRoot(base, rel, { followLast: true });
      const realRel = relativeTo(base, realPath);
      const st = lstat(realPath);
      const isDir = st?.isDirectory() ?? false;
      const invisible = hidden(opts.filter, rel, isDir) || hidden(opts.filter, realRel, isDir);
      if (!st || invisible) {
        const where = opts.sourceName ?? 'the build context';
        const ignored = opts.filter ? ' (or excluded by .containerignore)' : '';
        throw new KilnError('E_BUILD', `${opts.what}: "${wildcard ? rel : pattern}": no such file or directory in ${where}${ignored}`, {
          hint: st ? `${JSON.stringify(rel)} exists but .containerignore excludes it` : undefined,
        });
      }
      if (st.isSocket()) throw new KilnError('E_BUILD', `${opts.what}: "${rel}" is a socket, which cannot be copied`);
      const entries = isDir ? await walk(realPath, realRel, opts.filter, excl) : [];
      out.push({ pattern, relPath: rel, parentsRel: stripPrefix(rel, prefix), realPath, isDir, wildcard, st, entries });
    }
  }
  return out;
}

/**
 * Matches of a glob below root: the wildcard-free leading components are resolved (symlinks
 * followed), then each remaining component is matched against directory listings. Ignored
 * paths are invisible; excluded ones (relative to the wildcard-free part) are dropped.
 */
function globMatches(base: string, full: string, opts: SelectOptions, excl: PathFilter | undefined): string[] {
  const parts = full.split('/');
  const first = parts.findIndex((c) => containsWildcards(c));
  const start = relativeTo(base, resolveInRoot(base, parts.slice(0, first).join('/'), { followLast: true }));
  const comps = parts.slice(first).map((c) => {
    const m = compileComponent(c);
    if (!m) throw new KilnError('E_BUILD', `${opts.what}: bad glob pattern ${JSON.stringify(full)}`, { hint: 'see Go filepath.Match: * ? [a-z] [^a-z] and \\ escapes' });
    return m;
  });
  let level: string[] = [start];
  for (let i = 0; i < comps.length; i++) {
    const next: string[] = [];
    const last = i === comps.length - 1;
    for (const dir of level) {
      const host = path.join(base, dir);
      const st = lstat(host);
      if (!st?.isDirectory()) continue;
      for (const name of fs.readdirSync(host).sort()) {
        if (!comps[i](name)) continue;
        const rel = join(dir, name);
        const est = lstat(path.join(base, rel));
        if (!est) continue;
        const isDir = est.isDirectory();
        if (hidden(opts.filter, rel, isDir)) continue;
        if (last && excl && hidden(excl, stripPrefix(rel, start), isDir)) continue;
        if (last || isDir) next.push(rel);
      }
    }
    level = next;
  }
  return level;
}

/**
 * Everything below directory `dir` (host path; `filterRel` is its path relative to the
 * filter's root), parents first, each directory's children in name order.
 */
async function walk(dir: string, filterRel: string, filter: PathFilter | undefined, excl: PathFilter | undefined): Promise<Entry[]> {
  const out: Entry[] = [];
  let sinceYield = 0;
  const visit = async (hostDir: string, rel: string): Promise<void> => {
    // Synchronous syscalls are several times faster than promise-based ones for many small
    // directories; yielding every YIELD_EVERY entries keeps the event loop responsive.
    if ((sinceYield += 1) >= YIELD_EVERY) {
      sinceYield = 0;
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    const names = fs.readdirSync(hostDir).sort();
    for (let i = 0; i < names.length; i++) {
      sinceYield++;
      const st = fs.lstatSync(path.join(hostDir, names[i]), BIG);
      if (st.isSocket()) continue;
      const r = join(rel, names[i]);
      const p = path.join(hostDir, names[i]);
      const isDir = st.isDirectory();
      const fr = join(filterRel, r);
      const byFilter = filter?.ignores(fr, isDir) ?? false;
      const byExcl = excl?.ignores(r, isDir) ?? false;
      const entry: Entry = { rel: r, path: p, st };
      if (st.isSymbolicLink()) entry.link = fs.readlinkSync(p);
      if (!byFilter && !byExcl) {
        out.push(entry);
        if (isDir) await visit(p, r);
        continue;
      }
      // An ignored directory may still hold exceptions: it is kept as their parent only.
      if (!isDir || (byFilter && !filter?.mayIncludeUnder(fr)) || (byExcl && !excl?.mayIncludeUnder(r))) continue;
      const at = out.length;
      out.push(entry);
      await visit(p, r);
      if (out.length === at + 1) out.pop();
    }
  };
  await visit(dir, '');
  return out;
}
