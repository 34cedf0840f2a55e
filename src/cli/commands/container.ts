/**
 * `kiln container SUBCOMMAND`: podman's container group, over the same command modules as the
 * top-level commands (run, create, start, stop, kill, restart, rm, ps/ls/list, wait, logs,
 * exec, inspect), plus `cleanup`, the exit command conmon runs when a container exits.
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
}
