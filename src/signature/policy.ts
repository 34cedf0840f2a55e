/**
 * containers-policy.json(5): which images may be pulled. A policy has a `default` requirement
 * list and per-transport scopes; for a `docker` reference the most specific scope present wins:
 * the exact reference (host/repo:tag or host/repo@digest), then the repository, then each
 * enclosing namespace up to the host, then `*.domain` wildcards, then the transport's ""
 * scope, then `default`. Every requirement in the chosen list must be satisfied.
 *
 * Parsing is strict as containers/image's is (unknown fields and requirement types are errors
 * naming the file), so a typo cannot silently weaken a policy. Public keys of sigstoreSigned
 * requirements are read when the policy is loaded.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { KeyObject } from 'node:crypto';
import { KilnError } from '../errors';
import type { NamedRef } from '../image/reference';
import { loadPublicKeys } from './cosign-key';
import { parseDockerRef, type SignedIdentity } from './identity';

export type Requirement =
  | { type: 'insecureAcceptAnything' }
  | { type: 'reject' }
  | { type: 'signedBy' }
  | { type: 'sigstoreSigned'; keys: KeyObject[]; keySource: string; signedIdentity: SignedIdentity };

export interface Policy {
  file: string;
  default: Requirement[];
  transports: Record<string, Record<string, Requirement[]>>;
}

/** --signature-policy, else ~/.config/containers/policy.json if present, else /etc/containers/policy.json. */
export function policyPath(explicit?: string): string {
  if (explicit !== undefined) return explicit;
  const user = path.join(process.env['XDG_CONFIG_HOME'] || path.join(os.homedir(), '.config'), 'containers', 'policy.json');
  return fs.existsSync(user) ? user : '/etc/containers/policy.json';
}

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

class Parser {
  constructor(private readonly file: string) {}

  fail(msg: string): never {
    throw new KilnError('E_POLICY', `${this.file}: invalid policy: ${msg}`, { hint: 'see containers-policy.json(5)' });
  }

  fields(o: Obj, allowed: string[], where: string): void {
    for (const k of Object.keys(o)) if (!allowed.includes(k)) this.fail(`${where}: unknown field ${JSON.stringify(k)}`);
  }

  str(o: Obj, k: string, where: string): string {
    const v = o[k];
    if (typeof v !== 'string' || v === '') this.fail(`${where}: ${k} must be a non-empty string`);
    return v;
  }

  identity(v: unknown, where: string): SignedIdentity {
    if (v === undefined) return { type: 'matchRepoDigestOrExact' };
    if (!isObj(v)) this.fail(`${where}: signedIdentity must be an object`);
    const w = `${where}.signedIdentity`;
    switch (v['type']) {
      case 'matchExact':
        this.fail(`${w}: matchExact cannot be satisfied by sigstore signatures (they sign a digest); use matchRepoDigestOrExact`);
      // eslint-disable-next-line no-fallthrough
      case 'matchRepoDigestOrExact':
      case 'matchRepository':
        this.fields(v, ['type'], w);
        return { type: v['type'] };
      case 'exactReference':
        this.fields(v, ['type', 'dockerReference'], w);
        const ref = this.str(v, 'dockerReference', w);
        const parsed = parseDockerRef(ref);
        if (parsed === undefined || (parsed.tag === undefined && parsed.digest === undefined)) this.fail(`${w}: dockerReference ${JSON.stringify(ref)} must be a name with a tag or digest`);
        return { type: 'exactReference', dockerReference: ref };
      case 'exactRepository':
        this.fields(v, ['type', 'dockerRepository'], w);
        return { type: 'exactRepository', dockerRepository: this.str(v, 'dockerRepository', w) };
      case 'remapIdentity':
        this.fields(v, ['type', 'prefix', 'signedPrefix'], w);
        return { type: 'remapIdentity', prefix: this.str(v, 'prefix', w), signedPrefix: this.str(v, 'signedPrefix', w) };
      default:
        return this.fail(`${w}: unknown type ${JSON.stringify(v['type'])}`);
    }
  }

  keys(o: Obj, where: string): { keys: KeyObject[]; keySource: string } {
    const given = ['keyPath', 'keyPaths', 'keyData', 'keyDatas', 'fulcio', 'pki'].filter((k) => o[k] !== undefined);
    if (given.length !== 1) this.fail(`${where}: exactly one of keyPath, keyPaths, keyData, keyDatas, fulcio or pki is required (have ${given.join(', ') || 'none'})`);
    const k = given[0]!;
    if (k === 'fulcio' || k === 'pki') {
      throw new KilnError('E_UNSUPPORTED', `${this.file}: ${where}: sigstoreSigned with ${k} is not supported by kiln; use keyPath/keyData`);
    }
    const list = (v: unknown): string[] => {
      if (k.endsWith('s')) {
        if (!Array.isArray(v) || v.length === 0 || v.some((x) => typeof x !== 'string' || x === '')) this.fail(`${where}: ${k} must be a non-empty array of strings`);
        return v as string[];
      }
      if (typeof v !== 'string' || v === '') this.fail(`${where}: ${k} must be a non-empty string`);
      return [v];
    };
    const items = list(o[k]);
    const keys: KeyObject[] = [];
    for (const item of items) {
      if (k.startsWith('keyPath')) {
        let text: string;
        try {
          text = fs.readFileSync(item, 'utf8');
        } catch (e) {
          throw new KilnError('E_POLICY', `${this.file}: ${where}: cannot read public key ${item}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
        }
        keys.push(...loadPublicKeys(text, item));
      } else {
        keys.push(...loadPublicKeys(Buffer.from(item, 'base64').toString('utf8'), `${this.file}: ${where}: ${k}`));
      }
    }
    return { keys, keySource: k.startsWith('keyPath') ? items.join(', ') : `${k} in ${this.file}` };
  }

  requirement(v: unknown, where: string): Requirement {
    if (!isObj(v)) this.fail(`${where}: a requirement must be an object`);
    switch (v['type']) {
      case 'insecureAcceptAnything':
      case 'reject':
        this.fields(v, ['type'], where);
        return { type: v['type'] };
      case 'signedBy':
        this.fields(v, ['type', 'keyType', 'keyPath', 'keyPaths', 'keyData', 'signedIdentity'], where);
        return { type: 'signedBy' };
      case 'sigstoreSigned': {
        this.fields(v, ['type', 'keyPath', 'keyPaths', 'keyData', 'keyDatas', 'fulcio', 'pki', 'rekorPublicKeyPath', 'rekorPublicKeyPaths', 'rekorPublicKeyData', 'rekorPublicKeyDatas', 'signedIdentity'], where);
        if (Object.keys(v).some((k) => k.startsWith('rekorPublicKey'))) {
          throw new KilnError('E_UNSUPPORTED', `${this.file}: ${where}: sigstoreSigned with a Rekor key is not supported by kiln (signatures are verified offline)`);
        }
        return { type: 'sigstoreSigned', ...this.keys(v, where), signedIdentity: this.identity(v['signedIdentity'], where) };
      }
      default:
        return this.fail(`${where}: unknown requirement type ${JSON.stringify(v['type'])}`);
    }
  }

  list(v: unknown, where: string): Requirement[] {
    if (!Array.isArray(v) || v.length === 0) this.fail(`${where}: must be a non-empty array of requirements`);
    return v.map((r, i) => this.requirement(r, `${where}[${i}]`));
  }
}

/** Reads and validates a policy file (E_POLICY naming the file and the field on any problem). */
export function loadPolicy(file: string): Policy {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const hint = 'create it (see containers-policy.json(5)) or name one with --signature-policy';
    throw new KilnError('E_POLICY', `cannot read signature policy ${file}: ${code ?? (e as Error).message}`, code === 'ENOENT' ? { hint } : {});
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new KilnError('E_POLICY', `${file}: invalid policy: not JSON: ${(e as Error).message}`);
  }
  const p: Parser = new Parser(file);
  if (!isObj(v)) p.fail('the top level must be an object');
  p.fields(v, ['default', 'transports'], 'top level');
  const out: Policy = { file, default: p.list(v['default'], 'default'), transports: {} };
  const transports = v['transports'] ?? {};
  if (!isObj(transports)) p.fail('transports must be an object');
  for (const [t, scopes] of Object.entries(transports)) {
    if (!isObj(scopes)) p.fail(`transports.${t} must be an object of scopes`);
    out.transports[t] = {};
    for (const [scope, reqs] of Object.entries(scopes)) out.transports[t]![scope] = p.list(reqs, `transports.${t}[${JSON.stringify(scope)}]`);
  }
  return out;
}

/** The scopes a docker reference is looked up under, most specific first (without "" and default). */
export function dockerScopes(r: NamedRef): string[] {
  const repo = `${r.domain}/${r.path}`;
  const out = [r.digest !== undefined ? `${repo}@${r.digest}` : `${repo}:${r.tag ?? 'latest'}`];
  for (let s = repo; s.includes('/'); s = s.slice(0, s.lastIndexOf('/'))) out.push(s);
  out.push(r.domain);
  const labels = r.domain.split(':')[0]!.split('.');
  for (let i = 1; i < labels.length; i++) out.push(`*.${labels.slice(i).join('.')}`);
  return out;
}

/** The requirements for a docker reference and the scope they came from (for messages). */
export function requirementsFor(p: Policy, r: NamedRef): { scope: string; reqs: Requirement[] } {
  const scopes = p.transports['docker'];
  if (scopes) {
    for (const s of dockerScopes(r)) if (scopes[s]) return { scope: `transports.docker[${JSON.stringify(s)}]`, reqs: scopes[s]! };
    if (scopes['']) return { scope: 'transports.docker[""]', reqs: scopes['']! };
  }
  return { scope: 'default', reqs: p.default };
}
