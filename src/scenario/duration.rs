//! Duration text used in scenarios and on the command line: `500ms`, `1s`, `1.5s`,
//! `2m`, `1h`, `10us`, `0`.

use std::time::Duration;

const UNITS_HINT: &str = "use us, ms, s, m or h";

/// Parse a duration; the error says what is accepted.
///
/// A bare number other than zero is rejected: SIPp takes milliseconds, most people
/// mean seconds, and guessing wrong makes a test silently wait 1000 times too long.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err("empty duration; expected e.g. `500ms`, `1.5s`, `2m`".to_string());
    }
    let num_end = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(num_end);
    let unit = unit.trim_start();
    let (int_part, frac_part) = match num.split_once('.') {
        Some((i, f)) => (i, f),
        None => (num, ""),
    };
    let well_formed = !num.is_empty()
        && !int_part.is_empty()
        && int_part.bytes().all(|b| b.is_ascii_digit())
        && frac_part.bytes().all(|b| b.is_ascii_digit())
        && !(num.contains('.') && frac_part.is_empty());
    if !well_formed {
        return Err(format!(
            "`{t}` is not a duration; expected a number and a unit, e.g. `500ms`, `1.5s`, `2m`"
        ));
    }
    let nanos_per_unit: u128 = match unit {
        "" => {
            if num.bytes().all(|b| b == b'0' || b == b'.') {
                return Ok(Duration::ZERO);
            }
            return Err(format!(
                "`{t}` has no unit; add a unit: ms, s, m or h (e.g. `{num}s`)"
            ));
        }
        "us" | "µs" => 1_000,
        "ms" => 1_000_000,
        "s" => 1_000_000_000,
        "m" => 60 * 1_000_000_000,
        "h" => 3_600 * 1_000_000_000,
        other => return Err(format!("`{t}`: unknown unit `{other}`; {UNITS_HINT}")),
    };
    let too_long = || format!("`{t}` is too long a duration");
    let int: u128 = int_part.parse().map_err(|_| too_long())?;
    // Digits beyond nanosecond precision of the largest unit can't matter; dropping
    // them keeps the power of ten within u128.
    let frac_digits = &frac_part[..frac_part.len().min(20)];
    let frac: u128 = if frac_digits.is_empty() {
        0
    } else {
        frac_digits.parse().map_err(|_| too_long())?
    };
    let scale = 10u128.pow(frac_digits.len() as u32);
    let nanos = int
        .checked_mul(nanos_per_unit)
        .and_then(|n| n.checked_add(frac * nanos_per_unit / scale))
        .ok_or_else(too_long)?;
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| too_long())?;
    Ok(Duration::new(secs, (nanos % 1_000_000_000) as u32))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_forms() {
        let ok = |s: &str| parse_duration(s).unwrap();
        assert_eq!(ok("500ms"), Duration::from_millis(500));
        assert_eq!(ok("1s"), Duration::from_secs(1));
        assert_eq!(ok("1.5s"), Duration::from_millis(1500));
        assert_eq!(ok("2m"), Duration::from_secs(120));
        assert_eq!(ok("1h"), Duration::from_secs(3600));
        assert_eq!(ok("10us"), Duration::from_micros(10));
        assert_eq!(ok("0"), Duration::ZERO);
        assert_eq!(ok("0.0"), Duration::ZERO);
        assert_eq!(ok("0s"), Duration::ZERO);
        assert_eq!(ok(" 250 ms "), Duration::from_millis(250));
        assert_eq!(ok("0.001ms"), Duration::from_nanos(1000));
        assert_eq!(ok("1.123456789123456789s"), Duration::new(1, 123_456_789));
    }

    #[test]
    fn bare_number_asks_for_a_unit() {
        let e = parse_duration("5").unwrap_err();
        assert!(e.contains("add a unit: ms, s, m or h"), "{e}");
        let e = parse_duration("1.5").unwrap_err();
        assert!(e.contains("add a unit: ms, s, m or h"), "{e}");
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "", " ", "s", "ms", "-1s", "1.s", ".5s", "1..2s", "1x", "1 sec", "abc", "1e3s", "1s2",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be rejected");
        }
        assert!(
            parse_duration("1x")
                .unwrap_err()
                .contains("unknown unit `x`")
        );
        assert!(parse_duration("99999999999999999999999999999999999999999h").is_err());
        assert!(parse_duration("18446744073709551616s").is_err());
    }
}
