#!/usr/bin/env bash
# Load through a Kamailio proxy: our `uac` → kamailio (stateful, record-routing,
# tests/fixtures/kamailio/proxy.cfg) → our `uas`, all on 127.0.0.1 over UDP.
#
#   benches/through-kamailio.sh                    # 2,000 calls/s for 20 s
#   RATE=500 SECONDS_LOAD=60 benches/through-kamailio.sh
#
# Settings (environment):
#   RATE           new calls per second (default 2000)
#   SECONDS_LOAD   how long calls are started (default 20); CALLS=RATE*SECONDS_LOAD
#   CALL_DURATION  pause between ACK and BYE (default 1s; with 0s the proxy's
#                  workers often deliver the BYE before the ACK — see docs/kamailio.md)
#   CHILDREN       kamailio UDP workers (default 2)
#   SHM_MB         kamailio shared memory, MB (default 1024)
#   KAMAILIO_ARGS  extra kamailio options, e.g. "-b 262144" (receive buffer cap)
#   PROXY_PORT, UAS_PORT   (default 15060, 15070)
#   OUT            directory for reports and logs (default: a new /tmp dir)
#
# Prints the uac and uas reports' call counts, failures and retransmissions,
# kamailio's shared memory and transaction statistics, and CPU time per process.
# Needs kamailio, kamcmd and jq. Exit status: the uac's (0 = all calls succeeded).
set -euo pipefail

RATE=${RATE:-2000}
SECONDS_LOAD=${SECONDS_LOAD:-20}
CALLS=${CALLS:-$((RATE * SECONDS_LOAD))}
CALL_DURATION=${CALL_DURATION:-1s}
CHILDREN=${CHILDREN:-2}
SHM_MB=${SHM_MB:-1024}
PROXY_PORT=${PROXY_PORT:-15060}
UAS_PORT=${UAS_PORT:-15070}

for tool in kamailio kamcmd jq; do
    command -v "$tool" >/dev/null || { echo "needs $tool" >&2; exit 2; }
done

root=$(cd "$(dirname "$0")/.." && pwd)
target_dir=${CARGO_TARGET_DIR:-$root/target}
(cd "$root" && cargo build --release --quiet)
bin=$target_dir/release/sipwright

out=${OUT:-$(mktemp -d /tmp/sipwright-kamailio.XXXXXX)}
mkdir -p "$out/run"
ctl="unix:$out/run/kamailio_ctl"
uas_pid=
kam_pid=

cleanup() {
    if [[ -n ${sampler_pid:-} ]]; then
        kill "$sampler_pid" 2>/dev/null || true
    fi
    if [[ -n $uas_pid ]] && kill -0 "$uas_pid" 2>/dev/null; then
        kill -INT "$uas_pid" 2>/dev/null || true
        wait "$uas_pid" 2>/dev/null || true
    fi
    if [[ -n $kam_pid ]]; then
        # kamailio runs in its own session/process group (setsid below).
        kill -TERM -- "-$kam_pid" 2>/dev/null || true
        for _ in $(seq 30); do
            kill -0 "$kam_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL -- "-$kam_pid" 2>/dev/null || true
        wait "$kam_pid" 2>/dev/null || true
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$bin" run uas --bind "127.0.0.1:$UAS_PORT" --drain-timeout 5s \
    --report "$out/uas.json" 2>"$out/uas.log" &
uas_pid=$!

setsid kamailio -f "$root/tests/fixtures/kamailio/proxy.cfg" -DD -E \
    -m "$SHM_MB" -M 32 -Y "$out/run" \
    -A "LISTEN_PORT=$PROXY_PORT" -A "UAS_PORT=$UAS_PORT" -A "CHILDREN=$CHILDREN" \
    -A WITH_CTL ${KAMAILIO_ARGS:-} >"$out/kamailio.log" 2>&1 &
kam_pid=$!

# Ready when an OPTIONS through the proxy is answered (by our uas).
for i in $(seq 50); do
    "$bin" options "sip:127.0.0.1:$PROXY_PORT" --timeout 300ms >/dev/null 2>&1 && break
    if ((i == 50)) || ! kill -0 "$kam_pid" 2>/dev/null; then
        echo "proxy not answering; kamailio log:" >&2
        tail -20 "$out/kamailio.log" >&2
        exit 1
    fi
    sleep 0.1
done

echo "through-kamailio: $CALLS calls at $RATE/s, call duration $CALL_DURATION," \
    "kamailio children=$CHILDREN shm=${SHM_MB}MB; output in $out"

# Datagrams the kernel dropped because a socket's receive buffer was full, per
# local UDP port (the "drops" column of /proc/net/udp), sampled while the load
# runs: the uac's socket is gone by the time it exits.
udp_drops() {
    awk 'NR > 1 { split($2, a, ":"); print a[2], $NF }' /proc/net/udp || true
}
(while :; do udp_drops >>"$out/udp-drops.txt"; sleep 0.5; done) &
sampler_pid=$!

uac_rc=0
TIMEFORMAT='uac process: %R s wall, %U s user, %S s sys CPU'
time "$bin" run uac --target "127.0.0.1:$PROXY_PORT" --calls "$CALLS" --rate "$RATE" \
    --call-duration "$CALL_DURATION" --report "$out/uac.json" \
    2>"$out/uac.log" || uac_rc=$?

udp_drops >>"$out/udp-drops.txt"
kill "$sampler_pid" 2>/dev/null || true
wait "$sampler_pid" 2>/dev/null || true
sampler_pid=
uac_port=$(sed -n 's/.*running `uac` on [0-9.]*:\([0-9]*\).*/\1/p' "$out/uac.log")

# Proxy state right after the load: memory high-water mark and transactions.
kamcmd -s "$ctl" core.shmmem >"$out/shmmem.txt" 2>&1 || true
kamcmd -s "$ctl" tm.stats >"$out/tm-stats.txt" 2>&1 || true
kamcmd -s "$ctl" core.psx >"$out/psx.txt" 2>&1 || true
tck=$(getconf CLK_TCK)
cpu() { awk -v t="$tck" '{ printf "%.2f s", ($14 + $15) / t }' "/proc/$1/stat" 2>/dev/null || echo "?"; }
awk '$1 == "PID:" { pid = $2 } $1 == "DSC:" { $1 = ""; print pid $0 }' "$out/psx.txt" |
    while read -r pid dsc; do echo "  $(cpu "$pid")  $dsc"; done >"$out/kamailio-cpu.txt"
uas_cpu=$(cpu "$uas_pid")

kill -INT "$uas_pid"
wait "$uas_pid" || true
uas_pid=

summary='"\(.role): \(.calls.started) started, \(.calls.succeeded) succeeded, \(.calls.failed) failed in \(.elapsed_s) s"
  + "\n  failures: \(.failures | to_entries | map(select(.value > 0) | "\(.key)=\(.value)") | join(" ") | if . == "" then "none" else . end)"
  + (if (.failure_status_codes // {}) == {} then "" else "\n  failure status codes: \(.failure_status_codes | tojson)" end)
  + "\n  messages: \(.messages.sent) sent, \(.messages.received) received, \(.messages.retransmitted) retransmitted, \(.messages.absorbed) absorbed, \(.messages.stray) stray"'
jq -r "$summary" "$out/uac.json"
jq -r "$summary" "$out/uas.json"
echo "uas process CPU: $uas_cpu"

kv() { sed -n "s/^\s*$2: \(.*\)$/\1/p" "$1"; }
if [[ -s $out/shmmem.txt ]] && [[ -n $(kv "$out/shmmem.txt" max_used) ]]; then
    echo "kamailio shm: max_used $(($(kv "$out/shmmem.txt" max_used) / 1048576)) MB" \
        "of $(($(kv "$out/shmmem.txt" total) / 1048576)) MB;" \
        "transactions: created $(kv "$out/tm-stats.txt" created)," \
        "current $(kv "$out/tm-stats.txt" current), 5xx sent $(kv "$out/tm-stats.txt" 5xx)," \
        "6xx $(kv "$out/tm-stats.txt" 6xx)"
else
    echo "kamailio stats unavailable: $(head -c 200 "$out/shmmem.txt")"
fi
drops_of() {
    awk -v p="$(printf %04X "$1")" '$1 == p && $2 > m { m = $2 } END { print m + 0 }' \
        "$out/udp-drops.txt"
}
echo "receive-buffer drops: kamailio $(drops_of "$PROXY_PORT"), uas $(drops_of "$UAS_PORT")," \
    "uac $(drops_of "${uac_port:-0}")"
echo "kamailio CPU time per process:"
cat "$out/kamailio-cpu.txt"
# A few failed calls with their reason, as each side printed them.
grep -h "^  call " "$out/uac.log" "$out/uas.log" | head -6 || true
# kamailio's errors by kind (module, source line, function).
grep -E "(ERROR|CRITICAL):" "$out/kamailio.log" |
    sed -E 's/^.*(ERROR|CRITICAL): (\{[^}]*\} )?/\1 /; s/\(\):.*/()/' |
    sort | uniq -c | sort -rn | head -6 || true
exit "$uac_rc"
