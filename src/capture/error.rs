//! Errors of the capture module. `CaptureError` is about the file (it stops reading or
//! writing); `DecodeError` is about one frame (the caller copies such a frame through
//! unchanged and goes on). Messages say where (byte offset, frame number) and what to do.

/// Reading or writing a capture file failed. Reading stops at the first one; every frame
/// returned before it is good.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("reading the capture at byte {offset}: {source}")]
    Read {
        offset: u64,
        #[source]
        source: std::io::Error,
    },
    #[error("the capture file is empty")]
    Empty,
    #[error(
        "not a pcap or pcapng file: starts with {start} (a pcap file starts with \
         d4 c3 b2 a1 or 4d 3c b2 a1 in either byte order, a pcapng file with 0a 0d 0d 0a){hint}"
    )]
    NotCapture { start: String, hint: &'static str },
    #[error(
        "truncated record at byte {offset} (frame {frame}): the capture was cut; \
         frames before it were processed"
    )]
    Truncated { offset: u64, frame: u64 },
    #[error(
        "{what} of {len} bytes at byte {offset} (frame {frame}) is larger than the \
         {limit}-byte limit: the file is corrupt; frames before it were processed"
    )]
    Oversize {
        what: &'static str,
        len: u64,
        limit: u64,
        offset: u64,
        frame: u64,
    },
    #[error(
        "corrupt {what} at byte {offset} (frame {frame}): {why}; \
         frames before it were processed"
    )]
    Corrupt {
        what: &'static str,
        why: String,
        offset: u64,
        frame: u64,
    },
    #[error("writing the output capture: {0}")]
    Write(#[source] std::io::Error),
    #[error("frame {frame} cannot be written: {why}")]
    Unwritable { frame: u64, why: String },
}

/// A frame could not be decoded down to UDP/TCP (or rewritten). Offsets are into the
/// frame's data; the caller adds the frame number.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error(
        "unsupported link type {0} (supported: Ethernet 1, Linux SLL 113 and SLL2 276, \
         raw IP 101/228/229/12/14, loopback 0/108)"
    )]
    UnsupportedLinkType(u32),
    #[error("not an IP packet ({0})")]
    NotIp(String),
    #[error("{layer} header at byte {offset} is cut short: the frame was truncated (snap length?)")]
    Truncated { layer: &'static str, offset: usize },
    #[error("bad {layer} header at byte {offset}: {why}")]
    Malformed {
        layer: &'static str,
        offset: usize,
        why: &'static str,
    },
    #[error("the packet is not a UDP datagram, so its UDP payload cannot be replaced")]
    NotUdp,
    #[error("a UDP payload of {len} bytes does not fit in one IP packet (at most {max})")]
    PayloadTooLarge { len: usize, max: usize },
}

/// Hex of the first bytes of a file, for "not a capture" messages.
pub(crate) fn hex_start(bytes: &[u8]) -> String {
    let mut s = String::new();
    for (i, b) in bytes.iter().take(8).enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(&format!("{b:02x}"));
    }
    s
}
