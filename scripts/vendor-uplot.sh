#!/usr/bin/env bash
# Vendors uPlot (MIT) into crates/serve/assets/vendor/ for `nas-host serve`. The dashboard is
# served from the binary with no CDN and no internet at run time, so the chart library is
# committed; this script records where it came from and refreshes it. uPlot draws 10,000-point
# series on a canvas in a few milliseconds (SVG charts with one element per point do not stay
# fast at that size), and is 50 kB minified with no dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION="${1:-1.6.32}"
dest=crates/serve/assets/vendor
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack "uplot@$VERSION" >/dev/null && tar xzf "uplot-$VERSION.tgz")
mkdir -p "$dest"
cp "$tmp/package/dist/uPlot.iife.min.js" "$dest/uPlot.iife.min.js"
cp "$tmp/package/dist/uPlot.min.css" "$dest/uPlot.min.css"
cp "$tmp/package/LICENSE" "$dest/uPlot.LICENSE"
echo "uplot $VERSION (npm), vendored by scripts/vendor-uplot.sh" > "$dest/VERSION"
echo "vendored uPlot $VERSION into $dest"
