/**
 * `kiln login [--authfile F] [-u USER] [-p PASS | --password-stdin] [--tls-verify=false]
 * [--cert-dir D] [--get-login] REGISTRY` and `kiln logout [--authfile F] [-a] [REGISTRY]`,
 * as podman: login verifies the credentials against the registry (GET /v2/ and its
 * Basic/Bearer challenge) before storing them in auth.json; kiln never prompts, so the user and
 * password must be given as flags or stdin. Neither command opens the image store.
 */
import * as fs from 'node:fs';
import { InvalidArgumentError, type Command } from 'commander';
import { fail, write } from '../output';
import { KilnError, withContext } from '../../errors';
import * as auth from '../../registry/auth';
import { registryForPull } from '../../registry/registries-conf';
import { pingRegistry } from '../../registry/ping';

interface LoginFlags {
  authfile?: string;
  username?: string;
  password?: string;
  passwordStdin?: boolean;
  tlsVerify: boolean;
  certDir?: string;
  getLogin?: boolean;
}

interface LogoutFlags { authfile?: string; all?: boolean }

function parseBool(flag: string) {
  return (v: string): boolean => {
    if (v === 'true') return true;
    if (v === 'false') return false;
    throw new InvalidArgumentError(`${flag} takes true or false (write ${flag}=false), not ${JSON.stringify(v)}`);
  };
}

function action<A extends unknown[]>(fn: (...args: A) => Promise<void> | void) {
  return async (...args: A): Promise<void> => {
    try {
      await fn(...args);
    } catch (e) {
      fail(e);
    }
  };
}

/** The password from -p or stdin; kiln never prompts. */
function password(f: LoginFlags): string | undefined {
  if (f.passwordStdin) {
    if (f.password !== undefined) throw new KilnError('E_INVALID_ARGUMENT', "can't specify both --password-stdin and --password");
    if (f.username === undefined) throw new KilnError('E_INVALID_ARGUMENT', 'must provide --username with --password-stdin');
    return fs.readFileSync(0, 'utf8').replace(/\r?\n$/, '');
  }
  return f.password;
}

async function login(registryArg: string, f: LoginFlags): Promise<void> {
  const key = auth.normalizeKey(registryArg);
  const host = key.split('/')[0]!;
  if (f.getLogin) {
    const c = auth.resolveAuth(key, { authfile: f.authfile });
    if (!c) throw new KilnError('E_INVALID_ARGUMENT', `not logged into ${key}`);
    write('username' in c ? c.username : '<token>');
    return;
  }
  const insecure = registryForPull(host).insecure;
  const verify = async (c: auth.Credentials): Promise<boolean> => {
    try {
      return (await pingRegistry(host, c, { tlsVerify: f.tlsVerify, certDir: f.certDir, insecure })) === 'ok';
    } catch (e) {
      throw withContext(e, `authenticating creds for "${key}"`, 'E_TRANSPORT');
    }
  };
  const pass = password(f);
  if (f.username === undefined && pass === undefined) {
    const existing = auth.resolveAuth(key, { authfile: f.authfile });
    if (existing) {
      process.stdout.write(`Authenticating with existing credentials for ${key}\n`);
      if (await verify(existing)) {
        write(`Existing credentials are valid. Already logged in to ${key}`);
        return;
      }
      throw new KilnError('E_INVALID_ARGUMENT', `logging into "${key}": the stored credentials are invalid`, { hint: 'give -u USER and -p PASSWORD (or --password-stdin)' });
    }
  }
  if (f.username === undefined || f.username === '') {
    throw new KilnError('E_INVALID_ARGUMENT', `logging into "${key}": no user name given, and kiln does not prompt for one`, { hint: 'use -u USER with -p PASSWORD or --password-stdin' });
  }
  if (pass === undefined || pass === '') {
    throw new KilnError('E_INVALID_ARGUMENT', `logging into "${key}": no password given for ${f.username}, and kiln does not prompt for one`, { hint: 'use -p PASSWORD or --password-stdin' });
  }
  const creds = { username: f.username, password: pass };
  if (!(await verify(creds))) throw new KilnError('E_INVALID_ARGUMENT', `logging into "${key}": invalid username/password`);
  auth.saveAuth(key, creds, { authfile: f.authfile });
  write('Login Succeeded!');
}

async function logout(registryArg: string | undefined, f: LogoutFlags): Promise<void> {
  if (f.all) {
    if (registryArg !== undefined) throw new KilnError('E_INVALID_ARGUMENT', '--all takes no arguments');
    auth.removeAllAuth({ authfile: f.authfile });
    write('Removed login credentials for all registries');
    return;
  }
  if (registryArg === undefined) throw new KilnError('E_INVALID_ARGUMENT', 'registry must be given', { hint: 'kiln logout REGISTRY, or kiln logout --all' });
  const key = auth.normalizeKey(registryArg);
  if (auth.removeAuth(key, { authfile: f.authfile })) {
    write(`Removed login credentials for ${key}`);
    return;
  }
  const elsewhere = auth.loggedInElsewhere(key, { authfile: f.authfile });
  throw new KilnError('E_INVALID_ARGUMENT', `not logged into ${key}`, elsewhere ? { hint: `the credentials are in ${elsewhere} (established via docker login?); remove them there or use docker logout` } : {});
}

export function register_login(program: Command): void {
  program.command('login')
    .description('Log in to a container registry')
    .argument('<registry>', 'registry host[:port] (or host/repository)')
    .option('--authfile <file>', 'path of the authentication file (env REGISTRY_AUTH_FILE)')
    .option('-u, --username <user>', 'user name')
    .option('-p, --password <password>', 'password (visible in the process list: prefer --password-stdin)')
    .option('--password-stdin', 'read the password from stdin')
    .option('--tls-verify [bool]', 'require HTTPS and verify certificates', parseBool('--tls-verify'), true)
    .option('--cert-dir <dir>', 'directory with certificates (*.crt CAs, *.cert/*.key client pair)')
    .option('--get-login', 'print the user name stored for the registry')
    .action(action((registry: string, f: LoginFlags) => login(registry, f)));
}

export function register_logout(program: Command): void {
  program.command('logout')
    .description('Log out of a container registry')
    .argument('[registry]', 'registry host[:port] (or host/repository)')
    .option('--authfile <file>', 'path of the authentication file (env REGISTRY_AUTH_FILE)')
    .option('-a, --all', 'remove the credentials of all registries')
    .action(action((registry: string | undefined, f: LogoutFlags) => logout(registry, f)));
}
