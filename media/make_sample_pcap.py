#!/usr/bin/env python3
"""Make media/sample.pcap from media/sample.wav: one RTP stream, G.711 µ-law
(payload type 0), 20 ms packets, on 127.0.0.1 (port 40000 to port 40002).

Classic pcap (microsecond timestamps, little-endian), Ethernet + IPv4 + UDP, with
correct lengths and IPv4/UDP checksums, so Wireshark shows no errors. Everything is
fixed (start time, SSRC, sequence and timestamp origins), so the output is the same
on every run. Python 3 standard library only.

Usage: python3 media/make_sample_pcap.py [IN.wav [OUT.pcap]]
"""

import array
import struct
import sys
import wave

SRC = (bytes([127, 0, 0, 1]), 40000)
DST = (bytes([127, 0, 0, 1]), 40002)
SSRC = 0x5157A11E
FIRST_SEQUENCE = 4660
FIRST_TIMESTAMP = 160000
# 2024-01-01T00:00:00Z: a fixed start keeps the file reproducible.
START_SECONDS = 1704067200
SAMPLES_PER_PACKET = 160  # 20 ms at 8 kHz
ULAW_SILENCE = 0xFF  # the µ-law code of 0


def linear_to_ulaw(sample):
    """G.711 µ-law: bias 0x84, clip at 32635, segment = highest bit, bits inverted."""
    sign = 0
    if sample < 0:
        sample = -sample
        sign = 0x80
    sample = min(sample, 32635) + 0x84
    exponent = (sample >> 7).bit_length() - 1
    mantissa = (sample >> (exponent + 3)) & 0x0F
    return ~(sign | (exponent << 4) | mantissa) & 0xFF


def ones_complement_sum(data, acc=0):
    if len(data) % 2:
        data += b"\x00"
    for (word,) in struct.iter_unpack("!H", data):
        acc += word
    while acc >> 16:
        acc = (acc & 0xFFFF) + (acc >> 16)
    return acc


def checksum(data, acc=0):
    return ~ones_complement_sum(data, acc) & 0xFFFF


def udp_ipv4_frame(ip_id, payload):
    udp_len = 8 + len(payload)
    udp = struct.pack("!HHHH", SRC[1], DST[1], udp_len, 0) + payload
    pseudo = SRC[0] + DST[0] + struct.pack("!BBH", 0, 17, udp_len)
    udp_sum = checksum(udp, ones_complement_sum(pseudo))
    # A computed 0 is sent as 0xFFFF (0 means "no checksum", RFC 768).
    udp = udp[:6] + struct.pack("!H", udp_sum or 0xFFFF) + udp[8:]
    ip = struct.pack(
        "!BBHHHBBH4s4s",
        0x45,  # version 4, 5-word header
        0,
        20 + udp_len,
        ip_id,
        0x4000,  # don't fragment
        64,  # TTL
        17,  # UDP
        0,
        SRC[0],
        DST[0],
    )
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    ethernet = bytes(6) + bytes(6) + struct.pack("!H", 0x0800)
    return ethernet + ip + udp


def main():
    src = sys.argv[1] if len(sys.argv) > 1 else "media/sample.wav"
    out = sys.argv[2] if len(sys.argv) > 2 else "media/sample.pcap"
    with wave.open(src, "rb") as w:
        if (w.getnchannels(), w.getsampwidth(), w.getframerate()) != (1, 2, 8000):
            sys.exit(f"{src}: expected 8 kHz mono 16-bit PCM")
        frames = w.readframes(w.getnframes())
    samples = array.array("h", frames)
    if sys.byteorder == "big":
        samples.byteswap()  # WAV is little-endian
    codes = bytes(linear_to_ulaw(s) for s in samples)
    # The last packet is completed with silence: RTP packets carry whole 20 ms frames.
    short = -len(codes) % SAMPLES_PER_PACKET
    codes += bytes([ULAW_SILENCE]) * short

    pcap = bytearray(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
    for k in range(len(codes) // SAMPLES_PER_PACKET):
        payload = codes[k * SAMPLES_PER_PACKET : (k + 1) * SAMPLES_PER_PACKET]
        rtp = struct.pack(
            "!BBHII",
            0x80,  # version 2, no padding, extension or CSRC
            (0x80 if k == 0 else 0) | 0,  # marker on the first packet, PT 0
            (FIRST_SEQUENCE + k) & 0xFFFF,
            (FIRST_TIMESTAMP + k * SAMPLES_PER_PACKET) & 0xFFFFFFFF,
            SSRC,
        )
        frame = udp_ipv4_frame((k + 1) & 0xFFFF, rtp + payload)
        micros = k * 20000
        pcap += struct.pack(
            "<IIII",
            START_SECONDS + micros // 1000000,
            micros % 1000000,
            len(frame),
            len(frame),
        )
        pcap += frame
    with open(out, "wb") as f:
        f.write(pcap)
    print(f"{out}: {len(codes) // SAMPLES_PER_PACKET} packets, {len(pcap)} bytes")


if __name__ == "__main__":
    main()
