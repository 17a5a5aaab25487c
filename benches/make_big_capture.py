#!/usr/bin/python3
"""Writes a large classic pcap for benches/decrypt-capture.sh: one SIP call (INVITE with
an SDES offer, 200 OK with the answer) followed by PACKETS SRTP packets, alternating
between the two directions, protected by libsrtp (AES_CM_128_HMAC_SHA1_80, 160-byte
PCMU payloads: 214-byte frames). Streams the file out; needs python3-pylibsrtp and
python3-cryptography (the layer builders come from tests/fixtures/srtp/make_captures.py).

    /usr/bin/python3 benches/make_big_capture.py OUT.pcap PACKETS
"""

import base64
import os
import struct
import sys

import pylibsrtp

# The layer builders (and their checksums) of the test-capture generator.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "srtp"))
from make_captures import ethernet, ipv4, udp  # noqa: E402

A, B = ("10.0.0.1", 40000), ("10.0.0.2", 50000)
SIP_A, SIP_B = ("10.0.0.1", 5060), ("10.0.0.2", 5060)
KEY_A, KEY_B = bytes(range(30)), bytes(range(100, 130))


def frame(src, dst, payload, ident):
    """Ethernet + IPv4 + UDP, built with the test generator's layer functions."""
    return ethernet(src[0], dst[0], ipv4(src[0], dst[0], 17, udp(src, dst, payload), ident & 0xFFFF))


def sdp(ip, port, key):
    k = base64.b64encode(key).decode()
    return (f"v=0\r\no=- 1 1 IN IP4 {ip}\r\ns=-\r\nc=IN IP4 {ip}\r\nt=0 0\r\n"
            f"m=audio {port} RTP/SAVP 0\r\na=rtpmap:0 PCMU/8000\r\n"
            f"a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:{k}\r\n")


def sip(first, body, cseq="1 INVITE"):
    head = (f"{first}\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\n"
            "From: <sip:a@10.0.0.1>;tag=a\r\nTo: <sip:b@10.0.0.2>" + (";tag=b" if first.startswith("SIP") else "")
            + f"\r\nCall-ID: big@bench\r\nCSeq: {cseq}\r\nContent-Type: application/sdp\r\n"
            f"Content-Length: {len(body)}\r\n\r\n")
    return (head + body).encode()


def main(out, packets):
    sessions = []
    for key in (KEY_A, KEY_B):
        p = pylibsrtp.Policy(key=key, ssrc_type=pylibsrtp.Policy.SSRC_ANY_OUTBOUND,
                             srtp_profile=pylibsrtp.Policy.SRTP_PROFILE_AES128_CM_SHA1_80)
        p.allow_repeat_tx = True
        sessions.append(pylibsrtp.Session(p))
    payload = bytes((i * 7) & 0xFF for i in range(160))
    with open(out, "wb", buffering=1 << 20) as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        t = 1_700_000_000_000_000

        def put(data):
            nonlocal t
            f.write(struct.pack("<IIII", t // 1_000_000, t % 1_000_000, len(data), len(data)))
            f.write(data)
            t += 10_000

        put(frame(SIP_A, SIP_B, sip("INVITE sip:b@10.0.0.2 SIP/2.0", sdp(A[0], A[1], KEY_A)), 1))
        put(frame(SIP_B, SIP_A, sip("SIP/2.0 200 OK", sdp(B[0], B[1], KEY_B)), 2))
        for n in range(packets):
            side = n & 1
            seq = (n >> 1) & 0xFFFF
            rtp = struct.pack("!BBHII", 0x80, 0, seq, (n >> 1) * 160 & 0xFFFFFFFF, 0x1111 + side) + payload
            srtp = sessions[side].protect(rtp)
            src, dst = (A, B) if side == 0 else (B, A)
            put(frame(src, dst, srtp, n))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
