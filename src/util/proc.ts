/**
 * Process identity for debris ownership. A pid alone is reused by the kernel, so owners are
 * named "<pid>-<starttime>" (starttime: field 22 of /proc/<pid>/stat, clock ticks since boot),
 * which identifies one process for the life of the machine.
 */
import * as fs from 'node:fs';

function startTimeOf(pid: number): string | undefined {
  let stat: string;
  try {
    stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
  } catch {
    return undefined;
  }
  // comm (field 2) may contain spaces and parentheses: fields after the last ')' are regular.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return rest[19]; // field 22 overall; rest[0] is field 3
}

let self: string | undefined;

/** "<pid>-<starttime>" of this process. */
export function selfOwner(): string {
  if (self === undefined) self = `${process.pid}-${startTimeOf(process.pid) ?? '0'}`;
  return self;
}

const OWNER_RE = /^(\d+)-(\d+)$/;

/** Whether the process named by an owner string still runs. Malformed owners count as dead. */
export function ownerAlive(owner: string): boolean {
  const m = OWNER_RE.exec(owner);
  if (!m) return false;
  if (owner === selfOwner()) return true;
  return startTimeOf(Number(m[1])) === m[2];
}
