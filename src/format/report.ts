/**
 * podman's `--format` rules (containers/common pkg/report), for list and inspect commands.
 *
 * Contract, as podman v4+ behaves:
 *  - `json` (also `{{json}}`, `{{ json. }}`; see `isJsonFormat`) → the whole value as indented
 *    JSON: `images`-style lists use Go's json.MarshalIndent with 4 spaces (HTML-escaped);
 *    `inspect` uses podman's encoder: 5 spaces, no HTML escaping.
 *  - `table …` → the prefix is dropped, `\t`/`\n` escapes and every space become tab/newline/tab
 *    (podman's replacer), a header row is rendered by running the same template over a map of
 *    field → header (camel-case split, upper-cased, `headers` overrides), and all output goes
 *    through a tabwriter(minwidth 12, tabwidth 2, padding 2, ' ').
 *  - anything else → `\t`/`\n` escapes interpreted, a newline appended if missing, executed once
 *    per row, no header, no alignment; a format containing `{{range .}}…{{end}}` runs once over
 *    the whole list instead.
 *  - if the normalized template fails to parse, the original text is tried (podman does so).
 * `{{json .}}` in a template is compact JSON without HTML escaping (podman's `json` func).
 */
import { compile, type Template, type TemplateFunc } from './gotemplate';
import { goJson, goMap } from './units';

export interface TabOptions { minwidth?: number; tabwidth?: number; padding?: number; padchar?: string }
/** The tabwriter podman's report.Formatter uses: tabwriter.NewWriter(w, 12, 2, 2, ' ', …). */
export const PODMAN_TABWRITER: Readonly<Required<TabOptions>> = { minwidth: 12, tabwidth: 2, padding: 2, padchar: ' ' };

export interface ReportOptions {
  /** Used when `format` is undefined or empty, e.g. 'table {{.Repository}}\t{{.Tag}}\t{{.ID}}'. */
  defaultTable: string;
  /** Field → header text (upper-cased), e.g. { ID: 'IMAGE ID' }; other fields derive theirs. */
  headers?: Record<string, string>;
  noHeading?: boolean;
  /** Template name in error messages (podman uses the command name); default 'format'. */
  name?: string;
  funcs?: Record<string, TemplateFunc>;
}

const JSON_RE = /^\s*(json|\{\{\s*json\.?\s*\}\})\s*$/;
const RANGE_RE = /\{\{\s*range\s*\.\s*\}\}.*\{\{\s*end\s*-?\s*\}\}/;

/** podman's report.IsJSON: `json`, `{{json}}`, `{{json.}}`… but not `{{json .}}` (a template). */
export function isJsonFormat(format: string): boolean { return JSON_RE.test(format); }

/** podman's report.NormalizeFormat (see the module contract); always ends with a newline. */
export function normalizeFormat(format: string): string {
  const f = format.startsWith('table ')
    ? format.replace(/table |\\t|\\n| /g, (m) => (m === 'table ' ? '' : m === '\\n' ? '\n' : '\t'))
    : format.replace(/\\t|\\n/g, (m) => (m === '\\t' ? '\t' : '\n'));
  return f.endsWith('\n') ? f : `${f}\n`;
}

/** fatih/camelcase Split, as podman uses for headers: "CreatedAt" → ["Created", "At"], "IPAddress" → ["IP", "Address"]. */
export function splitCamelCase(s: string): string[] {
  const runs: string[][] = [], cls: number[] = [];
  for (const ch of s) {
    const c = /\p{Ll}/u.test(ch) ? 1 : /\p{Lu}/u.test(ch) ? 2 : /\p{Nd}/u.test(ch) ? 3 : 4;
    if (runs.length && cls[cls.length - 1] === c) runs[runs.length - 1].push(ch); else { runs.push([ch]); cls.push(c); }
  }
  const upper = (r: string[]) => r.length > 0 && /\p{Lu}/u.test(r[0]), lower = (r: string[]) => r.length > 0 && /\p{Ll}/u.test(r[0]);
  for (let i = 0; i < runs.length - 1; i++) if (upper(runs[i]) && lower(runs[i + 1])) runs[i + 1].unshift(runs[i].pop()!);
  return runs.filter((r) => r.length > 0).map((r) => r.join(''));
}

/** The header podman prints for a field: override or camel-case words, upper-cased. */
export function headerFor(field: string, overrides?: Record<string, string>): string {
  return (overrides?.[field] ?? splitCamelCase(field).join(' ')).toUpperCase();
}

const SURROGATE = /[\ud800-\udbff]/;
function runeLen(s: string): number {
  if (!SURROGATE.test(s)) return s.length;
  let n = 0;
  for (let i = 0; i < s.length; i++) { const c = s.charCodeAt(i); if (c < 0xd800 || c > 0xdbff) n++; }
  return n;
}

/**
 * Go's text/tabwriter (AlignLeft, no flags) over lines of cells, where every cell but a line's
 * last is tab-terminated: a column block is a run of consecutive lines having that column; its
 * width is max(cell runes + padding, minwidth); a line's last cell is never padded.
 */
function layout(lines: string[][], o: TabOptions): string[] {
  const minwidth = o.minwidth ?? PODMAN_TABWRITER.minwidth, padding = o.padding ?? PODMAN_TABWRITER.padding;
  const padchar = o.padchar ?? ' ', tabwidth = o.tabwidth ?? PODMAN_TABWRITER.tabwidth;
  const cw = lines.map((l) => l.map(runeLen));
  const widths: number[] = [], out: string[] = new Array<string>(lines.length);
  const pads: string[] = [];
  const padTo = (w: number, cell: number): string => {
    if (padchar === '\t') return tabwidth === 0 ? '' : '\t'.repeat(Math.ceil((Math.ceil(w / tabwidth) * tabwidth - cell) / tabwidth));
    const n = w - cell;
    return pads[n] ?? (pads[n] = padchar.repeat(n));
  };
  const write = (l0: number, l1: number) => {
    for (let i = l0; i < l1; i++) {
      const line = lines[i], n = Math.min(line.length, widths.length);
      let s = '';
      for (let j = 0; j < n; j++) s += line[j] + padTo(widths[j], cw[i][j]);
      for (let j = n; j < line.length; j++) s += line[j];
      out[i] = s;
    }
  };
  const format = (line0: number, line1: number) => {
    const column = widths.length;
    for (let th = line0; th < line1; th++) {
      if (column >= lines[th].length - 1) continue;
      write(line0, th);
      line0 = th;
      let width = minwidth;
      for (; th < line1 && column < lines[th].length - 1; th++) if (cw[th][column] + padding > width) width = cw[th][column] + padding;
      widths.push(width);
      format(line0, th);
      widths.pop();
      line0 = th;
    }
    write(line0, line1);
  };
  format(0, lines.length);
  return out;
}

/** Aligns text whose cells are separated by tabs and lines by newlines, as a Go tabwriter would. */
export function tabwrite(text: string, opts: TabOptions = PODMAN_TABWRITER): string {
  return layout(text.split('\n').map((l) => l.split('\t')), opts).join('\n');
}

/** Aligns rows of cells (default: podman's tabwriter settings); every line ends with "\n". */
export function alignColumns(lines: string[][], opts: TabOptions = PODMAN_TABWRITER): string {
  const clean = lines.map((l) => l.map((c) => c.replace(/[\t\n]/g, ' ')));
  return layout(clean, opts).map((l) => `${l}\n`).join('');
}

function compileNormalized(norm: string, raw: string, name: string, funcs?: Record<string, TemplateFunc>): Template {
  try {
    return compile(norm, { name, funcs });
  } catch (e) {
    try { return compile(raw, { name, funcs }); } catch { throw e; }
  }
}

function headerRow(tpl: Template, rows: object[], overrides?: Record<string, string>): Record<string, string> {
  const keys = new Set<string>([...(rows[0] ? Object.keys(rows[0]) : []), ...tpl.fields, ...Object.keys(overrides ?? {})]);
  const h: Record<string, string> = {};
  for (const k of keys) h[k] = headerFor(k, overrides);
  return goMap(h);
}

const PLAIN_COLUMNS = /^\s*\{\{\s*\.(\w+)\s*\}\}(?:\s*(?:\\t|\t)\s*\{\{\s*\.(\w+)\s*\}\})*\s*$/;

/**
 * The common table case, `{{.A}}\t{{.B}}…` over rows whose cells are strings or numbers, laid
 * out without the template engine (same output, a fraction of the time for 1000-row listings).
 * Undefined when the template or the data need the general path.
 */
function plainColumns(body: string, rows: object[], opts: ReportOptions): string | undefined {
  if (!PLAIN_COLUMNS.test(body)) return undefined;
  const fields = [...body.matchAll(/\{\{\s*\.(\w+)\s*\}\}/g)].map((m) => m[1]!);
  const lines: string[][] = [];
  if (!opts.noHeading) lines.push(fields.map((k) => headerFor(k, opts.headers)));
  for (const r of rows) {
    const rec = r as Record<string, unknown>;
    const cells: string[] = [];
    for (const k of fields) {
      const v = rec[k];
      if (typeof v === 'string') cells.push(v);
      else if (typeof v === 'number' && Number.isSafeInteger(v)) cells.push(String(v));
      else return undefined;
    }
    lines.push(cells);
  }
  if (lines.length === 0) return '';
  return alignColumns(lines, PODMAN_TABWRITER);
}

/** Renders a list (`images`, `history`, …) per podman's --format rules; output ends with "\n" unless empty. */
export function formatReport(rows: object[], format: string | undefined, opts: ReportOptions): string {
  const f = format === undefined || format === '' ? opts.defaultTable : format;
  if (isJsonFormat(f)) return `${goJson(rows, { indent: '    ', escapeHTML: true })}\n`;
  const name = opts.name ?? 'format', norm = normalizeFormat(f);
  if (f.startsWith('table ')) {
    const fast = plainColumns(f.slice(6), rows, opts);
    if (fast !== undefined) return fast;
    const tpl = compileNormalized(norm, f.slice(6), name, opts.funcs);
    let out = '';
    if (!opts.noHeading) { const h = headerRow(tpl, rows, opts.headers); out += tpl.execute(h, { header: true, root: [h] }); }
    for (const r of rows) out += tpl.execute(r, { root: rows });
    return tabwrite(out, PODMAN_TABWRITER);
  }
  const tpl = compileNormalized(norm, f, name, opts.funcs);
  if (RANGE_RE.test(norm)) return tpl.execute(rows);
  let out = '';
  for (const r of rows) out += tpl.execute(r, { root: rows });
  return out;
}

function render(objs: unknown[], format: string, name: string, funcs?: Record<string, TemplateFunc>): string {
  const table = format.startsWith('table '), norm = normalizeFormat(format);
  const tpl = compileNormalized(norm, table ? format.slice(6) : format, name, funcs);
  let out = '';
  if (!table && RANGE_RE.test(norm)) out = tpl.execute(objs);
  else for (const o of objs) out += tpl.execute(o, { root: objs });
  return table ? tabwrite(out, PODMAN_TABWRITER) : out;
}

/**
 * `podman inspect` output for all objects: the JSON array (5-space indent, no HTML escaping)
 * when `format` is empty or json, else the template once per object. Ends with "\n".
 */
export function formatInspect(objs: unknown[], format?: string, opts: { name?: string; funcs?: Record<string, TemplateFunc> } = {}): string {
  if (!format || isJsonFormat(format)) return `${goJson(objs, { indent: '     ', escapeHTML: false })}\n`;
  return render(objs, format, opts.name ?? 'inspect', opts.funcs);
}

/**
 * One object's `inspect --format` output (JSON of the object itself for json/empty), WITHOUT
 * the final newline podman ends it with, so callers may `join('\n')` several and print.
 */
export function formatOne(obj: unknown, format?: string, opts: { name?: string; funcs?: Record<string, TemplateFunc> } = {}): string {
  const out = !format || isJsonFormat(format) ? goJson(obj, { indent: '     ', escapeHTML: false }) : render([obj], format, opts.name ?? 'inspect', opts.funcs);
  return out.endsWith('\n') ? out.slice(0, -1) : out;
}
