/**
 * `kiln build [flags] [CONTEXT]`: podman build's flags, parsed into BuildOptions for
 * build() (src/build/build.ts). Progress goes to stdout as podman's does; the image ID is the
 * last line (alone with -q). A RUN that fails ends kiln with that command's exit status, as
 * podman build does; other errors exit 125.
 */
import * as fs from 'node:fs';
import type { Command } from 'commander';
import { handler, write, ExitError } from '../output';
import { KilnError } from '../../errors';
import type { BuildOptions } from '../../build/build';
import type { SecretSource } from '../../build/env';

const collect = (v: string, prev: string[]) => [...prev, v];

interface Flags {
  tag: string[];
  file?: string;
  buildArg: string[];
  buildArgFile: string[];
  target?: string;
  jobs?: string;
  layers: boolean;
  cache: boolean;
  pull?: string | boolean;
  cacheTtl?: string;
  format: string;
  iidfile?: string;
  label: string[];
  annotation: string[];
  timestamp?: string;
  squash?: boolean;
  squashAll?: boolean;
  output: string[];
  progress?: string;
  quiet?: boolean;
  secret: string[];
  network?: string;
  platform?: string;
  explainCache?: boolean;
}

function keyValues(list: string[], flag: string, fromEnv: boolean): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of list) {
    const i = item.indexOf('=');
    if (i === 0) throw new KilnError('E_INVALID_ARGUMENT', `${flag} ${item}: missing name`);
    if (i < 0) {
      if (!fromEnv) throw new KilnError('E_INVALID_ARGUMENT', `${flag} ${item}: expected NAME=VALUE`);
      const v = process.env[item];
      if (v !== undefined) out[item] = v; // podman: a bare name takes its value from the environment when set
      continue;
    }
    out[item.slice(0, i)] = item.slice(i + 1);
  }
  return out;
}

/** --build-arg-file: NAME=VALUE lines; blank lines and # comments ignored. */
function argFile(file: string): string[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new KilnError('E_INVALID_ARGUMENT', `--build-arg-file ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return text.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
}

function secrets(list: string[]): Record<string, SecretSource> {
  const out: Record<string, SecretSource> = {};
  for (const item of list) {
    const kv: Record<string, string> = {};
    for (const part of item.split(',')) {
      const i = part.indexOf('=');
      if (i < 0) throw new KilnError('E_INVALID_ARGUMENT', `--secret ${item}: expected id=ID,src=FILE or id=ID,env=VAR`);
      kv[part.slice(0, i)] = part.slice(i + 1);
    }
    if (!kv.id) throw new KilnError('E_INVALID_ARGUMENT', `--secret ${item}: id= is required`);
    const src = kv.src ?? kv.source;
    if (kv.type !== undefined && kv.type !== 'file' && kv.type !== 'env') throw new KilnError('E_INVALID_ARGUMENT', `--secret ${item}: type must be file or env`);
    if (kv.type === 'env' || kv.env !== undefined) out[kv.id] = { env: kv.env ?? src ?? kv.id };
    else if (src !== undefined) {
      if (!fs.existsSync(src)) throw new KilnError('E_INVALID_ARGUMENT', `--secret ${item}: ${src}: no such file`);
      out[kv.id] = { src };
    } else out[kv.id] = { env: kv.id };
  }
  return out;
}

function toOptions(contextDir: string, o: Flags): Omit<BuildOptions, 'progress' | 'signal'> {
  const { parseOutput } = require('../../build/output') as typeof import('../../build/output');
  const { parseDuration } = require('../../util/duration') as typeof import('../../util/duration');
  let jobs: number | undefined;
  if (o.jobs !== undefined) {
    jobs = Number(o.jobs);
    if (!Number.isInteger(jobs) || jobs < 0) throw new KilnError('E_INVALID_ARGUMENT', `--jobs ${o.jobs}: expected a whole number`);
    if (jobs === 0) jobs = undefined; // podman: 0 = no limit
  }
  const pull = o.pull === undefined || o.pull === false ? 'missing' : o.pull === true ? 'always' : o.pull;
  if (!['missing', 'never', 'always', 'newer', 'true', 'false'].includes(pull)) throw new KilnError('E_INVALID_ARGUMENT', `--pull=${pull}: expected always, missing, never or newer`);
  if (o.format !== 'oci' && o.format !== 'docker') throw new KilnError('E_INVALID_ARGUMENT', `--format ${o.format}: expected oci or docker`);
  const epoch = o.timestamp ?? process.env.SOURCE_DATE_EPOCH;
  let timestamp: number | undefined;
  if (epoch !== undefined && epoch !== '') {
    timestamp = Number(epoch);
    if (!Number.isInteger(timestamp) || timestamp < 0) throw new KilnError('E_INVALID_ARGUMENT', `${o.timestamp !== undefined ? '--timestamp' : 'SOURCE_DATE_EPOCH'} ${epoch}: expected seconds since the epoch`);
  }
  if (o.network !== undefined && !['host', 'none', 'default', 'private'].includes(o.network)) throw new KilnError('E_INVALID_ARGUMENT', `--network ${o.network}: kiln build supports host and none`);
  const buildArgs = keyValues([...o.buildArgFile.flatMap(argFile), ...o.buildArg], '--build-arg', true);
  if (timestamp !== undefined && buildArgs.SOURCE_DATE_EPOCH === undefined) buildArgs.SOURCE_DATE_EPOCH = String(timestamp);
  return {
    contextDir,
    file: o.file,
    tags: o.tag,
    buildArgs,
    target: o.target,
    jobs,
    noCache: !o.cache || !o.layers,
    cacheTtlMs: o.cacheTtl !== undefined ? parseDuration(o.cacheTtl, '--cache-ttl') : undefined,
    pull: pull === 'true' ? 'always' : pull === 'false' ? 'missing' : (pull as BuildOptions['pull']),
    format: o.format,
    iidfile: o.iidfile,
    labels: keyValues(o.label, '--label', false),
    annotations: keyValues(o.annotation, '--annotation', false),
    timestamp,
    platform: o.platform,
    secrets: secrets(o.secret),
    network: o.network === 'none' ? 'none' : 'host',
    outputs: o.output.map(parseOutput),
    squash: o.squashAll ? 'all' : o.squash ? 'new' : undefined,
  };
}

export function register(program: Command): void {
  program
    .command('build')
    .description('Build an image using instructions from Containerfiles')
    .argument('[context]', 'build context directory', '.')
    .option('-t, --tag <name>', 'tagged name to apply to the built image', collect, [])
    .option('-f, --file <path>', 'pathname or URL of a Containerfile')
    .option('--build-arg <arg=value>', 'argument=value to supply to the builder', collect, [])
    .option('--build-arg-file <file>', 'argfile.conf containing lines of argument=value to supply to the builder', collect, [])
    .option('--target <stage>', 'set the target build stage to build')
    .option('--jobs <n>', 'how many stages to run in parallel (0: no limit)')
    .option('--layers [bool]', 'use the build cache (default true)', (v: string) => v !== 'false', true)
    .option('--no-cache', 'do not use existing cached images for the container build')
    .option('--pull [policy]', 'pull image policy: always, missing, never, newer')
    .option('--cache-ttl <duration>', 'only use cached results newer than this (e.g. 10m, 24h)')
    .option('--format <format>', "format of the built image's manifest and metadata: oci or docker", 'oci')
    .option('--iidfile <file>', 'write the image ID to the file')
    .option('--label <label>', 'set metadata for an image (default [])', collect, [])
    .option('--annotation <annotation>', 'set metadata for an image (default [])', collect, [])
    .option('--timestamp <seconds>', 'set created timestamp to the specified epoch seconds to allow for deterministic builds')
    .option('--squash', 'squash newly built layers into a single new layer')
    .option('--squash-all', 'squash all image layers into a single layer')
    .option('-o, --output <spec>', 'output destination (format: type=local,dest=path or type=tar,dest=file)', collect, [])
    .option('--progress <mode>', 'progress output: auto, tty, plain, json, quiet')
    .option('-q, --quiet', 'refrain from announcing build instructions and image read/write progress')
    .option('--secret <spec>', 'secret file to expose to the build (id=ID,src=FILE or id=ID,env=VAR)', collect, [])
    .option('--network <mode>', 'network mode for RUN instructions: host or none')
    .option('--platform <os/arch>', 'set the OS/ARCH of the built image (the host platform only)')
    .option('--explain-cache', 'say why each step missed the cache')
    .option('--rm [bool]', 'remove intermediate containers after a successful build (always)')
    .option('--force-rm [bool]', 'always remove intermediate containers (always)')
    .action(
      handler(async (ctx, contextDir: string, o: Flags) => {
        const { build } = require('../../build/build') as typeof import('../../build/build');
        const { createProgress, parseProgressMode } = require('../../build/progress') as typeof import('../../build/progress');
        const { onInterrupt } = require('../../util/cleanup') as typeof import('../../util/cleanup');
        const opts = toOptions(contextDir, o);
        const mode = o.quiet ? 'quiet' : parseProgressMode(o.progress ?? 'auto');
        const progress = createProgress(mode, process.stdout, process.stdout.isTTY === true, { verbose: o.explainCache === true });
        const abort = new AbortController();
        let signalled: number | undefined;
        const restore = onInterrupt((code) => {
          signalled = code;
          abort.abort(new KilnError('E_BUILD', 'build cancelled'));
        });
        try {
          const r = await build(ctx, { ...opts, progress: (e) => progress.event(e), signal: abort.signal });
          progress.close();
          write(r.image.id);
        } catch (e) {
          progress.close();
          if (signalled !== undefined) throw new ExitError(signalled, 'build cancelled');
          const status = (e as { exitStatus?: number }).exitStatus;
          if (typeof status === 'number' && status > 0 && status < 126) {
            const { printError } = require('../output') as typeof import('../output');
            printError(e);
            throw new ExitError(status);
          }
          throw e;
        } finally {
          restore();
        }
      }),
    );
}
