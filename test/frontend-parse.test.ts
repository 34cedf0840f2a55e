/**
 * Parser and instruction details the golden plans do not show: per-flag line numbers,
 * warnings, where heredocs are (not) recognised, ONBUILD triggers from base images, and the Go
 * value syntaxes of flags.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isKilnError } from '../src/errors';
import { loadPlan, parseContainerfile, parseTrigger, resolveFromInPlan, toInstruction, triggerInstructions } from '../src/build/frontend';
import { parseGoDuration, parseRamInBytes } from '../src/build/frontend/flags';
import { parseCsvRecord } from '../src/build/frontend/mounts';

const containerfileError = (re: RegExp) => (e: unknown) => isKilnError(e, 'E_CONTAINERFILE') && re.test(e.message);

test('flags carry the line they are written on', () => {
  const parsed = parseContainerfile('FROM alpine\nRUN --network=none \\\n  --mount=type=tmpfs,target=/t \\\n  \\\n  true\n', 'Cf');
  const run = parsed.instructions[1]!;
  assert.deepEqual(run.loc, { file: 'Cf', line: 2, endLine: 5 });
  assert.deepEqual(
    run.flags.map((f) => [f.name, f.value, f.loc.line]),
    [
      ['network', 'none', 2],
      ['mount', 'type=tmpfs,target=/t', 3],
    ],
  );
  assert.equal(run.args, 'true');
  assert.deepEqual(parsed.warnings, []);
  assert.throws(
    () => toInstruction(parseContainerfile('FROM a\nRUN --network=none \\\n  --mount=type=nope,target=/t true\n', 'Cf').instructions[1]!),
    containerfileError(/^Cf:3: --mount=type=nope,target=\/t: unsupported mount type "nope"/),
  );
});

test('empty continuation lines are skipped with a warning', () => {
  const parsed = parseContainerfile('FROM alpine\nRUN echo a \\\n\n   \n  b\n', 'Cf');
  assert.equal(parsed.instructions[1]!.args, 'echo a   b');
  assert.deepEqual(parsed.instructions[1]!.loc, { file: 'Cf', line: 2, endLine: 5 });
  assert.equal(parsed.warnings.length, 1);
  assert.match(parsed.warnings[0]!, /^Cf:2: empty continuation line/);
});

test('heredocs only in shell-form RUN/COPY/ADD (and their ONBUILD triggers)', () => {
  const parsed = parseContainerfile('FROM a\nRUN ["echo", "<<EOF"]\nCMD cat <<EOF\nENTRYPOINT <<X\nRUN cat <<EOF\nbody\nEOF\n', 'Cf');
  assert.deepEqual(
    parsed.instructions.map((i) => [i.keyword, i.loc.line, i.loc.endLine, i.heredocs.length]),
    [
      ['FROM', 1, 1, 0],
      ['RUN', 2, 2, 0],
      ['CMD', 3, 3, 0],
      ['ENTRYPOINT', 4, 4, 0],
      ['RUN', 5, 7, 1],
    ],
  );
  const onbuild = parseContainerfile('FROM a\nONBUILD COPY <<f /f\nx\nf\n', 'Cf').instructions[1]!;
  assert.equal(onbuild.heredocs[0]!.content, 'x\n');
  assert.deepEqual(toInstruction(onbuild), { kind: 'ONBUILD', loc: onbuild.loc, original: 'ONBUILD COPY <<f /f', trigger: 'COPY <<f /f\nx\nf' });
});

test('heredoc words: quoting, chomp, fd prefix, not inside quotes', () => {
  const parsed = parseContainerfile('FROM a\nRUN cat 3<<-"A B" <<C "<<D" \'<<E\'\n\tone\n\tA B\ntwo\nC\n', 'Cf');
  assert.deepEqual(parsed.instructions[1]!.heredocs, [
    { name: 'A B', content: '\tone\n', expand: false, chomp: true },
    { name: 'C', content: 'two\n', expand: true, chomp: false },
  ]);
});

test('parseTrigger: base-image ONBUILD triggers parse like instructions at a given location', () => {
  const loc = { file: 'Cf', line: 1, endLine: 1 };
  const run = parseTrigger('RUN echo "$HOME"', loc);
  assert.deepEqual(run, { kind: 'RUN', loc, original: 'RUN echo "$HOME"', command: { form: 'shell', script: 'echo "$HOME"', heredocs: [] }, mounts: [], network: 'default' });
  const copy = parseTrigger('COPY --from=build /a /b', loc);
  assert.equal(copy.kind, 'COPY');
  assert.ok(copy.kind === 'COPY' && copy.from === 'build' && copy.fromResolved === undefined);
  assert.throws(() => parseTrigger('FROM alpine', loc), containerfileError(/^Cf:1: FROM isn't allowed as an ONBUILD trigger$/));
  assert.throws(() => parseTrigger('RUN a\nRUN b', loc), containerfileError(/single instruction/));
  assert.throws(() => parseTrigger('RUN ["a", 1]', loc), containerfileError(/^Cf:1: ONBUILD trigger "RUN \[\\"a\\", 1\]": RUN: when using JSON array syntax/));
  assert.throws(() => parseTrigger('BOGUS x', loc), (e: unknown) => isKilnError(e, 'E_CONTAINERFILE') && e.message === 'Cf:1: unknown instruction: BOGUS' && e.hint === undefined);
  assert.throws(() => parseTrigger('COYP a b', loc), (e: unknown) => isKilnError(e, 'E_CONTAINERFILE') && e.hint === 'did you mean COPY?');
});

test('instructions without flags reject any flag; bool and string flag syntax', () => {
  const one = (text: string) => toInstruction(parseContainerfile(`FROM a\n${text}\n`, 'Cf').instructions[1]!);
  assert.throws(() => one('ENV --x=1 A=b'), containerfileError(/^Cf:2: unknown flag --x for ENV$/));
  assert.throws(() => one('COPY --link=maybe a b'), containerfileError(/expecting a boolean value for flag --link, not: maybe/));
  assert.throws(() => one('COPY --from a b'), containerfileError(/missing a value on flag --from/));
  assert.throws(() => one('COPY --chown=a --chown=b a b'), containerfileError(/duplicate flag --chown/));
  assert.throws(() => one('COPY --keep-git-dir a b'), containerfileError(/only ADD supports --keep-git-dir/));
  assert.throws(() => one('ADD --from=x a b'), containerfileError(/unknown flag --from for ADD/));
  const add = one('ADD --link=TRUE --keep-git-dir=false a b');
  assert.ok(add.kind === 'ADD' && add.link === true && add.keepGitDir === false);
});

test('HEALTHCHECK option values', () => {
  const hc = (text: string) => {
    const ins = toInstruction(parseContainerfile(`FROM a\nHEALTHCHECK ${text}\n`, 'Cf').instructions[1]!);
    assert.ok(ins.kind === 'HEALTHCHECK');
    return ins.healthcheck;
  };
  assert.deepEqual(hc('--interval=1.5h --timeout=0 CMD true'), { test: ['CMD-SHELL', 'true'], interval: 5_400_000_000_000, timeout: 0 });
  assert.throws(() => hc('--timeout=500us CMD true'), containerfileError(/cannot be less than 1ms/));
  assert.throws(() => hc('--retries=0 CMD true'), containerfileError(/--retries must be at least 1 \(not 0\)/));
  assert.throws(() => hc('--interval=5s NONE'), containerfileError(/HEALTHCHECK NONE takes no options/));
  assert.throws(() => hc('NONE now'), containerfileError(/HEALTHCHECK NONE takes no arguments/));
  assert.throws(() => hc('RUN true'), containerfileError(/unknown type "RUN" in HEALTHCHECK/));
  assert.throws(() => hc('CMD []'), containerfileError(/Missing command after HEALTHCHECK CMD/));
});

test('Go value syntaxes: durations, sizes, csv', () => {
  assert.equal(parseGoDuration('1m30s'), 90e9);
  assert.equal(parseGoDuration('1.5s'), 1.5e9);
  assert.equal(parseGoDuration('.5ms'), 500_000);
  assert.equal(parseGoDuration('2h45m0.5s'), 9_900_500_000_000);
  assert.equal(parseGoDuration('10µs'), 10_000);
  assert.equal(parseGoDuration('0'), 0);
  for (const bad of ['', '5', 's', '1x', '.s', '1m 2s']) assert.equal(parseGoDuration(bad), undefined, bad);
  assert.equal(parseRamInBytes('64m'), 64 * 2 ** 20);
  assert.equal(parseRamInBytes('1.5GiB'), 1.5 * 2 ** 30);
  assert.equal(parseRamInBytes('4096'), 4096);
  assert.equal(parseRamInBytes('12q'), undefined);
  assert.deepEqual(parseCsvRecord('type=bind,"target=/a,b","q="""'), ['type=bind', 'target=/a,b', 'q="']);
  assert.throws(() => parseCsvRecord('a="b'), /bare "/);
});

test('triggers of a base image and resolving their --from against the plan', () => {
  const plan = loadPlan('ARG S=build\nFROM alpine AS build\nFROM alpine AS next\nFROM base\n', 'Cf', { buildArgs: {}, platformArgs: {} });
  const loc = plan.stages[2]!.loc;
  const ins = triggerInstructions(['COPY --from=$S /a /b', 'RUN --mount=type=bind,from=next,target=/n make', 'COPY --from=busybox /c /d'], loc, plan, 2, plan.globalArgs);
  assert.deepEqual(ins.map((i) => [i.kind, i.loc.line]), [['COPY', 4], ['RUN', 4], ['COPY', 4]]);
  const [copy, run, copyImage] = ins;
  assert.ok(copy!.kind === 'COPY' && copyImage!.kind === 'COPY' && run!.kind === 'RUN');
  // resolved against the plan of the build using the base image, with its global ARGs
  assert.deepEqual(copy.fromResolved, { kind: 'stage', index: 0 });
  assert.deepEqual((run.mounts[0] as { fromResolved?: unknown }).fromResolved, { kind: 'stage', index: 1 });
  assert.deepEqual(copyImage.fromResolved, { kind: 'image', ref: 'busybox' });
  assert.throws(() => triggerInstructions(['COPY --from=2 /a /b'], loc, plan, 2, {}), containerfileError(/^Cf:4: ONBUILD COPY: --from=2: stage 2 is not defined before the current stage$/));
  assert.deepEqual(resolveFromInPlan(plan, copy.from!, 2, plan.globalArgs, 'Cf:4'), { kind: 'stage', index: 0 });
  assert.deepEqual(resolveFromInPlan(plan, 'NEXT', 2, {}, 'Cf:4'), { kind: 'stage', index: 1 });
  assert.deepEqual(resolveFromInPlan(plan, 'busybox', 2, {}, 'Cf:4'), { kind: 'image', ref: 'busybox' });
  assert.throws(() => resolveFromInPlan(plan, '2', 2, {}, 'Cf:4'), containerfileError(/^Cf:4: --from=2: stage 2 is not defined before the current stage$/));
});
