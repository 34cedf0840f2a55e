/**
 * `kiln pull`: an image name → the fully qualified names to try (short-name resolution,
 * containers-registries.conf(5)), and for each name the sources to fetch it from: the
 * [[registry.mirror]]s that apply, in order, then the primary location (registries-conf.ts
 * pullSources). The first source that delivers wins; a failed source is logged and the next one
 * tried, so an unreachable or incomplete mirror only costs time. The image is stored under the
 * name asked for (repository@digest for a digest), never under a mirror's or a location's rewrite, and the
 * signature policy is checked against that name too.
 */
import { KilnError, withContext } from '../errors';
import type { HostOptionsFn } from '../registry/host-options';
import type { ProgressSink } from '../registry/progress';
import { pullSources, resolveShortName } from '../registry/registries-conf';
import { pullImage } from '../registry/pull';
import type { PullVerify } from '../signature/types';
import { DockerReference, type PlatformWanted } from '../transports/docker';
import type { EngineContext } from './context';

export interface PullOptions {
  /** `[docker://][REGISTRY/]NAME[:TAG|@DIGEST]`; with docker:// a name without registry means docker.io */
  image: string;
  platform: PlatformWanted;
  /** connection settings per host (registry/host-options.ts hostOptionsFor) */
  hostOptions: HostOptionsFn;
  /** podman's progress lines ("Trying to pull …", "Copying blob …"); none when quiet */
  log?: (line: string) => void;
  /** progress bars (a terminal); `log` should print through it too */
  progress?: ProgressSink;
  /** --signature-policy FILE (default: podman's policy.json) */
  policyPath?: string;
  /** --registries.d DIR (default: podman's registries.d) */
  registriesDir?: string;
}

/** The fully qualified names to try for IMAGE, in order. */
function candidates(image: string): string[] {
  if (image.startsWith('docker://')) {
    const rest = image.slice('docker://'.length);
    if (rest === '') throw new KilnError('E_INVALID_REFERENCE', `invalid image reference ${JSON.stringify(image)}: empty image name`);
    return [rest];
  }
  return resolveShortName(image);
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * The error when every source of a name failed: the primary location's alone when it was the
 * only source; else podman's "(Mirrors also failed: [MIRROR: ERR]…): PRIMARY: ERR", with the
 * primary's code and hint. Each error is named by its source unless its message already is.
 */
function allFailed(failures: { location: string; error: unknown }[]): unknown {
  const primary = failures[failures.length - 1]!;
  if (failures.length === 1) return primary.error;
  const named = failures.map((f) => withContext(f.error, f.location, 'E_TRANSPORT'));
  const last = named.pop()!;
  return new KilnError(last.code, `(Mirrors also failed: ${named.map((e) => `[${e.message}]`).join('\n')}): ${last.message}`, {
    cause: primary.error,
    ...(last.hint !== undefined ? { hint: last.hint } : {}),
  });
}

/** Pulls one fully qualified name from its sources (module comment); returns the image ID. */
async function pullName(ctx: EngineContext, asked: DockerReference, opts: PullOptions): Promise<string> {
  const { log } = opts;
  const sources = pullSources(asked.displayName);
  const verify: PullVerify = {
    identity: asked,
    ...(opts.policyPath !== undefined ? { policyPath: opts.policyPath } : {}),
    ...(opts.registriesDir !== undefined ? { registriesDir: opts.registriesDir } : {}),
  };
  const failures: { location: string; error: unknown }[] = [];
  for (const s of sources) {
    try {
      if (s.blocked !== undefined) throw new KilnError('E_INVALID_ARGUMENT', s.blocked, { hint: 'see containers-registries.conf(5)' });
      if (sources.length > 1) log?.(`Trying to access "${s.location}"`);
      const endpoint = { insecure: s.insecure, primaryDomain: asked.domain };
      const ref = new DockerReference(s.location, {
        hostOptions: (host, repo) => opts.hostOptions(host, repo, endpoint),
        platform: opts.platform,
        ...(log ? { log } : {}),
        ...(opts.progress ? { progress: opts.progress } : {}),
      });
      return await pullImage(ctx, ref, asked.displayName, verify);
    } catch (e) {
      failures.push({ location: s.location, error: e });
      if (s.mirror) log?.(`Accessing "${s.location}" failed: ${messageOf(e)}`);
    }
  }
  throw allFailed(failures);
}

/**
 * Pulls IMAGE into the store: each candidate name in turn ("Trying to pull NAME..."), each from
 * its sources; returns the image ID of the first that succeeds. When every candidate fails,
 * the last one's error is thrown (with several candidates each error is logged as it happens).
 */
export async function pullImages(ctx: EngineContext, opts: PullOptions): Promise<string> {
  const names = candidates(opts.image);
  let last: unknown;
  for (const n of names) {
    const asked = new DockerReference(n);
    opts.log?.(`Trying to pull ${asked.displayName}...`);
    try {
      return await pullName(ctx, asked, opts);
    } catch (e) {
      last = e;
      if (names.length > 1) opts.log?.(`Error: ${messageOf(e)}`);
    }
  }
  throw last;
}
