#!/usr/bin/env bash
# pprof-packages.sh BINARY PROFILE REQUESTS: a CPU profile's flat time by
# package, in µs per request (docs/performance.md, "Where the rest of
# Sluice's CPU goes"). A function's package is its import path up to the
# first dot after the last slash; Sluice's packages count as one.
set -euo pipefail
[ $# -eq 3 ] || { echo "usage: $0 BINARY PROFILE REQUESTS" >&2; exit 2; }
go tool pprof -top -nodecount=1000000 -nodefraction=0 "$1" "$2" 2>/dev/null | awk -v n="$3" '
  NR > 6 && NF >= 6 {
    v = $1
    if (v ~ /ms$/) { sub(/ms$/, "", v); v /= 1000 } else if (v ~ /us$|µs$/) { sub(/(us|µs)$/, "", v); v /= 1e6 } else sub(/s$/, "", v)
    f = $6
    if (f ~ /^github.com\/sluice-gw\//) p = "sluice"
    else if (f ~ /prometheus/) p = "prometheus"
    else { i = match(f, /\/[^\/]*$/); p = f; rest = (i ? substr(f, i) : f); j = index(rest, "."); if (j) p = substr(f, 1, (i ? i - 1 : 0) + j - 1) }
    t[p] += v; all += v
  }
  END {
    for (p in t) printf "%-45s %8.1f\n", p, t[p] * 1e6 / n
    printf "%-45s %8.1f\n", "total", all * 1e6 / n
  }' | sort -k2 -nr
