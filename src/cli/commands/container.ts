/**
 * `kiln container SUBCOMMAND`: podman's container group, over the same command modules as the
 * top-level commands (run, create, start, stop, kill, restart, rm, ps/ls/list, wait, logs,
 * exec, inspect, cp, diff, commit, top, port), plus `cleanup`, the exit command conmon runs
 * when a container exits.
 */
import type { Command } from 'commander';
import { register_create, register_kill, register_restart, register_rm, register_start, register_stop, register_wait, defineCleanup } from './lifecycle';
import { definePs } from './ps';

export function register(program: Command): void {
  const group = program.command('container').description('Manage containers');
  /* eslint-disable @typescript-eslint/no-require-imports */
  const runModule = require('./run') as typeof import('./run');
  runModule.register(group);
  runModule.register_attach(group);
  for (const r of [register_create, register_start, register_stop, register_kill, register_restart, register_rm, register_wait]) r(group);
  for (const n of ['ps', 'ls', 'list']) definePs(group.command(n).description('List containers'));
  defineCleanup(group.command('cleanup').description('Clean up the network and mount resources of one or more containers'));
  (require('./logs') as typeof import('./logs')).register(group);
  (require('./exec') as typeof import('./exec')).register(group);
  (require('./container-inspect') as typeof import('./container-inspect')).registerIn(group);
  (require('./cp') as typeof import('./cp')).defineCp(group.command('cp').description('Copy files/folders between a container and the local filesystem'));
  (require('./diff') as typeof import('./diff')).defineDiff(group.command('diff').description('Inspect changes to the container\'s file systems'));
  (require('./commit') as typeof import('./commit')).defineCommit(group.command('commit').description('Create new image based on the changed container'));
  (require('./top') as typeof import('./top')).defineTop(group.command('top').description('Display the running processes of a container'));
  (require('./port') as typeof import('./port')).definePort(group.command('port').description('List port mappings or a specific mapping for the container'));
}
