#!/usr/bin/env bash
# Vendors the console's browser libraries from npm into crates/console/assets/
# (the hospitals' networks are closed: the console binary serves them itself,
# embedded with include_bytes!). Rerun after changing a version; commit the result.
set -euo pipefail
cd "$(dirname "$0")/.."
HTMX=2.0.9
UPLOT=1.6.32
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "htmx.org@$HTMX" "uplot@$UPLOT" >/dev/null)
for tarball in "$work"/*.tgz; do
    mkdir -p "${tarball%.tgz}" && tar -xzf "$tarball" -C "${tarball%.tgz}"
done
out=crates/console/assets
cp "$work/htmx.org-$HTMX/package/dist/htmx.min.js" "$out/htmx.min.js"
cp "$work/htmx.org-$HTMX/package/LICENSE" "$out/htmx.LICENSE"
cp "$work/uplot-$UPLOT/package/dist/uPlot.iife.min.js" "$out/uPlot.iife.min.js"
cp "$work/uplot-$UPLOT/package/dist/uPlot.min.css" "$out/uPlot.min.css"
cp "$work/uplot-$UPLOT/package/LICENSE" "$out/uPlot.LICENSE"
echo "htmx.org $HTMX, uplot $UPLOT -> $out"
