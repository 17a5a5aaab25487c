#!/usr/bin/env bash
# Loading a large --inject file: wall time and peak RSS of `sipwright check` on a
# scenario that reads the file's columns, against the file's size, with
# `wc -l` (one pass over the same bytes) and `cat FILE >/dev/null` as references
# read in the same run.
#
#   benches/inject.sh                 # 1,000,000 rows, header CSV and SIPp format
#   ROWS=5000000 benches/inject.sh
#
# Targets (issue: per-call data): loaded in ≤ 1 s, ≤ 2× the file size in RSS.
# Prints one line per format: rows, file MB, seconds, peak RSS MB, RSS/file,
# baseline RSS (the same check with a one-row file) and the ratio net of it.
set -euo pipefail

ROWS=${ROWS:-1000000}
root=$(cd "$(dirname "$0")/.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$root/target}
(cd "$root" && cargo build --release --quiet)
bin=$target_dir/release/sipwright
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

python3 - "$ROWS" "$out" <<'PY'
import sys
rows, out = int(sys.argv[1]), sys.argv[2]
with open(f"{out}/users.csv", "w") as f:
    f.write("user,password\n")
    for i in range(1, rows + 1):
        f.write(f"u{i:07d},pw-u{i:07d}-secret\n")
with open(f"{out}/users.sipp", "w") as f:
    f.write("SEQUENTIAL\n")
    for i in range(1, rows + 1):
        f.write(f"u{i:07d};pw-u{i:07d}-secret;\n")
with open(f"{out}/one.csv", "w") as f:
    f.write("user,password\nu1,pw\n")
PY
cat >"$out/scenario.yaml" <<'YAML'
steps:
  - send: |
      REGISTER sip:{{ remote_ip }} SIP/2.0
      Via: SIP/2.0/UDP {{ local_ip }}:{{ local_port }};branch={{ branch }}
      From: <sip:{{ user }}@example.com>;tag={{ from_tag }}
      To: <sip:{{ user }}@example.com>
      Call-ID: {{ call_id }}
      CSeq: {{ cseq }} REGISTER
      X-Password: {{ password }}
      Content-Length: 0
  - recv: 200
YAML

# measure CMD...: "seconds peak_rss_kb" of one run (GNU time).
measure() {
    /usr/bin/time -f '%e %M' -o "$out/time" "$@" >/dev/null 2>"$out/err" || {
        cat "$out/err" >&2
        exit 1
    }
    cat "$out/time"
}

read -r _ base_kb < <(measure "$bin" check "$out/scenario.yaml" --inject "$out/one.csv")
printf '%-7s %9s %8s %8s %9s %8s %10s %10s\n' format rows file_MB seconds rss_MB rss/file net/file "wc -l (s)"
for fmt in csv sipp; do
    case $fmt in
        csv) file=$out/users.csv; extra=() ;;
        sipp) file=$out/users.sipp; extra=(--inject-columns user,password) ;;
    esac
    size=$(stat -c %s "$file")
    cat "$file" >/dev/null
    read -r wc_s _ < <(measure wc -l "$file")
    read -r secs kb < <(measure "$bin" check "$out/scenario.yaml" --inject "$file" "${extra[@]}")
    awk -v f="$fmt" -v r="$ROWS" -v s="$size" -v t="$secs" -v k="$kb" -v b="$base_kb" -v w="$wc_s" 'BEGIN {
        printf "%-7s %9d %8.1f %8.2f %9.1f %8.2f %10.2f %10.2f\n",
            f, r, s / 1e6, t, k / 1024, k * 1024 / s, (k - b) * 1024 / s, w }'
done
echo "baseline (one-row file): $((base_kb / 1024)) MB peak RSS"
