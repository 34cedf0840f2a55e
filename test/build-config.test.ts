/**
 * `kiln build` end to end, the image it records: the config each instruction sets (ENV, LABEL,
 * EXPOSE, VOLUME, USER, WORKDIR, SHELL, STOPSIGNAL, HEALTHCHECK, ONBUILD, CMD/ENTRYPOINT), ARG
 * scoping and substitution, history, the CLI flags that shape the result (--label,
 * --annotation, --iidfile, -q, --target, --output, --format, --timestamp/SOURCE_DATE_EPOCH),
 * and how failures are reported and cleaned up. Results are read with `kiln inspect`, from the
 * blobs of `kiln save --format oci-dir`, and by umoci (an independent reader of the config).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { requireTool, run, type Sandbox } from './helpers/env';
import { buildImage, buildOk, kilnBuild, inspectImage, leftovers, listTar, saveOciDir, withMounted, writeContext } from './helpers/build';
import { baseSandbox, teardown } from './helpers/build-e2e';

const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

let sb: Sandbox;

before(async () => {
  sb = await baseSandbox('kiln-build-config-');
});
after(() => teardown(sb));

function assertClean(what: string): void {
  const l = leftovers(sb);
  assert.deepEqual(l.mounts, [], `${what}: no mounts left under the sandbox`);
  assert.deepEqual(l.containers, [], `${what}: no runc containers left`);
}

test('ENV, LABEL, EXPOSE, VOLUME, USER, WORKDIR, STOPSIGNAL; ARG defaults, --build-arg, --build-arg-file and ${a:-x}/${a:+x}', async () => {
  const ctx = writeContext(sb, 'ctx-meta', {
    Containerfile: [
      'FROM localhost/busybox',
      'ARG FROMCLI',
      'ARG FROMFILE',
      'ARG WITHDEFAULT=dflt',
      'ARG UNSET',
      'ENV PATH=/opt/bin:$PATH',
      'ENV A=${FROMCLI} B=${UNSET:-fallback} C=${FROMCLI:+alt} D=${UNSET:+never} E="${WITHDEFAULT}" F=${FROMFILE:-no}',
      'ENV SPACED="two words" REF=$A-suffix',
      'LABEL version="1.${FROMCLI}" "with space"=yes empty=${UNSET:+x}',
      'EXPOSE 80 53/udp 8080-8081',
      'VOLUME /data',
      'VOLUME ["/v1", "/v2"]',
      'WORKDIR /srv',
      'WORKDIR app',
      'WORKDIR ../lib/./x',
      'WORKDIR $A',
      'RUN pwd > /pwd && echo "$A|$B|$SPACED|$FROMCLI" > /env-seen',
      'USER 1000:1000',
      'STOPSIGNAL SIGTERM',
      '',
    ].join('\n'),
    'args.conf': '# comment\n\nFROMFILE=from-file\nFROMCLI=overridden-by-cli\n',
  });
  buildOk(sb, ctx, ['-t', 'cfg-meta', '--build-arg', 'FROMCLI=cli', '--build-arg-file', path.join(ctx, 'args.conf'), '--label', 'extra=flag']);
  const c = inspectImage(sb, 'cfg-meta').Config as Record<string, unknown>;
  assert.deepEqual(c.Env, [
    `PATH=/opt/bin:${DEFAULT_PATH}`,
    'A=cli',
    'B=fallback',
    'C=alt',
    'D=',
    'E=dflt',
    'F=from-file',
    'SPACED=two words',
    'REF=cli-suffix',
  ]);
  assert.deepEqual(c.Labels, { version: '1.cli', 'with space': 'yes', empty: '', extra: 'flag' });
  assert.deepEqual(c.ExposedPorts, { '80/tcp': {}, '53/udp': {}, '8080-8081/tcp': {} });
  assert.deepEqual(c.Volumes, { '/data': {}, '/v1': {}, '/v2': {} });
  assert.equal(c.WorkingDir, '/srv/lib/x/cli', 'relative WORKDIRs join the current one');
  assert.equal(c.User, '1000:1000');
  assert.equal(c.StopSignal, 'SIGTERM');
  assert.deepEqual(c.Cmd, ['/bin/sh'], 'CMD is inherited from the base');
  await withMounted(sb, 'cfg-meta', (root) => {
    assert.equal(fs.readFileSync(path.join(root, 'pwd'), 'utf8'), '/srv/lib/x/cli\n', 'RUN starts in WORKDIR (created if missing)');
    assert.equal(fs.readFileSync(path.join(root, 'env-seen'), 'utf8'), 'cli|fallback|two words|cli\n', 'RUN sees ENV and ARG values');
    assert.ok(fs.statSync(path.join(root, 'srv/lib/x/cli')).isDirectory());
  });
  // the config blob as saved says the same
  const saved = saveOciDir(sb, 'cfg-meta', 'oci-meta').config.config!;
  assert.deepEqual(saved.Env, c.Env);
  assert.deepEqual(saved.Labels, c.Labels);
  assert.equal(saved.WorkingDir, '/srv/lib/x/cli');
});

test('SHELL changes how later shell-form RUN, CMD and ENTRYPOINT are run; exec forms are left alone', async () => {
  buildImage(
    sb,
    'cfg-shell',
    [
      'FROM localhost/busybox',
      'RUN echo "default:$0" > /default',
      'SHELL ["/bin/sh", "-e", "-u", "-c"]',
      'RUN echo "flags:$-" > /flags; if [ -z "${NOPE:-}" ]; then echo ok > /nounset-ok; fi',
      'RUN ["/bin/sh", "-c", "echo exec:$- > /exec"]',
      'CMD echo from cmd',
      '',
    ].join('\n'),
  );
  const img = inspectImage(sb, 'cfg-shell');
  assert.deepEqual(img.Config.Cmd, ['/bin/sh', '-e', '-u', '-c', 'echo from cmd']);
  const base = inspectImage(sb, 'localhost/busybox');
  const mine = img.History.slice(base.History.length).map((h) => h.created_by ?? '');
  assert.equal(mine.length, 5);
  assert.match(mine[0]!, /^\/bin\/sh -c echo "default/);
  assert.match(mine[2]!, /^\/bin\/sh -e -u -c echo "flags/, 'history shows the shell that ran the command');
  await withMounted(sb, 'cfg-shell', (root) => {
    const r = (p: string) => fs.readFileSync(path.join(root, p), 'utf8').trim();
    assert.equal(r('default'), 'default:/bin/sh');
    assert.match(r('flags'), /^flags:[a-z]*e[a-z]*$/, 'the -e flag from SHELL is set');
    assert.match(r('flags'), /u/, 'the -u flag from SHELL is set');
    assert.equal(r('nounset-ok'), 'ok');
    assert.doesNotMatch(r('exec'), /u/, 'an exec-form RUN does not use SHELL');
  });
});

test('HEALTHCHECK, ONBUILD and SHELL are kept with --format docker and dropped with --format oci', () => {
  const cf = [
    'FROM localhost/busybox',
    'SHELL ["/bin/sh", "-xc"]',
    'HEALTHCHECK --interval=5s --timeout=3s --retries=4 CMD wget -q localhost || exit 1',
    'ONBUILD RUN echo child',
    'ONBUILD LABEL from=onbuild',
    '',
  ].join('\n');
  buildImage(sb, 'cfg-hc-docker', cf, {}, ['--format', 'docker']);
  buildImage(sb, 'cfg-hc-oci', cf, {}, ['--format', 'oci']);
  const d = inspectImage(sb, 'cfg-hc-docker');
  assert.equal(d.ManifestType, 'application/vnd.docker.distribution.manifest.v2+json');
  assert.deepEqual(d.Config.Healthcheck, { Test: ['CMD-SHELL', 'wget -q localhost || exit 1'], Interval: 5e9, Timeout: 3e9, Retries: 4 });
  assert.deepEqual(d.Config.OnBuild, ['RUN echo child', 'LABEL from=onbuild']);
  assert.deepEqual(d.Config.Shell, ['/bin/sh', '-xc']);
  const o = inspectImage(sb, 'cfg-hc-oci');
  assert.equal(o.ManifestType, 'application/vnd.oci.image.manifest.v1+json');
  for (const k of ['Healthcheck', 'OnBuild', 'Shell']) assert.equal(o.Config[k] ?? undefined, undefined, `${k} is not part of an OCI config`);
  const raw = saveOciDir(sb, 'cfg-hc-oci', 'oci-hc').config.config!;
  for (const k of ['Healthcheck', 'OnBuild', 'Shell']) assert.ok(!(k in raw), `${k} is absent from the saved OCI config`);
  // the docker-format image saved as a Docker directory keeps a schema 2 manifest
  const dir = path.join(sb.dir, 'docker-dir-hc');
  sb.ok(['save', '--format', 'docker-dir', '-o', dir, 'cfg-hc-docker']);
  const m = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8')) as { mediaType: string; config: { mediaType: string } };
  assert.equal(m.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
  assert.equal(m.config.mediaType, 'application/vnd.docker.container.image.v1+json');
  assert.equal(sb.ok(['inspect', '--format', '{{.ManifestType}}', 'cfg-hc-docker']).trim(), 'application/vnd.docker.distribution.manifest.v2+json');
});

test('CMD and ENTRYPOINT: shell and exec forms; an ENTRYPOINT resets an inherited CMD, not one set in the same stage', () => {
  buildImage(sb, 'cfg-cmd-shell', 'FROM localhost/busybox\nCMD echo "hi there"\n');
  assert.deepEqual(inspectImage(sb, 'cfg-cmd-shell').Config.Cmd, ['/bin/sh', '-c', 'echo "hi there"']);
  buildImage(sb, 'cfg-ep-exec', 'FROM localhost/busybox\nENTRYPOINT ["/bin/echo", "a b"]\n');
  const e = inspectImage(sb, 'cfg-ep-exec').Config;
  assert.deepEqual(e.Entrypoint, ['/bin/echo', 'a b']);
  assert.ok(e.Cmd === null || e.Cmd === undefined, `the base's CMD ["/bin/sh"] is reset: ${JSON.stringify(e.Cmd)}`);
  buildImage(sb, 'cfg-ep-cmd', 'FROM localhost/busybox\nCMD ["first"]\nENTRYPOINT /bin/echo\nCMD ["--x", "y"]\n');
  const both = inspectImage(sb, 'cfg-ep-cmd').Config;
  assert.deepEqual(both.Entrypoint, ['/bin/sh', '-c', '/bin/echo']);
  assert.deepEqual(both.Cmd, ['--x', 'y']);
  buildImage(sb, 'cfg-cmd-then-ep', 'FROM localhost/busybox\nCMD ["kept"]\nENTRYPOINT ["/bin/echo"]\n');
  assert.deepEqual(inspectImage(sb, 'cfg-cmd-then-ep').Config.Cmd, ['kept'], 'a CMD from this stage survives a later ENTRYPOINT');
  buildImage(sb, 'cfg-ep-child', 'FROM localhost/cfg-ep-cmd\nENTRYPOINT ["/bin/true"]\n');
  const child = inspectImage(sb, 'cfg-ep-child').Config;
  assert.deepEqual(child.Entrypoint, ['/bin/true']);
  assert.ok(child.Cmd === null || child.Cmd === undefined, 'the parent image CMD is reset');
  buildImage(sb, 'cfg-cmd-child', 'FROM localhost/cfg-ep-cmd\nCMD ["z"]\n');
  const c2 = inspectImage(sb, 'cfg-cmd-child').Config;
  assert.deepEqual(c2.Entrypoint, ['/bin/sh', '-c', '/bin/echo'], 'a CMD keeps the inherited ENTRYPOINT');
  assert.deepEqual(c2.Cmd, ['z']);
});

test('ARG before FROM chooses the base; it is visible in a stage only once redeclared; TARGETARCH needs ARG TARGETARCH', async () => {
  const cf = [
    'ARG BASE=localhost/no-such-image',
    'ARG V=outer',
    'FROM ${BASE} AS one',
    'RUN echo "v=[$V] arch=[$TARGETARCH]" > /before',
    'ARG V',
    'ARG TARGETARCH',
    'ARG TARGETOS',
    'ARG TARGETPLATFORM',
    'RUN echo "v=[$V] arch=[$TARGETARCH] os=[$TARGETOS] platform=[$TARGETPLATFORM]" > /after',
    '',
  ].join('\n');
  const ctx = writeContext(sb, 'ctx-args', { Containerfile: cf });
  buildOk(sb, ctx, ['-t', 'cfg-args', '--build-arg', 'BASE=localhost/busybox']);
  const arch = ({ x64: 'amd64', arm64: 'arm64', arm: 'arm', ia32: '386', ppc64: 'ppc64le', s390x: 's390x' } as Record<string, string>)[process.arch] ?? process.arch;
  await withMounted(sb, 'cfg-args', (root) => {
    assert.equal(fs.readFileSync(path.join(root, 'before'), 'utf8'), 'v=[] arch=[]\n');
    assert.equal(fs.readFileSync(path.join(root, 'after'), 'utf8'), `v=[outer] arch=[${arch}] os=[linux] platform=[linux/${arch}]\n`);
  });
  // the global default is used when no --build-arg is given: an unknown base
  const r = kilnBuild(sb, ctx, ['-t', 'cfg-args-default']);
  assert.equal(r.status, 125);
  assert.match(r.stderr, /localhost\/no-such-image/);
  assert.match(r.stderr, /image not known/);
  // a --build-arg overrides the global value seen inside the stage too
  buildOk(sb, ctx, ['-t', 'cfg-args2', '--build-arg', 'BASE=localhost/busybox', '--build-arg', 'V=cli']);
  await withMounted(sb, 'cfg-args2', (root) => assert.match(fs.readFileSync(path.join(root, 'after'), 'utf8'), /^v=\[cli\]/));
});

test('ONBUILD triggers fire in a child built FROM the parent, then are not inherited', async () => {
  buildImage(sb, 'cfg-onbuild-parent', 'FROM localhost/busybox\nONBUILD RUN echo triggered > /trigger\nONBUILD COPY marker /from-child-context\nONBUILD COPY --from=localhost/busybox /bin/busybox /from-image\n', {}, ['--format', 'docker']);
  assert.deepEqual(inspectImage(sb, 'cfg-onbuild-parent').Config.OnBuild, ['RUN echo triggered > /trigger', 'COPY marker /from-child-context', 'COPY --from=localhost/busybox /bin/busybox /from-image']);
  buildImage(sb, 'cfg-onbuild-child', 'FROM localhost/cfg-onbuild-parent\nRUN cat /trigger > /seen-by-next-step\n', { marker: 'child ctx\n' }, ['--format', 'docker']);
  await withMounted(sb, 'cfg-onbuild-child', (root) => {
    assert.equal(fs.readFileSync(path.join(root, 'trigger'), 'utf8'), 'triggered\n');
    assert.equal(fs.readFileSync(path.join(root, 'seen-by-next-step'), 'utf8'), 'triggered\n', 'triggers run before the first instruction of the child');
    assert.equal(fs.readFileSync(path.join(root, 'from-child-context'), 'utf8'), 'child ctx\n', 'a trigger COPY reads the child build context');
    assert.ok(fs.statSync(path.join(root, 'from-image')).size > 100_000, 'a trigger COPY --from an image is resolved in the child build');
  });
  const child = inspectImage(sb, 'cfg-onbuild-child');
  assert.ok(child.Config.OnBuild === null || child.Config.OnBuild === undefined || (child.Config.OnBuild as unknown[]).length === 0, 'triggers are consumed');
});

test('one history entry per instruction, with created_by and empty_layer as podman writes them', () => {
  buildImage(
    sb,
    'cfg-history',
    ['FROM localhost/busybox', 'ENV K=v', 'LABEL a=b', 'RUN echo one > /one', 'COPY f /f', 'WORKDIR /etc', 'WORKDIR /w', 'EXPOSE 1', 'CMD ["x"]', ''].join('\n'),
    { f: 'f' },
  );
  const base = inspectImage(sb, 'localhost/busybox');
  const img = inspectImage(sb, 'cfg-history');
  assert.equal(img.History.length, base.History.length + 8);
  assert.deepEqual(img.History.slice(0, base.History.length), base.History, "the base image's history comes first, unchanged");
  const mine = img.History.slice(base.History.length);
  const by = mine.map((h) => h.created_by ?? '');
  assert.equal(by[0], '/bin/sh -c #(nop) ENV K=v');
  assert.equal(by[1], '/bin/sh -c #(nop) LABEL a=b');
  assert.equal(by[2], '/bin/sh -c echo one > /one');
  assert.match(by[3]!, /^\/bin\/sh -c #\(nop\) COPY file:[0-9a-f]{64} in \/f/);
  assert.equal(by[4], '/bin/sh -c #(nop) WORKDIR /etc');
  assert.equal(by[5], '/bin/sh -c #(nop) WORKDIR /w');
  assert.equal(by[6], '/bin/sh -c #(nop) EXPOSE 1');
  assert.equal(by[7], '/bin/sh -c #(nop) CMD ["x"]');
  // a WORKDIR that has to create its directory makes a layer (as with buildah and BuildKit)
  assert.deepEqual(
    mine.map((h) => h.empty_layer === true),
    [true, true, false, false, true, false, true, true],
  );
  // non-empty history entries match the layers one to one
  assert.equal(img.History.filter((h) => !h.empty_layer).length, img.RootFS.Layers.length);
  for (const h of mine) assert.ok(h.created && !Number.isNaN(Date.parse(h.created)), `created is a timestamp: ${h.created}`);
});

test('--label, --annotation (in the OCI manifest), --iidfile and -q', () => {
  const ctx = writeContext(sb, 'ctx-flags', { Containerfile: 'FROM localhost/busybox\nLABEL inner=1 over=file\n' });
  const iid = path.join(sb.dir, 'iid');
  const r = kilnBuild(sb, ctx, ['-q', '-t', 'cfg-flags', '--iidfile', iid, '--label', 'over=flag', '--label', 'k=v=w', '--annotation', 'org.example.note=hello', '--annotation', 'a2=x']);
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^[0-9a-f]{64}\n$/, `-q prints only the image ID: ${JSON.stringify(r.stdout)}`);
  const id = r.stdout.trim();
  assert.equal(fs.readFileSync(iid, 'utf8'), `sha256:${id}`);
  const img = inspectImage(sb, 'cfg-flags');
  assert.equal(img.Id, id);
  assert.deepEqual(img.Config.Labels, { inner: '1', over: 'flag', k: 'v=w' }, '--label wins over LABEL');
  const layout = saveOciDir(sb, 'cfg-flags', 'oci-flags');
  assert.equal(layout.manifest.config.digest, `sha256:${id}`);
  assert.deepEqual(layout.manifest.annotations, { 'org.example.note': 'hello', a2: 'x' });
  // without -q, the image ID is the last line of the output
  const loud = kilnBuild(sb, ctx, ['-t', 'cfg-flags2']);
  assert.equal(loud.status, 0, loud.stderr);
  assert.match(loud.stdout, /STEP 2\/2: LABEL inner=1 over=file/);
  assert.equal(loud.id, inspectImage(sb, 'cfg-flags2').Id);
});

test('--target builds only what the target needs: a failing later stage is not run', async () => {
  const ctx = writeContext(sb, 'ctx-target', {
    Containerfile: [
      'FROM localhost/busybox AS base',
      'RUN echo base > /base',
      'FROM base AS app',
      'COPY --from=0 /base /copied',
      'RUN echo app > /app',
      'FROM localhost/busybox AS broken',
      'RUN echo should-not-run && exit 7',
      'FROM app',
      'COPY --from=broken /nothing /x',
      '',
    ].join('\n'),
  });
  const r = kilnBuild(sb, ctx, ['--target', 'app', '-t', 'cfg-target']);
  assert.equal(r.status, 0, r.stderr);
  assert.doesNotMatch(r.stdout, /should-not-run/);
  await withMounted(sb, 'cfg-target', (root) => {
    assert.equal(fs.readFileSync(path.join(root, 'app'), 'utf8'), 'app\n');
    assert.equal(fs.readFileSync(path.join(root, 'copied'), 'utf8'), 'base\n');
  });
  // without --target the broken stage runs, and fails the build with its status
  const all = kilnBuild(sb, ctx, ['-t', 'cfg-target-all']);
  assert.equal(all.status, 7);
  assertClean('failed multi-stage build');
});

test('--output type=local and type=tar write the final rootfs', async () => {
  const ctx = writeContext(sb, 'ctx-output', { Containerfile: 'FROM localhost/busybox\nRUN mkdir /out && echo made > /out/file && ln -s file /out/link\n' });
  const dest = path.join(sb.dir, 'out-local');
  const tarFile = path.join(sb.dir, 'out.tar');
  buildOk(sb, ctx, ['-t', 'cfg-output', '-o', `type=local,dest=${dest}`, '--output', `type=tar,dest=${tarFile}`]);
  assert.equal(fs.readFileSync(path.join(dest, 'out/file'), 'utf8'), 'made\n');
  assert.equal(fs.readlinkSync(path.join(dest, 'out/link')), 'file');
  assert.ok(fs.lstatSync(path.join(dest, 'bin/sh')).isSymbolicLink(), 'the whole rootfs, base included');
  const entries = await listTar(tarFile);
  const by = new Map(entries.map((e) => [e.name, e]));
  assert.equal(by.get('out/file')?.text, 'made\n');
  assert.equal(by.get('out/link')?.linkname, 'file');
  assert.ok(by.has('bin/busybox'));
  assert.ok(![...by.keys()].some((n) => n.split('/').pop()!.startsWith('.wh.')), 'a flattened rootfs has no whiteouts');
});

test('--format docker writes a Docker schema 2 image; the same SOURCE_DATE_EPOCH gives the same image ID; --timestamp sets Created', () => {
  const ctx = writeContext(sb, 'ctx-repro', { Containerfile: 'FROM localhost/busybox\nRUN echo fixed > /fixed && mkdir -p /d/e\nCOPY f /f\nENV X=1\n', f: 'content\n' });
  const env = { SOURCE_DATE_EPOCH: '1700000000' };
  const a = buildOk(sb, ctx, ['--no-cache', '-t', 'cfg-repro-a'], env);
  const b = buildOk(sb, ctx, ['--no-cache', '-t', 'cfg-repro-b'], env);
  assert.equal(a, b, 'two uncached builds with the same SOURCE_DATE_EPOCH are identical');
  const img = inspectImage(sb, 'cfg-repro-a');
  assert.equal(Date.parse(img.Created), 1700000000 * 1000);
  const base = inspectImage(sb, 'localhost/busybox');
  for (const h of img.History.slice(base.History.length)) assert.equal(Date.parse(h.created!), 1700000000 * 1000, `history: ${h.created_by}`);
  const c = buildOk(sb, ctx, ['--no-cache', '-t', 'cfg-repro-c'], { SOURCE_DATE_EPOCH: '1700000001' });
  assert.notEqual(c, a, 'another epoch gives another image');
  const t = buildOk(sb, ctx, ['--timestamp', '1234567890', '--format', 'docker', '-t', 'cfg-ts']);
  const ti = inspectImage(sb, 'cfg-ts');
  assert.equal(ti.Id, t);
  assert.equal(Date.parse(ti.Created), 1234567890 * 1000);
  assert.equal(ti.ManifestType, 'application/vnd.docker.distribution.manifest.v2+json');
});

test('umoci reads the built config: args, env, cwd and user of the runtime bundle', () => {
  requireTool('umoci');
  buildImage(
    sb,
    'cfg-umoci',
    'FROM localhost/busybox\nENV GREETING=hello\nWORKDIR /app\nUSER 1234:5678\nENTRYPOINT ["/bin/echo"]\nCMD ["$GREETING"]\nLABEL org.example.k=v\n',
  );
  const layout = path.join(sb.dir, 'umoci-cfg');
  sb.ok(['push', 'cfg-umoci', `oci:${layout}:t`]);
  const bundle = path.join(sb.dir, 'umoci-cfg-bundle');
  run('umoci', ['unpack', '--image', `${layout}:t`, bundle]);
  const spec = JSON.parse(fs.readFileSync(path.join(bundle, 'config.json'), 'utf8')) as {
    process: { args: string[]; env: string[]; cwd: string; user: { uid: number; gid: number } };
    annotations?: Record<string, string>;
  };
  assert.deepEqual(spec.process.args, ['/bin/echo', '$GREETING']);
  assert.ok(spec.process.env.includes('GREETING=hello'), JSON.stringify(spec.process.env));
  assert.ok(spec.process.env.includes(`PATH=${DEFAULT_PATH}`), JSON.stringify(spec.process.env));
  assert.equal(spec.process.cwd, '/app');
  assert.deepEqual([spec.process.user.uid, spec.process.user.gid], [1234, 5678]);
  assert.equal(spec.annotations?.['org.example.k'], 'v');
});

test('errors: a syntax error exits 125 naming file:line; a failing RUN exits with its status and shows its last output; an unknown base image; nothing is left behind', () => {
  const syntax = writeContext(sb, 'ctx-err-syntax', { Containerfile: 'FROM localhost/busybox\nRUN true\nFROBNICATE now\n' });
  const s = kilnBuild(sb, syntax, ['-t', 'cfg-err-syntax']);
  assert.equal(s.status, 125, s.stderr);
  assert.match(s.stderr, /Containerfile:3\b/);
  assert.match(s.stderr, /FROBNICATE/i);
  assertClean('syntax error');

  const failing = writeContext(sb, 'ctx-err-run', {
    Containerfile: 'FROM localhost/busybox\nRUN echo fine\nRUN for i in $(seq 1 40); do echo "out line $i"; done; echo "to stderr" >&2; exit 3\nRUN echo never-reached\n',
  });
  const f = kilnBuild(sb, failing, ['-t', 'cfg-err-run']);
  assert.equal(f.status, 3, `podman build exits with the RUN's status: ${f.stderr}`);
  assert.match(f.stderr, /Containerfile:3\b/);
  assert.match(f.stderr, /RUN for i in \$\(seq 1 40\)/, 'names the instruction');
  assert.match(f.stderr, /exit status 3/);
  assert.match(f.stderr, /out line 40/, 'shows the last output lines');
  assert.match(f.stderr, /to stderr/);
  assert.doesNotMatch(f.stdout + f.stderr, /never-reached/);
  assert.notEqual(sb.kiln(['image', 'exists', 'cfg-err-run']).status, 0, 'no image is tagged');
  assertClean('failing RUN');

  const unknown = writeContext(sb, 'ctx-err-base', { Containerfile: 'FROM localhost/does-not-exist:1.0\nRUN true\n' });
  const u = kilnBuild(sb, unknown, ['-t', 'cfg-err-base']);
  assert.equal(u.status, 125);
  assert.match(u.stderr, /localhost\/does-not-exist:1\.0/);
  assert.match(u.stderr, /image not known/);
  assertClean('unknown base image');
});

test('a RUN whose command is not found fails the build with status 127, as podman build does', () => {
  const ctx = writeContext(sb, 'ctx-err-127', { Containerfile: 'FROM localhost/busybox\nRUN no-such-command-here\n' });
  const r = kilnBuild(sb, ctx, ['-t', 'cfg-err-127']);
  assert.match(r.stderr, /Containerfile:2\b/);
  assert.match(r.stderr, /exit status 127/);
  assert.match(r.stderr, /no-such-command-here: not found/, "the shell's complaint is shown");
  assert.equal(r.status, 127, `podman build exits with the RUN's own status, 127 included: ${r.stderr}`);
  assertClean('command not found');
});
