/**
 * COPY and ADD: sources from the build context (filtered by .containerignore), from another
 * stage or image (--from), from here-documents, or (ADD) from http(s) URLs, copied into the
 * stage's filesystem with Docker's destination rules (context/copy.ts). The cache key covers
 * the expanded instruction, the WORKDIR and the content of every selected source — modes,
 * ownership where it is kept, sizes and bytes, never mtimes — so a touched file still hits.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { KilnError } from '../../errors';
import { resolveUser } from '../../runtime/spec';
import type { CopySpec } from '../frontend/types';
import type { BuildEnv, StepCtx } from '../env';
import { joinWorkdir, where, type StageState } from '../state';
import { layerStep } from './layer-step';
import type { StageRoots } from './run';
import { selectSources } from '../context/select';
import { hashSources } from '../context/hash';
import { copyInto, fetchUrl, writeHeredocFile } from '../context/copy';
import { isDirForm } from '../context/place';
import { existsInLayers } from '../chain';
import type { Selected } from '../context/select';
import { ensureDir } from './workdir';

const URL_RE = /^https?:\/\//i;

export async function copyStep(env: BuildEnv, s: StageState, ins: CopySpec, step: StepCtx, roots: StageRoots, word: (w: string) => string, heredoc: (body: string) => string): Promise<StageState> {
  const what = `${ins.kind} at ${where(ins)}`;
  const dest = word(ins.dest);
  const sources = ins.sources.map(word);
  const chown = ins.chown !== undefined ? word(ins.chown) : undefined;
  const chmod = ins.chmod !== undefined ? parseChmod(word(ins.chmod), what) : undefined;
  // --from was resolved once by the plan (global ARGs only, as BuildKit does)
  if (ins.from !== undefined && !ins.fromResolved) throw new KilnError('E_INTERNAL', `${what}: --from=${ins.from} was not resolved by the plan`);
  const from = ins.from !== undefined ? ins.fromResolved : undefined;
  const excludes = ins.excludes.map(word);
  const workdir = s.config.WorkingDir || '/';
  const urls = ins.kind === 'ADD' ? sources.filter((x) => URL_RE.test(x)) : [];
  const local = sources.filter((x) => !urls.includes(x));
  if (urls.length > 0 && from !== undefined) throw new KilnError('E_CONTAINERFILE', `${what}: ADD --from cannot fetch URLs`);
  if (ins.kind === 'COPY' && sources.some((x) => URL_RE.test(x))) throw new KilnError('E_CONTAINERFILE', `${what}: source can't be a URL for COPY`, { hint: 'use ADD to fetch a URL' });
  if (sources.length + ins.heredocs.length > 1 && !isDirForm(dest)) {
    throw new KilnError('E_BUILD', `${what}: When using ${ins.kind} with more than one source file, the destination must be a directory and end with a /`);
  }

  const srcRoot = from !== undefined ? await roots.root(from) : { root: env.contextDir, release: () => undefined };
  try {
    const sourceName = from === undefined ? undefined : from.kind === 'stage' ? `stage ${ins.from}` : from.kind === 'image' ? `image ${from.ref}` : 'scratch';
    const selected = local.length ? await selectSources(srcRoot.root, local, { filter: from === undefined ? env.ignored : undefined, excludes, what, sourceName }) : [];
    const hash = createHash('sha256');
    hash.update(local.length ? await hashSources(srcRoot.root, selected, { ownership: from !== undefined }) : '');
    for (const h of ins.heredocs) hash.update(`\0heredoc:${h.name}:${h.expand ? heredoc(h.content) : h.content}`);
    // URLs are fetched first: their bytes (and the --checksum) are part of the key
    const fetchDir = urls.length ? env.store.tempDir('fetch') : undefined;
    try {
      const fetched: { name: string; path: string; digest: string }[] = [];
      for (const [n, u] of urls.entries()) {
        const dir = path.join(fetchDir!, String(n));
        fs.mkdirSync(dir);
        const f = await fetchUrl(u, dir, ins.checksum !== undefined ? word(ins.checksum) : undefined);
        fetched.push({ name: u, path: f.path, digest: f.digest });
        hash.update(`\0url:${u}:${f.digest}`);
      }
      const inputs = {
        op: `${ins.kind} ${JSON.stringify({ sources, dest, chown, chmod, from: from !== undefined ? await roots.key(from) : undefined, link: ins.link, parents: ins.parents, excludes })}`,
        env: JSON.stringify({ workdir }),
        sources: hash.digest('hex'),
      };
      const createdBy = `/bin/sh -c #(nop) ${ins.kind} ${ins.heredocs.length ? 'heredoc' : 'file'}:${inputs.sources} in ${dest}`;
      const stageBytes = ins.kind === 'COPY' && urls.length === 0 && (ins.link || (await destIsNew(env, s, joinWorkdir(workdir, dest)))) ? bytesOf(selected) + ins.heredocs.reduce((n, h) => n + h.content.length, 0) : undefined;
      return await layerStep(env, s, step, inputs, createdBy, what, async (rootfs) => {
        // on an empty root (--link, tmpfs staging) names in --chown are looked up in the stage's own files
        const owner = chown === undefined ? undefined : rootfs.seesParent ? chownIds(rootfs.merged, chown, what) : await linkOwner(s, roots, chown, what);
        const common = { rootfs: rootfs.merged, workdir, dest, chown: owner, chmod };
        if (!dest.startsWith('/')) ensureDir(rootfs.merged, workdir, what); // a relative dest lives in the WORKDIR
        if (selected.length) await copyInto({ ...common, srcRoot: srcRoot.root, selected, preserveOwnership: from !== undefined, parents: ins.parents, add: ins.kind === 'ADD' });
        for (const f of fetched) await copyInto({ ...common, srcRoot: path.dirname(f.path), selected: await selectSources(path.dirname(f.path), [path.basename(f.path)], { what }), preserveOwnership: false, parents: false, add: false });
        for (const h of ins.heredocs) await writeHeredocFile(rootfs.merged, workdir, dest, h.name, h.expand ? heredoc(h.content) : h.content, owner, chmod);
      }, { independent: ins.link, stageBytes });
    } finally {
      if (fetchDir) fs.rmSync(fetchDir, { recursive: true, force: true });
    }
  } finally {
    srcRoot.release();
  }
}

/** --chown on an empty root: resolved against a read-only mount of the stage's current layers. */
async function linkOwner(s: StageState, roots: StageRoots, chown: string, what: string): Promise<{ uid: number; gid: number }> {
  const r = await roots.root({ kind: 'layer', id: s.layers.length ? s.layers[s.layers.length - 1].id : null });
  try {
    return chownIds(r.root, chown, what);
  } finally {
    r.release();
  }
}

/**
 * Whether everything this COPY writes lies under a top-level path the stage's files lack
 * (`COPY . /app/` onto an image without /app): then copying onto an empty root gives the same
 * files, and the step may be staged on tmpfs (LayerStepOptions.stageBytes).
 */
async function destIsNew(env: BuildEnv, s: StageState, dest: string): Promise<boolean> {
  const first = dest.split('/').find((c) => c !== '');
  if (first === undefined) return false;
  return !(await existsInLayers(env.store, s.layers, `/${first}`));
}

/** What the selection takes on tmpfs: whole pages per file, and a page per entry for its inode. */
function bytesOf(selected: Selected[]): number {
  const page = (size: bigint) => Math.ceil(Number(size) / 4096) * 4096 + 4096;
  let n = 0;
  for (const x of selected) {
    n += page(x.st.size);
    for (const e of x.entries) n += page(e.st.size);
  }
  return n;
}

function parseChmod(v: string, what: string): number {
  if (!/^[0-7]{3,4}$/.test(v)) throw new KilnError('E_CONTAINERFILE', `${what}: invalid --chmod ${JSON.stringify(v)}: expected an octal mode such as 755`);
  return parseInt(v, 8);
}

/**
 * --chown user[:group] against the destination's /etc/passwd and /etc/group. A user name
 * without a group takes that user's primary group from /etc/passwd (buildah and BuildKit both
 * do); a bare numeric uid uses the same number for the gid, as the Dockerfile reference says.
 */
function chownIds(rootfs: string, chown: string, what: string): { uid: number; gid: number } {
  try {
    const u = resolveUser(rootfs, chown);
    return { uid: u.uid, gid: chown.includes(':') || !/^\d+$/.test(chown) ? u.gid : u.uid };
  } catch (e) {
    throw new KilnError('E_BUILD', `${what}: --chown=${chown}: ${(e as Error).message}`, { cause: e });
  }
}
