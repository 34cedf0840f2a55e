/** `kiln info` and `kiln version`: what kiln is and what it found on this host. */
import * as os from 'node:os';
import { VERSION } from '../version';
import { cgroupMode, chooseRuntime, findExecutable } from '../runtime/detect';
import { goArch } from '../image/platform';
import type { EngineContext } from './context';

export interface VersionInfo {
  Version: string;
  NodeVersion: string;
  OsArch: string;
}

export function versionInfo(): VersionInfo {
  return { Version: VERSION, NodeVersion: process.version, OsArch: `linux/${goArch()}` };
}

export interface Info {
  host: {
    arch: string;
    os: string;
    kernel: string;
    hostname: string;
    cgroupVersion: string;
    cgroupMode: string;
    ociRuntime: { name: string; path: string; reason: string };
    conmon: { path: string };
    cpus: number;
    memTotal: number;
    rootless: boolean;
  };
  store: {
    graphDriverName: string;
    graphRoot: string;
    runRoot: string;
    imageStore: { number: number };
    layerStore: { number: number };
  };
  version: VersionInfo;
}

export function info(ctx: EngineContext): Info {
  const mode = cgroupMode();
  const rt = chooseRuntime(mode);
  const db = ctx.store.db;
  const count = (t: string) => (db.prepare(`SELECT count(*) AS n FROM ${t}`).get() as { n: number }).n;
  return {
    host: {
      arch: goArch(),
      os: 'linux',
      kernel: os.release(),
      hostname: os.hostname(),
      cgroupVersion: mode === 'v2' ? 'v2' : 'v1',
      cgroupMode: mode,
      ociRuntime: { name: rt.name, path: rt.path ?? '', reason: rt.reason },
      conmon: { path: findExecutable('conmon') ?? '' },
      cpus: os.cpus().length,
      memTotal: os.totalmem(),
      rootless: process.getuid?.() !== 0,
    },
    store: {
      graphDriverName: 'overlay',
      graphRoot: ctx.store.paths.root,
      runRoot: ctx.store.paths.runroot,
      imageStore: { number: count('images') },
      layerStore: { number: count('layers') },
    },
    version: versionInfo(),
  };
}
