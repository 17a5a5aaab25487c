#!/usr/bin/env bash
# Whole-job throughput and memory of `srtp decrypt` on a large capture: one SDES call
# whose two AES_CM_128_HMAC_SHA1_80 streams fill SIZE_MB of pcap (214-byte frames,
# libsrtp-protected by benches/make_big_capture.py; sequence numbers wrap many times).
# Prints packets decrypted per second, peak RSS, and the time `cp` takes to copy the
# same file (the I/O floor) in the same run.
#
#   benches/decrypt-capture.sh               # 1024 MB
#   SIZE_MB=200 benches/decrypt-capture.sh
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE_MB=${SIZE_MB:-1024}
[ -x /usr/bin/time ] || { echo "/usr/bin/time not found: apt-get install time"; exit 2; }
/usr/bin/python3 -c "import pylibsrtp, cryptography" 2>/dev/null \
  || { echo "needs Debian's python3-pylibsrtp and python3-cryptography (apt-get install them)"; exit 2; }
cargo build --release --quiet
SW=${SW:-${CARGO_TARGET_DIR:-target}/release/sipwright}
WORK=${WORK:-$(mktemp -d)}
trap 'rm -rf "$WORK"' EXIT

packets=$(( SIZE_MB * 1024 * 1024 / 230 ))
echo "writing a ${SIZE_MB} MB capture ($packets SRTP packets)…"
/usr/bin/python3 benches/make_big_capture.py "$WORK/big.pcap" "$packets"
ls -l "$WORK/big.pcap" | awk '{printf "capture: %.0f MB\n", $5 / 1048576}'

t0=$(date +%s.%N)
cp "$WORK/big.pcap" "$WORK/copy.pcap"
sync "$WORK/copy.pcap"
t1=$(date +%s.%N)
rm -f "$WORK/copy.pcap"

/usr/bin/time -f "%e %U %S %M" -o "$WORK/time" \
  "$SW" srtp decrypt "$WORK/big.pcap" -o "$WORK/out.pcap" --json >"$WORK/report.json"
sync "$WORK/out.pcap"
read -r wall user sys rss <"$WORK/time"
decrypted=$(grep -o '"decrypted":[0-9]*' "$WORK/report.json" | awk -F: '{s += $2} END {print s}')
failed=$(grep -o '"auth_failures":[0-9]*' "$WORK/report.json" | awk -F: '{s += $2} END {print s}')
awk -v w="$wall" -v u="$user" -v s="$sys" -v r="$rss" -v d="$decrypted" -v f="$failed" \
    -v t0="$t0" -v t1="$t1" 'BEGIN {
  c = t1 - t0
  printf "decrypted %d packets (%d failed) in %.2f s wall, %.2f s CPU\n", d, f, w, u + s
  printf "  %.2f M packets/s per CPU second, %.2f M packets/s wall\n", d / (u + s) / 1e6, d / w / 1e6
  printf "  peak RSS %.1f MB\n", r / 1024
  printf "cp of the same file: %.2f s (decrypt / cp = %.1fx)\n", c, w / c
}'
