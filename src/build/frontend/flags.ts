/**
 * Instruction flags (`--name=value`), checked like BuildKit's BFlags: every flag must be one the
 * instruction declares, string flags need `=value`, boolean flags take no value or
 * `=true`/`=false`, and only list flags (`--exclude`, `--mount`) may repeat. Also the Go value
 * syntaxes flags use: durations (time.ParseDuration) and booleans (strconv.ParseBool).
 */
import { KilnError } from '../../errors';
import type { RawInstruction } from './parse';

export type FlagKind = 'bool' | 'string' | 'strings';

export interface Flags {
  /** a string flag's value, undefined if not given */
  str(name: string): string | undefined;
  /** a boolean flag's value, false if not given */
  bool(name: string): boolean;
  /** all values of a list flag, in order */
  list(name: string): string[];
  /** the line of the (first) occurrence of a flag, for error messages */
  where(name: string): string;
}

export function containerfileError(where: string, message: string): KilnError {
  return new KilnError('E_CONTAINERFILE', `${where}: ${message}`);
}

export function parseFlags(ins: RawInstruction, spec: Readonly<Record<string, FlagKind>>): Flags {
  const values = new Map<string, string | boolean | string[]>();
  const lines = new Map<string, string>();
  for (const f of ins.flags) {
    const where = `${f.loc.file}:${f.loc.line}`;
    const kind = Object.hasOwn(spec, f.name) ? spec[f.name] : undefined;
    if (kind === undefined) throw containerfileError(where, `unknown flag --${f.name} for ${ins.keyword}`);
    if (values.has(f.name) && kind !== 'strings') throw containerfileError(where, `${ins.keyword}: duplicate flag --${f.name}`);
    if (!lines.has(f.name)) lines.set(f.name, where);
    if (kind === 'bool') {
      if (f.value === '') throw containerfileError(where, `${ins.keyword}: missing a value on flag --${f.name}`);
      const b = f.value === null ? true : parseGoBool(f.value);
      if (b === undefined) throw containerfileError(where, `${ins.keyword}: expecting a boolean value for flag --${f.name}, not: ${f.value}`);
      values.set(f.name, b);
      continue;
    }
    if (f.value === null) throw containerfileError(where, `${ins.keyword}: missing a value on flag --${f.name}`);
    if (kind === 'string') values.set(f.name, f.value);
    else values.set(f.name, [...((values.get(f.name) as string[] | undefined) ?? []), f.value]);
  }
  const loc = `${ins.loc.file}:${ins.loc.line}`;
  return {
    str: (name) => values.get(name) as string | undefined,
    bool: (name) => values.get(name) === true,
    list: (name) => (values.get(name) as string[] | undefined) ?? [],
    where: (name) => lines.get(name) ?? loc,
  };
}

/** strconv.ParseBool; undefined if not a boolean. */
export function parseGoBool(s: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(s)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(s)) return false;
  return undefined;
}

export { parseGoDuration } from '../../util/duration';

/**
 * go-units RAMInBytes (tmpfs `size=`): a number with an optional k/m/g/t/p suffix (binary
 * multiples, optional `i`/`b`), e.g. "64m", "1.5g", "4096"; undefined if invalid.
 */
export function parseRamInBytes(s: string): number | undefined {
  const m = /^(\d+(?:\.\d+)*) ?([kKmMgGtTpP])?[iI]?[bB]?$/.exec(s);
  if (!m) return undefined;
  const mult: Record<string, number> = { k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40, p: 2 ** 50 };
  const n = Number.parseFloat(m[1]!);
  if (!Number.isFinite(n)) return undefined;
  return Math.trunc(n * (m[2] ? mult[m[2].toLowerCase()]! : 1));
}
