#!/usr/bin/env bash
# SIPp vs sipwright, uac → uas over UDP on 127.0.0.1, same machine, same run.
#
# For each tool: the highest rate (from a ladder) with zero failed calls and the
# offered rate actually achieved (≥ 97 %) over a DURATION-second run, the UAC's CPU
# seconds per 1,000 calls at CPU_RATE, and peak RSS of both sides; then the ratios.
# SIPp runs tuned as its experts run it: -buff_size 4194304 on both sides.
#
#   benches/vs-sipp.sh                       # defaults below
#   DURATION=10 SW_RATES="20000 40000" benches/vs-sipp.sh
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-20}
CPU_RATE=${CPU_RATE:-10000}
SIPP_RATES=${SIPP_RATES:-"10000 15000 20000 25000 30000"}
SW_RATES=${SW_RATES:-"10000 20000 30000 40000 50000 60000 65000 70000 75000 80000"}
SW_WORKERS=${SW_WORKERS:-}
PORT_UAS=${PORT_UAS:-25060}
PORT_UAC=${PORT_UAC:-25070}

command -v sipp >/dev/null || { echo "sipp not found: apt-get install sip-tester (or run .ci/run)"; exit 2; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time not found: apt-get install time"; exit 2; }
cargo build --release --quiet
SW=${SW:-${CARGO_TARGET_DIR:-target}/release/sipwright}
WORK=$(mktemp -d)
trap 'pkill -f "sipp -sn uas -i 127.0.0.1 -p $PORT_UAS" 2>/dev/null || true; pkill -f "run uas --bind 127.0.0.1:$PORT_UAS" 2>/dev/null || true; rm -rf "$WORK"' EXIT
workers=()
[ -n "$SW_WORKERS" ] && workers=(--workers "$SW_WORKERS")

# Fields of a /usr/bin/time -f "%e %U %S %M" line.
cpu_of() { tail -n 1 "$1" | awk '{printf "%.3f", $2 + $3}'; }
rss_of() { tail -n 1 "$1" | awk '{print $4}'; }

# Let a UAS finish on its own (it serves a known number of calls), else interrupt it
# (the tool, not /usr/bin/time, so its figures are still written).
stop_uas() {
  local pattern=$1 pid=$2 i
  for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  pkill -INT -f "$pattern" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# run_sipp RATE → sets ok, calls, cpu, rss_uac, rss_uas, achieved
run_sipp() {
  local rate=$1
  calls=$(( $1 * DURATION ))
  /usr/bin/time -f "%e %U %S %M" -o "$WORK/uas.time" \
    sipp -sn uas -i 127.0.0.1 -p "$PORT_UAS" -buff_size 4194304 -nostdin -m "$calls" -timeout $((DURATION * 3))s \
    >/dev/null 2>&1 &
  local uas=$!
  sleep 0.5
  local t0 t1 rc=0
  t0=$(date +%s.%N)
  /usr/bin/time -f "%e %U %S %M" -o "$WORK/uac.time" \
    sipp -sn uac 127.0.0.1:"$PORT_UAS" -i 127.0.0.1 -p "$PORT_UAC" -buff_size 4194304 -nostdin \
    -r "$rate" -rp 1000 -m "$calls" -timeout $((DURATION * 3))s \
    -trace_stat -stf "$WORK/uac.csv" >/dev/null 2>&1 || rc=$?
  t1=$(date +%s.%N)
  stop_uas "sipp -sn uas -i 127.0.0.1 -p $PORT_UAS" "$uas"
  # Calls are started over the run's first (calls-1)/rate seconds; SIPp ends soon after.
  achieved=$(awk -v c="$calls" -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", c / (b - a)}')
  cpu=$(cpu_of "$WORK/uac.time"); rss_uac=$(rss_of "$WORK/uac.time"); rss_uas=$(rss_of "$WORK/uas.time")
  ok=$([ "$rc" = 0 ] && awk -v x="$achieved" -v r="$rate" 'BEGIN{exit !(x >= 0.97 * r)}' && echo yes || echo no)
}

# run_sw RATE → same variables
run_sw() {
  local rate=$1
  /usr/bin/time -f "%e %U %S %M" -o "$WORK/uas.time" \
    "$SW" run uas --bind 127.0.0.1:"$PORT_UAS" --calls $(( rate * DURATION )) --quiet "${workers[@]}" >/dev/null 2>&1 &
  local uas=$!
  sleep 0.5
  local rc=0
  /usr/bin/time -f "%e %U %S %M" -o "$WORK/uac.time" \
    "$SW" run uac --target 127.0.0.1:"$PORT_UAS" --rate "$rate" --duration "${DURATION}s" --quiet \
    "${workers[@]}" --report "$WORK/r.json" >/dev/null 2>&1 || rc=$?
  stop_uas "run uas --bind 127.0.0.1:$PORT_UAS" "$uas"
  read -r calls failed achieved < <(python3 -c "
import json; j = json.load(open('$WORK/r.json'))
print(j['calls']['started'], j['calls']['failed'], j['rate']['achieved_cps'])")
  cpu=$(cpu_of "$WORK/uac.time"); rss_uac=$(rss_of "$WORK/uac.time"); rss_uas=$(rss_of "$WORK/uas.time")
  ok=$([ "$rc" = 0 ] && [ "$failed" = 0 ] && awk -v x="$achieved" -v r="$rate" 'BEGIN{exit !(x >= 0.97 * r)}' && echo yes || echo no)
}

ladder() { # TOOL RATES... → prints a table, sets best_* and cpu_at_cpu_rate
  local tool=$1; shift
  best_rate=0; best_rss_uac=0; best_rss_uas=0; cpu_per_k=""
  printf '%-9s %8s %8s %10s %9s %10s %10s %4s\n' tool rate calls achieved uac_cpu uac_rss_kb uas_rss_kb ok
  for r in "$@"; do
    if [ "$tool" = sipp ]; then run_sipp "$r"; else run_sw "$r"; fi
    printf '%-9s %8s %8s %10s %9s %10s %10s %4s\n' "$tool" "$r" "$calls" "$achieved" "$cpu" "$rss_uac" "$rss_uas" "$ok"
    if [ "$r" = "$CPU_RATE" ]; then cpu_per_k=$(awk -v c="$cpu" -v n="$calls" 'BEGIN{printf "%.4f", c / (n / 1000)}'); fi
    if [ "$ok" = yes ]; then best_rate=$r; best_rss_uac=$rss_uac; best_rss_uas=$rss_uas; else break; fi
  done
}

echo "== SIPp $(sipp -v 2>&1 | grep -o 'v[0-9.]*' | head -1), -buff_size 4194304, ${DURATION}s per rate"
ladder sipp $SIPP_RATES
sipp_best=$best_rate; sipp_cpu=$cpu_per_k; sipp_rss=$best_rss_uac; sipp_rss_uas=$best_rss_uas
echo
echo "== sipwright $($SW --version | awk '{print $2}'), ${DURATION}s per rate"
ladder sipwright $SW_RATES
sw_best=$best_rate; sw_cpu=$cpu_per_k; sw_rss=$best_rss_uac; sw_rss_uas=$best_rss_uas
echo
printf '%-34s %12s %12s %8s\n' "" SIPp sipwright ratio
printf '%-34s %12s %12s %8s\n' "best clean rate (calls/s)" "$sipp_best" "$sw_best" \
  "$(awk -v a="$sipp_best" -v b="$sw_best" 'BEGIN{if (a > 0) printf "%.2fx", b / a; else print "-"}')"
printf '%-34s %12s %12s %8s\n' "UAC CPU s per 1000 calls @ $CPU_RATE" "${sipp_cpu:--}" "${sw_cpu:--}" \
  "$(awk -v a="${sipp_cpu:-0}" -v b="${sw_cpu:-0}" 'BEGIN{if (a > 0 && b > 0) printf "%.2fx", b / a; else print "-"}')"
printf '%-34s %12s %12s\n' "UAC peak RSS KB at best rate" "$sipp_rss" "$sw_rss"
printf '%-34s %12s %12s\n' "UAS peak RSS KB at best rate" "$sipp_rss_uas" "$sw_rss_uas"
echo "(a ladder stops at its first rate with failed calls or < 97 % of the offered rate;"
echo " the top rung of a ladder passing means the tool's limit is higher than measured)"
