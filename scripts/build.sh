#!/usr/bin/env bash
# `npm run build`: type-check and compile with tsc (dist/src, dist/test, dist/workers, dist/bench),
# bundle the CLI into dist/kiln.js, and record V8's code cache for it by running two commands.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
node_modules/.bin/tsc -p tsconfig.json
node_modules/.bin/esbuild dist/src/cli/main.js --bundle --platform=node --format=cjs --target=node20 \
  --minify --keep-names --sourcemap=linked --outfile=dist/kiln.js --external:better-sqlite3 --external:piscina --log-level=warning
rm -f dist/kiln.js.cache
store="$(mktemp -d /tmp/kiln-build.XXXXXX)"
trap 'rm -rf "$store"' EXIT
KILN_WRITE_CODE_CACHE=1 node bin/kiln --root "$store/root" --runroot "$store/run" images >/dev/null
