/**
 * `kiln build [flags] [CONTEXT]`: podman build's flags, parsed into BuildOptions for
 * build() (src/build/build.ts). Progress goes to stdout as podman's does; the image ID is the
 * last line (alone with -q). A RUN that fails ends kiln with that command's exit status, as
 * podman build does; other errors exit 125.
 */
import * as fs from 'node:fs';
import { InvalidArgumentError, type Command } from 'commander';
import type { RegistryFlags } from '../../registry/host-options';
import { parseGoBool } from '../../build/frontend/flags';
import { handler, write, printError, ExitError, collect } from '../output';
import { KilnError, withContext } from '../../errors';
import type { BuildOptions } from '../../build/build';
import type { SecretSource } from '../../build/env';

/**
 * The value of a `--flag [bool]` option, as Go's strconv.ParseBool reads it. Anything else is
 * refused: commander takes the word after a bare `--layers` as its value, so without this
 * `kiln build --layers DIR` would quietly build `.` instead of DIR.
 */
function bool(flag: string) {
  return (v: string): boolean => {
    const b = parseGoBool(v);
    if (b === undefined) throw new InvalidArgumentError(`${flag} takes true or false (write ${flag}=false), not ${JSON.stringify(v)}`);
    return b;
  };
}

interface Flags extends RegistryFlags {
  signaturePolicy?: string;
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
  ignorefile?: string;
  ulimit: string[];
  logfile?: string;
  pullNever?: boolean;
  pullAlways?: boolean;
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

/** --ulimit type=soft[:hard] (podman's names: nofile, nproc, core, …). */
function ulimits(list: string[]): { type: string; soft: number; hard: number }[] {
  return list.map((u) => {
    const m = /^([a-z]+)=(-?\d+)(?::(-?\d+))?$/.exec(u);
    if (!m) throw new KilnError('E_INVALID_ARGUMENT', `--ulimit ${u}: expected TYPE=SOFT[:HARD], e.g. nofile=1024:2048`);
    const soft = Number(m[2]);
    const hard = m[3] !== undefined ? Number(m[3]) : soft;
    if (soft > hard) throw new KilnError('E_INVALID_ARGUMENT', `--ulimit ${u}: the soft limit is above the hard limit`);
    return { type: `RLIMIT_${m[1].toUpperCase()}`, soft, hard };
  });
}

/**
 * The context dir and Containerfile from the arguments, as podman takes them: a context of
 * `-` reads the Containerfile from standard input with an empty context; -f without a
 * context uses the Containerfile's own directory.
 */
function contextAndFile(context: string | undefined, file: string | undefined): { contextDir: string; file?: string; cleanup(): void } {
  if (context === '-') {
    const os = require('node:os') as typeof import('node:os');
    const path = require('node:path') as typeof import('node:path');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kiln-build-stdin-'));
    return { contextDir: dir, file: '-', cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
  }
  if (context === undefined && file !== undefined && file !== '-') {
    const path = require('node:path') as typeof import('node:path');
    return { contextDir: path.dirname(path.resolve(file)), file, cleanup: () => undefined };
  }
  return { contextDir: context ?? '.', file, cleanup: () => undefined };
}

/** The flags as BuildOptions; throws naming the flag at the first bad one. */
function toOptions(o: Flags): Omit<BuildOptions, 'contextDir' | 'file' | 'progress' | 'signal'> {
  const { parseOutput } = require('../../build/output') as typeof import('../../build/output');
  const { parseDuration } = require('../../util/duration') as typeof import('../../util/duration');
  const { hostOptionsFor } = require('../../registry/host-options') as typeof import('../../registry/host-options');
  let jobs: number | undefined;
  if (o.jobs !== undefined) {
    jobs = Number(o.jobs);
    if (!Number.isInteger(jobs) || jobs < 0) throw new KilnError('E_INVALID_ARGUMENT', `--jobs ${o.jobs}: expected a whole number`);
    if (jobs === 0) jobs = undefined; // podman: 0 = no limit
  }
  const pull = o.pullNever ? 'never' : o.pullAlways ? 'always' : o.pull === undefined || o.pull === false ? 'missing' : o.pull === true ? 'always' : o.pull;
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
    ignoreFile: o.ignorefile,
    ulimits: ulimits(o.ulimit),
    registry: {
      platform: {},
      hostOptions: hostOptionsFor(o),
      ...(o.quiet ? {} : { log: (line: string) => process.stderr.write(`${line}\n`) }),
      ...(o.signaturePolicy !== undefined ? { policyPath: o.signaturePolicy } : {}),
    },
  };
}

export function register(program: Command): void {
  program
    .command('build')
    .description('Build an image using instructions from Containerfiles')
    .argument('[context]', "build context directory (default: '.', or the Containerfile's directory with -f; '-' reads the Containerfile from stdin)")
    .option('-t, --tag <name>', 'tagged name to apply to the built image', collect, [])
    .option('-f, --file <path>', "pathname of a Containerfile ('-': standard input)")
    .option('--build-arg <arg=value>', 'argument=value to supply to the builder', collect, [])
    .option('--build-arg-file <file>', 'argfile.conf containing lines of argument=value to supply to the builder', collect, [])
    .option('--target <stage>', 'set the target build stage to build')
    .option('--jobs <n>', 'how many stages to run in parallel (0: no limit)')
    .option('--layers [bool]', 'use the build cache (default: $BUILDAH_LAYERS, else true)', bool('--layers'), process.env.BUILDAH_LAYERS === undefined ? true : !['false', '0'].includes(process.env.BUILDAH_LAYERS))
    .option('--no-cache', 'do not use existing cached images for the container build')
    .option('--pull [policy]', 'pull image policy: always, missing, never, newer')
    .option('--cache-ttl <duration>', 'only use cached results newer than this (e.g. 10m, 24h)')
    .option('--format <format>', "format of the built image's manifest and metadata: oci or docker", 'oci')
    .option('--iidfile <file>', 'write the image ID to the file')
    .option('--label <label>', 'set metadata for an image', collect, [])
    .option('--annotation <annotation>', 'set metadata for an image', collect, [])
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
    .option('--ignorefile <file>', 'path to an alternate .containerignore file')
    .option('--ulimit <type=soft:hard>', 'ulimit options for RUN (clamped to the limits kiln itself has)', collect, [])
    .option('--logfile <file>', 'log to file instead of stdout/stderr')
    .option('--tls-verify [bool]', 'require HTTPS and verify certificates when pulling base images (default true)', bool('--tls-verify'))
    .option('--cert-dir <dir>', 'use certificates (*.crt) at the specified path to access the registry')
    .option('--authfile <file>', 'path of the authentication file')
    .option('--creds <user:pass>', 'use USERNAME[:PASSWORD] for accessing the registry')
    .option('--signature-policy <file>', 'signature policy file for pulled base images')
    .option('--pull-never', 'do not pull the image (same as --pull=never)')
    .option('--pull-always', 'pull the image even if the named image is present in store (same as --pull=always)')
    .option('--rm [bool]', 'remove intermediate containers after a successful build (always)', bool('--rm'))
    .option('--force-rm [bool]', 'always remove intermediate containers (always)', bool('--force-rm'))
    .action(
      handler(async (ctx, contextArg: string | undefined, o: Flags) => {
        const { build } = require('../../build/build') as typeof import('../../build/build');
        const { createProgress, parseProgressMode } = require('../../build/progress') as typeof import('../../build/progress');
        const { onInterrupt } = require('../../util/cleanup') as typeof import('../../util/cleanup');
        // flags first: nothing is made (a stdin context's dir) before they are known to be good
        const opts = toOptions(o);
        const mode = o.quiet ? 'quiet' : parseProgressMode(o.progress ?? 'auto');
        let log: fs.WriteStream | undefined;
        if (o.logfile !== undefined) {
          let fd: number;
          try {
            fd = fs.openSync(o.logfile, 'a'); // here, not in the stream: a stream's open error would be unhandled
          } catch (e) {
            throw withContext(e, `--logfile ${o.logfile}`, 'E_INVALID_ARGUMENT');
          }
          log = fs.createWriteStream('', { fd });
        }
        const where = contextAndFile(contextArg, o.file);
        const out = log ?? process.stdout;
        const progress = createProgress(mode, out, log === undefined && process.stdout.isTTY === true, { verbose: o.explainCache === true });
        const abort = new AbortController();
        let signalled: number | undefined;
        const restore = onInterrupt((code) => {
          signalled = code;
          abort.abort(new KilnError('E_BUILD', 'build cancelled'));
        });
        try {
          const r = await build(ctx, { ...opts, contextDir: where.contextDir, file: where.file, progress: (e) => progress.event(e), signal: abort.signal });
          progress.close();
          write(r.image.id);
        } catch (e) {
          progress.close();
          if (signalled !== undefined) throw new ExitError(signalled, 'build cancelled');
          const status = (e as { exitStatus?: number }).exitStatus;
          if (typeof status === 'number' && status > 0 && status < 256) {
            printError(e);
            throw new ExitError(status);
          }
          throw e;
        } finally {
          restore();
          where.cleanup();
          if (log) await new Promise<void>((res) => log.end(res));
        }
      }),
    );
}
