/**
 * Containers left by a killed kiln: `runc run` is kiln's child, so a kill -9 of kiln mid-RUN
 * leaves the runtime and the container running, with their bundle in the dead process's work
 * dir. Before repair removes that dir, the containers whose bundle lies in it are killed and
 * deleted. Synchronous: repair runs it between its transaction and the removal.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { chooseRuntime } from './detect';

/** Kills and deletes the containers of runtime state dir `stateDir` whose bundle is inside `dir`. */
export function killContainersUnder(stateDir: string, dir: string): string[] {
  if (!fs.existsSync(stateDir)) return [];
  const bin = chooseRuntime().path;
  if (!bin) return [];
  const r = spawnSync(bin, ['--root', stateDir, 'list', '--format', 'json'], { encoding: 'utf8' });
  if (r.status !== 0) return [];
  let list: { id: string; bundle: string }[];
  try {
    list = (JSON.parse(r.stdout || '[]') as { id: string; bundle: string }[] | null) ?? [];
  } catch {
    return [];
  }
  const prefix = `${path.resolve(dir)}/`;
  const killed: string[] = [];
  for (const c of list) {
    if (!`${path.resolve(c.bundle)}/`.startsWith(prefix)) continue;
    spawnSync(bin, ['--root', stateDir, 'kill', c.id, 'KILL'], { stdio: 'ignore' });
    spawnSync(bin, ['--root', stateDir, 'delete', '--force', c.id], { stdio: 'ignore' });
    killed.push(c.id);
  }
  return killed;
}
