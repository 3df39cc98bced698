#!/usr/bin/env bash
# Rebuild static/vendor/ from the npm registry at pinned versions (run by hand, output committed).
# Nothing is fetched from a CDN at run time; the server only serves these files.
set -euo pipefail
cd "$(dirname "$0")/.."
HTMX_VERSION=2.0.4
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "htmx.org@${HTMX_VERSION}" >/dev/null && tar xzf htmx.org-*.tgz)
mkdir -p static/vendor/licenses
cp "$work/package/dist/htmx.min.js" "static/vendor/htmx-${HTMX_VERSION}.min.js"
cp "$work/package/LICENSE" static/vendor/licenses/htmx.LICENSE
echo "vendored htmx ${HTMX_VERSION}"
