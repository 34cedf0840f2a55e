/**
 * Hostile layer tars. Each fixture is a function of `outside`, the absolute path of a sentinel
 * directory next to the extraction directory: tests generate the tars with their own temp
 * paths, so a regression could only ever touch the test's temp dir, never /etc. Relative
 * escapes assume the layout TMP/dest (extraction) + TMP/outside (sentinel, holding `secret`).
 *
 * The committed copies in fixtures/tars/hostile/ are generated with outside = DEFAULT_OUTSIDE
 * for review (`node dist/test/helpers/tar-fixtures.js` rewrites them; a test checks they match).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ApplyOptions } from '../../src/layer/apply';
import { END, buildTar, padded, paxBlock, rawHeader } from './tar-build';

export const DEFAULT_OUTSIDE = '/tmp/kiln-hostile-outside';

export interface HostileFixture {
  file: string;
  why: string;
  code: 'E_HOSTILE_TAR' | 'E_BAD_ARCHIVE';
  /** (part of) the entry name the error message must quote, JSON-escaped as in the message */
  entry: string;
  opts?: ApplyOptions;
  build(outside: string): Promise<Buffer>;
}

function raw(...blocks: Buffer[]): Promise<Buffer> {
  return Promise.resolve(Buffer.concat(blocks));
}

/** 2^63 (8 EiB) as a base-256 size field. */
function base256EiB(): Buffer {
  const f = Buffer.alloc(12);
  f[0] = 0x80;
  f[4] = 0x80; // bytes 1..11 hold the big-endian value: 0x80 followed by 7 zero bytes = 2^63
  return f;
}

export const HOSTILE: HostileFixture[] = [
  {
    file: 'dotdot.tar',
    why: 'a ".." path escaping the layer directory',
    code: 'E_HOSTILE_TAR',
    entry: '../outside/pwned',
    build: () => buildTar([{ name: '../outside/pwned', data: 'pwned\n' }]),
  },
  {
    file: 'dotdot-nested.tar',
    why: 'a ".." hidden in the middle of a path',
    code: 'E_HOSTILE_TAR',
    entry: 'a/../../outside/pwned',
    build: () => buildTar([{ name: 'a/', type: 'directory' }, { name: 'a/../../outside/pwned', data: 'pwned\n' }]),
  },
  {
    file: 'absolute.tar',
    why: 'an absolute entry path',
    code: 'E_HOSTILE_TAR',
    entry: '/outside/pwned',
    build: (o) => buildTar([{ name: `${o}/pwned`, data: 'pwned\n' }]),
  },
  {
    file: 'pax-path-dotdot.tar',
    why: 'an innocent ustar name overridden by a PAX path with ".."',
    code: 'E_HOSTILE_TAR',
    entry: '../outside/pwned',
    build: () => raw(paxBlock([['path', '../outside/pwned']]), rawHeader({ name: 'innocent', type: '0', size: 6 }), padded(Buffer.from('pwned\n')), END),
  },
  {
    file: 'nul-in-name.tar',
    why: 'a NUL byte in a (PAX) name',
    code: 'E_HOSTILE_TAR',
    entry: 'ok\u0000/../../outside/pwned',
    build: () => raw(paxBlock([['path', 'ok\u0000/../../outside/pwned']]), rawHeader({ name: 'ok', type: '0', size: 0 }), END),
  },
  {
    file: 'symlink-write-through.tar',
    why: 'an (allowed) absolute symlink, then a file written through it',
    code: 'E_HOSTILE_TAR',
    entry: 'lnk/pwned',
    build: (o) => buildTar([{ name: 'lnk', type: 'symlink', linkname: o }, { name: 'lnk/pwned', data: 'pwned\n' }]),
  },
  {
    file: 'symlink-relative-escape.tar',
    why: 'a relative symlink target climbing above the layer root',
    code: 'E_HOSTILE_TAR',
    entry: 'sub/esc',
    build: () => buildTar([{ name: 'sub/', type: 'directory' }, { name: 'sub/esc', type: 'symlink', linkname: '../../outside' }]),
  },
  {
    file: 'dir-replaced-by-symlink.tar',
    why: 'a directory replaced by a symlink, then written under',
    code: 'E_HOSTILE_TAR',
    entry: 'd/pwned',
    build: (o) =>
      buildTar([
        { name: 'd/', type: 'directory' },
        { name: 'd/ok', data: 'ok\n' },
        { name: 'd', type: 'symlink', linkname: o },
        { name: 'd/pwned', data: 'pwned\n' },
      ]),
  },
  {
    file: 'dir-replaced-by-symlink-deep.tar',
    why: 'a verified parent (cached) replaced by a symlink, then a nested dir written under it',
    code: 'E_HOSTILE_TAR',
    entry: 'd/e/pwned',
    build: (o) =>
      buildTar([
        { name: 'd/e/ok', data: 'ok\n' },
        { name: 'd', type: 'symlink', linkname: o },
        { name: 'd/e/pwned', data: 'pwned\n' },
      ]),
  },
  {
    file: 'hardlink-dotdot.tar',
    why: 'a hardlink to ../outside/secret',
    code: 'E_HOSTILE_TAR',
    entry: 'hl',
    build: () => buildTar([{ name: 'hl', type: 'link', linkname: '../outside/secret' }]),
  },
  {
    file: 'hardlink-absolute.tar',
    why: 'a hardlink to an absolute path',
    code: 'E_HOSTILE_TAR',
    entry: 'hl',
    build: (o) => buildTar([{ name: 'hl', type: 'link', linkname: `${o}/secret` }]),
  },
  {
    file: 'hardlink-missing.tar',
    why: 'a hardlink to a target that does not exist (yet) in this layer',
    code: 'E_HOSTILE_TAR',
    entry: 'hl',
    build: () => buildTar([{ name: 'hl', type: 'link', linkname: 'later' }, { name: 'later', data: 'x' }]),
  },
  {
    file: 'hardlink-through-symlink.tar',
    why: 'a hardlink whose target path goes through a symlink leading out',
    code: 'E_HOSTILE_TAR',
    entry: 'hl',
    build: (o) => buildTar([{ name: 'lnk', type: 'symlink', linkname: o }, { name: 'hl', type: 'link', linkname: 'lnk/secret' }]),
  },
  {
    file: 'hardlink-to-dir.tar',
    why: 'a hardlink to a directory',
    code: 'E_HOSTILE_TAR',
    entry: 'hl',
    build: () => buildTar([{ name: 'd/', type: 'directory' }, { name: 'hl', type: 'link', linkname: 'd' }]),
  },
  {
    file: 'device-char.tar',
    why: 'a char device (1:3) while devices are not allowed',
    code: 'E_HOSTILE_TAR',
    entry: 'null',
    opts: { allowDevices: false },
    build: () => buildTar([{ name: 'null', type: 'character-device', devmajor: 1, devminor: 3, mode: 0o666 }]),
  },
  {
    file: 'device-block.tar',
    why: 'a block device (8:0) while devices are not allowed',
    code: 'E_HOSTILE_TAR',
    entry: 'sda',
    opts: { allowDevices: false },
    build: () => buildTar([{ name: 'sda', type: 'block-device', devmajor: 8, devminor: 0, mode: 0o660 }]),
  },
  {
    file: 'absurd-size.tar',
    why: 'an 8 EiB base-256 size field',
    code: 'E_HOSTILE_TAR',
    entry: 'huge',
    build: () => raw(rawHeader({ name: 'huge', type: '0', sizeField: base256EiB() }), END),
  },
  {
    file: 'entry-over-limit.tar',
    why: 'an entry one byte above maxEntrySize',
    code: 'E_HOSTILE_TAR',
    entry: 'big',
    opts: { maxEntrySize: 1024 },
    build: () => buildTar([{ name: 'big', data: Buffer.alloc(1025, 0x61) }]),
  },
  {
    file: 'total-over-limit.tar',
    why: 'entries whose sum exceeds maxTotalSize',
    code: 'E_HOSTILE_TAR',
    entry: 'c',
    opts: { maxTotalSize: 1500 },
    build: () => buildTar(['a', 'b', 'c'].map((n) => ({ name: n, data: Buffer.alloc(600, 0x61) }))),
  },
  {
    file: 'too-many-entries.tar',
    why: 'more entries than maxEntries',
    code: 'E_HOSTILE_TAR',
    entry: 'e5',
    opts: { maxEntries: 4 },
    build: () => buildTar([1, 2, 3, 4, 5].map((i) => ({ name: `e${i}`, data: '' }))),
  },
  {
    file: 'whiteout-dotdot.tar',
    why: 'a whiteout of ".." (.wh...)',
    code: 'E_HOSTILE_TAR',
    entry: 'a/.wh...',
    build: () => buildTar([{ name: 'a/', type: 'directory' }, { name: 'a/.wh...', data: '' }]),
  },
  {
    file: 'whiteout-dot.tar',
    why: 'a whiteout of "." (.wh..)',
    code: 'E_HOSTILE_TAR',
    entry: 'a/.wh..',
    build: () => buildTar([{ name: 'a/.wh..', data: '' }]),
  },
  {
    file: 'whiteout-empty.tar',
    why: 'a whiteout of nothing (.wh.)',
    code: 'E_HOSTILE_TAR',
    entry: '.wh.',
    build: () => buildTar([{ name: '.wh.', data: '' }]),
  },
  {
    file: 'whiteout-through-symlink.tar',
    why: 'a whiteout below a symlink leading out (would delete outside/secret)',
    code: 'E_HOSTILE_TAR',
    entry: 'lnk/.wh.secret',
    build: (o) => buildTar([{ name: 'lnk', type: 'symlink', linkname: o }, { name: 'lnk/.wh.secret', data: '' }]),
  },
  {
    file: 'opaque-through-symlink.tar',
    why: 'an opaque marker below a symlink leading out (would set an xattr outside)',
    code: 'E_HOSTILE_TAR',
    entry: 'lnk/.wh..wh..opq',
    build: (o) => buildTar([{ name: 'lnk', type: 'symlink', linkname: o }, { name: 'lnk/.wh..wh..opq', data: '' }]),
  },
  {
    file: 'unknown-type.tar',
    why: 'an entry of an unsupported type (GNU sparse, typeflag S)',
    code: 'E_HOSTILE_TAR',
    entry: 'sparse',
    build: () => raw(rawHeader({ name: 'sparse', type: 'S', size: 0 }), END),
  },
  {
    file: 'root-replaced.tar',
    why: 'a symlink entry named "./" (would replace the layer root)',
    code: 'E_HOSTILE_TAR',
    entry: './',
    build: (o) => raw(rawHeader({ name: './', type: '2', linkname: o }), END),
  },
  {
    file: 'whiteout-as-dir.tar',
    why: 'a whiteout name used as a directory',
    code: 'E_BAD_ARCHIVE',
    entry: '.wh.x/y',
    build: () => buildTar([{ name: '.wh.x/y', data: 'y' }]),
  },
  {
    file: 'truncated.tar',
    why: 'an archive cut in the middle of an entry',
    code: 'E_BAD_ARCHIVE',
    entry: 'cut-short',
    build: () => raw(rawHeader({ name: 'cut-short', type: '0', size: 1000 }), Buffer.alloc(100, 0x61)),
  },
  {
    file: 'bad-checksum.tar',
    why: 'a header with a wrong checksum (after a good entry)',
    code: 'E_BAD_ARCHIVE',
    entry: 'good-entry',
    build: () => raw(rawHeader({ name: 'good-entry', type: '0', size: 0 }), rawHeader({ name: 'bad', type: '0', size: 0, badChecksum: true }), END),
  },
];

/** Writes every fixture (built with `outside`) into `dir`. */
export async function writeFixtures(dir: string, outside = DEFAULT_OUTSIDE): Promise<string[]> {
  fs.mkdirSync(dir, { recursive: true });
  const files: string[] = [];
  for (const f of HOSTILE) {
    const p = path.join(dir, f.file);
    fs.writeFileSync(p, await f.build(outside));
    files.push(p);
  }
  return files;
}

/** The committed fixture directory, from dist/test/helpers or test/helpers. */
export function fixtureDir(): string {
  let d = __dirname;
  while (!fs.existsSync(path.join(d, 'package.json'))) d = path.dirname(d);
  return path.join(d, 'fixtures', 'tars', 'hostile');
}

if (require.main === module) {
  writeFixtures(fixtureDir()).then(
    (files) => console.log(`wrote ${files.length} fixtures to ${fixtureDir()}`),
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
}
