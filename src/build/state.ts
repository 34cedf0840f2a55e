/**
 * The working state of one stage while it is built: the layers so far, the image config being
 * assembled, the cache key of the last filesystem step, and the ARGs in scope. Stage
 * execution threads a StageState through its instructions; metadata instructions change only
 * the config (applyMetadata, pure), filesystem instructions add a layer (steps/*.ts).
 */
import type { Digest } from '../util/digest';
import type { HistoryEntry, ImageConfig } from '../image/oci';
import type { Instruction } from './frontend/types';
import { KilnError } from '../errors';
import { DEFAULT_PATH } from '../runtime/spec';

export interface BuiltLayer {
  id: string;
  diffID: Digest;
  blobDigest: Digest;
  blobSize: number;
  mediaType: string;
  uncompressedSize: number;
}

export type RunConfig = NonNullable<ImageConfig['config']>;

export interface StageState {
  layers: BuiltLayer[];
  /** how many of `layers` come from a base image (--squash keeps those) */
  imageLayers: number;
  config: RunConfig;
  history: HistoryEntry[];
  architecture: string;
  os: string;
  variant?: string;
  /** the cache key of the filesystem as it stands (base image id, or the last step's key) */
  cacheKey: string;
  /** whether some filesystem step of this stage (or its base stage) ran rather than came from the cache */
  rebuilt: boolean;
  /** ARGs declared in this stage so far, with their values */
  args: Record<string, string>;
  /**
   * When the filesystem last changed (ISO 8601): the base image's creation time, then each
   * layer step's — the time it first ran, also when it now comes from the cache. Metadata
   * history entries and the image's own `created` take it, so a fully cached rebuild gives
   * the identical image (same ID), as BuildKit's does.
   */
  created: string;
}

export const DEFAULT_SHELL = ['/bin/sh', '-c'];

/** ENV as a map (later entries win). */
export function envMap(config: RunConfig): Record<string, string> {
  const out: Record<string, string> = {};
  for (const e of config.Env ?? []) {
    const i = e.indexOf('=');
    if (i > 0) out[e.slice(0, i)] = e.slice(i + 1);
    else out[e] = '';
  }
  return out;
}

/** Variables for expanding a word: ARGs in scope, overridden by ENV (as the reference says). */
export function expansionEnv(s: StageState): Record<string, string> {
  return { ...s.args, ...envMap(s.config) };
}

/** The environment a RUN sees: ENV, plus ARGs not shadowed by ENV, plus a default PATH. */
export function runEnv(s: StageState): string[] {
  const env = { ...s.args, ...envMap(s.config) };
  if (env.PATH === undefined) env.PATH = DEFAULT_PATH;
  return Object.entries(env).map(([k, v]) => `${k}=${v}`);
}

function setEnv(config: RunConfig, key: string, value: string): void {
  const env = (config.Env ?? []).filter((e) => e !== key && !e.startsWith(`${key}=`));
  env.push(`${key}=${value}`);
  config.Env = env;
}

export function shellOf(s: StageState): string[] {
  return s.config.Shell && s.config.Shell.length > 0 ? s.config.Shell : DEFAULT_SHELL;
}

/** Resolves WORKDIR `p` against the current one (relative paths join, as in the reference). */
export function joinWorkdir(cur: string | undefined, p: string): string {
  const joined = p.startsWith('/') ? p : `${cur && cur !== '' ? cur : '/'}/${p}`;
  const parts: string[] = [];
  for (const c of joined.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') parts.pop();
    else parts.push(c);
  }
  return `/${parts.join('/')}`;
}

/**
 * Applies a metadata instruction whose words are already expanded (`words` per kind, see the
 * stage runner) to a copy of the config. Returns the new config and the history text.
 */
export function applyMetadata(s: StageState, ins: Instruction, x: Expanded): RunConfig {
  const c: RunConfig = structuredClone(s.config);
  switch (ins.kind) {
    case 'ENV':
      for (const kv of x.pairs ?? []) setEnv(c, kv.key, kv.value);
      break;
    case 'LABEL':
      c.Labels = { ...(c.Labels ?? {}) };
      for (const kv of x.pairs ?? []) c.Labels[kv.key] = kv.value;
      break;
    case 'EXPOSE':
      c.ExposedPorts = { ...(c.ExposedPorts ?? {}) };
      for (const p of x.words ?? []) {
        if (!/^\d+(-\d+)?(\/(tcp|udp|sctp))?$/i.test(p)) throw new KilnError('E_CONTAINERFILE', `${where(ins)}: invalid EXPOSE port ${JSON.stringify(p)}`);
        c.ExposedPorts[p.includes('/') ? p.toLowerCase() : `${p}/tcp`] = {};
      }
      break;
    case 'VOLUME':
      c.Volumes = { ...(c.Volumes ?? {}) };
      for (const v of x.words ?? []) {
        if (v === '') throw new KilnError('E_CONTAINERFILE', `${where(ins)}: VOLUME specified can not be an empty string`);
        c.Volumes[v] = {};
      }
      break;
    case 'USER':
      c.User = x.word ?? '';
      break;
    case 'WORKDIR':
      c.WorkingDir = joinWorkdir(c.WorkingDir, x.word ?? '');
      break;
    case 'SHELL':
      c.Shell = ins.shell;
      break;
    case 'STOPSIGNAL':
      c.StopSignal = x.word ?? '';
      break;
    case 'HEALTHCHECK': {
      const h = ins.healthcheck;
      c.Healthcheck = { Test: h.test };
      if (h.interval !== undefined) c.Healthcheck.Interval = h.interval;
      if (h.timeout !== undefined) c.Healthcheck.Timeout = h.timeout;
      if (h.startPeriod !== undefined) c.Healthcheck.StartPeriod = h.startPeriod;
      if (h.startInterval !== undefined) c.Healthcheck.StartInterval = h.startInterval;
      if (h.retries !== undefined) c.Healthcheck.Retries = h.retries;
      break;
    }
    case 'ONBUILD':
      c.OnBuild = [...(c.OnBuild ?? []), ins.trigger];
      break;
    case 'CMD':
      c.Cmd = ins.command.form === 'exec' ? ins.command.args : [...shellOf(s), ins.command.script];
      break;
    case 'ENTRYPOINT':
      c.Entrypoint = ins.command.form === 'exec' ? ins.command.args : [...shellOf(s), ins.command.script];
      // The reference: an ENTRYPOINT resets a CMD inherited from the base image.
      if (!x.cmdSetInStage) c.Cmd = null;
      break;
    case 'MAINTAINER':
      break;
    default:
      throw new KilnError('E_INTERNAL', `${ins.kind} is not a metadata instruction`);
  }
  return c;
}

export interface Expanded {
  word?: string;
  words?: string[];
  pairs?: { key: string; value: string }[];
  cmdSetInStage?: boolean;
}

export function where(ins: Instruction): string {
  return `${ins.loc.file}:${ins.loc.line}`;
}
