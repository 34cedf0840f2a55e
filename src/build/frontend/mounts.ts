/**
 * `RUN --mount=<csv>` as BuildKit parses it (instructions/commands_runmount.go,
 * dockerfile2llb/convert_secrets.go): comma-separated key=value fields in CSV syntax, `type`
 * bind (default) | cache | tmpfs | secret. String values are kept unexpanded (the executor
 * expands them with the stage's variables, as BuildKit does at dispatch); numeric values
 * (mode, uid, gid, size) must be literal. Defaults filled in here: bind is read-only, cache
 * read-write and `sharing=shared`; a secret's id is its source/id or the target's basename, its
 * target `/run/secrets/<id>` unless it goes to an env variable, mode 0400, uid/gid 0.
 */
import { containerfileError, parseGoBool, parseRamInBytes } from './flags';
import type { RunMount } from './types';

const KEYS = ['type', 'from', 'source', 'src', 'target', 'dst', 'destination', 'readonly', 'ro', 'readwrite', 'rw', 'id', 'sharing', 'required', 'mode', 'uid', 'gid', 'size', 'env'];

/** Which keys each type accepts (after aliases are folded). */
const ALLOWED: Record<RunMount['type'], ReadonlySet<string>> = {
  bind: new Set(['type', 'target', 'source', 'from', 'readonly']),
  cache: new Set(['type', 'target', 'source', 'from', 'readonly', 'id', 'sharing', 'mode', 'uid', 'gid']),
  tmpfs: new Set(['type', 'target', 'size']),
  secret: new Set(['type', 'target', 'source', 'id', 'required', 'mode', 'uid', 'gid', 'env']),
};

const ALIAS: Record<string, string> = { src: 'source', dst: 'target', destination: 'target', ro: 'readonly', rw: 'readwrite' };

/** Parses one --mount value; `where` is "file:line" for errors. */
export function parseMount(value: string, where: string): RunMount {
  const fail = (msg: string) => containerfileError(where, `--mount=${value}: ${msg}`);
  let fields: string[];
  try {
    fields = parseCsvRecord(value);
  } catch (e) {
    throw fail(`failed to parse csv mounts: ${(e as Error).message}`);
  }
  const kv = new Map<string, string>();
  let readonly: boolean | undefined;
  let required: boolean | undefined;
  for (const field of fields) {
    const eq = field.indexOf('=');
    const rawKey = (eq < 0 ? field : field.slice(0, eq)).toLowerCase();
    const key = ALIAS[rawKey] ?? rawKey;
    if (!KEYS.includes(rawKey)) throw fail(`unexpected key '${rawKey}' in '${field}'`);
    if (eq < 0) {
      if (key === 'readonly' || key === 'readwrite') readonly = key === 'readonly';
      else if (key === 'required') required = true;
      else throw fail(`invalid field '${field}' must be a key=value pair`);
      kv.set(key === 'readwrite' ? 'readonly' : key, '');
      continue;
    }
    const v = field.slice(eq + 1);
    if (key === 'readonly' || key === 'readwrite' || key === 'required') {
      const b = parseGoBool(v);
      if (b === undefined) throw fail(`invalid value for ${rawKey}: ${v}`);
      if (key === 'required') required = b;
      else readonly = key === 'readonly' ? b : !b;
      kv.set(key === 'readwrite' ? 'readonly' : key, v);
      continue;
    }
    kv.set(key, v);
  }

  const type = (kv.get('type') ?? 'bind').toLowerCase();
  if (type !== 'bind' && type !== 'cache' && type !== 'tmpfs' && type !== 'secret') {
    throw fail(`unsupported mount type "${kv.get('type')}" (kiln supports bind, cache, tmpfs, secret)`);
  }
  for (const key of kv.keys()) {
    if (ALLOWED[type].has(key)) continue;
    if (key === 'required') throw fail(`unexpected key 'required' for mount type '${type}'`);
    if (key === 'mode' || key === 'uid' || key === 'gid') throw fail(`${key} not allowed for "${type}" type mounts`);
    if (key === 'sharing') throw fail(`invalid cache sharing set for ${type} mount`);
    if (key === 'from' && type === 'secret') throw fail('secret mount should not have a from');
    throw fail(`${key} is not supported for ${type} mounts`);
  }
  const num = (key: string, radix: 8 | 10): number | undefined => {
    const v = kv.get(key);
    if (v === undefined) return undefined;
    const ok = radix === 8 ? /^[0-7]+$/.test(v) : /^\d+$/.test(v);
    const n = ok ? Number.parseInt(v, radix) : NaN;
    if (!ok || n > 0xffffffff) throw fail(`invalid value ${v} for ${key}`);
    return n;
  };
  const str = (key: string): string | undefined => kv.get(key);
  const target = str('target');
  if (type !== 'secret' && (target === undefined || target === '')) throw fail(`mount target must be specified for a ${type} mount`);
  const from = str('from');
  if (from === '') throw fail('from= needs a stage name or image');

  switch (type) {
    case 'bind':
      return compact({ type, target: target!, source: str('source'), from, rw: readonly === undefined ? false : !readonly });
    case 'cache': {
      const sharing = (str('sharing') ?? 'shared').toLowerCase();
      if (sharing !== 'shared' && sharing !== 'private' && sharing !== 'locked') throw fail(`unsupported sharing value "${str('sharing')}"`);
      return compact({
        type,
        target: target!,
        id: str('id'),
        source: str('source'),
        from,
        sharing,
        mode: num('mode', 8),
        uid: num('uid', 10),
        gid: num('gid', 10),
        readonly: readonly ?? false,
      });
    }
    case 'tmpfs': {
      const sizeText = str('size');
      const size = sizeText === undefined ? undefined : parseRamInBytes(sizeText);
      if (sizeText !== undefined && size === undefined) throw fail(`invalid value ${sizeText} for size`);
      return compact({ type, target: target!, size });
    }
    case 'secret': {
      const source = str('source');
      const idGiven = str('id');
      const env = str('env');
      if (!source && !target && !idGiven && env === undefined) throw fail('invalid secret mount. one of source, target required');
      if (source && idGiven) throw fail("both source and id can't be set");
      const id = source || idGiven || (target ? basename(target) : '');
      if (id === '') throw fail('a secret mount needs an id (id=, source= or target=)');
      return compact({
        type,
        id,
        target: target || (env === undefined ? `/run/secrets/${basename(id)}` : undefined),
        env,
        required: required ?? false,
        mode: num('mode', 8) ?? 0o400,
        uid: num('uid', 10) ?? 0,
        gid: num('gid', 10) ?? 0,
      });
    }
  }
}

/** Drops undefined properties, so plans compare and serialise the same way. */
function compact<T extends object>(o: T): T {
  for (const k of Object.keys(o) as (keyof T)[]) if (o[k] === undefined) delete o[k];
  return o;
}

function basename(p: string): string {
  const parts = p.split('/').filter((s) => s !== '');
  return parts.length === 0 ? '/' : parts[parts.length - 1]!;
}

/** One record of Go's encoding/csv (comma separated, `"` quoting with `""` inside quotes). */
export function parseCsvRecord(s: string): string[] {
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    let field = '';
    if (s[i] === '"') {
      i++;
      for (;;) {
        if (i >= s.length) throw new Error('extraneous or missing " in quoted-field');
        if (s[i] === '"') {
          if (s[i + 1] === '"') {
            field += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        field += s[i++];
      }
      if (i < s.length && s[i] !== ',') throw new Error('extraneous or missing " in quoted-field');
    } else {
      while (i < s.length && s[i] !== ',') {
        if (s[i] === '"') throw new Error('bare " in non-quoted-field');
        field += s[i++];
      }
    }
    fields.push(field);
    if (i >= s.length) return fields;
    i++; // ','
  }
}
