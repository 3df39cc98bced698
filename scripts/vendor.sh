#!/usr/bin/env bash
# Rebuild static/vendor/ from the npm registry at the versions pinned in scripts/vendor/package.json
# and package-lock.json (run by hand after changing a pin; the output is committed).
#
#   htmx      -> static/vendor/htmx-<v>.min.js                  (the published dist file, unchanged)
#   CodeMirror 6 (+ SQL, Python, YAML, lint, autocomplete)
#             -> static/vendor/codemirror-<v>.min.js            (one IIFE, global `RatCM`, esbuild)
#   licences  -> static/vendor/licenses/<package>.LICENSE       (one file per bundled package)
#
# The lineage graph needs no library: the server lays it out and draws SVG.
# Nothing is fetched from a CDN at run time; the server only serves these files.
# Needs node >= 18 and npm.
set -euo pipefail
cd "$(dirname "$0")/.."
src=scripts/vendor
out=static/vendor
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cp "$src/package.json" "$src/package-lock.json" "$src/codemirror.entry.js" "$work/"
(cd "$work" && npm ci --ignore-scripts --no-audit --no-fund --silent)
# esbuild ships its binary as an optional platform package; install scripts are off above.
(cd "$work" && node node_modules/esbuild/install.js >/dev/null 2>&1 || true)

version() { node -p "require('$work/node_modules/$1/package.json').version"; }
HTMX_VERSION=$(version htmx.org)
CM_VERSION=$(version codemirror)

rm -rf "$out" && mkdir -p "$out/licenses"
cp "$work/node_modules/htmx.org/dist/htmx.min.js" "$out/htmx-${HTMX_VERSION}.min.js"

(cd "$work" && node_modules/.bin/esbuild codemirror.entry.js --bundle --minify \
  --format=iife --global-name=RatCM --target=es2020 --legal-comments=none \
  --metafile=meta.json --outfile=bundle.js --log-level=warning)
cp "$work/bundle.js" "$out/codemirror-${CM_VERSION}.min.js"

# One licence file per package that ended up in a bundle (read from esbuild's metafile).
node -e '
const fs = require("fs"), path = require("path");
const [work, out] = process.argv.slice(1);
const meta = JSON.parse(fs.readFileSync(path.join(work, "meta.json")));
const pkgs = new Set(["htmx.org"]);
for (const input of Object.keys(meta.inputs)) {
  const m = input.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/);
  if (m) pkgs.add(m[1]);
}
const lines = [];
for (const name of [...pkgs].sort()) {
  const dir = path.join(work, "node_modules", name);
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, "package.json")));
  const file = fs.readdirSync(dir).find((f) => /^licen[cs]e/i.test(f));
  if (!file) throw new Error("no licence file in " + name);
  fs.copyFileSync(path.join(dir, file), path.join(out, "licenses", name.replace("/", "__") + ".LICENSE"));
  lines.push(`${name}@${pkg.version}\t${pkg.license}`);
}
fs.writeFileSync(path.join(out, "licenses", "MANIFEST.txt"), lines.join("\n") + "\n");
' "$work" "$out"

echo "vendored htmx ${HTMX_VERSION}, codemirror ${CM_VERSION} ($(wc -c < "$out/codemirror-${CM_VERSION}.min.js") bytes)"
