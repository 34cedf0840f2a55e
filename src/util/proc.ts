/**
 * The name a process's work dir, leases and mount holds go by: "<pid>-<starttime>" (starttime:
 * field 22 of /proc/<pid>/stat), unique on one machine. Whether that process still runs is
 * decided by the flock on its work dir (Store.ownerAlive), not by looking the pid up.
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
