//! Captures rewritten by `sipwright::capture` are read by tshark with checksum
//! validation on, and it finds nothing wrong (IPv4 header, UDP over IPv4 and IPv6,
//! behind raw IP and behind Ethernet with VLAN tags, in pcap and pcapng).

mod common;

use std::net::SocketAddr;
use std::process::Command;
use std::time::{Duration, UNIX_EPOCH};

use sipwright::capture::{CaptureReader, CaptureWriter, L4, decode, replace_udp_payload};
use sipwright::report::pcap::{RECORD_HEADER_LEN, write_global_header, write_udp_record};

/// Raw IPv4 and IPv6 UDP packets with valid checksums.
fn ip_packets() -> Vec<Vec<u8>> {
    let pairs = [
        ("10.1.2.3:4000", "10.9.8.7:5000"),
        ("[2001:db8::1]:4000", "[2001:db8::2]:5000"),
    ];
    pairs
        .iter()
        .map(|(s, d)| {
            let (s, d): (SocketAddr, SocketAddr) = (s.parse().unwrap(), d.parse().unwrap());
            let mut rec = Vec::new();
            let payload: Vec<u8> = (0..172u32).map(|i| (i * 7) as u8).collect();
            write_udp_record(
                &mut rec,
                UNIX_EPOCH + Duration::from_secs(1),
                s,
                d,
                &payload,
            );
            rec.split_off(RECORD_HEADER_LEN)
        })
        .collect()
}

fn pcap_raw() -> Vec<u8> {
    let mut out = Vec::new();
    write_global_header(&mut out);
    for (i, p) in ip_packets().iter().enumerate() {
        out.extend_from_slice(&(1_700_000_000u32 + i as u32).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&(p.len() as u32).to_le_bytes());
        out.extend_from_slice(&(p.len() as u32).to_le_bytes());
        out.extend_from_slice(p);
    }
    out
}

fn block(out: &mut Vec<u8>, ty: u32, body: &[u8]) {
    let pad = (4 - body.len() % 4) % 4;
    let len = (12 + body.len() + pad) as u32;
    out.extend_from_slice(&ty.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(body);
    out.extend_from_slice(&[0; 3][..pad]);
    out.extend_from_slice(&len.to_le_bytes());
}

/// pcapng, Ethernet with an 802.1ad + 802.1Q tag stack, nanosecond interface.
fn pcapng_ethernet() -> Vec<u8> {
    let mut out = Vec::new();
    let mut shb = 0x1A2B_3C4Du32.to_le_bytes().to_vec();
    shb.extend_from_slice(&[1, 0, 0, 0]);
    shb.extend_from_slice(&[0xff; 8]);
    block(&mut out, 0x0A0D_0D0A, &shb);
    let mut idb = vec![1, 0, 0, 0, 0, 0, 0, 0];
    idb.extend_from_slice(&[9, 0, 1, 0, 9, 0, 0, 0, 0, 0, 0, 0]); // if_tsresol 9
    block(&mut out, 1, &idb);
    for (i, p) in ip_packets().iter().enumerate() {
        let mut frame = vec![0x02, 0, 0, 0, 0, 1, 0x02, 0, 0, 0, 0, 2];
        frame.extend_from_slice(&[0x88, 0xa8, 0, 10, 0x81, 0x00, 0, 20]);
        frame.extend_from_slice(if p[0] >> 4 == 4 {
            &[8, 0]
        } else {
            &[0x86, 0xdd]
        });
        frame.extend_from_slice(p);
        let ts = 1_700_000_000_000_000_000u64 + i as u64;
        let mut epb = 0u32.to_le_bytes().to_vec();
        epb.extend_from_slice(&((ts >> 32) as u32).to_le_bytes());
        epb.extend_from_slice(&(ts as u32).to_le_bytes());
        epb.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        epb.extend_from_slice(&(frame.len() as u32).to_le_bytes());
        epb.extend_from_slice(&frame);
        epb.resize(epb.len() + (4 - frame.len() % 4) % 4, 0);
        block(&mut out, 6, &epb);
    }
    out
}

/// Replace every UDP payload by a shorter, odd-length one.
fn rewrite(input: &[u8]) -> Vec<u8> {
    let mut reader = CaptureReader::new(input).unwrap();
    let mut writer = CaptureWriter::new(Vec::new(), &reader).unwrap();
    let mut buf = Vec::new();
    let mut n = 0;
    while let Some(frame) = reader.next_frame().unwrap() {
        let packet = decode(frame.linktype, frame.data).unwrap();
        let L4::Udp { payload, .. } = packet.l4 else {
            panic!("UDP expected")
        };
        let new: Vec<u8> = payload[..161].iter().map(|b| b ^ 0x5a).collect();
        replace_udp_payload(frame.data, &packet, &new, &mut buf).unwrap();
        writer.write_frame(&frame, &buf).unwrap();
        n += 1;
    }
    assert_eq!(n, 2);
    writer.finish().unwrap()
}

#[test]
fn tshark_finds_no_bad_checksum_in_rewritten_captures() {
    let Some(tshark) = common::require("tshark") else {
        return;
    };
    for (name, input) in [
        ("rewritten.pcap", pcap_raw()),
        ("rewritten.pcapng", pcapng_ethernet()),
    ] {
        let path = common::scratch(name);
        std::fs::write(&path, rewrite(&input)).unwrap();
        let out = Command::new(&tshark)
            .args(["-r", path.to_str().unwrap(), "-V"])
            .args([
                "-o",
                "udp.check_checksum:TRUE",
                "-o",
                "ip.check_checksum:TRUE",
            ])
            .output()
            .expect("run tshark");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "{name}: {}", common::text(&out));
        assert!(
            !text.contains("Bad"),
            "{name}: tshark reports a bad field:\n{text}"
        );
        assert!(!text.contains("Malformed"), "{name}:\n{text}");
        // IPv4 header + two UDP checksums verified good.
        let good = text.to_lowercase().matches("status: good").count();
        assert!(good >= 3, "{name}: only {good} checksums verified:\n{text}");
        assert!(
            text.contains("Length: 169"),
            "{name}: UDP length 8 + 161:\n{text}"
        );
    }
}
