/**
 * Pass 2 of the front end: a raw instruction → the typed Instruction of types.ts, with the
 * checks BuildKit's instructions package makes (argument counts, flags, JSON forms, ONBUILD
 * triggers). FROM is not an Instruction: parseFrom gives its parts to stages.ts. Words stay
 * unexpanded; errors are E_CONTAINERFILE "file:line: ...".
 */
import { KilnError } from '../../errors';
import { containerfileError, parseFlags, parseGoDuration, type FlagKind } from './flags';
import { parseMount } from './mounts';
import { chompHeredoc, parseContainerfile, parseHeredocWord, type RawInstruction } from './parse';
import type { CommandForm, CopySpec, Heredoc, HealthcheckSpec, Instruction, KeyValue } from './types';
import { parseJsonArray, splitWhitespace, splitWordsKeepQuotes, trimLeftSpace, WHITESPACE } from './words';

const NO_FLAGS: Readonly<Record<string, FlagKind>> = {};
const COPY_FLAGS: Readonly<Record<string, FlagKind>> = { from: 'string', chown: 'string', chmod: 'string', link: 'bool', parents: 'bool', exclude: 'strings' };
const ADD_FLAGS: Readonly<Record<string, FlagKind>> = { chown: 'string', chmod: 'string', link: 'bool', parents: 'bool', exclude: 'strings', checksum: 'string', 'keep-git-dir': 'bool' };
const HEALTH_FLAGS: Readonly<Record<string, FlagKind>> = { interval: 'string', timeout: 'string', 'start-period': 'string', 'start-interval': 'string', retries: 'string' };

/** Every keyword kiln knows, FROM included. */
export const KEYWORDS = ['ADD', 'ARG', 'CMD', 'COPY', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'FROM', 'HEALTHCHECK', 'LABEL', 'MAINTAINER', 'ONBUILD', 'RUN', 'SHELL', 'STOPSIGNAL', 'USER', 'VOLUME', 'WORKDIR'];

export function toInstruction(raw: RawInstruction): Instruction {
  const where = `${raw.loc.file}:${raw.loc.line}`;
  const base = { loc: raw.loc, original: raw.original };
  const fail = (msg: string) => containerfileError(where, msg);
  switch (raw.keyword) {
    case 'RUN': {
      const flags = parseFlags(raw, { mount: 'strings', network: 'string', security: 'string' });
      const network = flags.str('network') ?? 'default';
      if (network !== 'default' && network !== 'none' && network !== 'host') {
        throw containerfileError(flags.where('network'), `RUN --network=${network}: unsupported network mode (use default, none or host)`);
      }
      const security = flags.str('security');
      if (security !== undefined && security !== 'sandbox' && security !== 'insecure') {
        throw containerfileError(flags.where('security'), `RUN --security=${security}: unsupported security mode (use sandbox or insecure)`);
      }
      const mountLines = raw.flags.filter((f) => f.name === 'mount').map((f) => `${f.loc.file}:${f.loc.line}`);
      const mounts = flags.list('mount').map((m, i) => parseMount(m, mountLines[i] ?? where));
      const command = commandForm(raw, fail);
      return security === undefined ? { kind: 'RUN', ...base, command, mounts, network } : { kind: 'RUN', ...base, command, mounts, network, security };
    }
    case 'CMD':
    case 'ENTRYPOINT':
      parseFlags(raw, NO_FLAGS);
      return { kind: raw.keyword, ...base, command: commandForm(raw, fail) };
    case 'ENV':
    case 'LABEL':
      parseFlags(raw, NO_FLAGS);
      return { kind: raw.keyword, ...base, pairs: nameValues(raw, fail) };
    case 'ARG': {
      parseFlags(raw, NO_FLAGS);
      const words = splitWordsKeepQuotes(raw.args, raw.escape);
      if (words.length === 0) throw fail('ARG requires at least one argument');
      const args = words.map((w) => {
        const eq = w.indexOf('=');
        if (eq < 0) return { name: w };
        if (eq === 0) throw fail('ARG names can not be blank');
        return { name: w.slice(0, eq), default: w.slice(eq + 1) };
      });
      return { kind: 'ARG', ...base, args };
    }
    case 'EXPOSE': {
      parseFlags(raw, NO_FLAGS);
      const ports = splitWordsKeepQuotes(raw.args, raw.escape);
      if (ports.length === 0) throw fail('EXPOSE requires at least one argument');
      return { kind: 'EXPOSE', ...base, ports };
    }
    case 'VOLUME': {
      parseFlags(raw, NO_FLAGS);
      const paths = raw.json ? raw.json.map((p) => p.trim()) : splitWordsKeepQuotes(raw.args, raw.escape);
      if (paths.length === 0) throw fail('VOLUME requires at least one argument');
      if (paths.some((p) => p === '')) throw fail('VOLUME specified can not be an empty string');
      return { kind: 'VOLUME', ...base, paths };
    }
    case 'USER':
    case 'WORKDIR':
    case 'STOPSIGNAL':
    case 'MAINTAINER': {
      parseFlags(raw, NO_FLAGS);
      if (raw.args === '') throw fail(`${raw.keyword} requires exactly one argument`);
      if (raw.keyword === 'USER') return { kind: 'USER', ...base, user: raw.args };
      if (raw.keyword === 'WORKDIR') return { kind: 'WORKDIR', ...base, path: raw.args };
      if (raw.keyword === 'STOPSIGNAL') return { kind: 'STOPSIGNAL', ...base, signal: raw.args };
      return { kind: 'MAINTAINER', ...base, name: raw.args };
    }
    case 'SHELL': {
      parseFlags(raw, NO_FLAGS);
      if (raw.args === '' || (raw.json && raw.json.length === 0)) throw fail('SHELL requires at least one argument');
      if (!raw.json) throw fail('SHELL requires the arguments to be in JSON form, e.g. SHELL ["/bin/sh", "-c"]');
      return { kind: 'SHELL', ...base, shell: raw.json };
    }
    case 'HEALTHCHECK':
      return { kind: 'HEALTHCHECK', ...base, healthcheck: healthcheck(raw, fail) };
    case 'ONBUILD':
      parseFlags(raw, NO_FLAGS);
      return { kind: 'ONBUILD', ...base, trigger: onbuildTrigger(raw, fail) };
    case 'COPY':
    case 'ADD':
      return copySpec(raw, fail);
    case 'FROM':
      throw new KilnError('E_INTERNAL', `${where}: FROM is handled by planBuild, not toInstruction`);
    default: {
      const near = KEYWORDS.find((k) => editDistance(k, raw.keyword) <= 2);
      throw new KilnError('E_CONTAINERFILE', `${where}: unknown instruction: ${raw.keyword}`, near ? { hint: `did you mean ${near}?` } : {});
    }
  }
}

export interface FromParts {
  /** the base as written (unexpanded) */
  image: string;
  /** `AS name`, lower-cased */
  name?: string;
  /** --platform as written */
  platform?: string;
}

export function parseFrom(raw: RawInstruction): FromParts {
  const fail = (msg: string) => containerfileError(`${raw.loc.file}:${raw.loc.line}`, msg);
  const flags = parseFlags(raw, { platform: 'string' });
  const args = splitWhitespace(raw.args);
  const out: FromParts = { image: args[0] ?? '' };
  if (args.length === 3 && args[1]!.toLowerCase() === 'as') {
    const name = args[2]!.toLowerCase();
    if (!/^[a-z][a-z0-9-_.]*$/.test(name)) {
      throw fail(`invalid name for build stage: "${args[2]}", name can't start with a number or contain symbols`);
    }
    out.name = name;
  } else if (args.length !== 1) {
    throw fail('FROM requires either one or three arguments (FROM image [AS name])');
  }
  const platform = flags.str('platform');
  if (platform !== undefined) out.platform = platform;
  return out;
}

/**
 * Parses an ONBUILD trigger (from this file or from a base image's config) into the
 * instruction it will run as; `loc` is where it should be reported.
 */
export function parseTrigger(trigger: string, loc: { file: string; line: number; endLine: number }): Instruction {
  let parsed;
  try {
    parsed = parseContainerfile(trigger, loc.file);
  } catch (e) {
    throw new KilnError('E_CONTAINERFILE', `${loc.file}:${loc.line}: ONBUILD trigger ${JSON.stringify(trigger)}: ${stripWhere((e as Error).message)}`);
  }
  if (parsed.instructions.length !== 1) throw containerfileError(`${loc.file}:${loc.line}`, 'an ONBUILD trigger must be a single instruction');
  const raw = { ...parsed.instructions[0]!, loc, flags: parsed.instructions[0]!.flags.map((f) => ({ ...f, loc })) };
  const kw = raw.keyword;
  if (kw === 'ONBUILD') throw containerfileError(`${loc.file}:${loc.line}`, 'chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed');
  if (kw === 'FROM' || kw === 'MAINTAINER') throw containerfileError(`${loc.file}:${loc.line}`, `${kw} isn't allowed as an ONBUILD trigger`);
  return toInstruction(raw);
}

/** Drops the leading "file:line: " or "file: " of a parse error (only that: the rest may hold "RUN: ..."). */
function stripWhere(message: string): string {
  return message.replace(/^[^:]*(?::\d+)?: /, '');
}

/** The trigger text: the instruction after ONBUILD, with its heredoc bodies so it parses again on its own. */
function onbuildTrigger(raw: RawInstruction, fail: (m: string) => KilnError): string {
  if (raw.args === '') throw fail('ONBUILD requires at least one argument');
  let trigger = raw.original.replace(/^\s*ONBUILD\s*/i, '');
  for (const h of raw.heredocs) trigger += `\n${h.content}${h.name}`;
  parseTrigger(trigger, raw.loc); // validates it now rather than in the child build
  return trigger;
}

/** RUN/CMD/ENTRYPOINT: exec form as is; shell form with its heredocs folded in as BuildKit does. */
function commandForm(raw: RawInstruction, fail: (m: string) => KilnError): CommandForm {
  if (raw.json) {
    if (raw.keyword === 'RUN' && raw.json.length === 0) throw fail('RUN requires at least one argument');
    return { form: 'exec', args: raw.json };
  }
  if (raw.args === '') throw fail(`${raw.keyword} requires at least one argument`);
  if (raw.heredocs.length === 0) return { form: 'shell', script: raw.args, heredocs: [] };
  const heredocs = raw.heredocs.map(finalHeredoc);
  if (raw.heredocs.length === 1 && parseHeredocWord(raw.args)) {
    // `RUN <<EOF` alone: the body is the script
    return { form: 'shell', script: heredocs[0]!.content, heredocs };
  }
  let script = raw.args;
  for (const h of raw.heredocs) script += `\n${h.content}${h.name}`;
  return { form: 'shell', script, heredocs };
}

function finalHeredoc(h: Heredoc): Heredoc {
  return { ...h, content: h.chomp ? chompHeredoc(h.content) : h.content };
}

/**
 * ENV/LABEL: `k=v k2="v 2"` (values keep their quotes until expansion) or the legacy
 * `KEY value with spaces` (one pair, the rest of the line as value).
 */
function nameValues(raw: RawInstruction, fail: (m: string) => KilnError): KeyValue[] {
  const words = splitWordsKeepQuotes(raw.args, raw.escape);
  if (words.length === 0) throw fail(`${raw.keyword} requires at least one argument`);
  if (!words[0]!.includes('=')) {
    const m = WHITESPACE.exec(raw.args);
    if (!m) throw fail(`${raw.keyword} must have two arguments`);
    return [{ key: raw.args.slice(0, m.index), value: raw.args.slice(m.index + m[0].length) }];
  }
  return words.map((w) => {
    const eq = w.indexOf('=');
    if (eq < 0) throw fail(`Syntax error - can't find = in ${JSON.stringify(w)}. Must be of the form: name=value`);
    if (eq === 0) throw fail(`${raw.keyword} names can not be blank`);
    return { key: w.slice(0, eq), value: w.slice(eq + 1) };
  });
}

function healthcheck(raw: RawInstruction, fail: (m: string) => KilnError): HealthcheckSpec {
  if (raw.args === '') throw fail('HEALTHCHECK requires at least one argument');
  const m = /\s/.exec(raw.args);
  const type = (m ? raw.args.slice(0, m.index) : raw.args).toUpperCase();
  const rest = m ? trimLeftSpace(raw.args.slice(m.index)) : '';
  if (type === 'NONE') {
    if (rest !== '') throw fail('HEALTHCHECK NONE takes no arguments');
    if (raw.flags.length > 0) throw fail(`HEALTHCHECK NONE takes no options (got --${raw.flags[0]!.name})`);
    return { test: ['NONE'] };
  }
  const flags = parseFlags(raw, HEALTH_FLAGS);
  if (type !== 'CMD') throw fail(`unknown type ${JSON.stringify(type)} in HEALTHCHECK (try CMD)`);
  let json: string[] | undefined;
  try {
    json = parseJsonArray(rest);
  } catch (e) {
    throw fail(`HEALTHCHECK: ${(e as Error).message}`);
  }
  if ((json && json.length === 0) || (!json && rest === '')) throw fail('Missing command after HEALTHCHECK CMD');
  const spec: HealthcheckSpec = { test: json ? ['CMD', ...json] : ['CMD-SHELL', rest] };
  const durations = [
    ['interval', 'interval'],
    ['timeout', 'timeout'],
    ['start-period', 'startPeriod'],
    ['start-interval', 'startInterval'],
  ] as const;
  for (const [flag, field] of durations) {
    const v = flags.str(flag);
    if (v === undefined || v === '') continue;
    const ns = parseGoDuration(v);
    if (ns === undefined) throw containerfileError(flags.where(flag), `HEALTHCHECK --${flag}: invalid duration ${JSON.stringify(v)} (e.g. 30s, 1m30s)`);
    if (ns !== 0 && ns < 1_000_000) throw containerfileError(flags.where(flag), `HEALTHCHECK --${flag} cannot be less than 1ms`);
    spec[field] = ns;
  }
  const retries = flags.str('retries');
  if (retries !== undefined && retries !== '') {
    if (!/^[+-]?\d+$/.test(retries) || Math.abs(Number(retries)) > 2 ** 31 - 1) {
      throw containerfileError(flags.where('retries'), `HEALTHCHECK --retries: invalid number ${JSON.stringify(retries)}`);
    }
    const n = Number(retries);
    if (n < 1) throw containerfileError(flags.where('retries'), `HEALTHCHECK --retries must be at least 1 (not ${n})`);
    spec.retries = n;
  }
  return spec;
}

function copySpec(raw: RawInstruction, fail: (m: string) => KilnError): CopySpec {
  const kind = raw.keyword as 'COPY' | 'ADD';
  if (kind === 'COPY') {
    const addOnly = raw.flags.find((f) => f.name === 'checksum' || f.name === 'keep-git-dir');
    if (addOnly) throw containerfileError(`${addOnly.loc.file}:${addOnly.loc.line}`, `unknown flag --${addOnly.name} for COPY (only ADD supports --${addOnly.name})`);
  }
  const flags = parseFlags(raw, kind === 'COPY' ? COPY_FLAGS : ADD_FLAGS);
  const words = raw.json ?? splitWordsKeepQuotes(raw.args, raw.escape);
  if (words.length < 2) throw fail(`${kind} requires at least two arguments, but only ${words.length === 1 ? 'one was' : 'none were'} provided. Destination could not be determined`);
  const dest = words[words.length - 1]!;
  const heredocWord = (w: string) => (raw.json ? undefined : parseHeredocWord(w));
  if (heredocWord(dest)) throw fail(`${kind} cannot accept a heredoc as a destination`);
  const sources: string[] = [];
  const heredocs: Heredoc[] = [];
  for (const w of words.slice(0, -1)) {
    const h = heredocWord(w);
    if (!h) {
      sources.push(w);
      continue;
    }
    const body = raw.heredocs.find((d) => d.name === h.name);
    heredocs.push(finalHeredoc({ name: h.name, content: body?.content ?? '', expand: h.expand, chomp: h.chomp }));
  }
  const from = flags.str('from');
  if (from === '') throw containerfileError(flags.where('from'), 'COPY --from needs a stage name, stage index or image');
  const optional = (key: string, value: string | undefined) => (value === undefined ? {} : { [key]: value });
  const spec: CopySpec = {
    kind,
    loc: raw.loc,
    original: raw.original,
    sources,
    heredocs,
    dest,
    ...optional('from', from),
    ...optional('chown', flags.str('chown')),
    ...optional('chmod', flags.str('chmod')),
    link: flags.bool('link'),
    parents: flags.bool('parents'),
    excludes: flags.list('exclude'),
  };
  if (kind === 'ADD') {
    const checksum = flags.str('checksum');
    if (checksum !== undefined) spec.checksum = checksum;
    spec.keepGitDir = flags.bool('keep-git-dir');
  }
  return spec;
}

/** Levenshtein distance, for "did you mean" hints. */
function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}
