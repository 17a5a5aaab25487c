#!/usr/bin/env bash
# Two media checks that take minutes, not seconds:
#  1. DTMF over many calls: CALLS loopback uac-media → uas-media calls, captured on
#     the RTP port range with tshark; tshark's rtpevent dissector must decode every
#     digit (4 per call, end packets with the E bit) and uas-media's expect_dtmf must
#     hold on every call (the report's dtmf figures).
#  2. Memory over a long media run: SOAK seconds of uac-media at SOAK_CONCURRENCY
#     calls against uas-media in another process; RSS of both sampled every
#     SAMPLE seconds (flat = no growth per call or per packet).
#
#   benches/media-dtmf-soak.sh                      # 1,000 calls, 10-minute soak
#   CALLS=200 SOAK=60 benches/media-dtmf-soak.sh    # a quick look
set -euo pipefail
cd "$(dirname "$0")/.."

CALLS=${CALLS:-1000}
RATE=${RATE:-50}
SOAK=${SOAK:-600}
SOAK_CONCURRENCY=${SOAK_CONCURRENCY:-500}
SAMPLE=${SAMPLE:-60}
PORTS=${PORTS:-32000-33999}
PORT_UAS=${PORT_UAS:-25260}
[ "${NO_BUILD:-0}" = 1 ] || cargo build --release --quiet
SW=${SW:-${CARGO_TARGET_DIR:-target}/release/sipwright}
WORK=$(mktemp -d)
cleanup() {
  pkill -f "run uas-media --bind 127.0.0.1:$PORT_UAS" 2>/dev/null || true
  [ -n "${TSHARK:-}" ] && kill "$TSHARK" 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

echo "== DTMF: $CALLS calls at $RATE calls/s, RTP on $PORTS"
low=${PORTS%-*}; high=${PORTS#*-}
if command -v tshark >/dev/null; then
  tshark -i lo -f "udp portrange $low-$high" -w "$WORK/dtmf.pcap" -q 2>/dev/null &
  TSHARK=$!
  sleep 2
fi
"$SW" run uac-media --loopback --calls "$CALLS" --rate "$RATE" --call-duration 2s \
  --rtp-ports "$PORTS" --quiet --report "$WORK/dtmf.json" || true
if [ -n "${TSHARK:-}" ]; then
  sleep 1; kill -INT "$TSHARK"; wait "$TSHARK" 2>/dev/null || true; TSHARK=
  # Ports in the range that tshark gives to another dissector (e.g. 32000 and
  # 32512 are `uaudp`) would hide those streams from the RTP heuristic: decode
  # them as RTP explicitly.
  decode=()
  for p in $(tshark -G decodes 2>/dev/null | awk -F'\t' -v lo="$low" -v hi="$high" \
      '$1 == "udp.port" && $2 >= lo && $2 <= hi { print $2 }'); do
    decode+=(-d "udp.port==$p,rtp")
  done
  # One digit per event: the first end packet (E bit) of each (SSRC, timestamp).
  decoded=$(tshark -r "$WORK/dtmf.pcap" -o rtp.heuristic_rtp:TRUE "${decode[@]}" \
      -Y 'rtpevent.end_of_event == 1' -T fields -e rtp.ssrc -e rtp.timestamp -e rtpevent.event_id \
      2>/dev/null | sort -u | wc -l)
  streams=$(tshark -r "$WORK/dtmf.pcap" -o rtp.heuristic_rtp:TRUE "${decode[@]}" -Y 'rtpevent' \
      -T fields -e rtp.ssrc 2>/dev/null | sort -u | wc -l)
  echo "tshark: $decoded digits decoded from $streams streams; expected $(( CALLS * 4 )) from $CALLS"
else
  echo "tshark not installed: capture check skipped"
fi
python3 - "$WORK/dtmf.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1])); p = j["peer"]
print("report: calls %d/%d ok (uac), %d/%d ok (uas); digits sent %d, received %d, mismatches %d; rtp lost %d/%d"
      % (j["calls"]["succeeded"], j["calls"]["started"], p["calls"]["succeeded"], p["calls"]["started"],
         j["dtmf"]["digits_sent"], p["dtmf"]["digits_received"], p["dtmf"]["mismatches"],
         j["rtp"]["lost"], p["rtp"]["lost"]))
PY

[ "$SOAK" -gt 0 ] || exit 0
echo "== soak: ${SOAK}s at $SOAK_CONCURRENCY concurrent media calls (10 s each)"
rate=$(( SOAK_CONCURRENCY / 10 ))
"$SW" run uas-media --bind 127.0.0.1:"$PORT_UAS" --rtp-ports "$low-$(( (low + high) / 2 ))" \
  --quiet --report "$WORK/uas.json" >/dev/null 2>&1 &
uas=$!
sleep 0.5
# Calls still up when --duration ends get --drain-timeout to finish (a call lasts
# about 10 s: 1 s, the digits, 8 s).
"$SW" run uac-media --target 127.0.0.1:"$PORT_UAS" --rate "$rate" --duration "${SOAK}s" \
  --drain-timeout 15s --call-duration 8s --rtp-ports "$(( (low + high) / 2 + 1 ))-$high" --quiet \
  --report "$WORK/uac.json" >/dev/null 2>&1 &
uac=$!
rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
t=0
echo "t_s uac_rss_kb uas_rss_kb"
while kill -0 "$uac" 2>/dev/null && [ "$t" -le "$SOAK" ]; do
  sleep "$SAMPLE"; t=$(( t + SAMPLE ))
  echo "$t $(rss_kb "$uac") $(rss_kb "$uas")"
done
wait "$uac" || true
kill -INT "$uas" 2>/dev/null || true; wait "$uas" 2>/dev/null || true
python3 - "$WORK/uac.json" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))
print("uac: %d calls, %d failed; rtp sent %d, received %d, lost %d; digits sent %d"
      % (j["calls"]["started"], j["calls"]["failed"], j["rtp"]["packets_sent"],
         j["rtp"]["packets_received"], j["rtp"]["lost"], j["dtmf"]["digits_sent"]))
PY
