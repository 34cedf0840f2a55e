/**
 * `--change 'INSTRUCTION args'` for import (podman/buildah semantics): CMD, ENTRYPOINT, ENV,
 * EXPOSE, LABEL, USER, VOLUME, WORKDIR, STOPSIGNAL applied to an image config. JSON-array
 * forms are exec form; anything else is shell form (["/bin/sh", "-c", "..."]).
 */
import { KilnError } from '../errors';
import type { ImageConfig } from './oci';

type Cfg = NonNullable<ImageConfig['config']>;

function bad(change: string, why: string): KilnError {
  return new KilnError('E_INVALID_ARGUMENT', `--change ${JSON.stringify(change)}: ${why}`, {
    hint: 'supported: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR, STOPSIGNAL',
  });
}

function execOrShell(args: string): string[] {
  const t = args.trim();
  if (t.startsWith('[')) {
    try {
      const v = JSON.parse(t) as unknown;
      if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
    } catch {
      /* not JSON: shell form, as Docker does */
    }
  }
  return ['/bin/sh', '-c', t];
}

/** KEY=VALUE pairs (quotes removed), or the legacy single "KEY VALUE" form. */
function keyValues(change: string, args: string): [string, string][] {
  const out: [string, string][] = [];
  const re = /([^\s=]+)=("(?:[^"\\]|\\.)*"|'[^']*'|\S*)/g;
  if (!args.includes('=')) {
    const m = /^(\S+)\s+(.*)$/.exec(args.trim());
    if (!m) throw bad(change, 'want KEY=VALUE');
    return [[m[1]!, m[2]!]];
  }
  let m: RegExpExecArray | null;
  while ((m = re.exec(args)) !== null) {
    let v = m[2]!;
    if (v.startsWith('"')) v = JSON.parse(v) as string;
    else if (v.startsWith("'")) v = v.slice(1, -1);
    out.push([m[1]!, v]);
  }
  if (out.length === 0) throw bad(change, 'want KEY=VALUE');
  return out;
}

export function applyChanges(config: Cfg, changes: readonly string[]): Cfg {
  const c: Cfg = { ...config };
  for (const change of changes) {
    const m = /^\s*(\w+)\s*(.*)$/s.exec(change);
    if (!m) throw bad(change, 'empty change');
    const instr = m[1]!.toUpperCase();
    const args = m[2]!;
    switch (instr) {
      case 'CMD':
        c.Cmd = execOrShell(args);
        break;
      case 'ENTRYPOINT':
        c.Entrypoint = execOrShell(args);
        break;
      case 'ENV': {
        const env = [...(c.Env ?? [])];
        for (const [k, v] of keyValues(change, args)) {
          const i = env.findIndex((e) => e.startsWith(`${k}=`));
          if (i >= 0) env[i] = `${k}=${v}`;
          else env.push(`${k}=${v}`);
        }
        c.Env = env;
        break;
      }
      case 'LABEL':
        c.Labels = { ...(c.Labels ?? {}), ...Object.fromEntries(keyValues(change, args)) };
        break;
      case 'EXPOSE': {
        const ports = { ...(c.ExposedPorts ?? {}) };
        for (const p of args.trim().split(/\s+/)) {
          if (!/^\d+(-\d+)?(\/(tcp|udp|sctp))?$/.test(p)) throw bad(change, `bad port ${JSON.stringify(p)}`);
          ports[p.includes('/') ? p : `${p}/tcp`] = {};
        }
        c.ExposedPorts = ports;
        break;
      }
      case 'USER':
        c.User = args.trim();
        break;
      case 'WORKDIR':
        c.WorkingDir = args.trim();
        break;
      case 'STOPSIGNAL':
        c.StopSignal = args.trim();
        break;
      case 'VOLUME': {
        const vols = { ...(c.Volumes ?? {}) };
        const list = args.trim().startsWith('[') ? (JSON.parse(args) as string[]) : args.trim().split(/\s+/);
        for (const v of list) vols[v] = {};
        c.Volumes = vols;
        break;
      }
      default:
        throw bad(change, `unsupported instruction ${instr}`);
    }
  }
  return c;
}
