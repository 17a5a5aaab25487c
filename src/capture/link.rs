//! Link layers: where the IP header starts in a frame of a given link type.

use super::error::DecodeError;

pub const LINKTYPE_NULL: u32 = 0;
pub const LINKTYPE_ETHERNET: u32 = 1;
/// Raw IP under the DLT numbers some systems write into files (OpenBSD 12, BSD/OS 14).
pub const LINKTYPE_RAW_12: u32 = 12;
pub const LINKTYPE_RAW_14: u32 = 14;
pub const LINKTYPE_RAW: u32 = 101;
pub const LINKTYPE_LOOP: u32 = 108;
pub const LINKTYPE_LINUX_SLL: u32 = 113;
pub const LINKTYPE_IPV4: u32 = 228;
pub const LINKTYPE_IPV6: u32 = 229;
pub const LINKTYPE_LINUX_SLL2: u32 = 276;

const ETHERTYPE_IPV4: u16 = 0x0800;
const ETHERTYPE_IPV6: u16 = 0x86dd;
/// 802.1Q, 802.1ad (QinQ) and the pre-standard QinQ tags.
const VLAN_TAGS: [u16; 3] = [0x8100, 0x88a8, 0x9100];
/// More stacked tags than this is not a real frame.
const MAX_VLAN_TAGS: usize = 8;

/// Which IP version the link layer announced (None: decide by the version nibble).
pub(crate) type IpHint = Option<u8>;

fn u16_be(data: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes(data.get(at..at + 2)?.try_into().ok()?))
}

fn ethertype_hint(ethertype: u16) -> Result<IpHint, DecodeError> {
    match ethertype {
        ETHERTYPE_IPV4 => Ok(Some(4)),
        ETHERTYPE_IPV6 => Ok(Some(6)),
        other => Err(DecodeError::NotIp(format!("ethertype 0x{other:04x}"))),
    }
}

/// Address families used in loopback headers: AF_INET is 2 everywhere, AF_INET6 is 10
/// (Linux), 24 (NetBSD, OpenBSD), 28 (FreeBSD), 30 (macOS).
fn family_hint(family: u32) -> Result<IpHint, DecodeError> {
    match family {
        2 => Ok(Some(4)),
        10 | 24 | 28 | 30 => Ok(Some(6)),
        other => Err(DecodeError::NotIp(format!("address family {other}"))),
    }
}

/// Offset of the network header in `data` and the IP version the link layer says.
pub(crate) fn network_offset(linktype: u32, data: &[u8]) -> Result<(usize, IpHint), DecodeError> {
    let short = |layer| DecodeError::Truncated { layer, offset: 0 };
    match linktype {
        LINKTYPE_ETHERNET => {
            let mut at = 12;
            let mut ethertype = u16_be(data, at).ok_or(short("Ethernet"))?;
            let mut tags = 0;
            while VLAN_TAGS.contains(&ethertype) {
                tags += 1;
                if tags > MAX_VLAN_TAGS {
                    return Err(DecodeError::Malformed {
                        layer: "VLAN",
                        offset: at,
                        why: "too many stacked VLAN tags",
                    });
                }
                at += 4;
                ethertype = u16_be(data, at).ok_or(DecodeError::Truncated {
                    layer: "VLAN",
                    offset: at - 2,
                })?;
            }
            Ok((at + 2, ethertype_hint(ethertype)?))
        }
        LINKTYPE_LINUX_SLL => {
            // packet type, ARPHRD type, address length, 8 address bytes, protocol.
            let proto = u16_be(data, 14).ok_or(short("Linux cooked (SLL)"))?;
            Ok((16, ethertype_hint(proto)?))
        }
        LINKTYPE_LINUX_SLL2 => {
            // protocol, reserved, interface index, ARPHRD type, packet type, address
            // length, 8 address bytes.
            if data.len() < 20 {
                return Err(short("Linux cooked (SLL2)"));
            }
            let proto = u16_be(data, 0).ok_or(short("Linux cooked (SLL2)"))?;
            Ok((20, ethertype_hint(proto)?))
        }
        LINKTYPE_RAW | LINKTYPE_RAW_12 | LINKTYPE_RAW_14 => Ok((0, None)),
        LINKTYPE_IPV4 => Ok((0, Some(4))),
        LINKTYPE_IPV6 => Ok((0, Some(6))),
        LINKTYPE_NULL => {
            // The family is in the byte order of the machine that captured. Families
            // are small numbers, so a value above 0xffff means the other byte order.
            let raw: [u8; 4] = data
                .get(..4)
                .and_then(|b| b.try_into().ok())
                .ok_or(short("loopback"))?;
            let le = u32::from_le_bytes(raw);
            let family = if le > 0xffff { le.swap_bytes() } else { le };
            Ok((4, family_hint(family)?))
        }
        LINKTYPE_LOOP => {
            // OpenBSD loopback: the family in network byte order.
            let raw: [u8; 4] = data
                .get(..4)
                .and_then(|b| b.try_into().ok())
                .ok_or(short("loopback"))?;
            Ok((4, family_hint(u32::from_be_bytes(raw))?))
        }
        other => Err(DecodeError::UnsupportedLinkType(other)),
    }
}
