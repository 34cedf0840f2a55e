/**
 * Test plumbing shared by the CLI, interop and concurrency tests: a private store root per
 * test, running the real `kiln` binary, and the host tools used as oracles (podman, skopeo,
 * umoci). A missing tool fails the test with the command that installs it — never a skip.
 */
import { spawnSync, spawn, type SpawnSyncReturns } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeBusyboxRootfs } from '../../src/base/busybox-rootfs';

export const REPO = path.resolve(__dirname, '..', '..', '..');
export const KILN = path.join(REPO, 'bin', 'kiln');

export interface Sandbox {
  dir: string;
  root: string;
  runroot: string;
  /** runs kiln with this sandbox's --root/--runroot */
  kiln(args: string[], opts?: { input?: Buffer | string; env?: NodeJS.ProcessEnv }): SpawnSyncReturns<string>;
  /** like kiln() but throws with stderr unless the exit code is 0 */
  ok(args: string[], opts?: { input?: Buffer | string }): string;
  cleanup(): void;
}

export function sandbox(prefix = 'kiln-test-'): Sandbox {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const root = path.join(dir, 'root');
  const runroot = path.join(dir, 'run');
  const sb: Sandbox = {
    dir,
    root,
    runroot,
    kiln(args, opts = {}) {
      return spawnSync(process.execPath, [KILN, '--root', root, '--runroot', runroot, ...args], {
        encoding: 'utf8',
        input: opts.input,
        env: { ...process.env, ...opts.env },
        maxBuffer: 256 << 20,
      });
    },
    ok(args, opts) {
      const r = sb.kiln(args, opts);
      if (r.status !== 0) throw new Error(`kiln ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
      return r.stdout;
    },
    cleanup() {
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
  return sb;
}

/** Asserts a host tool exists; the error says how to install it. */
export function requireTool(name: string, pkg = name): string {
  const r = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${name} is not installed; install it with: apt-get install -y ${pkg} (or run scripts/setup.sh)`);
  return r.stdout.trim();
}

export function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; input?: string | Buffer; cwd?: string } = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: { ...process.env, ...opts.env }, input: opts.input, cwd: opts.cwd, maxBuffer: 256 << 20 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

/**
 * A podman with its own store under `dir` and the containers.conf this host needs (runc,
 * clamped ulimits: see shared/HOST.md). Call cleanup() to unmount and remove its state.
 */
export function podmanIn(dir: string): { run: (args: string[], input?: Buffer) => string; cleanup: () => void } {
  requireTool('podman');
  const conf = path.join(dir, 'containers.conf');
  fs.writeFileSync(conf, '[engine]\nruntime = "runc"\n[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=1000:1000"]\n');
  const base = ['--root', path.join(dir, 'podman-root'), '--runroot', path.join(dir, 'podman-run'), '--storage-driver', 'overlay'];
  const env = { CONTAINERS_CONF: conf };
  return {
    run: (args, input) => run('podman', [...base, ...args], { env, input }),
    // Not `podman system reset`: it would also delete the host's podman networks.
    cleanup: () => {
      spawnSync('podman', [...base, 'rm', '--all', '--force'], { env, encoding: 'utf8' });
      spawnSync('sh', ['-c', `awk -v t=${JSON.stringify(dir)} 'index($5, t "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l`]);
      fs.rmSync(path.join(dir, 'podman-root'), { recursive: true, force: true });
      fs.rmSync(path.join(dir, 'podman-run'), { recursive: true, force: true });
    },
  };
}

/** A small rootfs tarball with busybox (the same builder as the default base image). */
export async function busyboxTar(dir: string): Promise<string> {
  requireTool('busybox', 'busybox-static');
  const out = path.join(dir, 'busybox-rootfs.tar');
  if (!fs.existsSync(out)) await writeBusyboxRootfs(out);
  return out;
}

/** Starts kiln in the background (for kill -9 tests). */
export function spawnKiln(sb: Sandbox, args: string[]) {
  return spawn(process.execPath, [KILN, '--root', sb.root, '--runroot', sb.runroot, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
}
