/**
 * What the host offers for running containers: the cgroup mode and which OCI runtime kiln
 * uses. crun is preferred; Debian's crun 1.8 refuses hybrid cgroups ("cgroups in hybrid mode
 * not supported"), so on a hybrid host kiln picks runc. KILN_RUNTIME overrides the choice.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { KilnError } from '../errors';
import { CrunRuntime } from './crun';
import { OciCliRuntime, RuncRuntime } from './runc';
import type { OciRuntime } from './types';

export type CgroupMode = 'v2' | 'hybrid' | 'v1' | 'unknown';

const CGROUP2_SUPER_MAGIC = 0x63677270;

export function cgroupMode(root = '/sys/fs/cgroup'): CgroupMode {
  try {
    if (fs.statfsSync(root).type === CGROUP2_SUPER_MAGIC) return 'v2';
    const unified = path.join(root, 'unified');
    if (fs.existsSync(unified) && fs.statfsSync(unified).type === CGROUP2_SUPER_MAGIC) return 'hybrid';
    return 'v1';
  } catch {
    return 'unknown';
  }
}

export function findExecutable(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin').split(':')) {
    const p = path.join(dir, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return undefined;
}

export interface RuntimeChoice {
  name: 'crun' | 'runc' | string;
  path: string | undefined;
  reason: string;
}

export function chooseRuntime(mode: CgroupMode = cgroupMode()): RuntimeChoice {
  const forced = process.env.KILN_RUNTIME;
  if (forced) return { name: path.basename(forced), path: forced.includes('/') ? forced : findExecutable(forced), reason: 'set by KILN_RUNTIME' };
  const crun = findExecutable('crun');
  const runc = findExecutable('runc');
  if (mode === 'hybrid' && runc) return { name: 'runc', path: runc, reason: 'crun does not support hybrid cgroups; using runc' };
  if (crun) return { name: 'crun', path: crun, reason: 'preferred runtime' };
  if (runc) return { name: 'runc', path: runc, reason: 'crun not found' };
  return { name: 'none', path: undefined, reason: 'neither crun nor runc is installed (apt-get install crun runc)' };
}

/**
 * The OciRuntime for chooseRuntime()'s choice (so KILN_RUNTIME still overrides), with
 * `stateDir` as its --root (one per store). Static: nothing is run. crun on a hybrid host (only
 * when forced by KILN_RUNTIME) gets the private-cgroup2-mount workaround (see crun.ts) if kiln
 * runs as root; any other name is driven as a runc-compatible CLI. Throws E_RUNTIME when no
 * runtime is installed.
 */
export function openRuntime(stateDir: string, choice: RuntimeChoice = chooseRuntime(), mode: CgroupMode = cgroupMode()): OciRuntime {
  if (choice.path === undefined) {
    throw new KilnError('E_RUNTIME', `no OCI runtime: ${choice.reason}`, { hint: 'apt-get install runc (or crun), or set KILN_RUNTIME to a runtime binary' });
  }
  if (choice.name === 'runc') return new RuncRuntime(stateDir, choice.path);
  if (choice.name === 'crun') {
    const hybridWorkaround = mode === 'hybrid' && process.getuid?.() === 0;
    return new CrunRuntime(stateDir, { path: choice.path, hybridWorkaround, ...(hybridWorkaround ? { unshare: findExecutable('unshare') ?? '/usr/bin/unshare' } : {}) });
  }
  return new OciCliRuntime(choice.name, choice.path, stateDir);
}
