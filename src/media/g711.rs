//! G.711 (ITU-T G.711) µ-law and A-law decoding to 16-bit linear PCM.
//!
//! Decoding is a table lookup; the tables are built at compile time from the
//! standard's segment/quantisation rules rather than typed in, so they cannot
//! carry a typo.

/// µ-law code → linear sample (0xFF → 0, 0x00 → −32124).
pub fn ulaw_to_linear(code: u8) -> i16 {
    ULAW[code as usize]
}

/// A-law code → linear sample (even bits inverted on the wire: XOR 0x55).
pub fn alaw_to_linear(code: u8) -> i16 {
    ALAW[code as usize]
}

/// Linear sample → µ-law code (G.711, bias 0x84, clipped at 32635).
pub fn linear_to_ulaw(_sample: i16) -> u8 {
    todo!()
}

/// Linear sample → A-law code (even bits inverted: XOR 0x55).
pub fn linear_to_alaw(_sample: i16) -> u8 {
    todo!()
}

/// Which G.711 law a static RTP payload type carries (RFC 3551: 0 PCMU, 8 PCMA).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Law {
    Ulaw,
    Alaw,
}

impl Law {
    pub fn of_payload_type(pt: u8) -> Option<Law> {
        match pt {
            0 => Some(Law::Ulaw),
            8 => Some(Law::Alaw),
            _ => None,
        }
    }

    /// Append the encoded codes of `samples` to `out`.
    pub fn encode(self, _samples: &[i16], _out: &mut Vec<u8>) {
        todo!()
    }

    /// Append the decoded samples of `payload` to `out`.
    pub fn decode(self, payload: &[u8], out: &mut Vec<i16>) {
        let table = match self {
            Law::Ulaw => &ULAW,
            Law::Alaw => &ALAW,
        };
        out.extend(payload.iter().map(|&c| table[c as usize]));
    }
}

static ULAW: [i16; 256] = build_ulaw();
static ALAW: [i16; 256] = build_alaw();

const fn build_ulaw() -> [i16; 256] {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        let c = !(i as u8);
        let exponent = ((c >> 4) & 0x07) as i32;
        let mantissa = (c & 0x0f) as i32;
        // Bias 0x84 (132) is added at encoding and removed here.
        let magnitude = (((mantissa << 3) + 0x84) << exponent) - 0x84;
        t[i] = if c & 0x80 != 0 {
            -magnitude as i16
        } else {
            magnitude as i16
        };
        i += 1;
    }
    t
}

const fn build_alaw() -> [i16; 256] {
    let mut t = [0i16; 256];
    let mut i = 0;
    while i < 256 {
        let c = (i as u8) ^ 0x55;
        let exponent = ((c >> 4) & 0x07) as i32;
        let mantissa = (c & 0x0f) as i32;
        let magnitude = if exponent == 0 {
            (mantissa << 4) + 8
        } else {
            ((mantissa << 4) + 0x108) << (exponent - 1)
        };
        // In A-law the sign bit set means positive.
        t[i] = if c & 0x80 != 0 {
            magnitude as i16
        } else {
            -magnitude as i16
        };
        i += 1;
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ulaw_reference_points() {
        assert_eq!(ulaw_to_linear(0xFF), 0);
        assert_eq!(ulaw_to_linear(0x7F), 0);
        assert_eq!(ulaw_to_linear(0x00), -32124);
        assert_eq!(ulaw_to_linear(0x80), 32124);
        assert_eq!(ulaw_to_linear(0xFE), 8);
        assert_eq!(ulaw_to_linear(0x7E), -8);
    }

    #[test]
    fn alaw_reference_points() {
        assert_eq!(alaw_to_linear(0xD5), 8);
        assert_eq!(alaw_to_linear(0x55), -8);
        assert_eq!(alaw_to_linear(0xAA), 32256);
        assert_eq!(alaw_to_linear(0x2A), -32256);
    }

    #[test]
    fn decode_appends_and_is_monotonic_per_sign() {
        let mut out = Vec::new();
        Law::Ulaw.decode(&[0xFF, 0x80], &mut out);
        Law::Alaw.decode(&[0xD5], &mut out);
        assert_eq!(out, vec![0, 32124, 8]);
        assert_eq!(Law::of_payload_type(0), Some(Law::Ulaw));
        assert_eq!(Law::of_payload_type(8), Some(Law::Alaw));
        assert_eq!(Law::of_payload_type(18), None);
        // Positive µ-law codes 0x80..=0xFF run from the loudest to zero.
        for c in 0x80u8..0xFF {
            assert!(ulaw_to_linear(c) > ulaw_to_linear(c + 1));
        }
    }
}
