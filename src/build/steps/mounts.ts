/**
 * RUN --mount: turns the typed mounts of a RUN into runtime mounts and environment, and the
 * cache-key text that describes their sources. Secrets never enter the cache key or the layer:
 * their content is copied into the step's private dir, bind-mounted read-only, and the empty
 * mount-point stub the runtime leaves in the upper dir is removed after the step (stubs.ts).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { KilnError } from '../../errors';
import type { MountRequest } from '../../runtime/spec';
import type { RunMount } from '../frontend/types';
import type { BuildEnv } from '../env';
import { joinWorkdir } from '../state';
import { selectSources, type Selected } from '../context/select';
import { hashSources } from '../context/hash';
import { acquireCacheMount } from './cache-mounts';
import { copyInto } from '../context/copy';
import { resolveInRoot } from '../../util/rootpath';
import { spawnSync } from 'node:child_process';
import type { StageRoots } from './run';
import type { StageBase } from '../frontend/types';

export interface PreparedMounts {
  mounts: MountRequest[];
  env: string[];
  /** release mounts of other stages' layers taken for bind sources */
  release(): void;
}

/**
 * The build-context files of a RUN's bind mounts, by source: selected once for the cache key
 * (mountsKey) and, on a miss, mounted from the same list (prepareMounts).
 */
export type ContextSelections = Map<string, Selected[]>;

/**
 * Describes the mounts' sources for the cache key (no secret content, no cache-mount content).
 * `where` (Containerfile:line) names the RUN in errors; `selections` is filled for prepareMounts.
 */
export async function mountsKey(env: BuildEnv, mounts: RunMount[], roots: StageRoots, where: string, selections: ContextSelections): Promise<string> {
  const parts: string[] = [];
  for (const m of mounts) {
    if (m.type === 'bind') parts.push(`bind:${m.target}:${m.source ?? ''}:${m.rw}:${m.from ? await roots.key(fromOf(m)) : `context:${await contextKey(env, m.source ?? '.', where, selections)}`}`);
    else if (m.type === 'cache') parts.push(`cache:${m.target}:${m.id ?? ''}:${m.sharing}`);
    else if (m.type === 'tmpfs') parts.push(`tmpfs:${m.target}:${m.size ?? ''}`);
    else parts.push(`secret:${m.id}:${m.target ?? ''}:${m.env ?? ''}`);
  }
  return parts.join('\n');
}

/** The resolved --mount from= (the plan resolved it once, with the global ARGs). */
function fromOf(m: { from?: string; fromResolved?: StageBase }): StageBase {
  if (!m.fromResolved) throw new KilnError('E_INTERNAL', `--mount from=${m.from} was not resolved by the plan`);
  return m.fromResolved;
}

/** A content key for a path of the build context (a file or dir; names, modes, sizes, bytes). */
async function contextKey(env: BuildEnv, source: string, where: string, selections: ContextSelections): Promise<string> {
  let selected = selections.get(source);
  if (selected === undefined) {
    selected = await selectSources(env.contextDir, [source], { filter: env.ignored, what: `${where}: --mount=type=bind,source=${source}` });
    selections.set(source, selected);
  }
  return hashSources(env.contextDir, selected, {});
}

/**
 * Prepares the mounts for one RUN. `roots.root(from)` gives a read-only root dir for a stage or
 * image (mounted by the caller's stage runner); `privateDir` is the step's scratch dir
 * outside the rootfs (for secret copies); `selections` are mountsKey's for the same mounts.
 */
export async function prepareMounts(
  env: BuildEnv,
  mounts: RunMount[],
  workdir: string,
  privateDir: string,
  roots: StageRoots,
  where: string,
  selections: ContextSelections,
): Promise<PreparedMounts> {
  const out: MountRequest[] = [];
  const envs: string[] = [];
  const releases: (() => void)[] = [];
  const target = (t: string) => joinWorkdir(workdir, t);
  try {
    for (const m of mounts) {
      if (m.type === 'bind') {
        let src: string;
        if (m.from) {
          const r = await roots.root(fromOf(m));
          releases.push(r.release);
          src = resolveInRoot(r.root, m.source ?? '/', { followLast: true }); // the image's symlinks, never the host's
        } else {
          src = await contextSource(env, m.source ?? '.', path.join(privateDir, `context-${out.length}`), where, selections);
        }
        if (!fs.existsSync(src)) throw new KilnError('E_BUILD', `${where}: --mount=type=bind source ${JSON.stringify(m.source ?? '.')} does not exist${m.from ? ` in ${m.from}` : ' in the build context'}`);
        // rw binds see a private copy (owners, modes and links kept), so writes never reach the source
        let source = src;
        if (m.rw) {
          source = path.join(privateDir, `bind-${out.length}`);
          const r = spawnSync('cp', ['-a', src, source], { encoding: 'utf8' });
          if (r.status !== 0) throw new KilnError('E_IO', `${where}: copying the --mount source for rw: ${r.stderr.trim()}`);
        }
        out.push({ type: 'bind', source, destination: target(m.target), readonly: !m.rw });
      } else if (m.type === 'cache') {
        const c = await acquireCacheMount(env.store, { id: m.id ?? m.target, sharing: m.sharing, mode: m.mode, uid: m.uid, gid: m.gid }, env.signal);
        releases.push(c.release);
        out.push({ type: 'bind', source: c.dir, destination: target(m.target), readonly: m.readonly });
      } else if (m.type === 'tmpfs') {
        out.push({ type: 'tmpfs', destination: target(m.target), size: m.size });
      } else {
        const s = env.secrets[m.id];
        if (!s) {
          if (m.required) throw new KilnError('E_BUILD', `${where}: secret ${JSON.stringify(m.id)} is required but was not given`, { hint: `pass it with --secret id=${m.id},src=FILE` });
          continue;
        }
        const value = readSecret(m.id, s);
        if (m.env) envs.push(`${m.env}=${value.toString('utf8')}`);
        if (m.target !== undefined || !m.env) {
          const file = path.join(privateDir, `secret-${out.length}`);
          fs.writeFileSync(file, value, { mode: m.mode });
          fs.chownSync(file, m.uid, m.gid);
          out.push({ type: 'bind', source: file, destination: m.target ? target(m.target) : `/run/secrets/${m.id}`, readonly: true });
        }
      }
    }
  } catch (e) {
    for (const r of releases) r();
    throw e;
  }
  return { mounts: out, env: envs, release: () => releases.forEach((r) => r()) };
}

/**
 * A context path for a bind mount: the context dir itself when no ignore file filters it, else
 * a private copy of exactly the files the ignore file lets through (what the cache key hashed).
 */
async function contextSource(env: BuildEnv, source: string, scratch: string, where: string, selections: ContextSelections): Promise<string> {
  const direct = path.join(env.contextDir, path.normalize(`/${source}`));
  if (!env.ignored) return direct;
  const selected = selections.get(source) ?? (await selectSources(env.contextDir, [source], { filter: env.ignored, what: where }));
  fs.mkdirSync(scratch, { mode: 0o755 });
  await copyInto({ rootfs: scratch, workdir: '/', dest: '/', srcRoot: env.contextDir, selected, preserveOwnership: true, parents: false, add: false, what: where });
  return selected.length === 1 && !selected[0].isDir ? path.join(scratch, path.basename(selected[0].relPath)) : scratch;
}

function readSecret(id: string, s: { src?: string; env?: string }): Buffer {
  if (s.src !== undefined) {
    try {
      return fs.readFileSync(s.src);
    } catch (e) {
      throw new KilnError('E_INVALID_ARGUMENT', `--secret id=${id}: cannot read ${s.src}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
  }
  const v = process.env[s.env ?? id];
  if (v === undefined) throw new KilnError('E_INVALID_ARGUMENT', `--secret id=${id}: environment variable ${s.env ?? id} is not set`);
  return Buffer.from(v);
}

