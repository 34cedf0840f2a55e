/**
 * src/format: Go text/template subset, podman's --format report rules, go-units and Go fmt/json.
 * Expected strings come from Go/podman sources: docker/go-units size_test.go and
 * duration_test.go, containers/common pkg/report (formatter_test.go, validate_test.go),
 * fatih/camelcase's README, and Go's text/template, fmt, strconv and encoding/json semantics.
 */
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { KilnError } from '../src/errors';
import { compile, executeTemplate, BUILTIN_FUNCS, truth } from '../src/format/gotemplate';
import { alignColumns, formatInspect, formatOne, formatReport, headerFor, isJsonFormat, normalizeFormat, splitCamelCase, tabwrite } from '../src/format/report';
import {
  goFormatFloat, goJson, goMap, goQuote, goSprint, goSprintf, goSprintln, goStruct, goTimeString, goTypeName, goUnitsHumanSize,
  humanDuration, humanSize, isGoMap, parseRfc3339, rfc3339Nano, timeAgo,
} from '../src/format/units';

const T = (src: string, data: unknown = {}) => executeTemplate(src, data);
function tplError(src: string, data: unknown = {}): KilnError {
  try { T(src, data); } catch (e) { assert.ok(e instanceof KilnError); assert.equal(e.code, 'E_TEMPLATE'); assert.ok(e.hint); return e; }
  assert.fail(`expected ${src} to fail`);
}

const img = {
  ID: 'abc123', Repository: 'quay.io/x', Tag: 'latest', Size: 1234, N: 1.5, Nil: null, Dangling: false,
  RepoTags: ['a:1', 'b:2'], Labels: { foo: 'bar', 'com.x': 'y' }, Config: { Cmd: ['/bin/sh', '-c'], Env: null, Empty: [] as string[] },
};

// ---------------------------------------------------------------- units

test('goUnitsHumanSize matches go-units HumanSize (size_test.go)', () => {
  const cases: [number, string][] = [[1000, '1kB'], [1024, '1.024kB'], [1e6, '1MB'], [1048576, '1.049MB'], [2e6, '2MB'], [3.42e9, '3.42GB'], [5.372e12, '5.372TB'], [2.22e15, '2.22PB'], [1e28, '1e+04YB']];
  for (const [n, want] of cases) assert.equal(goUnitsHumanSize(n), want, String(n));
  assert.equal(goUnitsHumanSize(999500, 3), '1e+03kB');
});

test("humanSize is podman's SIZE column: 3 significant digits, space before the unit", () => {
  const cases: [number, string][] = [[0, '0 B'], [123, '123 B'], [999, '999 B'], [1000, '1 kB'], [1024, '1.02 kB'], [5600, '5.6 kB'], [82500, '82.5 kB'], [1234567, '1.23 MB'], [1048576, '1.05 MB'], [999500, '1e+03 kB'], [3.42e9, '3.42 GB']];
  for (const [n, want] of cases) assert.equal(humanSize(n), want, String(n));
});

test('humanDuration matches go-units HumanDuration (duration_test.go)', () => {
  const s = 1000, m = 60 * s, h = 60 * m, day = 24 * h, week = 7 * day, month = 30 * day, year = 365 * day;
  const cases: [number, string][] = [
    [450, 'Less than a second'], [s, '1 second'], [45 * s, '45 seconds'], [59 * s, '59 seconds'], [60 * s, 'About a minute'], [3 * m, '3 minutes'],
    [35 * m + 40 * s, '35 minutes'], [59 * m, '59 minutes'], [h, 'About an hour'], [h + 29 * m, 'About an hour'], [h + 31 * m, '2 hours'], [3 * h + 29 * m, '3 hours'],
    [3 * h + 31 * m, '4 hours'], [24 * h, '24 hours'], [day + 12 * h, '36 hours'], [2 * day, '2 days'], [7 * day, '7 days'], [13 * day + 5 * h, '13 days'],
    [2 * week, '2 weeks'], [2 * week + 4 * day, '2 weeks'], [4 * week + 3 * day, '4 weeks'], [month, '4 weeks'], [month + 2 * week, '6 weeks'], [2 * month, '2 months'],
    [3 * month + week, '3 months'], [13 * month, '13 months'], [24 * month, '24 months'], [24 * month + 2 * week, '2 years'], [3 * year + 2 * month, '3 years'], [-5000, 'Less than a second'],
  ];
  for (const [ms, want] of cases) assert.equal(humanDuration(ms), want, String(ms));
});

test('timeAgo accepts Date, epoch ms and RFC 3339 strings', () => {
  const now = Date.UTC(2024, 0, 15);
  assert.equal(timeAgo(now - 90_000, now), 'About a minute ago');
  assert.equal(timeAgo(new Date(now - 3 * 86400_000), new Date(now)), '3 days ago');
  assert.equal(timeAgo('2024-01-01T00:00:00Z', now), '2 weeks ago');
  assert.throws(() => timeAgo('not a date', now), (e: unknown) => e instanceof KilnError && e.code === 'E_INVALID_ARGUMENT');
});

test('goTimeString / rfc3339Nano print like Go time.Time.String and RFC3339Nano', () => {
  const d = new Date(Date.UTC(2024, 0, 2, 15, 4, 5, 120));
  assert.equal(goTimeString(d), '2024-01-02 15:04:05.12 +0000 UTC');
  assert.equal(goTimeString(d, 123456789), '2024-01-02 15:04:05.123456789 +0000 UTC');
  assert.equal(goTimeString(Date.UTC(2024, 0, 2, 15, 4, 5)), '2024-01-02 15:04:05 +0000 UTC');
  assert.equal(rfc3339Nano(d), '2024-01-02T15:04:05.12Z');
  assert.equal(rfc3339Nano(d, 100), '2024-01-02T15:04:05.0000001Z');
  assert.equal(rfc3339Nano(Date.UTC(1999, 11, 31)), '1999-12-31T00:00:00Z');
  const p = parseRfc3339('2024-01-02T15:04:05.123456789+01:00');
  assert.equal(p.nanos, 123456789);
  assert.equal(p.date.toISOString(), '2024-01-02T14:04:05.123Z');
  assert.equal(rfc3339Nano(p.date, p.nanos), '2024-01-02T14:04:05.123456789Z');
});

test('goFormatFloat is strconv.FormatFloat: exact digits, round half to even', () => {
  const cases: [number, 'e' | 'f' | 'g' | 'G', number, string][] = [
    [1.0625, 'g', 4, '1.062'], [0.5, 'f', 0, '0'], [1.5, 'f', 0, '2'], [2.5, 'f', 0, '2'], [99.95, 'f', 1, '100.0'], [1.005, 'f', 2, '1.00'],
    [123456789, 'g', -1, '1.23456789e+08'], [1e-5, 'g', -1, '1e-05'], [0.0001, 'g', -1, '0.0001'], [100000, 'g', -1, '100000'], [1e21, 'g', -1, '1e+21'],
    [0, 'e', 3, '0.000e+00'], [1234.5, 'e', 6, '1.234500e+03'], [0.1, 'e', -1, '1e-01'], [5e-324, 'g', -1, '5e-324'], [-2.5, 'G', 1, '-2'],
    [NaN, 'g', -1, 'NaN'], [Infinity, 'f', 2, '+Inf'],
  ];
  for (const [x, f, p, want] of cases) assert.equal(goFormatFloat(x, f, p), want, `${x} ${f} ${p}`);
});

test('goSprintf covers fmt verbs, flags, widths and Go error forms', () => {
  assert.equal(goSprintf('%s|%-6s|%6s|%.2s|%q', ['a', 'ab', 'ab', 'hello', 'x"y\n']), 'a|ab    |    ab|he|"x\\"y\\n"');
  assert.equal(goSprintf('%d|%5d|%-5d|%05d|%+d|%x|%X|%#x|%o|%#o|%b|%c|%U', [42, 42, 42, -42, 5, 255, 255, 255, 8, 8, 5, 65, 0x1f600]), '42|   42|42   |-0042|+5|ff|FF|0xff|10|010|101|A|U+1F600');
  assert.equal(goSprintf('%f|%.2f|%8.3f|%-8.1f|%e|%g|%v|%+.1f', [3.14159, 3.14159, 3.14159, 2.5, 1234.5, 0.00001, 1.5, 2]), '3.141590|3.14|   3.142|2.5     |1.234500e+03|1e-05|1.5|+2.0');
  assert.equal(goSprintf('%v|%v|%v|%t|%T|%T|%T|%%', [[1, 'a'], { b: 2, a: 1 }, null, true, 'x', 1.5, [1]]), '[1 a]|map[a:1 b:2]|<nil>|true|string|float64|[]interface {}|%');
  assert.equal(goSprintf('%*d|%-*d|', [5, 3, 3, 1]), '    3|1  |');
  assert.equal(goSprintf('%d %s', ['x']), '%!d(string=x) %!s(MISSING)');
  assert.equal(goSprintf('%s', [1]), '%!s(int=1)');
  assert.equal(goSprintf('%s', [null]), '%!s(<nil>)');
  assert.equal(goSprintf('%d', [1.5]), '%!d(float64=1.5)');
  assert.equal(goSprintf('x', [1, 'a']), 'x%!(EXTRA int=1, string=a)');
  assert.equal(goSprintf('%', []), '%!(NOVERB)');
  assert.equal(goSprintf('%z', [1]), '%!z(int=1)');
  assert.equal(goSprintf('%x', ['hi']), '6869');
  assert.equal(goSprintf('%5v', [[1, 2]]), '[    1     2]');
});

test('goSprint / goSprintln / goQuote / goTypeName', () => {
  assert.equal(goSprint([1, 2, 'a', 'b', 3, true]), '1 2ab3 true');
  assert.equal(goSprintln([1, 'a']), '1 a\n');
  assert.equal(goQuote('tab\there\x01\u00e9\u{1F600}"\\'), '"tab\\there\\x01é😀\\"\\\\"');
  assert.deepEqual([goTypeName('s'), goTypeName(1), goTypeName(1.5), goTypeName(true), goTypeName([]), goTypeName({ a: 1 }), goTypeName({ A: 1 }), goTypeName(new Date(0)), goTypeName(null)],
    ['string', 'int', 'float64', 'bool', '[]interface {}', 'map[string]interface {}', 'struct', 'time.Time', '<nil>']);
});

test('isGoMap: maps vs structs, with explicit marks', () => {
  assert.equal(isGoMap({}), true);
  assert.equal(isGoMap({ 'org.label': 'x' }), true);
  assert.equal(isGoMap({ ID: 1, Size: 2 }), false);
  assert.equal(isGoMap(new Map()), true);
  assert.equal(isGoMap(goMap({ Maintainer: 'me' })), true);
  assert.equal(isGoMap(goStruct({ lower: 1 })), false);
  class Row { ID = 1; }
  assert.equal(isGoMap(new Row()), false);
});

test('goJson: Go json.Marshal escaping, key order and MarshalIndent layout', () => {
  assert.equal(goJson({ a: '<&>\u2028\n\t\x01\b"\\' }), '{"a":"\\u003c\\u0026\\u003e\\u2028\\n\\t\\u0001\\b\\"\\\\"}');
  assert.equal(goJson({ a: '<&>' }, { escapeHTML: false }), '{"a":"<&>"}');
  assert.equal(goJson({ z: 1, a: 2 }), '{"a":2,"z":1}');
  assert.equal(goJson({ Z: 1, A: 2 }), '{"Z":1,"A":2}');
  assert.equal(goJson({ A: undefined, B: null, C: [1, 1.5, 1e21, 1e-7], D: new Date(Date.UTC(2024, 0, 1, 0, 0, 0, 500)) }), '{"B":null,"C":[1,1.5,1e+21,1e-7],"D":"2024-01-01T00:00:00.5Z"}');
  assert.equal(goJson([{ A: [], B: {}, C: [1, { D: 'x' }] }], { indent: '    ' }),
    '[\n    {\n        "A": [],\n        "B": {},\n        "C": [\n            1,\n            {\n                "D": "x"\n            }\n        ]\n    }\n]');
  assert.equal(goJson(new Uint8Array([1, 2, 3])), '"AQID"');
  assert.equal(goJson('\ud800'), '"\\ufffd"');
});

// ---------------------------------------------------------------- gotemplate

test('template: fields, map keys, dot, $, and value printing like fmt %v', () => {
  assert.equal(T('{{.ID}} {{.Repository}}', img), 'abc123 quay.io/x');
  assert.equal(T('{{.Config.Cmd}}|{{.RepoTags}}|{{.Labels}}', img), '[/bin/sh -c]|[a:1 b:2]|map[com.x:y foo:bar]');
  assert.equal(T('{{.Labels.foo}} {{.Labels.nope}} {{.Labels.nope.deeper}}', img), 'bar <no value> <no value>');
  assert.equal(T('{{.Size}} {{.N}} {{.Nil}} {{.Dangling}} {{.Config.Env}} {{.Config.Empty}}', img), '1234 1.5 <no value> false <no value> []');
  assert.equal(T('{{.}}', { A: 1, B: 'x', C: [null], D: { e: null } }), '{1 x [<nil>] map[e:<nil>]}');
  assert.equal(T('{{.}}', 'plain'), 'plain');
  assert.equal(T('{{$.ID}}{{range .RepoTags}}-{{$.ID}}{{end}}', img), 'abc123-abc123-abc123');
  assert.equal(T('{{.When}}', { When: new Date(Date.UTC(2024, 0, 2, 3, 4, 5)) }), '2024-01-02 03:04:05 +0000 UTC');
  assert.equal(T('{{.Labels.Maintainer}}|{{.Labels.version}}', { Labels: { Maintainer: 'me' } }), 'me|<no value>');
  class Rec { constructor(readonly ID: string) {} get Short() { return this.ID.slice(0, 2); } Greet(x: string) { return `hi ${x}`; } }
  assert.equal(T('{{.Short}} {{.Greet "bob"}} {{"amy" | .Greet}}', new Rec('xyz')), 'xy hi bob hi amy');
  assert.equal(T('{{(index .RepoTags 0).x}}', { RepoTags: [{ y: 'deep' }] }), '<no value>');
  assert.equal(T('{{(index .RepoTags 0).X}}', { RepoTags: [{ X: 'deep' }] }), 'deep');
});

test('template: literals, trim markers, comments', () => {
  assert.equal(T(`{{"a\\tb"}}|{{\`raw\\n\`}}|{{'a'}}|{{0x1F}}|{{1e3}}|{{-2}}|{{017}}|{{1_000}}|{{1.5}}|{{true}}|{{"\\u00e9\\xc3\\xa9"}}`), 'a\tb|raw\\n|97|31|1000|-2|15|1000|1.5|true|éé');
  assert.equal(T('a  {{- " b " -}}  c {{- /* note */ -}} d {{/* x */}}e'), 'a b cd e');
  assert.equal(T('{{- .X }}\n', { X: 1 }), '1\n');
  assert.equal(T('x {{-3}}'), 'x -3');
});

test('template: if / else if / else, with, and truthiness', () => {
  assert.equal(T('{{if .ID}}yes{{else}}no{{end}}', img), 'yes');
  assert.equal(T('{{if .Nil}}a{{else if .Config.Empty}}b{{else if .Labels}}c{{else}}d{{end}}', img), 'c');
  assert.equal(T('{{with .Config}}{{.Cmd}}{{end}}|{{with .Nil}}x{{else}}none{{end}}|{{with .Nil}}x{{else with .Tag}}{{.}}{{end}}', img), '[/bin/sh -c]|none|latest');
  assert.deepEqual([null, undefined, false, 0, '', [], {}, new Map()].map(truth), Array(8).fill(false));
  assert.deepEqual([true, 1, 'x', [0], { a: 1 }, { A: undefined }, new Date(0)].map(truth), Array(7).fill(true));
});

test('template: range over arrays, maps, integers, with else, break and continue', () => {
  assert.equal(T('{{range .RepoTags}}{{.}} {{end}}', img), 'a:1 b:2 ');
  assert.equal(T('{{range $i, $t := .RepoTags}}{{$i}}={{$t}},{{end}}', img), '0=a:1,1=b:2,');
  assert.equal(T('{{range $t := .RepoTags}}{{$t}};{{end}}', img), 'a:1;b:2;');
  assert.equal(T('{{range .Labels}}{{.}};{{end}}|{{range $k, $v := .Labels}}{{$k}}={{$v}};{{end}}', img), 'y;bar;|com.x=y;foo=bar;');
  assert.equal(T('{{range .Config.Empty}}x{{else}}empty{{end}}|{{range .Nil}}x{{else}}nil{{end}}', img), 'empty|nil');
  assert.equal(T('{{range 3}}{{.}}{{end}}'), '012');
  assert.equal(T('{{range .}}{{if eq . 3}}{{break}}{{end}}{{if eq . 1}}{{continue}}{{end}}{{.}}{{end}}', [0, 1, 2, 3, 4]), '02');
  assert.equal(T('{{range .}}{{range .}}{{.}}{{end}};{{end}}', [[1, 2], [3]]), '12;3;');
});

test('template: variables, pipelines, parenthesized pipelines', () => {
  assert.equal(T('{{$x := .ID}}{{$x}}{{$x = "z"}}{{$x}}', img), 'abc123z');
  assert.equal(T('{{$n := len .RepoTags}}{{if gt $n 1}}many{{end}}', img), 'many');
  assert.equal(T('{{.Size | printf "%d"}} {{.Size | printf "%d" | printf "[%s]"}}', img), '1234 [1234]');
  assert.equal(T('{{printf "%s-%s" (index .RepoTags 0) (upper .Tag)}}', img), 'a:1-LATEST');
  assert.equal(T('{{.Repository | upper | lower}}', img), 'quay.io/x');
  assert.equal(T('{{if $x := .Tag}}{{$x}}{{end}}', img), 'latest');
});

test('template: Go builtin functions', () => {
  assert.equal(T('{{index .Labels "foo"}}|{{index .Labels "nope"}}|{{index .RepoTags 1}}|{{index .M "k"}}|{{index .M "x"}}', { ...img, M: { k: 1 } }), 'bar||b:2|1|<no value>');
  assert.equal(T('{{index . 1 0}}|{{index "abc" 0}}', [[1], [2, 3]]), '2|97');
  assert.equal(T('{{len .RepoTags}} {{len .ID}} {{len .Labels}} {{len "é"}} {{len .Nil}}', img), '2 6 2 2 0');
  assert.equal(T('{{slice "abcdef" 1 3}} {{slice .RepoTags 1}}', img), 'bc [b:2]');
  assert.equal(T('{{eq .ID "abc123"}} {{eq .ID "x" "abc123"}} {{ne .Size 3}} {{lt 1 2}} {{le 2 2}} {{gt "b" "a"}} {{ge 1 2}} {{eq .Nil nil}}', img), 'true true true true true true false true');
  assert.equal(T('{{and 1 0 2}} {{and 1 2}} {{or 0 "" "x"}} {{or 0 ""}} {{not .Nil}} {{and .Nil .Missing.Deep}}', img), '0 2 x  true <no value>');
  assert.equal(T('{{print 1 2 "a" "b" 3}}|{{println "x" 1}}|{{printf "%-6s|" .Tag}}', img), '1 2ab3|x 1\n|latest|');
  assert.equal(T('{{html "<a href=\'x\'>&</a>"}} {{urlquery "a b&c=d/é"}}'), '&lt;a href=&#39;x&#39;&gt;&amp;&lt;/a&gt; a+b%26c%3Dd%2F%C3%A9');
  assert.equal(executeTemplate('{{call .F 2}} {{shout .ID}}', { ID: 'x', F: (n: number) => n * 21 }, { funcs: { shout: (s) => `${String(s)}!` } }), '42 x!');
});

test("template: podman's functions json, lower, upper, title, join, split, truncate, pad", () => {
  assert.equal(T('{{json .Labels}} {{json .RepoTags}} {{json "<&>"}} {{json .Nil}}', img), '{"com.x":"y","foo":"bar"} ["a:1","b:2"] "<&>" null');
  assert.equal(T('{{json .}}', { B: 1, A: [1.5], C: 'x' }), '{"B":1,"A":[1.5],"C":"x"}');
  assert.equal(T('{{lower "ABC"}} {{upper .ID}} {{title "hello wide-world_x"}}', img), 'abc ABC123 Hello Wide-World_x');
  assert.equal(T('{{join .RepoTags ", "}}|{{join .Nil ","}}|{{split "a,b,,c" ","}}|{{len (split "héllo" "")}}', img), 'a:1, b:2||[a b  c]|5');
  assert.equal(T('{{truncate .ID 3}}|{{truncate .ID 99}}|{{pad .Tag 1 2}}|{{pad "" 1 1}}', img), 'abc|abc123| latest  |');
  assert.ok(BUILTIN_FUNCS.includes('json') && BUILTIN_FUNCS.includes('printf'));
});

test('template: compile once, execute many; fields lists the dot fields read', () => {
  const t = compile('{{.ID}}:{{.Config.Cmd}}:{{range .RepoTags}}{{.}}{{end}}', { name: 'images' });
  assert.equal(t.execute(img), 'abc123:[/bin/sh -c]:a:1b:2');
  assert.equal(t.execute({ ...img, ID: 'other', RepoTags: [] }), 'other:[/bin/sh -c]:');
  assert.deepEqual([...t.fields].sort(), ['Config', 'ID', 'RepoTags']);
});

test('template errors: unknown field names the position, action and fields', () => {
  const e = tplError('x {{.Foo}}', img);
  assert.match(e.message, /^template: format:1:4: executing "format" at <\.Foo>: can't evaluate field Foo in type struct$/);
  assert.match(e.hint!, /ID, Repository, Tag/);
  assert.match(tplError('{{.ID.Foo}}', img).message, /can't evaluate field Foo in type string/);
  assert.match(tplError('{{.RepoTags.x}}', img).message, /can't evaluate field x in type \[\]interface \{\}/);
  assert.match(tplError('{{"x" | .ID}}', img).message, /ID has arguments but cannot be invoked as function/);
  assert.match(tplError('line1\n  {{.Nope}}', img).message, /^template: format:2:4: /);
});

test('template errors: parse errors name the action', () => {
  const e = tplError('{{foo .ID}}', img);
  assert.equal(e.message, 'template: format:1:2: function "foo" not defined in {{foo .ID}}');
  assert.match(e.hint!, /available functions: and, call, eq/);
  assert.equal(tplError('ab {{.ID').message, 'template: format:1:3: unclosed action in {{.ID');
  assert.match(tplError('{{if .ID}}x').message, /unexpected EOF/);
  assert.match(tplError('{{end}}').message, /unexpected \{\{end\}\}/);
  assert.match(tplError('{{range .}}{{else}}{{else}}{{end}}').message, /expected end; found \{\{else\}\}/);
  assert.match(tplError('{{.ID}').message, /bad character U\+007D '\}'/);
  assert.match(tplError('{{$x}}').message, /undefined variable "\$x"/);
  assert.match(tplError('{{if}}{{end}}').message, /missing value for if/);
  assert.match(tplError('{{break}}').message, /\{\{break\}\} outside \{\{range\}\}/);
  assert.match(tplError('{{template "x"}}').message, /\{\{template\}\} is not supported/);
  assert.match(tplError('{{1 | 2}}').message, /non executable command in pipeline stage 2/);
  assert.match(tplError('{{"unterminated}}').message, /unterminated quoted string/);
  assert.match(tplError('{{(.ID}}').message, /unclosed left paren/);
  assert.match(tplError('{{/* open').message, /unclosed comment/);
  assert.match(tplError('{{nil}}').message, /nil is not a command/);
  assert.match(tplError('{{.ID | }}', img).message, /missing command after \|/);
});

test('template errors: execution errors from functions', () => {
  assert.match(tplError('{{index .RepoTags 5}}', img).message, /at <index \.RepoTags 5>: error calling index: index out of range: 5/);
  assert.match(tplError('{{not 1 2}}').message, /wrong number of args for not: want 1 got 2/);
  assert.match(tplError('{{lower .Size}}', img).message, /wrong type for value; expected string; got int/);
  assert.match(tplError('{{eq "a" 1}}').message, /error calling eq: incompatible types for comparison/);
  assert.match(tplError('{{len 3}}').message, /len of type int/);
  assert.match(tplError('{{"a" "b"}}').message, /can't give argument to non-function "a"/);
  assert.match(tplError('{{range .ID}}{{end}}', img).message, /range can't iterate over abc123/);
});

// ---------------------------------------------------------------- report

test('isJsonFormat follows podman report.IsJSON (validate_test.go)', () => {
  for (const s of ['json', ' json', ' json ', '  json   ', '{{json}}', '{{json }}', '{{json.}}', '{{ json. }}']) assert.equal(isJsonFormat(s), true, s);
  for (const s of ['{{ json .}}', '{{ json . }}', '  {{   json   .  }}  ', '{{ json .', 'json . }}', '{{.ID }} json .', 'json .']) assert.equal(isJsonFormat(s), false, s);
});

test('normalizeFormat: escapes, table spaces become tabs, trailing newline', () => {
  assert.equal(normalizeFormat('{{.ID}}\\t{{.Size}}'), '{{.ID}}\t{{.Size}}\n');
  assert.equal(normalizeFormat('{{.ID}}\\n'), '{{.ID}}\n');
  assert.equal(normalizeFormat('{{.A}} {{.B}}'), '{{.A}} {{.B}}\n');
  assert.equal(normalizeFormat('table {{.A}} {{.B}}\\t{{.C}}'), '{{.A}}\t{{.B}}\t{{.C}}\n');
});

test('splitCamelCase / headerFor follow fatih/camelcase as podman report.Headers', () => {
  const cases: [string, string[]][] = [['lowercase', ['lowercase']], ['Class', ['Class']], ['MyClass', ['My', 'Class']], ['MyC', ['My', 'C']], ['HTML', ['HTML']], ['PDFLoader', ['PDF', 'Loader']],
    ['AString', ['A', 'String']], ['SimpleXMLParser', ['Simple', 'XML', 'Parser']], ['vimRPCPlugin', ['vim', 'RPC', 'Plugin']], ['GL11Version', ['GL', '11', 'Version']], ['99Bottles', ['99', 'Bottles']],
    ['May5', ['May', '5']], ['BFG9000', ['BFG', '9000']], ['', []]];
  for (const [s, want] of cases) assert.deepEqual(splitCamelCase(s), want, s);
  assert.equal(headerFor('CreatedAt'), 'CREATED AT');
  assert.equal(headerFor('Fieldb'), 'FIELDB');
  assert.equal(headerFor('fieldC'), 'FIELD C');
  assert.equal(headerFor('ID', { ID: 'image id' }), 'IMAGE ID');
});

test("tabwrite / alignColumns reproduce podman's tabwriter (formatter_test.go)", () => {
  const rows = [['Identity', 'Value'], ['c061a0839e', 'one'], ['f10fc2e11057', 'two'], ['1eb6fab5aa8f4b5cbfd3e66aa35e9b2a', 'three']];
  const want = 'Identity                          Value\nc061a0839e                        one\nf10fc2e11057                      two\n1eb6fab5aa8f4b5cbfd3e66aa35e9b2a  three\n';
  assert.equal(alignColumns(rows), want);
  assert.equal(tabwrite(rows.map((r) => r.join('\t')).join('\n') + '\n'), want);
  // minwidth 12 and the "last cell is not a column" rule
  assert.equal(tabwrite('Value\tIdent\nIdentity\tID\n'), 'Value       Ident\nIdentity    ID\n');
  assert.equal(alignColumns(rows, { minwidth: 8, tabwidth: 1, padding: 1 }), 'Identity                         Value\nc061a0839e                       one\nf10fc2e11057                     two\n1eb6fab5aa8f4b5cbfd3e66aa35e9b2a three\n');
  // column blocks: widths are per run of consecutive lines having the column
  assert.equal(tabwrite('a\tb\tc\naaaaaaaaaaaaaaa\tb\nx\nyy\tz\n', { minwidth: 0, padding: 1 }), 'a               b c\naaaaaaaaaaaaaaa b\nx\nyy z\n');
  assert.equal(tabwrite('é\tx\nab\ty', { minwidth: 0, padding: 1 }), 'é  x\nab y');
  assert.equal(tabwrite('a\tb\nabcd\tc', { minwidth: 0, padding: 1, tabwidth: 4, padchar: '\t' }), 'a\t\tb\nabcd\tc');
});

const rows = [
  { Repository: 'quay.io/podman/hello', Tag: 'latest', ID: '5aa5e48dbd46', Created: '2 weeks ago', Size: '82.5 kB', CreatedAt: '2024-01-02 03:04:05 +0000 UTC', Names: ['a', 'b'], Labels: { a: '1' } },
  { Repository: '<none>', Tag: '<none>', ID: 'f10fc2e11057', Created: '3 months ago', Size: '1.02 MB', CreatedAt: '2023-10-02 03:04:05 +0000 UTC', Names: [], Labels: {} },
];
const DEF = 'table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.Created}}\t{{.Size}}';
const opts = { defaultTable: DEF, headers: { ID: 'IMAGE ID' } };

test('formatReport: default table with headers, aligned like podman images', () => {
  assert.equal(formatReport(rows, undefined, opts),
    'REPOSITORY            TAG         IMAGE ID      CREATED       SIZE\n' +
    'quay.io/podman/hello  latest      5aa5e48dbd46  2 weeks ago   82.5 kB\n' +
    '<none>                <none>      f10fc2e11057  3 months ago  1.02 MB\n');
  assert.equal(formatReport(rows, '', { ...opts, noHeading: true }),
    'quay.io/podman/hello  latest      5aa5e48dbd46  2 weeks ago   82.5 kB\n' +
    '<none>                <none>      f10fc2e11057  3 months ago  1.02 MB\n');
  assert.equal(formatReport([], undefined, opts), 'REPOSITORY  TAG         IMAGE ID    CREATED     SIZE\n');
});

test('formatReport: user table formats derive headers from field names', () => {
  assert.equal(formatReport(rows, 'table {{.ID}} {{.CreatedAt}}', opts),
    'IMAGE ID      CREATED AT\n5aa5e48dbd46  2024-01-02 03:04:05 +0000 UTC\nf10fc2e11057  2023-10-02 03:04:05 +0000 UTC\n');
  assert.equal(formatReport(rows, 'table {{.ID}}\\t{{.Labels.a}}\\t{{json .Names}}\\t{{upper .Tag}}', opts),
    'IMAGE ID      LABELS      "NAMES"     TAG\n5aa5e48dbd46  1           ["a","b"]   LATEST\nf10fc2e11057  <no value>  []          <NONE>\n');
});

test('formatReport: plain templates print one line per row, unaligned', () => {
  assert.equal(formatReport(rows, '{{.ID}}\\t{{.Tag}}', opts), '5aa5e48dbd46\tlatest\nf10fc2e11057\t<none>\n');
  assert.equal(formatReport(rows, '{{.ID}} {{range .Names}}{{.}},{{end}}', opts), '5aa5e48dbd46 a,b,\nf10fc2e11057 \n');
  assert.equal(formatReport(rows, '{{.ID}}\n', opts), '5aa5e48dbd46\nf10fc2e11057\n');
  assert.equal(formatReport(rows, '{{range .}}{{.ID}},{{end}}', opts), '5aa5e48dbd46,f10fc2e11057,\n');
  assert.equal(formatReport(rows, '{{json .}}', opts).split('\n')[1], '{"Repository":"<none>","Tag":"<none>","ID":"f10fc2e11057","Created":"3 months ago","Size":"1.02 MB","CreatedAt":"2023-10-02 03:04:05 +0000 UTC","Names":[],"Labels":{}}');
  assert.throws(() => formatReport(rows, '{{.Nope}}', opts), /can't evaluate field Nope/);
});

test('formatReport: json is a 4-space indented array, HTML-escaped as json.MarshalIndent', () => {
  const out = formatReport(rows.slice(1).map(({ ID, Tag, Names }) => ({ ID, Tag, Names })), 'json', opts);
  assert.equal(out, '[\n    {\n        "ID": "f10fc2e11057",\n        "Tag": "\\u003cnone\\u003e",\n        "Names": []\n    }\n]\n');
  assert.equal(formatReport([], ' json ', opts), '[]\n');
});

test('formatOne / formatInspect: inspect --format', () => {
  const data = { Id: 'x<y', Config: { Cmd: ['sh'], Labels: { Maintainer: 'me' } }, RepoTags: ['a', 'b'] };
  assert.equal(formatOne(data, '{{.Config.Cmd}}'), '[sh]');
  assert.equal(formatOne(data, '{{.Config.Labels.version}}|{{index .Config.Labels "Maintainer"}}'), '<no value>|me');
  assert.equal(formatOne(data, '{{range .RepoTags}}{{.}}\\n{{end}}'), 'a\nb\n');
  assert.equal(formatOne(data, 'json'), '{\n     "Id": "x<y",\n     "Config": {\n          "Cmd": [\n               "sh"\n          ],\n          "Labels": {\n               "Maintainer": "me"\n          }\n     },\n     "RepoTags": [\n          "a",\n          "b"\n     ]\n}');
  assert.equal(formatInspect([data, { ...data, Id: 'z' }], '{{.Id}}'), 'x<y\nz\n');
  assert.equal(formatInspect([{ A: 1 }]), '[\n     {\n          "A": 1\n     }\n]\n');
  assert.equal(formatInspect([{ A: 1 }, { A: 2 }], '{{range .}}{{.A}}{{end}}'), '12\n');
  assert.throws(() => formatOne(data, '{{.Config.Nope}}'), (e: unknown) => e instanceof KilnError && /template: inspect:1:2: executing "inspect" at <\.Config\.Nope>/.test(e.message));
});

test('performance sanity: 1000 rows through table and plain templates', () => {
  const many = Array.from({ length: 1000 }, (_, i) => ({ ...rows[i % 2], ID: i.toString(16).padStart(12, '0'), Labels: { a: String(i) } }));
  const table = formatReport(many, undefined, opts).split('\n');
  assert.equal(table.length, 1002);
  assert.equal(table[1000].indexOf((999).toString(16).padStart(12, '0')), table[0].indexOf('IMAGE ID'));
  const plain = formatReport(many, '{{.ID}} {{index .Labels "a"}} {{json .Names}} {{.Repository | upper}}', opts).split('\n');
  assert.equal(plain[999], '0000000003e7 999 [] <NONE>');
});
