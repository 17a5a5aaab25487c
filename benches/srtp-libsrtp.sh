#!/usr/bin/env bash
# SRTP protect and unprotect per packet: libsrtp 2 from C (benches/srtp/libsrtp_bench.c)
# next to `cargo bench --bench srtp`, for AES_CM_128_HMAC_SHA1_80 and AEAD_AES_128_GCM, in
# one run. Prints µs per packet (medians) and the ratio sipwright / libsrtp.
#
#   benches/srtp-libsrtp.sh                  # the system libsrtp2 (Debian: apt-get install libsrtp2-dev)
#
# Another libsrtp build, e.g. one on OpenSSL (cisco/libsrtp v2.5.0:
# `./configure --enable-openssl && make libsrtp2.a`, then copy include/srtp.h to DIR/srtp2/):
#
#   LIBSRTP_CFLAGS=-IDIR LIBSRTP_LIBS="/path/to/libsrtp2.a -lcrypto" benches/srtp-libsrtp.sh
set -euo pipefail
cd "$(dirname "$0")/.."

CC=${CC:-cc}
LIBSRTP_CFLAGS=${LIBSRTP_CFLAGS:-}
LIBSRTP_LIBS=${LIBSRTP_LIBS:--lsrtp2}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# shellcheck disable=SC2086 # the flags are word lists
"$CC" -O2 $LIBSRTP_CFLAGS -o "$WORK/libsrtp_bench" benches/srtp/libsrtp_bench.c $LIBSRTP_LIBS \
  || { echo "cannot build benches/srtp/libsrtp_bench.c: needs a C compiler and libsrtp2-dev"; exit 2; }
"$WORK/libsrtp_bench" >"$WORK/libsrtp.txt"

cargo bench --quiet --bench srtp -- protect_160_byte_payload unprotect_172_bytes \
  >"$WORK/divan.txt" 2>"$WORK/divan.err" || { cat "$WORK/divan.err"; exit 1; }

# divan prints a tree: drop the tree drawing, keep NAME | fastest | slowest | median | ...
sed -E 's/^(│| )*(├─|╰─) //; s/│/|/g' "$WORK/divan.txt" | awk -F'|' '
  function us(text,   n, unit) {
    n = split(text, f, " "); unit = f[2]
    if (unit == "ns") return f[1] / 1000
    if (unit == "ms") return f[1] * 1000
    if (unit == "s") return f[1] * 1000000
    return f[1]
  }
  NF >= 4 {
    split($1, name, " ")
    if ($3 ~ /^ *$/) { bench = name[1]; next }
    op = bench == "protect_160_byte_payload" ? "protect" : "unprotect"
    printf "%s %s %.3f\n", op, name[1], us($3)
  }' >"$WORK/ours.txt"

build="$CC -O2${LIBSRTP_CFLAGS:+ $LIBSRTP_CFLAGS} libsrtp_bench.c $LIBSRTP_LIBS"
echo "$(sed -n 's/^# //p' "$WORK/libsrtp.txt") ($build) vs sipwright, µs per packet (medians)"
echo "protect: 12-byte header + 160-byte payload; unprotect: 172 bytes on the wire"
printf '%-10s %-24s %9s %10s %18s\n' operation suite libsrtp sipwright "sipwright/libsrtp"
awk 'NR == FNR { ours[$1 " " $2] = $3; next }
     /^#/ { next }
     ($1 " " $2) in ours {
       printf "%-10s %-24s %9.3f %10.3f %18.2f\n", $1, $2, $3, ours[$1 " " $2], ours[$1 " " $2] / $3
     }' "$WORK/ours.txt" "$WORK/libsrtp.txt"
