/**
 * Variable substitution and word splitting (src/build/frontend/expand.ts) against tables taken
 * from BuildKit's shell lexer tests (envVarTest, wordsTest) and the Dockerfile reference.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isKilnError } from '../src/errors';
import { expandHeredoc, expandWord, expandWords } from '../src/build/frontend';

const ENV = { PWD: '/home', SHELL: 'bash', KOREAN: '한국어', NULL: '' };
const ERROR = Symbol('error');

// [input, expected] for expandWord with the default escape and ENV
const WORD_CASES: [string, string | typeof ERROR][] = [
  ['hello', 'hello'],
  ["he'll'o", 'hello'],
  ["he'llo", ERROR],
  ["he\\'llo", "he'llo"],
  ["he\\\\'llo", ERROR],
  ['abc\\tdef', 'abctdef'],
  ['"abc\\tdef"', 'abc\\tdef'],
  ['"abc\\\\tdef"', 'abc\\tdef'],
  ["'abc\\tdef'", 'abc\\tdef'],
  ['hello\\', 'hello'],
  ['hello\\\\', 'hello\\'],
  ['"hello', ERROR],
  ['"hello\\"', ERROR],
  ['"hel\'lo"', "hel'lo"],
  ["'hello", ERROR],
  ["'hello\\'", 'hello\\'],
  ["'hello\\there'", 'hello\\there'],
  ['"\'\'"', "''"],
  ['$.', '$.'],
  ['he$1x', 'hex'],
  ['he$.x', 'he$.x'],
  ['he$pwd.', 'he.'],
  ['he$PWD', 'he/home'],
  ['he\\$PWD', 'he$PWD'],
  ['he\\\\$PWD', 'he\\/home'],
  ['"he\\$PWD"', 'he$PWD'],
  ['"he\\\\$PWD"', 'he\\/home'],
  ['\\${}', '${}'],
  ['he\\${}xx', 'he${}xx'],
  ['${}', ERROR],
  ['he${}xx', ERROR],
  ['he${hi}xx', 'hexx'],
  ['he${PWD}', 'he/home'],
  ['he${.}', ERROR],
  ['he${XXX:-000}xx', 'he000xx'],
  ['he${PWD:-000}xx', 'he/homexx'],
  ['he${XXX:-$PWD}xx', 'he/homexx'],
  ['he${XXX:-${PWD:-yyy}}xx', 'he/homexx'],
  ['he${XXX:-${YYY:-yyy}}xx', 'heyyyxx'],
  ['he${XXX:YYY}', ERROR],
  ['he${XXX?}', ERROR],
  ['he${XXX:?}', ERROR],
  ['he${PWD?}', 'he/home'],
  ['he${PWD:?}', 'he/home'],
  ['he${NULL?}', 'he'],
  ['he${NULL:?}', ERROR],
  ['he${XXX:+${PWD}}xx', 'hexx'],
  ['he${PWD:+${XXX}}xx', 'hexx'],
  ['he${PWD:+${SHELL}}xx', 'hebashxx'],
  ['he${XXX:+000}xx', 'hexx'],
  ['he${PWD:+000}xx', 'he000xx'],
  ['he${NULL:-x}', 'hex'],
  ['he${NULL-x}', 'he'],
  ['he${XXX-x}', 'hex'],
  ['he${NULL:+x}', 'he'],
  ['he${NULL+x}', 'hex'],
  ['he${XXX+x}', 'he'],
  ["'he${XX}'", 'he${XX}'],
  ['"he${PWD}"', 'he/home'],
  ['"he\'$PWD\'"', "he'/home'"],
  ['"$PWD"', '/home'],
  ["'$PWD'", '$PWD'],
  ["'\\$PWD'", '\\$PWD'],
  ['\'"hello"\'', '"hello"'],
  ['he${PWD', ERROR],
  ['he${PWD:=000}xx', ERROR],
  ['he${PWD:+${PWD}:}xx', 'he/home:xx'],
  ['he${XXX:-\\$PWD:}xx', 'he$PWD:xx'],
  ['he${XXX:-\\${PWD}z}xx', 'he${PWDz}xx'],
  ['안녕하세요', '안녕하세요'],
  ["안'녕'하세요", '안녕하세요'],
  ['안녕$KOREAN', '안녕한국어'],
  ['${{aaa}', ERROR],
  ['${aaa}}', '}'],
  ['${aaa', ERROR],
  ['${aaa}}}', '}}'],
  // pattern operators (newer BuildKit)
  ['${PWD#/}', 'home'],
  ['${PWD#*o}', 'me'],
  ['${PWD##*o}', 'me'],
  ['${PWD%e}', '/hom'],
  ['${PWD%o*}', '/h'],
  ['${PWD%%o*}', '/h'],
  ['${PWD/o/0}', '/h0me'],
  ['${PWD//[a-z]/x}', '/home'],
  ['${PWD//?/x}', 'xxxxx'],
  ['${PWD/*/x}', 'x'],
  ['${XXX#a}', ''],
  ['${PWD:#x}', ERROR],
];

test('expandWord: BuildKit envVarTest table', () => {
  for (const [input, expected] of WORD_CASES) {
    if (expected === ERROR) {
      assert.throws(() => expandWord(input, ENV), (e: unknown) => isKilnError(e, 'E_CONTAINERFILE'), `expected an error for ${input}`);
    } else {
      assert.equal(expandWord(input, ENV), expected, `input ${JSON.stringify(input)}`);
    }
  }
});

test('expandWord: the Dockerfile reference examples', () => {
  const env = { a: 'hello' };
  assert.equal(expandWord('${a:-x}', env), 'hello');
  assert.equal(expandWord('${b:-x}', env), 'x');
  assert.equal(expandWord('${a:+x}', env), 'x');
  assert.equal(expandWord('${b:+x}', env), '');
  assert.equal(expandWord("'$a'", env), '$a');
  assert.equal(expandWord('\\$a', env), '$a');
  assert.equal(expandWord('$a', env), 'hello');
  assert.equal(expandWord('${a}_world', env), 'hello_world');
  assert.equal(expandWord('$a_world', env), '', 'a_world is one (unset) name');
  assert.deepEqual(expandWords('"$a b"', env), ['hello b']);
  assert.deepEqual(expandWords('$a b', env), ['hello', 'b']);
});

test('expandWord: ${a:?msg} / ${a?msg} fail with the message and the location given', () => {
  const env = { empty: '' };
  assert.throws(
    () => expandWord('${b:?set it with --build-arg}', env, '\\', 'Containerfile:3'),
    (e: unknown) => isKilnError(e, 'E_CONTAINERFILE') && e.message === 'Containerfile:3: failed to process "${b:?set it with --build-arg}": b: set it with --build-arg',
  );
  assert.throws(() => expandWord('${empty:?}', env), /empty: is not allowed to be empty/);
  assert.throws(() => expandWord('${b?}', env), /b: is not allowed to be unset/);
  assert.equal(expandWord('${empty?}', env), '');
});

test('expandWord: backtick escape character', () => {
  const env = { x: 'v' };
  assert.equal(expandWord('`$x', env, '`'), '$x');
  assert.equal(expandWord('C:\\$x\\', env, '`'), 'C:\\v\\', 'a backslash is an ordinary character');
  assert.equal(expandWord('"a`"b"', env, '`'), 'a"b');
  assert.equal(expandWord('"a\\"', env, '`'), 'a\\');
});

test('expandWords: BuildKit wordsTest table', () => {
  const env = { hi: 'hi', space: 'abc  def', leading: '  ab c', trailing: 'ab c   ' };
  const cases: [string, string[] | typeof ERROR][] = [
    ['hello', ['hello']],
    ['hello${hi}bye', ['hellohibye']],
    ['hello${space}bye', ['helloabc', 'defbye']],
    ['hello"${space}"bye', ['helloabc  defbye']],
    ['hello "${space}"bye', ['hello', 'abc  defbye']],
    ['hello${leading}def', ['hello', 'ab', 'cdef']],
    ['hello"${leading}" def', ['hello  ab c', 'def']],
    ['hello"${leading}"', ['hello  ab c']],
    ['hello${leading}', ['hello', 'ab', 'c']],
    ['hello${trailing}', ['helloab', 'c']],
    ['hello${trailing}d', ['helloab', 'c', 'd']],
    ['hello"${trailing}"d', ['helloab c   d']],
    ['hel"lo${trailing}"', ['helloab c   ']],
    ['hello" there  "', ['hello there  ']],
    ['hello there     ', ['hello', 'there']],
    ['hello\\ there', ['hello there']],
    ['hello" there', ERROR],
    ['hello\\" there', ['hello"', 'there']],
    ['hello"\\\\there"', ['hello\\there']],
    ['hello"\\there"', ['hello\\there']],
    ["hello'\\\\there'", ['hello\\\\there']],
    ["hello'\\there'", ['hello\\there']],
    ["hello'$there'", ['hello$there']],
    ['"" a ""', ['a']],
    ['abc${x:-y z}', ['abcy', 'z']],
  ];
  for (const [input, expected] of cases) {
    if (expected === ERROR) assert.throws(() => expandWords(input, env), (e: unknown) => isKilnError(e, 'E_CONTAINERFILE'));
    else assert.deepEqual(expandWords(input, env), expected, `input ${JSON.stringify(input)}`);
  }
});

test('expandHeredoc: variables expand, quotes stay, backslash escapes', () => {
  const env = { NAME: 'kiln' };
  assert.equal(expandHeredoc('hello "$NAME" \'${NAME}\'\n', env), 'hello "kiln" \'kiln\'\n');
  assert.equal(expandHeredoc('cost: \\$5 ${MISSING:-none}\n', env), 'cost: $5 none\n');
});
