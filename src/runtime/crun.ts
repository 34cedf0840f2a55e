/**
 * crun behind OciRuntime. On a cgroup v2 host it is a plain runc-compatible CLI. On a hybrid
 * host (v1 controllers plus a v2 tree at /sys/fs/cgroup/unified) Debian's crun 1.8 refuses to
 * run ("cgroups in hybrid mode not supported"); with `hybridWorkaround` every crun call runs
 * in a private mount namespace where cgroup2 is mounted over /sys/fs/cgroup:
 *
 *   unshare -m sh -c 'mount -t cgroup2 none /sys/fs/cgroup && exec "$0" "$@"' crun …
 *
 * crun then sees a unified host and puts the container in a cgroup of the v2 tree (which holds
 * no resource controller on such hosts, so limits cannot be enforced). The spec must have no
 * `linux.resources`: crun's eBPF device filter needs RLIMIT_MEMLOCK raised, which fails there.
 * The workaround needs root (mounting cgroup2) and util-linux's unshare. The mount is private
 * to each call: the host's /sys/fs/cgroup is never touched.
 */
import { OciCliRuntime } from './runc';

const HYBRID_WRAPPER = 'mount -t cgroup2 none /sys/fs/cgroup && exec "$0" "$@"';

export interface CrunOptions {
  /** the crun binary (default: `crun` on PATH) */
  path?: string;
  /** run every call inside the private-mount-namespace wrapper described above */
  hybridWorkaround?: boolean;
  /** util-linux unshare used by the workaround (default: `unshare` on PATH) */
  unshare?: string;
}

export class CrunRuntime extends OciCliRuntime {
  readonly hybridWorkaround: boolean;
  private readonly unshare: string;

  constructor(stateDir: string, opts: CrunOptions = {}) {
    super('crun', opts.path ?? 'crun', stateDir);
    this.hybridWorkaround = opts.hybridWorkaround ?? false;
    this.unshare = opts.unshare ?? 'unshare';
  }

  protected override command(args: string[]): [string, string[]] {
    if (!this.hybridWorkaround) return [this.path, args];
    return [this.unshare, ['--mount', '--propagation', 'private', '/bin/sh', '-c', HYBRID_WRAPPER, this.path, ...args]];
  }
}
