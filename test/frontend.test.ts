/**
 * Golden tests of the Containerfile front end: every fixtures/containerfiles/<case>/Containerfile
 * goes through loadPlan (with <case>/options.json if present) and must give exactly
 * <case>/expected.json, or for negative cases fail with exactly the message in <case>/error.txt.
 * KILN_UPDATE_GOLDEN=1 rewrites the expected files (review every change by hand).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DockerfileParser } from 'dockerfile-ast';
import { isKilnError } from '../src/errors';
import { loadPlan, parseContainerfile, type PlanOptions } from '../src/build/frontend';

const REPO = path.resolve(__dirname, '..', '..');
const FIXTURES = path.join(REPO, 'fixtures', 'containerfiles');
const UPDATE = process.env.KILN_UPDATE_GOLDEN === '1';

const LINUX_AMD64: Record<string, string> = {
  TARGETPLATFORM: 'linux/amd64',
  TARGETOS: 'linux',
  TARGETARCH: 'amd64',
  TARGETVARIANT: '',
  BUILDPLATFORM: 'linux/amd64',
  BUILDOS: 'linux',
  BUILDARCH: 'amd64',
  BUILDVARIANT: '',
};

interface CaseOptions {
  buildArgs?: Record<string, string>;
  target?: string;
  platformArgs?: Record<string, string>;
}

function optionsFor(dir: string): PlanOptions {
  const file = path.join(dir, 'options.json');
  const o: CaseOptions = fs.existsSync(file) ? (JSON.parse(fs.readFileSync(file, 'utf8')) as CaseOptions) : {};
  const opts: PlanOptions = { buildArgs: o.buildArgs ?? {}, platformArgs: o.platformArgs ?? LINUX_AMD64 };
  if (o.target !== undefined) opts.target = o.target;
  return opts;
}

const cases = fs.readdirSync(FIXTURES).filter((n) => fs.existsSync(path.join(FIXTURES, n, 'Containerfile'))).sort();

for (const name of cases) {
  test(`golden: ${name}`, () => {
    const dir = path.join(FIXTURES, name);
    const text = fs.readFileSync(path.join(dir, 'Containerfile'), 'utf8');
    const expectedFile = path.join(dir, 'expected.json');
    const errorFile = path.join(dir, 'error.txt');
    let actual: string;
    let failed = false;
    try {
      actual = JSON.stringify(loadPlan(text, 'Containerfile', optionsFor(dir)), null, 2) + '\n';
    } catch (e) {
      if (!isKilnError(e, 'E_CONTAINERFILE')) throw e;
      actual = e.message + '\n';
      failed = true;
    }
    if (UPDATE) {
      fs.rmSync(failed ? expectedFile : errorFile, { force: true });
      fs.writeFileSync(failed ? errorFile : expectedFile, actual);
      return;
    }
    if (fs.existsSync(errorFile)) {
      assert.ok(failed, `${name}: expected an error, got a plan:\n${actual}`);
      assert.equal(actual, fs.readFileSync(errorFile, 'utf8'));
    } else {
      assert.ok(!failed, `${name}: unexpected error: ${actual}`);
      assert.equal(actual, fs.readFileSync(expectedFile, 'utf8'));
    }
  });
}

test('golden fixtures cover enough positive and negative cases', () => {
  const positive = cases.filter((n) => fs.existsSync(path.join(FIXTURES, n, 'expected.json')));
  const negative = cases.filter((n) => fs.existsSync(path.join(FIXTURES, n, 'error.txt')));
  assert.equal(positive.length + negative.length, cases.length, 'every case has expected.json or error.txt');
  assert.ok(positive.length >= 25, `only ${positive.length} positive cases`);
  assert.ok(negative.length >= 12, `only ${negative.length} negative cases`);
});

/**
 * dockerfile-ast as a second opinion: where both parsers accept a fixture and it uses none of
 * the constructs where dockerfile-ast departs from BuildKit (heredocs, a trailing escaped escape
 * character), they must agree on keywords, start lines, escape and syntax directives.
 */
test('parser agrees with dockerfile-ast on ordinary fixtures', () => {
  let compared = 0;
  for (const name of cases) {
    const text = fs.readFileSync(path.join(FIXTURES, name, 'Containerfile'), 'utf8');
    if (/<<|\\\\\s*$|``\s*$/m.test(text) || text.trim() === '') continue;
    let ours;
    try {
      ours = parseContainerfile(text, 'Containerfile');
    } catch {
      continue;
    }
    const theirs = DockerfileParser.parse(text);
    assert.equal(ours.escape, theirs.getEscapeCharacter(), `${name}: escape`);
    const syntax = theirs.getDirectives().find((d) => d.getName().toLowerCase() === 'syntax');
    assert.equal(ours.syntax, syntax?.getValue(), `${name}: syntax`);
    const a = ours.instructions.map((i) => `${i.loc.line}:${i.keyword}`);
    const b = theirs.getInstructions().map((i) => `${i.getRange().start.line + 1}:${i.getKeyword()}`);
    assert.deepEqual(a, b, `${name}: instruction lines`);
    compared++;
  }
  assert.ok(compared >= 15, `only ${compared} fixtures compared`);
});
