/**
 * The embedded default base image: a deterministic busybox rootfs tarball.
 *
 * Built from Debian's busybox-static (/bin/busybox): the binary, one symlink per applet
 * (`busybox --list-full`), a minimal /etc/passwd and /etc/group and the usual empty
 * directories. Every entry has uid/gid 0, a fixed mtime (SOURCE_DATE_EPOCH or 0) and the
 * entries are sorted, so the same busybox always gives the same bytes.
 *
 *   node dist/src/base/busybox-rootfs.js OUT.tar
 *   kiln import --change 'CMD ["/bin/sh"]' OUT.tar localhost/busybox:latest
 */
import { execFileSync } from 'node:child_process';
import { createWriteStream, promises as fsp } from 'node:fs';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import * as tar from 'tar-stream';

export const DEFAULT_BUSYBOX = '/bin/busybox';

export interface BusyboxRootfsOptions {
  /** Static busybox binary to embed (default /bin/busybox). */
  busybox?: string;
  /** mtime for every entry, seconds since the epoch (default $SOURCE_DATE_EPOCH or 0). */
  mtime?: number;
}

type Entry =
  | { name: string; type: 'directory'; mode: number }
  | { name: string; type: 'file'; mode: number; data: Buffer }
  | { name: string; type: 'symlink'; linkname: string };

const PASSWD = 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n';
const GROUP = 'root:x:0:\nnobody:x:65534:\n';

const DIRS: ReadonlyArray<[string, number]> = [
  ['bin', 0o755], ['dev', 0o755], ['etc', 0o755], ['home', 0o755], ['proc', 0o755],
  ['root', 0o700], ['sbin', 0o755], ['sys', 0o755], ['tmp', 0o1777], ['usr', 0o755],
  ['usr/bin', 0o755], ['usr/sbin', 0o755], ['var', 0o755], ['var/tmp', 0o1777],
];

function defaultMtime(): number {
  const s = process.env.SOURCE_DATE_EPOCH;
  if (s !== undefined && /^\d+$/.test(s)) return Number(s);
  return 0;
}

/** Applet paths relative to / (e.g. "bin/sh"), excluding bin/busybox itself. */
export function listApplets(busybox: string = DEFAULT_BUSYBOX): string[] {
  const out = execFileSync(busybox, ['--list-full'], { encoding: 'utf8' });
  const applets = new Set<string>();
  for (const raw of out.split('\n')) {
    const p = raw.trim().replace(/^\/+/, '');
    if (p === '' || p === 'bin/busybox') continue;
    if (p.split('/').some((c) => c === '' || c === '.' || c === '..')) {
      throw new Error(`busybox --list-full: refusing odd applet path ${JSON.stringify(raw)}`);
    }
    applets.add(p);
  }
  return [...applets];
}

/** All entries of the rootfs, sorted by name, parents before children. */
export async function busyboxRootfsEntries(opts: BusyboxRootfsOptions = {}): Promise<Entry[]> {
  const busybox = opts.busybox ?? DEFAULT_BUSYBOX;
  const data = await fsp.readFile(busybox);
  const entries = new Map<string, Entry>();
  const addDir = (name: string, mode = 0o755): void => {
    if (!entries.has(name)) entries.set(name, { name, type: 'directory', mode });
  };
  const addParents = (name: string): void => {
    const parts = name.split('/');
    for (let i = 1; i < parts.length; i++) addDir(parts.slice(0, i).join('/'));
  };
  for (const [d, mode] of DIRS) addDir(d, mode);
  entries.set('bin/busybox', { name: 'bin/busybox', type: 'file', mode: 0o755, data });
  entries.set('etc/passwd', { name: 'etc/passwd', type: 'file', mode: 0o644, data: Buffer.from(PASSWD) });
  entries.set('etc/group', { name: 'etc/group', type: 'file', mode: 0o644, data: Buffer.from(GROUP) });
  for (const a of listApplets(busybox)) {
    addParents(a);
    if (!entries.has(a)) entries.set(a, { name: a, type: 'symlink', linkname: '/bin/busybox' });
  }
  // Byte-wise sort: a parent ("usr") always sorts before its children ("usr/bin").
  return [...entries.values()].sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
}

/** Write the deterministic busybox rootfs tar to outPath (atomically, via a temp file). */
export async function writeBusyboxRootfs(outPath: string, opts: BusyboxRootfsOptions = {}): Promise<void> {
  const entries = await busyboxRootfsEntries(opts);
  const mtime = new Date((opts.mtime ?? defaultMtime()) * 1000);
  const tmp = path.join(path.dirname(path.resolve(outPath)), `.${path.basename(outPath)}.${process.pid}.tmp`);
  const pack = tar.pack();
  const done = pipeline(pack, createWriteStream(tmp, { mode: 0o644 }));
  try {
    for (const e of entries) {
      const common = { name: e.name, uid: 0, gid: 0, uname: '', gname: '', mtime };
      await new Promise<void>((resolve, reject) => {
        const cb = (err?: Error | null): void => (err ? reject(err) : resolve());
        if (e.type === 'file') pack.entry({ ...common, type: 'file', mode: e.mode, size: e.data.length }, e.data, cb);
        else if (e.type === 'directory') pack.entry({ ...common, type: 'directory', mode: e.mode }, cb);
        else pack.entry({ ...common, type: 'symlink', mode: 0o777, linkname: e.linkname }, cb);
      });
    }
    pack.finalize();
    await done;
    await fsp.rename(tmp, outPath);
  } catch (err) {
    pack.destroy();
    await done.catch(() => undefined);
    await fsp.rm(tmp, { force: true });
    throw err;
  }
}

if (require.main === module) {
  const out = process.argv[2];
  if (!out || process.argv.length > 3) {
    process.stderr.write('usage: node dist/src/base/busybox-rootfs.js OUT.tar\n');
    process.exit(2);
  }
  writeBusyboxRootfs(out).catch((err: unknown) => {
    process.stderr.write(`busybox-rootfs: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
