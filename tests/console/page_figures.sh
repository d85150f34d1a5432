#!/usr/bin/env bash
# Page weight and first-byte time of every console page (a benchmark, not a
# test: figures go to docs/BENCHMARKS.md). Fetches each page 20 times with
# curl, logged in, and prints a Markdown table with the HTML size, the size
# with the page's scripts, styles and images, and the median time to first
# byte.
#
#   tests/console/page_figures.sh [path of cohort, default target/release/cohort]
#       the coordinator's console on the demo data: starts `cohort demo
#       --serve`, waits for the plan to end, logs in as the auditor.
#   tests/console/page_figures.sh node [path of the node_console example,
#       default target/release/examples/node_console]
#       the node console on its fixture data, each page as a role that may
#       open it (clinician, DPO, auditor).
set -euo pipefail
work="$(mktemp -d)"
server=""
trap '[ -n "$server" ] && kill $server 2>/dev/null; rm -rf "$work"' EXIT

if [ "${1:-}" = node ]; then
    "${2:-target/release/examples/node_console}" >"$work/out" 2>&1 &
    server=$!
    ready="node console"
else
    "${1:-target/release/cohort}" demo --serve --no-baselines --workdir "$work/run" \
        --report "$work/report.html" >"$work/out" 2>&1 &
    server=$!
    ready="serving the console"
fi
for _ in $(seq 1 300); do grep -q "$ready" "$work/out" && break; sleep 1; done
base="$(grep -o 'console: http://[0-9.:]*' "$work/out" | head -1 | cut -d' ' -f2)"
password="$(grep -o 'password: [0-9a-f]*' "$work/out" | cut -d' ' -f2)"

# Log in as $1 (cookie jar $work/$1).
login() {
    local jar="$work/$1" csrf
    csrf="$(curl -s -c "$jar" "$base/login" | grep -o 'name="csrf" value="[^"]*' | cut -d'"' -f4)"
    curl -s -o /dev/null -b "$jar" -c "$jar" --data "user=$1&password=$password&csrf=$csrf&next=/" "$base/login"
}

# One table row: page $2 as user $1.
figures() {
    local jar="$work/$1" page="$2" html body total median
    html="$(curl -s -o /dev/null -b "$jar" -w '%{size_download}' "$base$page")"
    body="$(curl -s -b "$jar" "$base$page")"
    total="$html"
    for asset in $(grep -o '\(src\|href\)="/\(assets\|patients\)/[^"]*' <<<"$body" | cut -d'"' -f2 \
        | grep -v '^/patients/[^/]*$' | grep '^/assets/\|/rendered$' | sort -u); do
        total=$((total + $(curl -s -o /dev/null -b "$jar" -w '%{size_download}' "$base$asset")))
    done
    median="$(for _ in $(seq 1 20); do
        curl -s -o /dev/null -b "$jar" -w '%{time_starttransfer}\n' "$base$page"
    done | sort -n | sed -n 10p)"
    awk -v p="$page" -v h="$html" -v t="$total" -v m="$median" \
        'BEGIN { printf "| %s | %.1f KB | %.1f KB | %.1f ms |\n", p, h / 1000, t / 1000, m * 1000 }'
}

echo "| page | HTML | with scripts, styles and images | first byte (median of 20) |"
echo "|---|---|---|---|"
if [ "${1:-}" = node ]; then
    for user in clinician dpo auditor; do login "$user"; done
    patient="$(curl -s -b "$work/clinician" "$base/patients?q=haddad" | grep -o 'href="/patients/[^"]*' | head -1 | cut -d'"' -f2)"
    viewer="$(curl -s -b "$work/clinician" "$base$patient" | grep -o 'href="/patients/[^"]*/imaging/[^"]*' | head -1 | cut -d'"' -f2)"
    figures clinician /login
    figures clinician /
    figures clinician "/patients?q=haddad"
    figures clinician "$patient"
    figures clinician "$viewer"
    wei="$(curl -s -b "$work/clinician" "$base/patients?q=MRN-0003" | grep -o 'href="/patients/[^"]*' | head -1 | cut -d'"' -f2)"
    visit="$(curl -s -b "$work/clinician" "$base$wei" | grep -o 'href="/encounters/[^"]*' | head -1 | cut -d'"' -f2)"
    figures clinician "$visit"
    figures dpo /consent
    figures dpo /approvals
    figures auditor /disclosures
    figures auditor /access-log
else
    login auditor
    for page in /login / /plans /rounds /privacy /ledger /ledger/entries/3; do
        figures auditor "$page"
    done
fi
