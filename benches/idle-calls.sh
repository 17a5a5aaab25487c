#!/usr/bin/env bash
# Memory per established idle call. A sipwright UAC holds CALLS calls open at once
# (each pauses after its ACK) against a sipwright UAS in another process. Once every
# call is established, both processes' RSS is read from /proc; the same is done for a
# small BASE run, and the difference per call is what one more idle call costs.
# (Peak RSS would also count the hang-up phase, when finished UAS calls linger as
# compact tombstones for timer J while the slots they used are still allocated.)
#
#   benches/idle-calls.sh                   # 100,000 calls at 20,000/s
#   CALLS=50000 RATE=10000 benches/idle-calls.sh
set -euo pipefail
cd "$(dirname "$0")/.."

CALLS=${CALLS:-100000}
RATE=${RATE:-20000}
BASE=${BASE:-1000}
PORT_UAS=${PORT_UAS:-25160}
cargo build --release --quiet
SW=${SW:-${CARGO_TARGET_DIR:-target}/release/sipwright}
WORK=$(mktemp -d)
trap 'pkill -f "run uas --bind 127.0.0.1:$PORT_UAS" 2>/dev/null || true; rm -rf "$WORK"' EXIT

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }

# idle_rss N → "UAC UAS" RSS in KB while N calls are established and idle.
idle_rss() {
  local n=$1
  local ramp=$(( (n + RATE - 1) / RATE ))
  "$SW" run uas --bind 127.0.0.1:"$PORT_UAS" --calls "$n" --quiet >/dev/null 2>&1 &
  local uas=$!
  sleep 0.3
  "$SW" run uac --target 127.0.0.1:"$PORT_UAS" --rate "$RATE" --calls "$n" \
    --call-duration "$(( ramp + 6 ))s" --quiet --report "$WORK/r.json" >/dev/null 2>&1 &
  local uac=$!
  # Every call has started by `ramp` seconds; read in the middle of the pause.
  sleep "$(( ramp + 3 ))"
  local a b
  a=$(rss_kb "$uac"); b=$(rss_kb "$uas")
  wait "$uac" || true
  wait "$uas" 2>/dev/null || true
  local ok
  ok=$(grep -o '"succeeded": *[0-9]*' "$WORK/r.json" | grep -o '[0-9]*$' || echo 0)
  [ "$ok" = "$n" ] || echo "warning: $ok of $n calls succeeded" >&2
  echo "$a $b"
}

read -r base_uac base_uas <<<"$(idle_rss "$BASE")"
read -r full_uac full_uas <<<"$(idle_rss "$CALLS")"
for side in uac uas; do
  base_v=base_$side full_v=full_$side
  per=$(( (${!full_v} - ${!base_v}) * 1024 / (CALLS - BASE) ))
  printf '%s RSS: %s KB with %s idle calls, %s KB with %s → %s bytes per idle call\n' \
    "${side^^}" "${!full_v}" "$CALLS" "${!base_v}" "$BASE" "$per"
done
