/**
 * `kiln image mount [IMAGE...]` / `kiln image unmount [-a] [-f] IMAGE...` (podman's): read-only
 * overlay mounts of images' layer chains, held under the name "cli" until unmounted. Without
 * arguments, `mount` lists mounted images as "ID  MOUNTPOINT".
 */
import type { Command } from 'commander';
import { handler, write } from '../output';
import { mountImages, unmountImages, listMounts } from '../../engine/mount';

export function defineMount(cmd: Command): Command {
  return cmd
    .argument('[images...]', 'images to mount')
    .option('--format <format>', 'Print the mounted images in the specified format (json)')
    .action(
      handler(async (ctx, images: string[], o: { format?: string }) => {
        if (images.length === 0) {
          const m = listMounts(ctx);
          write(o.format === 'json' ? JSON.stringify(m.map((x) => ({ id: x.id, Names: x.names, Repositories: x.names, mountpoint: x.target })), null, 4) : m.map((x) => `${x.id.slice(0, 12)}  ${x.target}`).join('\n'));
          return;
        }
        write((await mountImages(ctx, images)).join('\n'));
      }),
    );
}

export function defineUnmount(cmd: Command): Command {
  return cmd
    .argument('[images...]', 'images to unmount')
    .option('-a, --all', 'Unmount all of the currently mounted images')
    .option('-f, --force', 'Force the complete unmount of the specified mounted images')
    .action(
      handler((ctx, images: string[], o: { all?: boolean; force?: boolean }) => {
        write(unmountImages(ctx, images, { all: !!o.all, force: !!o.force }).join('\n'));
      }),
    );
}
