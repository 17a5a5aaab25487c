#!/usr/bin/env bash
# RTP media at scale, side by side, judged by a receiver that is not sipwright.
#
# Every sender streams G.711 (PT 0, 20 ms, 172-byte packets) to 127.0.0.1 and one
# independent receiver (benches/media/rtp_receiver.c: recvmmsg, kernel arrival
# stamps, RFC 3550 loss and jitter per source + SSRC) measures a WINDOW-second
# stretch once every call is up. Rows, all from the same run on the same machine:
#
#   SIPp 3.6.1 rtp_stream at SIPP_STREAMS concurrent calls (UAC → SIPp UAS whose
#       answer points media at the receiver: benches/media/*.xml)
#   the reference: a C loop, one socket per stream, one sendto per packet
#       (benches/media/sendto_loop.c), C_STREAMS streams
#   sipwright `run uac-media` at SW_STREAMS calls against the same SIPp UAS, with
#       per-call RTP ports and with --rtp-shared (skipped when the build has no
#       media), plus RSS per media call against `run uac` without media
#   sipwright `run uac-srtp` (SDES-SRTP, AES_CM_128_HMAC_SHA1_80: packets of 182
#       bytes, the header in clear for the receiver) in both modes against
#       benches/media/uas-to-receiver-srtp.xml; "vs plain" is its CPU per packet
#       over the plain row's of the same mode. SRTP=0 skips these rows.
#
# CPU per packet: the C loop's own getrusage over its sending loop; for SIPp and
# sipwright /usr/bin/time's user + sys of the whole UAC run (signalling included,
# a few µs per call against ~50 packets per call-second) divided by every packet
# the receiver got from it over the whole run.
#
#   benches/media.sh                      # ≈ 10 minutes (60 s windows)
#   QUICK=1 benches/media.sh              # < 3 minutes (10 s windows)
#   WINDOW=30 SIPP_STREAMS="1000 4000" NO_BUILD=1 benches/media.sh
#   SRTP=0 SIPP_STREAMS="" benches/media.sh  # no SRTP rows, no SIPp rows
#
# The machine has 2 cores shared by sender, receiver, the SIPp UAS and whatever
# else runs: figures move from run to run; compare rows of the same run.
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=${QUICK:-0}
if [ "$QUICK" = 1 ]; then
  WINDOW=${WINDOW:-10}; SIPP_RATE=${SIPP_RATE:-500}; SW_RATE=${SW_RATE:-1000}
  SETTLE=${SETTLE:-2}; MARGIN=${MARGIN:-2}
else
  WINDOW=${WINDOW:-60}; SIPP_RATE=${SIPP_RATE:-200}; SW_RATE=${SW_RATE:-500}
  SETTLE=${SETTLE:-3}; MARGIN=${MARGIN:-3}
fi
SIPP_STREAMS=${SIPP_STREAMS-"1000 2000 4000"}  # may be set empty to skip SIPp
C_STREAMS=${C_STREAMS:-5000}
SW_STREAMS=${SW_STREAMS:-5000}
SRTP=${SRTP:-1}
# Out of the way of sipwright's RTP ports (SW_RTP_PORTS) and of each other.
PORT_UAS=${PORT_UAS:-45060}
PORT_UAC=${PORT_UAC:-45070}
SIPP_MEDIA_PORT=${SIPP_MEDIA_PORT:-46000}
RECV_PORT=${RECV_PORT:-47000}
SW_RTP_PORTS=${SW_RTP_PORTS:-20000-39999}
TE_PT=${TE_PT:-101}

command -v sipp >/dev/null || { echo "sipp not found: apt-get install sip-tester"; exit 2; }
command -v cc >/dev/null || { echo "cc not found: apt-get install gcc"; exit 2; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time not found: apt-get install time"; exit 2; }
command -v setsid >/dev/null || { echo "setsid not found: apt-get install util-linux"; exit 2; }

# Per-call RTP (and RTCP) sockets: 5,000 calls need 10,000+ descriptors.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

WORK=$(mktemp -d)
# Every background process is started with setsid, so it leads its own process
# group and the trap can end it and its children by that id, and nothing else.
# `timeout` goes first in a chain: it makes a group of its own, so anything
# before it would leave the rest out of ours; /usr/bin/time ignores the SIGINT
# that timeout (or finish) sends, so its figures are still written.
PGIDS=()
cleanup() {
  local p
  for p in "${PGIDS[@]}"; do kill -TERM -- "-$p" 2>/dev/null || true; done
  sleep 0.2
  for p in "${PGIDS[@]}"; do kill -KILL -- "-$p" 2>/dev/null || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
# spawn OUTFILE CMD... → $spawned: a process-group leader running CMD (stdout to OUTFILE)
spawn() {
  local out=$1; shift
  setsid "$@" >"$out" 2>"$out.err" </dev/null &
  spawned=$!
  PGIDS+=("$spawned")
}
# finish PID SECONDS: wait for PID to end by itself, else SIGINT, then SIGKILL its group.
finish() {
  local pid=$1 i
  for i in $(seq $(( $2 * 10 ))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -INT -- "-$pid" 2>/dev/null || true
  for i in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- "-$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

cc -O2 -o "$WORK/rtp_receiver" benches/media/rtp_receiver.c -lm
cc -O2 -o "$WORK/sendto_loop" benches/media/sendto_loop.c
# SIPp 3.6.1's rtp_stream sends a file's bytes verbatim (a .wav header would go
# out as audio): one second of raw µ-law silence, looped.
head -c 8000 /dev/zero | tr '\0' '\377' >"$WORK/silence.ulaw"

# json FILE EXPR → a value from a JSON object (EXPR in Python, the object is j).
json() { python3 -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$1"; }
# Fields of a /usr/bin/time -f "%e %U %S %M" line.
cpu_of() { tail -n 1 "$1" | awk '{printf "%.3f", $2 + $3}'; }
rss_of() { tail -n 1 "$1" | awk '{print $4}'; }

# receiver WARMUP SECONDS TAIL → $receiver_pid; output in $WORK/recv.json
receiver() {
  spawn "$WORK/recv.json" "$WORK/rtp_receiver" --ports "$RECV_PORT" --warmup "$1" \
    --seconds "$2" --tail "$3" --te-pt "$TE_PT" --max-streams 16384
  receiver_pid=$spawned
  sleep 0.2
}
stop_receiver() { # after the sender is done: the receiver prints on SIGTERM
  sleep 0.2
  kill -TERM "$receiver_pid" 2>/dev/null || true
  finish "$receiver_pid" 5
}

# SIPp UAS for N calls, answering with SDP that points at the receiver
# (SCENARIO: benches/media/uas-to-receiver.xml unless given).
sipp_uas() { # N SECONDS [SCENARIO]
  spawn "$WORK/uas.out" timeout -s INT "$2" sipp -sf "$PWD/${3:-benches/media/uas-to-receiver.xml}" \
    -key receiver_port "$RECV_PORT" -i 127.0.0.1 -p "$PORT_UAS" -buff_size 4194304 \
    -nostdin -m "$1" -timeout "$2"s
  uas_pid=$spawned
  sleep 0.5
}

ROWS=$WORK/rows.tsv
NOTES=$WORK/notes.txt
: >"$ROWS"; : >"$NOTES"
note() { echo "- $*" >>"$NOTES"; }
# row NAME STREAMS CPU_US_PER_PACKET FAILED [PLAIN_ROW]: one table row, the rest of
# it from the receiver's $WORK/recv.json, plus a note with what the table leaves
# out. PLAIN_ROW names the row whose CPU per packet "vs plain" divides by.
row() {
  python3 - "$WORK/recv.json" "$@" >>"$ROWS" 2>>"$NOTES" <<'EOF'
import json, sys
path, name, streams, cpu, failed = sys.argv[1:6]
plain = sys.argv[6] if len(sys.argv) > 6 else ""
try:
    j = json.load(open(path))
except (OSError, ValueError):
    print("\t".join([name, streams, "-", "-", "-", "-", cpu, failed, plain]))
    sys.stderr.write(f"- {name}: the receiver printed nothing\n")
    sys.exit(0)
jit = j["jitter_ms"]
print("\t".join([name, str(j["streams"]), str(round(j["packets_per_s"])), "%.3f" % j["loss_pct"],
                 "%.2f" % jit["mean"], "%.2f" % jit["max"], cpu, failed, plain]))
sys.stderr.write(
    f"- {name}: {j['packets']} packets in {j['window_s']:.1f} s from {j['streams']} streams"
    f" (expected {streams}), lost {j['lost']}, duplicates {j['duplicates']},"
    f" jitter p99 {jit['p99']:.2f} ms; receiver queue drops {j['rx_queue_drops']},"
    f" receiver CPU {j['cpu_s']['user'] + j['cpu_s']['sys']:.2f} s\n")
EOF
}
# per_packet CPU_SECONDS → µs per packet the receiver got over the whole run
per_packet() {
  local total
  total=$(json "$WORK/recv.json" 'j["packets_total"]' 2>/dev/null || echo 0)
  awk -v c="$1" -v p="$total" 'BEGIN{if (p > 0) printf "%.2f", c * 1e6 / p; else print "-"}'
}
total_packets() { json "$WORK/recv.json" 'j["packets_total"]' 2>/dev/null || echo 0; }

# Timing of a call-based run at RATE for N calls: every call is up `ramp` seconds
# in; the window opens SETTLE seconds later; calls are held until MARGIN seconds
# after it closes; the last call ends at ramp + hold.
plan() {
  ramp=$(( ($1 + $2 - 1) / $2 ))
  hold=$(( ramp + SETTLE + WINDOW + MARGIN ))
  bound=$(( 2 * ramp + hold + 60 ))
}

run_sipp() { # N
  local n=$1 rc=0
  plan "$n" "$SIPP_RATE"
  sipp_uas "$n" "$bound"
  receiver "$(( ramp + SETTLE ))" "$WINDOW" "$bound"
  # cwd = $WORK: rtp_stream opens silence.ulaw relative to it.
  spawn "$WORK/uac.out" timeout -s INT "$bound" /usr/bin/time -f "%e %U %S %M" -o "$WORK/uac.time" \
    sh -c 'cd "$1" && shift && exec "$@"' _ "$WORK" \
    sipp -sf "$PWD/benches/media/uac-rtp-stream.xml" 127.0.0.1:"$PORT_UAS" -i 127.0.0.1 \
    -p "$PORT_UAC" -mi 127.0.0.1 -mp "$SIPP_MEDIA_PORT" -buff_size 4194304 -nostdin \
    -r "$SIPP_RATE" -m "$n" -d "$(( hold * 1000 ))" -timeout "$bound"s \
    -trace_stat -stf "$WORK/uac.csv"
  local uac=$spawned
  wait "$uac" || rc=$?
  stop_receiver
  finish "$uas_pid" 5
  local ok failed cpu
  # Calls that did not succeed, whatever the reason (failed or never finished).
  ok=$(awk -F';' 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "SuccessfulCall(C)") c = i }
                  END { print (c ? $c : 0) }' "$WORK/uac.csv" 2>/dev/null || echo 0)
  failed=$(( n - ${ok:-0} ))
  cpu=$(cpu_of "$WORK/uac.time")
  row "SIPp rtp_stream $n" "$n" "$(per_packet "$cpu")" "$failed"
  note "SIPp rtp_stream $n: UAC exit $rc, CPU $cpu s for $(total_packets) packets, peak RSS $(rss_of "$WORK/uac.time") KB"
}

run_c_loop() { # N
  local n=$1
  receiver 2 "$WINDOW" 0
  # The loop starts sending 1 s after launch, so the receiver's window (2 s to
  # 2 s + WINDOW) sits inside the sending (1 s to 3 s + WINDOW).
  "$WORK/sendto_loop" --streams "$n" --ports "$RECV_PORT" --seconds "$(( WINDOW + 2 ))" >"$WORK/loop.json"
  finish "$receiver_pid" 5
  c_cpu=$(json "$WORK/loop.json" '"%.2f" % j["cpu_us_per_packet"]')
  row "C sendto loop $n" "$n" "$c_cpu" "-"
  note "C sendto loop $n: $(json "$WORK/loop.json" '"%d packets sent, %d errors, %.2f s CPU; %d ticks woken > 1 ms late, at worst %.1f ms" % (j["packets"], j["send_errors"], j["cpu_s"], j["late_ticks"], j["max_lag_ms"])')"
}

# run_sw SCENARIO UAS_XML NAME N PLAIN_ROW [extra args...] (PLAIN_ROW: "" or the
# row this one's CPU per packet is compared with)
run_sw() {
  local scenario=$1 uas=$2 name=$3 n=$4 plain=$5 rc=0; shift 5
  plan "$n" "$SW_RATE"
  sipp_uas "$n" "$bound" "$uas"
  receiver "$(( ramp + SETTLE ))" "$WINDOW" "$bound"
  spawn "$WORK/sw.out" timeout -s INT "$bound" /usr/bin/time -f "%e %U %S %M" -o "$WORK/sw.time" \
    "$SW" run "$scenario" --target 127.0.0.1:"$PORT_UAS" --rate "$SW_RATE" \
    --concurrency "$n" --calls "$n" --call-duration "${hold}s" --rtp-ports "$SW_RTP_PORTS" \
    --quiet --report "$WORK/sw.json" "$@"
  local uac=$spawned
  wait "$uac" || rc=$?
  stop_receiver
  finish "$uas_pid" 5
  local ok failed cpu
  ok=$(json "$WORK/sw.json" 'j["calls"].get("succeeded", j["calls"]["started"] - j["calls"]["failed"])' 2>/dev/null || echo 0)
  failed=$(( n - ok ))
  cpu=$(cpu_of "$WORK/sw.time")
  row "$name" "$n" "$(per_packet "$cpu")" "$failed" "$plain"
  sw_rss=$(rss_of "$WORK/sw.time")
  note "$name: exit $rc, CPU $cpu s for $(total_packets) packets, peak RSS $sw_rss KB"
  if [ "$scenario" = uac-srtp ]; then
    note "$name: $(json "$WORK/sw.json" '"%d SRTP streams, %d auth failures, %d sends dropped" % (j["rtp"]["srtp_streams"], j["rtp"]["srtp_auth_failures"], j["rtp"]["send_dropped"])' 2>/dev/null || echo "no report")"
  fi
  if [ "$failed" != 0 ]; then
    note "$name: failures: $(json "$WORK/sw.json" '"; ".join("%s: %s" % (f["reason"], f["detail"]) for f in j["failure_samples"][:3])' 2>/dev/null || echo "no report")"
  fi
}

# RSS of the same calls without media: `run uac` (its INVITE's SDP is answered
# by the same SIPp UAS; no RTP is sent). Held a few seconds once all are up.
run_sw_signalling() { # N → $sig_rss
  local n=$1
  plan "$n" "$SW_RATE"
  sipp_uas "$n" "$bound"
  timeout -s INT "$bound" /usr/bin/time -f "%e %U %S %M" -o "$WORK/sig.time" \
    "$SW" run uac --target 127.0.0.1:"$PORT_UAS" --rate "$SW_RATE" \
    --concurrency "$n" --calls "$n" --call-duration "$(( ramp + 3 ))s" --quiet \
    >/dev/null 2>&1 </dev/null || true
  finish "$uas_pid" 5
  sig_rss=$(rss_of "$WORK/sig.time")
}

echo "== media: ${WINDOW}s windows, receiver on 127.0.0.1:$RECV_PORT, $(sipp -v 2>&1 | grep -o 'v[0-9.]*' | head -1 | sed 's/^/SIPp /')"
for n in $SIPP_STREAMS; do
  echo "-- SIPp rtp_stream, $n calls at $SIPP_RATE calls/s" >&2
  run_sipp "$n"
done
echo "-- C sendto loop, $C_STREAMS streams" >&2
c_cpu=""
run_c_loop "$C_STREAMS"

SW=${SW:-${CARGO_TARGET_DIR:-target}/release/sipwright}
if [ "${NO_BUILD:-0}" != 1 ] && command -v cargo >/dev/null; then
  cargo build --release --quiet || echo "cargo build failed: using $SW as it is" >&2
fi
UAS_PLAIN=benches/media/uas-to-receiver.xml
UAS_SRTP=benches/media/uas-to-receiver-srtp.xml
sw_scenarios=$([ -x "$SW" ] && "$SW" scenarios 2>/dev/null || true)
if grep -qw uac-media <<<"$sw_scenarios"; then
  srtp=0
  if [ "$SRTP" != 0 ]; then
    if grep -qw uac-srtp <<<"$sw_scenarios"; then srtp=1
    else echo "sipwright: no uac-srtp in this build (SRTP rows skipped)"; fi
  fi
  # Each SRTP row right after the plain row of its mode.
  plain="sipwright $SW_STREAMS"
  echo "-- sipwright uac-media, $SW_STREAMS calls at $SW_RATE calls/s" >&2
  run_sw uac-media "$UAS_PLAIN" "$plain" "$SW_STREAMS" ""; rss_ports=$sw_rss
  if [ "$srtp" = 1 ]; then
    echo "-- sipwright uac-srtp" >&2
    run_sw uac-srtp "$UAS_SRTP" "sipwright $SW_STREAMS SRTP" "$SW_STREAMS" "$plain"
    rss_srtp_ports=$sw_rss
  fi
  plain="sipwright $SW_STREAMS --rtp-shared"
  echo "-- sipwright uac-media --rtp-shared" >&2
  run_sw uac-media "$UAS_PLAIN" "$plain" "$SW_STREAMS" "" --rtp-shared; rss_shared=$sw_rss
  if [ "$srtp" = 1 ]; then
    echo "-- sipwright uac-srtp --rtp-shared" >&2
    run_sw uac-srtp "$UAS_SRTP" "sipwright $SW_STREAMS SRTP --rtp-shared" "$SW_STREAMS" "$plain" \
      --rtp-shared
    rss_srtp_shared=$sw_rss
  fi
  echo "-- sipwright uac (no media), for RSS" >&2
  run_sw_signalling "$SW_STREAMS"
  rss_vars="rss_ports rss_shared"
  [ "$srtp" = 1 ] && rss_vars="rss_ports rss_srtp_ports rss_shared rss_srtp_shared"
  for v in $rss_vars; do
    note "$(awk -v m="${!v}" -v s="$sig_rss" -v n="$SW_STREAMS" -v w="$v" 'BEGIN{
      mode["rss_ports"] = "per-call ports"; mode["rss_shared"] = "--rtp-shared"
      mode["rss_srtp_ports"] = "SRTP, per-call ports"; mode["rss_srtp_shared"] = "SRTP, --rtp-shared"
      printf "RSS per media call (%s): (%d - %d KB) / %d calls = %.2f KB", mode[w], m, s, n, (m - s) / n }')"
  done
else
  echo "sipwright: media not available in this build (skipped)"
  for name in "sipwright $SW_STREAMS" "sipwright $SW_STREAMS --rtp-shared"; do
    printf '%s\t-\t-\t-\t-\t-\t-\tskipped\t\n' "$name" >>"$ROWS"
  done
fi

echo
declare -A cpu_of_row
while IFS=$'\t' read -r name streams pps loss jm jx cpu failed plain; do
  cpu_of_row[$name]=$cpu
done <"$ROWS"
echo "| sender | streams | packets/s | loss % | mean jitter ms | max jitter ms | CPU µs/packet | vs C loop | vs plain | failed calls |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
while IFS=$'\t' read -r name streams pps loss jm jx cpu failed plain; do
  ratio=$(awk -v a="$cpu" -v c="${c_cpu:-}" 'BEGIN{if (a + 0 > 0 && c + 0 > 0) printf "%.2fx", a / c; else print "-"}')
  vs_plain=$(awk -v a="$cpu" -v c="${plain:+${cpu_of_row[$plain]:-}}" 'BEGIN{if (a + 0 > 0 && c + 0 > 0) printf "%.2fx", a / c; else print "-"}')
  echo "| $name | $streams | $pps | $loss | $jm | $jx | $cpu | $ratio | $vs_plain | $failed |"
done <"$ROWS"
echo
cat "$NOTES"
echo "(jitter: RFC 3550 interarrival jitter per stream from kernel arrival stamps; mean of the"
echo " streams' final values, max of the largest value any stream reached; loss = expected - received"
echo " over the window. 2 shared cores: compare rows of the same run.)"
