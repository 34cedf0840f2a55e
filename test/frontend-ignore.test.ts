/**
 * .containerignore matching (src/build/frontend/ignore.ts) against moby/patternmatcher's match
 * table and the dockerignore rules (exceptions, `**`, directory ignores).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { IgnoreMatcher, ignoreFileCandidates, parseIgnoreFile } from '../src/build/frontend';

test('patternmatcher match table', () => {
  const cases: [string, string, boolean][] = [
    ['**', 'file', true],
    ['**', 'file/', true],
    ['**/', 'file', true],
    ['**', 'dir/file', true],
    ['**/**', 'dir/file', true],
    ['dir/**', 'dir/file', true],
    ['dir/**', 'dir/dir2/file', true],
    ['**/dir', 'dir', true],
    ['**/dir', 'dir/file', true],
    ['**/dir2/*', 'dir/dir2/file', true],
    ['**/dir2/**', 'dir/dir2/dir3/file', true],
    ['**file', 'file', true],
    ['**file', 'dir/file', true],
    ['**/file', 'dir/file', true],
    ['**file', 'dir/dir/file', true],
    ['**/file', 'dir/dir/file', true],
    ['**/file*', 'dir/dir/file', true],
    ['**/file*', 'dir/dir/file.txt', true],
    ['**/file*txt', 'dir/dir/file.txt', true],
    ['**/file*.txt', 'dir/dir/file.txt', true],
    ['**/file*.txt*', 'dir/dir/file.txt', true],
    ['**/**/*.txt', 'dir/dir/file.txt', true],
    ['**/**/*.txt2', 'dir/dir/file.txt', false],
    ['**/*.txt', 'file.txt', true],
    ['**/**/*.txt', 'file.txt', true],
    ['a**/*.txt', 'a/file.txt', true],
    ['a**/*.txt', 'a/dir/file.txt', true],
    ['a**/*.txt', 'a/dir/dir/file.txt', true],
    ['a/*.txt', 'a/dir/file.txt', false],
    ['a/*.txt', 'a/file.txt', true],
    ['a/*.txt**', 'a/file.txt', true],
    ['a[b-d]e', 'ae', false],
    ['a[b-d]e', 'ace', true],
    ['a[b-d]e', 'aae', false],
    ['a[^b-d]e', 'aze', true],
    ['.*', '.foo', true],
    ['.*', 'foo', false],
    ['abc.def', 'abcdef', false],
    ['abc.def', 'abc.def', true],
    ['abc.def', 'abcZdef', false],
    ['abc?def', 'abcZdef', true],
    ['abc?def', 'abcdef', false],
    ['a\\\\', 'a\\', true],
    ['**/foo/bar', 'foo/bar', true],
    ['**/foo/bar', 'dir/foo/bar', true],
    ['**/foo/bar', 'dir/dir2/foo/bar', true],
    ['abc/**', 'abc', false],
    ['abc/**', 'abc/def', true],
    ['abc/**', 'abc/def/ghi', true],
    ['**/.foo', '.foo', true],
    ['**/.foo', 'bar.foo', false],
    ['a(b)c/def', 'a(b)c/def', true],
    ['a(b)c/def', 'a(b)c/xyz', false],
    ['a.|)$(}+{bc', 'a.|)$(}+{bc', true],
    ['dist/*.whl', 'dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl', true],
    ['*', 'sub/file', true], // through its parent "sub"
    ['sub', 'sub/deep/file', true],
    ['sub/*', 'sub', false],
  ];
  for (const [pattern, file, expected] of cases) {
    assert.equal(new IgnoreMatcher([pattern]).ignores(file), expected, `${pattern} vs ${file}`);
  }
});

test('parseIgnoreFile: comments, blanks, cleaning, leading slash, exceptions', () => {
  const text = '# comment\n\n  /build/  \n./a//b/../c\n!  /keep.md\n  # not a comment: a pattern\r\n*.md\n';
  assert.deepEqual(parseIgnoreFile(text), ['build', 'a/c', '!keep.md', '# not a comment: a pattern', '*.md']);
  assert.deepEqual(parseIgnoreFile('\ufeff/\n'), ['/']);
});

test('exceptions: the last matching pattern wins', () => {
  const m = new IgnoreMatcher(parseIgnoreFile('*.md\n!README*.md\nREADME-secret.md\n'));
  assert.equal(m.ignores('CHANGES.md'), true);
  assert.equal(m.ignores('README.md'), false);
  assert.equal(m.ignores('README-secret.md'), true);
  assert.equal(m.ignores('docs/x.md'), false, '*.md is anchored at the context root');
  assert.equal(m.hasExceptions, true);
});

test('directory ignores and re-included files below them', () => {
  const m = new IgnoreMatcher(parseIgnoreFile('node_modules\ndist\n!dist/keep.txt\n**/*.log\n!important.log\n'));
  assert.equal(m.ignores('node_modules', true), true);
  assert.equal(m.ignores('node_modules/pkg/index.js'), true);
  assert.equal(m.ignores('dist/app.js'), true);
  assert.equal(m.ignores('dist/keep.txt'), false);
  assert.equal(m.ignores('src/a/b/debug.log'), true);
  assert.equal(m.ignores('important.log'), false);
  assert.equal(m.ignores('src/main.ts'), false);
  // the walker may skip node_modules entirely but must descend into dist
  assert.equal(m.mayIncludeUnder('node_modules'), false);
  assert.equal(m.mayIncludeUnder('dist'), true);
  assert.equal(m.mayIncludeUnder('dist/sub'), false, 'dist/keep.txt cannot be below dist/sub');
  assert.equal(new IgnoreMatcher(['dist', '!dist/sub']).mayIncludeUnder('dist/sub/deeper'), true, 'an exception naming a parent re-includes everything below');
  assert.equal(m.mayIncludeUnder('other'), false);
});

test('mayIncludeUnder: wildcards in exceptions', () => {
  const m = new IgnoreMatcher(['*', '!src/*/keep', '!**/*.keep']);
  assert.equal(m.ignores('src/a/keep'), false);
  assert.equal(m.ignores('src/a/other'), true);
  assert.equal(m.mayIncludeUnder('src'), true);
  assert.equal(m.mayIncludeUnder('src/a'), true);
  assert.equal(m.mayIncludeUnder('lib'), true, '**/*.keep could match anywhere');
  assert.equal(new IgnoreMatcher(['*', '!src/*/keep']).mayIncludeUnder('lib'), false);
  assert.equal(new IgnoreMatcher(['*']).mayIncludeUnder('src'), false);
});

test('a lone "!" is rejected', () => {
  assert.throws(() => new IgnoreMatcher(['!']), /illegal exclusion pattern/);
});

test('ignoreFileCandidates: Containerfile-specific files first, then the context', () => {
  assert.deepEqual(ignoreFileCandidates('/src/app/Containerfile.prod', '/src/ctx'), [
    '/src/app/Containerfile.prod.containerignore',
    '/src/app/Containerfile.prod.dockerignore',
    '/src/ctx/.containerignore',
    '/src/ctx/.dockerignore',
  ]);
});
