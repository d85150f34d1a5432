#!/usr/bin/env bash
# Page weight and first-byte time of every console page on the demo data (a
# benchmark, not a test: figures go to docs/BENCHMARKS.md). Starts
# `cohort demo --serve`, waits for the plan to end, logs in as the auditor
# and fetches each page 20 times with curl; prints a Markdown table with the
# HTML size, the size with the page's scripts and styles, and the median
# time to first byte.
#   tests/console/page_figures.sh [path of cohort, default target/release/cohort]
set -euo pipefail
cohort="${1:-target/release/cohort}"
work="$(mktemp -d)"
"$cohort" demo --serve --no-baselines --workdir "$work/run" --report "$work/report.html" >"$work/out" 2>&1 &
demo=$!
trap 'kill $demo 2>/dev/null; rm -rf "$work"' EXIT
for _ in $(seq 1 300); do grep -q "serving the console" "$work/out" && break; sleep 1; done
base="$(grep -o 'console: http://[0-9.:]*' "$work/out" | cut -d' ' -f2)"
password="$(grep -o 'password: [0-9a-f]*' "$work/out" | cut -d' ' -f2)"
jar="$work/cookies"
csrf="$(curl -s -c "$jar" "$base/login" | grep -o 'name="csrf" value="[^"]*' | cut -d'"' -f4)"
curl -s -o /dev/null -b "$jar" -c "$jar" --data "user=auditor&password=$password&csrf=$csrf&next=/" "$base/login"
size() { curl -s -o /dev/null -b "$jar" -w '%{size_download}' "$base$1"; }
echo "| page | HTML | with scripts and styles | first byte (median of 20) |"
echo "|---|---|---|---|"
for page in /login / /plans /rounds /privacy /ledger /ledger/entries/3; do
    html="$(size "$page")"
    body="$(curl -s -b "$jar" "$base$page")"
    total="$html"
    for asset in $(grep -o '/assets/[A-Za-z.]*' <<<"$body" | sort -u); do
        total=$((total + $(size "$asset")))
    done
    median="$(for _ in $(seq 1 20); do
        curl -s -o /dev/null -b "$jar" -w '%{time_starttransfer}\n' "$base$page"
    done | sort -n | sed -n 10p)"
    awk -v p="$page" -v h="$html" -v t="$total" -v m="$median" \
        'BEGIN { printf "| %s | %.1f KB | %.1f KB | %.1f ms |\n", p, h / 1000, t / 1000, m * 1000 }'
done
