/**
 * The build benchmarks' fixture (see bench/build.ts): template stores holding only the base
 * image, a reset script that puts a fresh copy of a template in place, and the build
 * contexts of the three workloads, all under the bench run's temp dir.
 *
 * Everything is generated: the base image is the deterministic busybox rootfs of
 * src/base/busybox-rootfs.ts imported into a private kiln store, saved as docker-archive and
 * loaded into a private containers/storage store, so both tools start from the same image
 * bytes and neither the default kiln store nor the host's containers storage is touched. The
 * contexts are deterministic except for the CPU stage's size, which is calibrated on this
 * host (see calibrateStageMiB).
 */
import { spawnSync } from 'node:child_process';
import { createCipheriv } from 'node:crypto';
import { chmodSync, mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { writeBusyboxRootfs } from '../src/base/busybox-rootfs';
import { run } from './lib';

/** The base image every workload builds FROM, in both template stores. */
export const BASE_IMAGE = 'localhost/busybox:latest';
/** How many independent ~1 s stages workload (a) has, and how many RUN steps (b) has. */
export const STAGES = 4;
export const RUN_STEPS = 20;
/** Workload (c): SMALL_FILES files in SMALL_DIRS directories, plus one BIG_MIB file. */
export const SMALL_FILES = 3000;
const SMALL_DIRS = 30;
export const BIG_MIB = 64;
/** CPU seconds one stage of workload (a) should take on this host. */
const STAGE_SECONDS = 1;
/** Stage size when the host has no static busybox to calibrate with. */
const DEFAULT_STAGE_MIB = 224;

export type Tool = 'kiln' | 'buildah';
export type Workload = 'stages' | 'runs' | 'copy';
export const WORKLOADS: readonly Workload[] = ['stages', 'runs', 'copy'];

/** Paths of the fixture, all below the bench run's temp dir (no spaces). */
export interface BuildLayout {
  /** Template store root (base image only) per tool; copied, never built into. */
  template: Record<Tool, string>;
  /** `bash RESET_SCRIPT TOOL WORKLOAD` replaces that pair's store with a fresh template copy. */
  resetScript: string;
  /** The build context of each workload; its Containerfile is CONTEXT/Containerfile. */
  context: Record<Workload, string>;
  /** TMPDIR for buildah (its cache mounts and temp files would otherwise go to /var/tmp). */
  buildahTmp: string;
}

/** Run roots are kept short: podman and buildah refuse a run root longer than 50 characters. */
const RUNROOT_PREFIX: Record<Tool, string> = { kiln: 'kr', buildah: 'br' };

/** Store root and run root of TOOL's private store for WORKLOAD. */
export function storeOf(tmp: string, tool: Tool, wl: Workload): { root: string; runroot: string } {
  return { root: path.join(tmp, `build-${wl}-${tool}`), runroot: path.join(tmp, `${RUNROOT_PREFIX[tool]}-${wl}`) };
}

export function layoutOf(tmp: string): BuildLayout {
  return {
    template: { kiln: path.join(tmp, 'build-template-kiln'), buildah: path.join(tmp, 'build-template-buildah') },
    resetScript: path.join(tmp, 'build-reset.sh'),
    context: { stages: path.join(tmp, 'ctx-stages'), runs: path.join(tmp, 'ctx-runs'), copy: path.join(tmp, 'ctx-copy') },
    buildahTmp: path.join(tmp, 'buildah-tmp'),
  };
}

/**
 * MiB of zeros that `busybox dd … | busybox sha256sum` hashes in STAGE_SECONDS on this host
 * (best of three 64 MiB probes, rounded to 16 MiB). The build containers run the same static
 * busybox, so the host's speed is theirs.
 */
export function calibrateStageMiB(busybox = '/bin/busybox'): number {
  const probeMiB = 64;
  let best = Infinity;
  for (let i = 0; i < 3; i++) {
    const t0 = process.hrtime.bigint();
    const r = spawnSync('/bin/sh', ['-c', `${busybox} dd if=/dev/zero bs=1M count=${probeMiB} 2>/dev/null | ${busybox} sha256sum`], { stdio: 'ignore' });
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    if (r.status !== 0) return DEFAULT_STAGE_MIB;
    best = Math.min(best, s);
  }
  const mib = Math.round(((probeMiB / best) * STAGE_SECONDS) / 16) * 16;
  return Math.min(4096, Math.max(16, mib));
}

/** Workload (a): STAGES independent CPU-bound stages, joined by COPY --from. */
export function stagesContainerfile(stageMiB: number): string {
  const lines: string[] = [];
  for (let i = 1; i <= STAGES; i++) {
    // The echo makes each stage's step distinct, so no builder can share one result.
    lines.push(`FROM ${BASE_IMAGE} AS s${i}`, `RUN echo stage ${i} > /result && dd if=/dev/zero bs=1M count=${stageMiB} 2>/dev/null | sha256sum >> /result`, '');
  }
  lines.push(`FROM ${BASE_IMAGE}`);
  for (let i = 1; i <= STAGES; i++) lines.push(`COPY --from=s${i} /result /results/s${i}`);
  return lines.join('\n') + '\n';
}

/** Workload (b): RUN_STEPS trivial RUN steps, each its own layer. */
export function runsContainerfile(): string {
  const lines = [`FROM ${BASE_IMAGE}`];
  for (let i = 1; i <= RUN_STEPS; i++) lines.push(`RUN echo ${i} > /f${i}`);
  return lines.join('\n') + '\n';
}

/** Workload (c): one COPY of the whole context (SMALL_FILES small files + one big file). */
export function copyContainerfile(): string {
  return `FROM ${BASE_IMAGE}\nCOPY . /data/\n`;
}

const FIXED_TIME = new Date('2020-01-01T00:00:00Z');

/** Deterministic incompressible bytes: AES-128-CTR of zeros under a fixed key. */
function pseudoRandom(bytes: number): Buffer {
  const c = createCipheriv('aes-128-ctr', Buffer.alloc(16, 7), Buffer.alloc(16, 0));
  return Buffer.concat([c.update(Buffer.alloc(bytes)), c.final()]);
}

/** Write the context of workload (c) into dir: files/dNN/fNNNN (100..2000 bytes of text) and big.bin. */
function writeCopyContext(dir: string): void {
  const perDir = SMALL_FILES / SMALL_DIRS;
  for (let d = 0; d < SMALL_DIRS; d++) {
    const sub = path.join(dir, 'files', `d${String(d).padStart(2, '0')}`);
    mkdirSync(sub, { recursive: true });
    for (let f = 0; f < perDir; f++) {
      const n = d * perDir + f;
      const line = `file ${n} of ${SMALL_FILES}: kiln build benchmark context\n`;
      const size = 100 + ((n * 37) % 1900);
      const p = path.join(sub, `f${String(n).padStart(4, '0')}`);
      writeFileSync(p, line.repeat(Math.ceil(size / line.length)).slice(0, size));
      utimesSync(p, FIXED_TIME, FIXED_TIME);
    }
  }
  const big = path.join(dir, 'big.bin');
  writeFileSync(big, pseudoRandom(BIG_MIB << 20));
  utimesSync(big, FIXED_TIME, FIXED_TIME);
}

/**
 * The reset script: `bash build-reset.sh TOOL WORKLOAD` unmounts whatever is mounted under
 * that pair's store, removes the store and its run root, and copies the template in its place.
 * Used as hyperfine's --prepare.
 */
function resetScriptText(tmp: string, layout: BuildLayout): string {
  return `#!/bin/bash
# Generated by bench/build-fixture.ts: reset one build bench store to "base image only".
set -euo pipefail
tool="$1" wl="$2"
case "$tool" in
  kiln) tpl=${layout.template.kiln} runroot=${tmp}/${RUNROOT_PREFIX.kiln}-$wl ;;
  buildah) tpl=${layout.template.buildah} runroot=${tmp}/${RUNROOT_PREFIX.buildah}-$wl ;;
  *) echo "bad tool $tool" >&2; exit 2 ;;
esac
root=${tmp}/build-$wl-$tool
for d in "$root" "$runroot"; do
  awk -v t="$d" '$5 == t || index($5, t "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r |
    while read -r m; do umount -l "$m"; done
  rm -rf "$d"
done
if [ "$tool" = buildah ]; then rm -rf ${layout.buildahTmp}; mkdir -p ${layout.buildahTmp}; fi
cp -a "$tpl" "$root"
`;
}

/**
 * Create the fixture under tmp: contexts, template stores with BASE_IMAGE, reset script.
 * Returns the calibrated stage size in MiB. `kiln` is bin/kiln; env carries CONTAINERS_CONF.
 */
export async function setupBuildFixture(tmp: string, kiln: string, env: NodeJS.ProcessEnv, log: (m: string) => void): Promise<number> {
  const layout = layoutOf(tmp);
  const stageMiB = calibrateStageMiB();
  log(`fixture builds: one stage hashes ${stageMiB} MiB (about ${STAGE_SECONDS} s of busybox sha256sum here)`);

  for (const wl of WORKLOADS) mkdirSync(layout.context[wl], { recursive: true });
  writeFileSync(path.join(layout.context.stages, 'Containerfile'), stagesContainerfile(stageMiB));
  writeFileSync(path.join(layout.context.runs, 'Containerfile'), runsContainerfile());
  writeCopyContext(layout.context.copy);
  writeFileSync(path.join(layout.context.copy, 'Containerfile'), copyContainerfile());

  log('fixture builds: template stores with the base image');
  const rootfs = path.join(tmp, 'build-base-rootfs.tar');
  const archive = path.join(tmp, 'build-base.tar');
  await writeBusyboxRootfs(rootfs);
  const k = ['--root', layout.template.kiln, '--runroot', path.join(tmp, `${RUNROOT_PREFIX.kiln}-tpl`)];
  run(kiln, [...k, 'import', '--change', 'CMD ["/bin/sh"]', rootfs, BASE_IMAGE], { env });
  run(kiln, [...k, 'save', '--format', 'docker-archive', '-o', archive, BASE_IMAGE], { env });
  const b = ['--root', layout.template.buildah, '--runroot', path.join(tmp, `${RUNROOT_PREFIX.buildah}-tpl`), '--storage-driver', 'overlay'];
  // buildah, not podman: podman would also create its libpod database, which records the
  // store's path and refuses a copy of the store at another path.
  run('buildah', [...b, 'pull', '-q', `docker-archive:${archive}`], { env });
  run('buildah', [...b, 'inspect', '--type', 'image', BASE_IMAGE], { env });

  writeFileSync(layout.resetScript, resetScriptText(tmp, layout));
  chmodSync(layout.resetScript, 0o755);
  mkdirSync(layout.buildahTmp, { recursive: true });
  return stageMiB;
}
