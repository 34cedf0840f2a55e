/**
 * A build step's writable root filesystem: an overlay whose lower dirs are the parent layer
 * chain and whose upper dir becomes the step's new layer (LayerStore.commitDir). Everything
 * lives in one step dir inside this process's work dir, laid out as a layer dir expects:
 *   <step>/diff    the upper dir (the future layer)
 *   <step>/work    overlay's work dir
 *   <step>/merged  the mount point
 * so a process killed mid-step leaves only debris that repair unmounts and removes.
 *
 * Call order: open() → use `merged` → seal() (unmounts; the step dir then holds only diff/, ready
 * for commitDir) or discard() (unmounts and removes all). Both are idempotent.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { KilnError } from '../errors';
import { native } from '../native';
import type { Store } from '../store/store';

const MNT_DETACH = 2;

export class WorkingRootfs {
  private mounted = false;

  private constructor(readonly stepDir: string, readonly merged: string) {}

  /** Mounts a fresh writable overlay on top of the layer `parent` (null: an empty root, FROM scratch). */
  static open(store: Store, parent: string | null): WorkingRootfs {
    const stepDir = store.tempDir('step');
    const w = new WorkingRootfs(stepDir, path.join(stepDir, 'merged'));
    for (const d of ['diff', 'work', 'merged']) fs.mkdirSync(path.join(stepDir, d), { mode: 0o755 });
    const lowers = parent === null ? [] : store.layers.lowerChain(parent);
    if (lowers.length === 0) {
      fs.mkdirSync(path.join(store.paths.root, 'empty'), { recursive: true, mode: 0o755 });
      lowers.push('empty');
    }
    const rel = path.relative(store.paths.root, stepDir);
    const opts = `lowerdir=${lowers.join(':')},upperdir=${rel}/diff,workdir=${rel}/work,redirect_dir=off,metacopy=off,index=off`;
    const cwd = process.cwd();
    process.chdir(store.paths.root); // short relative paths keep the options under a page
    try {
      native().mount('overlay', w.merged, 'overlay', 0, opts);
      w.mounted = true;
    } catch (e) {
      fs.rmSync(stepDir, { recursive: true, force: true });
      throw new KilnError('E_STORE', `cannot mount the build overlay at ${w.merged}: ${(e as Error).message}`, { cause: e });
    } finally {
      process.chdir(cwd);
    }
    return w;
  }

  /** The upper dir: what this step changed, in overlay form. */
  get upper(): string {
    return path.join(this.stepDir, 'diff');
  }

  /** Unmounts and removes work/ and merged/, leaving diff/ for LayerStore.commitDir. */
  seal(): void {
    this.unmount();
    fs.rmSync(path.join(this.stepDir, 'work'), { recursive: true, force: true });
    fs.rmSync(this.merged, { recursive: true, force: true });
  }

  discard(): void {
    this.unmount();
    fs.rmSync(this.stepDir, { recursive: true, force: true });
  }

  private unmount(): void {
    if (!this.mounted) return;
    native().umount2(this.merged, MNT_DETACH);
    this.mounted = false;
  }
}
