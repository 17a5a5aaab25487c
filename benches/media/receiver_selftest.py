#!/usr/bin/env python3
"""Checks rtp_receiver against streams whose loss, duplicates, wrap, jitter and
RFC 4733 digits are known, so its figures can be trusted in benches/media.sh.

    cc -O2 -o /tmp/rtp_receiver benches/media/rtp_receiver.c -lm
    python3 benches/media/receiver_selftest.py /tmp/rtp_receiver
"""
import json
import socket
import struct
import subprocess
import sys
import time

RECV = sys.argv[1] if len(sys.argv) > 1 else "./rtp_receiver"
PORT = 47900


def rtp(pt, seq, ts, ssrc, payload, marker=False):
    return struct.pack("!BBHII", 0x80, pt | (0x80 if marker else 0), seq & 0xFFFF,
                       ts & 0xFFFFFFFF, ssrc) + payload


def main():
    proc = subprocess.Popen([RECV, "--ports", f"{PORT}-{PORT + 1}", "--seconds", "3",
                             "--te-pt", "101"], stdout=subprocess.PIPE)
    time.sleep(0.3)
    a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    audio = b"\xff" * 160
    start = time.monotonic()
    # Stream 1 (port A, SSRC 1): 100 packets across the sequence wrap, every 10th
    # missing (10 lost), and 3 sent twice (3 duplicates); 20 ms on the dot.
    # Stream 2 (port B, SSRC 2): 100 packets, odd ones 10 ms late (jitter about
    # 10 ms: |D| alternates 80 timestamp units, J tends to 80 = 10 ms).
    # Stream 3 (port A again, SSRC 3): audio and two RFC 4733 events ('5', '#'),
    # five packets each (the final one three times), sequence numbers increasing
    # throughout: no loss, no duplicates, two digits.
    seq3 = 0
    for k in range(100):
        due = start + k * 0.02
        while time.monotonic() < due:
            time.sleep(0.0005)
        seq = 65500 + k
        if k % 10 != 5:
            a.sendto(rtp(0, seq, 1000 + 160 * k, 1, audio), ("127.0.0.1", PORT))
        if k in (20, 40, 60):
            a.sendto(rtp(0, seq, 1000 + 160 * k, 1, audio), ("127.0.0.1", PORT))
        if k % 2 == 0:
            b.sendto(rtp(0, k, 160 * k, 2, audio), ("127.0.0.1", PORT + 1))
        a.sendto(rtp(0, seq3, 160 * k, 3, audio), ("127.0.0.1", PORT))
        seq3 += 1
        if k % 2 == 1:
            time.sleep(0.010)
            b.sendto(rtp(0, k, 160 * k, 2, audio), ("127.0.0.1", PORT + 1))
        if k in (30, 70):
            event = 5 if k == 30 else 11
            for i, end in enumerate((0, 0, 1, 1, 1)):
                payload = struct.pack("!BBH", event, 0x80 * end | 10, 160 * (i + 1))
                a.sendto(rtp(101, seq3, 160 * k, 3, payload, i == 0), ("127.0.0.1", PORT))
                seq3 += 1
    out = json.loads(proc.communicate(timeout=10)[0])
    print(json.dumps(out))
    ok = True

    def check(what, cond):
        nonlocal ok
        print(("ok   " if cond else "FAIL ") + what)
        ok &= cond

    check("3 streams", out["streams"] == 3)
    check("10 lost (stream 1, across the sequence wrap)", out["lost"] == 10)
    check("3 duplicates (stream 1)", out["duplicates"] == 3)
    check("packets: 90 + 3 + 100 + 110", out["packets"] == 303)
    check("2 digits '5#'", out["digits"] == 2 and out["digit_log"] == "5#")
    check("max jitter about 10 ms (8-12)", 8 <= out["jitter_ms"]["max"] <= 12)
    check("mean jitter between stream 2's and the others'", 2 < out["jitter_ms"]["mean"] < 6)
    check("no receive-queue drops", out["rx_queue_drops"] == 0)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
