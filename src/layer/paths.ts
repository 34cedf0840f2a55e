/**
 * Lexical helpers for layer tar entries (names, link targets, PAX records). Nothing here
 * touches the filesystem.
 *
 * Tar entry names are root-relative POSIX paths. `splitEntryPath` turns one into its components
 * ("./a//b/" → ["a", "b"]) and reports — instead of silently fixing — what makes a name unsafe:
 * an absolute name, a `..` component, or a NUL byte. `resolveLinkTarget` evaluates a relative
 * symlink target lexically from the link's directory and says whether it climbs above the layer
 * root. `PaxRecorder` keeps the raw bytes of PAX records that tar-stream would decode as UTF-8.
 */

export type SplitResult =
  | { ok: true; parts: string[] }
  | { ok: false; rule: string };

/** Splits a tar entry name into components. Empty and "." components are dropped. */
export function splitEntryPath(name: string): SplitResult {
  if (name.includes('\0')) return { ok: false, rule: 'the name contains a NUL byte' };
  if (name.startsWith('/')) return { ok: false, rule: 'absolute entry paths are not allowed' };
  const parts: string[] = [];
  for (const c of name.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') return { ok: false, rule: 'a ".." path component would leave the layer directory' };
    parts.push(c);
  }
  return { ok: true, parts };
}

/**
 * Resolves the relative symlink `target`, found in directory `dirParts` (root-relative
 * components), lexically. Returns the resulting root-relative components, or null when the
 * target climbs above the layer root. Absolute targets are not this function's business.
 */
export function resolveLinkTarget(dirParts: readonly string[], target: string): string[] | null {
  const out = [...dirParts];
  for (const c of target.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') {
      if (out.length === 0) return null;
      out.pop();
    } else {
      out.push(c);
    }
  }
  return out;
}

/** True when `p` equals `dir` or lies below it (both root-relative, "/"-joined, no trailing "/"). */
export function isSameOrBelow(p: string, dir: string): boolean {
  return dir === '' || p === dir || p.startsWith(dir + '/');
}

/**
 * tar-stream decodes PAX records as UTF-8 strings, which mangles binary xattr values such as
 * security.capability. This hooks the extractor instance's PAX decoding to keep the raw bytes of
 * each record (same record rules as tar-stream; a local header replaces the previous local one
 * and is merged over the global one). If tar-stream's internals change, it falls back to the
 * decoded strings (UTF-8 values still round-trip; the layer tests would catch the regression).
 */
export class PaxRecorder {
  private local: Map<string, Buffer> | null = null;
  private global: Map<string, Buffer> | null = null;
  private readonly hooked: boolean;

  constructor(ex: unknown) {
    const x = ex as { _decodeLongHeader?: (buf: Buffer) => unknown; _header?: { type?: string } | null };
    const orig = x._decodeLongHeader;
    this.hooked = typeof orig === 'function';
    if (!orig) return;
    const rec = (type: string | undefined, buf: Buffer) => {
      if (type === 'pax-header') this.local = parsePax(buf);
      else if (type === 'pax-global-header') this.global = parsePax(buf);
    };
    x._decodeLongHeader = function (this: typeof x, buf: Buffer) {
      rec(this._header?.type, buf);
      return orig.call(this, buf);
    };
  }

  /** The xattrs (name → raw value) of the entry just emitted, whose decoded PAX map is `pax`. */
  take(pax: Record<string, string> | null): Map<string, Buffer> | null {
    let recs: Map<string, Buffer> | null;
    if (this.hooked) {
      recs = this.global || this.local ? new Map([...(this.global ?? []), ...(this.local ?? [])]) : null;
      this.local = null;
    } else {
      recs = pax ? new Map(Object.entries(pax).map(([k, v]) => [k, Buffer.from(v, 'utf8')])) : null;
    }
    if (!recs) return null;
    const xs = new Map<string, Buffer>();
    for (const [k, v] of recs) {
      if (k.startsWith('SCHILY.xattr.')) xs.set(k.slice(13), v);
    }
    for (const [k, v] of recs) {
      if (!k.startsWith('LIBARCHIVE.xattr.')) continue;
      let n: string;
      try {
        n = decodeURIComponent(k.slice(17));
      } catch {
        continue;
      }
      if (!xs.has(n)) xs.set(n, Buffer.from(v.toString('latin1'), 'base64'));
    }
    return xs.size ? xs : null;
  }
}

/** PAX records "<len> <key>=<value>\n" → key → raw value bytes. Stops at the first malformed record. */
function parsePax(buf: Buffer): Map<string, Buffer> {
  const out = new Map<string, Buffer>();
  while (buf.length) {
    const sp = buf.indexOf(0x20);
    const len = sp > 0 ? Number(buf.subarray(0, sp).toString('latin1')) : NaN;
    if (!Number.isSafeInteger(len) || len <= sp + 1 || len > buf.length) break;
    const rec = buf.subarray(sp + 1, len - 1);
    const eq = rec.indexOf(0x3d);
    if (eq === -1) break;
    out.set(rec.subarray(0, eq).toString('utf8'), Buffer.from(rec.subarray(eq + 1)));
    buf = buf.subarray(len);
  }
  return out;
}
