/**
 * Plumbing for end-to-end `kiln build` tests that look at the image itself (the sandbox with the
 * base image, teardown, mounts and runc containers are build-e2e.ts's): build contexts written
 * from a literal description, builds run through the real CLI with plain output, and read-only
 * ways to look at the result — the image mounted, the inspect JSON, the OCI layout written by
 * `kiln save --format oci-dir` and its layer tars read with tar-stream (an independent reader)
 * — plus the check that a build left nothing behind.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import * as tarStream from 'tar-stream';
import type { Sandbox } from './env';
import { mountsUnder, runcContainers } from './build-e2e';

/**
 * One context entry: a string is a file's content; `{ dir: true }` a directory; `{ symlink }`
 * a symbolic link; `{ content, mode }` a file with a mode; `{ bytes }` binary content.
 */
export type Entry = string | { dir: true; mode?: number } | { symlink: string } | { content?: string; bytes?: Buffer; mode?: number };

/** Writes a fresh directory `<sb.dir>/<name>` holding `files` (parents made as needed); returns its path. */
export function writeContext(sb: Sandbox, name: string, files: Record<string, Entry>): string {
  const dir = path.join(sb.dir, name);
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  for (const [rel, e] of Object.entries(files)) {
    const p = path.join(dir, rel);
    fs.mkdirSync(path.dirname(p), { recursive: true });
    if (typeof e === 'string') fs.writeFileSync(p, e);
    else if ('dir' in e) {
      fs.mkdirSync(p, { recursive: true });
      if (e.mode !== undefined) fs.chmodSync(p, e.mode);
    } else if ('symlink' in e) fs.symlinkSync(e.symlink, p);
    else {
      fs.writeFileSync(p, e.bytes ?? e.content ?? '');
      if (e.mode !== undefined) fs.chmodSync(p, e.mode);
    }
  }
  return dir;
}

export interface BuildRun {
  status: number | null;
  stdout: string;
  stderr: string;
  /** the last line of stdout (the image ID on success) */
  id: string;
}

/** Runs `kiln build ARGS... CONTEXT` (no assertion on the outcome). */
export function kilnBuild(sb: Sandbox, context: string, args: string[] = [], env?: NodeJS.ProcessEnv): BuildRun {
  const r = sb.kiln(['build', ...args, context], { env });
  const lines = r.stdout.trimEnd().split('\n');
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, id: lines[lines.length - 1] ?? '' };
}

/** Like kilnBuild but throws with the build's output unless it exits 0; returns the image ID. */
export function buildOk(sb: Sandbox, context: string, args: string[] = [], env?: NodeJS.ProcessEnv): string {
  const r = kilnBuild(sb, context, args, env);
  if (r.status !== 0) throw new Error(`kiln build ${args.join(' ')} ${context} exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
  if (!/^[0-9a-f]{64}$/.test(r.id)) throw new Error(`kiln build did not end with an image ID: ${JSON.stringify(r.id)}`);
  return r.id;
}

/** Writes a context whose Containerfile is `containerfile` (plus `files`) and builds it with `-t tag`. */
export function buildImage(sb: Sandbox, tag: string, containerfile: string, files: Record<string, Entry> = {}, args: string[] = []): string {
  const ctx = writeContext(sb, `ctx-${tag.replace(/[^a-z0-9]/gi, '_')}`, { Containerfile: containerfile, ...files });
  return buildOk(sb, ctx, ['-t', tag, ...args]);
}

/** Runs fn with the image mounted read-only (`kiln image mount`); always unmounts. */
export async function withMounted<T>(sb: Sandbox, image: string, fn: (root: string) => T | Promise<T>): Promise<T> {
  const root = sb.ok(['image', 'mount', image]).trim();
  try {
    return await fn(root);
  } finally {
    sb.ok(['image', 'unmount', image]);
  }
}

/** `kiln inspect IMAGE`, the one object. */
export function inspectImage(sb: Sandbox, image: string): InspectedImage {
  const list = JSON.parse(sb.ok(['inspect', image])) as InspectedImage[];
  if (list.length !== 1) throw new Error(`kiln inspect ${image}: expected one image, got ${list.length}`);
  return list[0]!;
}

export interface InspectedImage {
  Id: string;
  Created: string;
  Config: Record<string, unknown> & { Env?: string[]; Cmd?: string[] | null; Entrypoint?: string[] | null; Labels?: Record<string, string> | null };
  Annotations?: Record<string, string>;
  ManifestType: string;
  History: { created?: string; created_by?: string; empty_layer?: boolean; comment?: string }[];
  RootFS: { Layers: string[] };
}

export interface OciLayout {
  dir: string;
  index: { manifests: { digest: string; mediaType: string; annotations?: Record<string, string> }[] };
  manifest: { mediaType?: string; config: { digest: string }; layers: { digest: string; mediaType: string }[]; annotations?: Record<string, string> };
  config: { created?: string; config?: Record<string, unknown>; rootfs: { diff_ids: string[] }; history?: { created_by?: string; empty_layer?: boolean }[] };
  /** the path of a blob in the layout */
  blob(digest: string): string;
}

/** `kiln save --format oci-dir -o <sb.dir>/<name> IMAGE`, parsed: the index, the image's manifest and config. */
export function saveOciDir(sb: Sandbox, image: string, name: string): OciLayout {
  const dir = path.join(sb.dir, name);
  fs.rmSync(dir, { recursive: true, force: true });
  sb.ok(['save', '--format', 'oci-dir', '-o', dir, image]);
  const blob = (digest: string) => path.join(dir, 'blobs', ...digest.split(':'));
  const index = JSON.parse(fs.readFileSync(path.join(dir, 'index.json'), 'utf8')) as OciLayout['index'];
  if (index.manifests.length !== 1) throw new Error(`${dir}/index.json: expected one manifest, got ${index.manifests.length}`);
  const manifest = JSON.parse(fs.readFileSync(blob(index.manifests[0]!.digest), 'utf8')) as OciLayout['manifest'];
  const config = JSON.parse(fs.readFileSync(blob(manifest.config.digest), 'utf8')) as OciLayout['config'];
  return { dir, index, manifest, config, blob };
}

export interface TarEntry {
  name: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  linkname: string | null;
  /** regular files' content as text */
  text?: string;
}

/** Every entry of a tar file (plain or gzip'd), read with tar-stream; names without a leading "./". */
export async function listTar(file: string): Promise<TarEntry[]> {
  let data = fs.readFileSync(file);
  if (data[0] === 0x1f && data[1] === 0x8b) data = zlib.gunzipSync(data);
  const out: TarEntry[] = [];
  const ex = tarStream.extract();
  const done = (async () => {
    for await (const e of ex) {
      const h = e.header;
      const chunks: Buffer[] = [];
      for await (const c of e) chunks.push(c as Buffer);
      out.push({
        name: h.name.replace(/^\.\//, '').replace(/\/$/, ''),
        type: h.type ?? 'file',
        mode: h.mode ?? 0,
        uid: h.uid ?? 0,
        gid: h.gid ?? 0,
        linkname: h.linkname ?? null,
        ...(h.type === 'file' ? { text: Buffer.concat(chunks).toString('utf8') } : {}),
      });
    }
  })();
  ex.end(data);
  await done;
  return out;
}

/** The tar entries of the image's top (last) layer, as saved in an OCI layout. */
export async function topLayer(layout: OciLayout): Promise<TarEntry[]> {
  const layers = layout.manifest.layers;
  return listTar(layout.blob(layers[layers.length - 1]!.digest));
}

/**
 * What a build may have left behind: mount points under the sandbox and containers still known
 * to runc in the store's runtime state dir. Both lists are empty after any build, good or bad.
 */
export function leftovers(sb: Sandbox): { mounts: string[]; containers: string[] } {
  return { mounts: mountsUnder(sb.dir), containers: runcContainers(sb.runroot) };
}
