/**
 * Where kiln's own files are, whether this code runs from tsc's output (dist/src/…) or from
 * the CLI bundle (dist/kiln.js): the package root is the nearest ancestor of this file's
 * directory holding kiln's package.json.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

let root: string | undefined;

export function packageRoot(): string {
  if (root !== undefined) return root;
  for (let d = __dirname; ; d = path.dirname(d)) {
    try {
      if ((JSON.parse(fs.readFileSync(path.join(d, 'package.json'), 'utf8')) as { name?: string }).name === 'kiln') return (root = d);
    } catch {
      /* keep looking */
    }
    if (path.dirname(d) === d) throw new Error(`cannot find kiln's package.json above ${__dirname}`);
  }
}
