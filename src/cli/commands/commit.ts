/**
 * `kiln commit [-q] [-a AUTHOR] [-m MSG] [-c INSTRUCTION]... [-f oci|docker] [-p/--pause=BOOL]
 * [--include-volumes] [--iidfile FILE] CONTAINER [IMAGE]` (container/commit.ts): podman's
 * progress lines on stderr unless -q, then the new image's ID on stdout.
 */
import * as fs from 'node:fs';
import type { Command } from 'commander';
import { handler, write, collect } from '../output';
import { parseGoBool } from '../../build/frontend/flags';
import { KilnError } from '../../errors';
import type { EngineContext } from '../../engine/context';

interface Opts {
  quiet?: boolean;
  author?: string;
  message?: string;
  change: string[];
  format: string;
  pause?: boolean | string;
  includeVolumes?: boolean;
  iidfile?: string;
  squash?: boolean;
}

async function run(ctx: EngineContext, container: string | undefined, image: string | undefined, o: Opts): Promise<void> {
  // `-p CONTAINER`: commander took CONTAINER as the flag's value; podman's flag takes none there
  let pause = false;
  if (typeof o.pause === 'string') {
    const v = o.pause.replace(/^=/, '');
    const b = parseGoBool(v);
    if (b !== undefined) pause = b;
    else if (image !== undefined) throw new KilnError('E_INVALID_ARGUMENT', 'accepts at most 2 arg(s), received 3');
    else [pause, container, image] = [true, v, container];
  } else pause = o.pause ?? false;
  if (container === undefined) throw new KilnError('E_INVALID_ARGUMENT', 'commit requires the name or ID of a container');
  if (o.squash) throw new KilnError('E_UNSUPPORTED', 'kiln commit --squash is not supported', { hint: 'commit, then build FROM the image with kiln build --squash' });
  if (o.format !== 'oci' && o.format !== 'docker') throw new KilnError('E_INVALID_ARGUMENT', `--format ${JSON.stringify(o.format)}: unrecognized image type; use oci or docker`);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { commitContainer } = require('../../container/commit') as typeof import('../../container/commit');
  const img = await commitContainer(ctx, {
    container,
    ...(image !== undefined ? { image } : {}),
    ...(o.author !== undefined ? { author: o.author } : {}),
    ...(o.message !== undefined ? { message: o.message } : {}),
    changes: o.change,
    format: o.format,
    pause,
    includeVolumes: o.includeVolumes ?? false,
    ...(o.quiet ? {} : { log: (line: string) => process.stderr.write(`${line}\n`) }),
    warn: (msg: string) => process.stderr.write(`WARN[0000] ${msg}\n`),
  });
  if (o.iidfile !== undefined) {
    try {
      fs.writeFileSync(o.iidfile, `sha256:${img.id}`);
    } catch (e) {
      throw new KilnError('E_IO', `--iidfile ${o.iidfile}: ${(e as Error).message}`);
    }
  }
  write(img.id);
}

export function defineCommit(cmd: Command): Command {
  return cmd
    .argument('[container]')
    .argument('[image]', 'name of the new image (default: none, the image is untagged)')
    .option('-a, --author <author>', 'Set the author for the image committed')
    .option('-c, --change <instruction>', 'Apply the following possible instructions to the created image (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR)', collect, [])
    .option('-f, --format <format>', '`format` of the image manifest and metadata (oci or docker)', 'oci')
    .option('--iidfile <file>', '`file` to write the image ID to')
    .option('--include-volumes', 'Include container volumes as image volumes')
    .option('-m, --message <message>', 'Set commit message for imported image (docker format only)')
    .option('-p, --pause [bool]', 'Pause container during commit (default false)')
    .option('-q, --quiet', 'Suppress output')
    .option('-s, --squash', 'squash newly built layers into a single new layer')
    .action(handler(run));
}

export function register(program: Command): void {
  defineCommit(program.command('commit').description("Create new image based on the changed container"));
}
