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
pub fn linear_to_ulaw(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32635;
    let sign = if sample < 0 { 0x80 } else { 0 };
    // Widened first: −32768 has no positive i16.
    let magnitude = i32::from(sample).abs().min(CLIP) + BIAS;
    // The biased magnitude lies in 0x84..=0x7FFF: its top bit (7..=14) is the segment.
    let exponent = (31 - magnitude.leading_zeros() - 7) as u8;
    let mantissa = ((magnitude >> (exponent + 3)) & 0x0f) as u8;
    !(sign | exponent << 4 | mantissa)
}

/// Linear sample → A-law code (even bits inverted: XOR 0x55).
pub fn linear_to_alaw(sample: i16) -> u8 {
    // Sign bit set means positive. Negative samples are quantised from −x−1 so that
    // −1..−8 share the code of 0..7 mirrored, as the standard's 13-bit one's
    // complement range does, and −32768 needs no clipping.
    let (sign, magnitude) = if sample >= 0 {
        (0x80u8, sample as u16)
    } else {
        (0, !(sample as u16))
    };
    let (exponent, mantissa) = if magnitude < 0x100 {
        (0u8, (magnitude >> 4) as u8)
    } else {
        // 0x100..=0x7FFF: the top bit (8..=14) gives segments 1..=7.
        let exponent = (15 - magnitude.leading_zeros() - 7) as u8;
        (exponent, ((magnitude >> (exponent + 3)) & 0x0f) as u8)
    };
    (sign | exponent << 4 | mantissa) ^ 0x55
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
    pub fn encode(self, samples: &[i16], out: &mut Vec<u8>) {
        let encode = match self {
            Law::Ulaw => linear_to_ulaw,
            Law::Alaw => linear_to_alaw,
        };
        out.extend(samples.iter().map(|&s| encode(s)));
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

    #[test]
    fn encoding_a_decoded_code_gives_it_back() {
        for c in 0..=255u8 {
            assert_eq!(linear_to_alaw(alaw_to_linear(c)), c, "A-law {c:#04x}");
            // µ-law has two zeros; +0 (0xFF) is what 0 encodes to.
            let want = if c == 0x7F { 0xFF } else { c };
            assert_eq!(linear_to_ulaw(ulaw_to_linear(c)), want, "µ-law {c:#04x}");
        }
    }

    #[test]
    fn encoder_reference_points() {
        assert_eq!(linear_to_ulaw(0), 0xFF);
        assert_eq!(linear_to_ulaw(-1), 0x7F);
        assert_eq!(linear_to_ulaw(i16::MAX), 0x80);
        assert_eq!(linear_to_ulaw(i16::MIN), 0x00);
        assert_eq!(linear_to_alaw(0), 0xD5);
        assert_eq!(linear_to_alaw(-1), 0x55);
        assert_eq!(linear_to_alaw(i16::MAX), 0xAA);
        assert_eq!(linear_to_alaw(i16::MIN), 0x2A);
    }

    /// Over the whole 16-bit range, encode-then-decode never goes down as the input
    /// goes up, and stays within half a quantisation step plus the clipping.
    #[test]
    fn quantisation_is_monotonic_and_close() {
        for law in [Law::Ulaw, Law::Alaw] {
            let mut previous = i16::MIN;
            for s in i16::MIN..=i16::MAX {
                let mut code = Vec::new();
                law.encode(&[s], &mut code);
                let mut back = Vec::new();
                law.decode(&code, &mut back);
                let q = back[0];
                assert!(q >= previous, "{law:?} {s}: {q} < {previous}");
                previous = q;
                let s = i32::from(s);
                // The widest step is 1024 in both laws; µ-law also clips
                // above 32635 onto 32124.
                let limit = if s.abs() > 31_000 { 1_200 } else { 512 };
                assert!((i32::from(q) - s).abs() <= limit, "{law:?} {s} → {q}");
            }
        }
    }

    #[test]
    fn encode_appends() {
        let mut out = vec![1];
        Law::Ulaw.encode(&[0, 8], &mut out);
        Law::Alaw.encode(&[8], &mut out);
        assert_eq!(out, vec![1, 0xFF, 0xFE, 0xD5]);
    }

    #[test]
    fn encoders_invert_the_decoders() {
        for c in 0..=255u8 {
            assert_eq!(linear_to_alaw(alaw_to_linear(c)), c, "A-law {c:#x}");
            if c != 0x7f {
                assert_eq!(linear_to_ulaw(ulaw_to_linear(c)), c, "µ-law {c:#x}");
            }
        }
        // Every sample lands on a neighbouring step: the error stays within the
        // segment's step size (at most 1/16 of the value, plus the smallest step).
        for s in (i16::MIN..=i16::MAX).step_by(7) {
            let x = i32::from(s);
            for (back, name) in [
                (i32::from(ulaw_to_linear(linear_to_ulaw(s))), "µ"),
                (i32::from(alaw_to_linear(linear_to_alaw(s))), "A"),
            ] {
                assert!(
                    (back - x).abs() <= x.abs() / 16 + 1100.min(16 + x.abs() / 16),
                    "{name} {s} → {back}"
                );
            }
        }
        assert_eq!(linear_to_ulaw(0), 0xff);
        assert_eq!(linear_to_alaw(0), 0xd5);
        assert_eq!(linear_to_ulaw(i16::MIN), 0x00);
        assert_eq!(linear_to_ulaw(i16::MAX), 0x80);
        assert_eq!(linear_to_alaw(i16::MAX), 0xaa);
        assert_eq!(linear_to_alaw(i16::MIN), 0x2a);
    }
}
