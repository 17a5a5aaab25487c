//! JUnit XML report (`--junit FILE.xml`), so CI systems show a run as one test case that
//! fails when any call failed.

use std::fmt::Write as _;
use std::time::Duration;

use super::counters::{Counters, FailureReason, FailureSample};
use super::json::Side;

/// The whole document: one `<testsuite name="sipwright">` holding one `<testcase>` for the
/// scenario that was run; a `<failure>` when calls failed.
pub fn junit_xml(main: &Side<'_>, elapsed: Duration, failures: &[FailureSample]) -> String {
    let c = main.counters;
    let time = format!("{:.3}", elapsed.as_secs_f64());
    let failed = c.calls_failed > 0;
    let mut x = String::new();
    x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<testsuites name=\"sipwright\" tests=\"1\" failures=\"{}\" errors=\"0\" time=\"{time}\">",
        u8::from(failed)
    );
    let _ = writeln!(
        x,
        "  <testsuite name=\"sipwright\" tests=\"1\" failures=\"{}\" errors=\"0\" skipped=\"0\" time=\"{time}\">",
        u8::from(failed)
    );
    let _ = writeln!(
        x,
        "    <testcase classname=\"sipwright.{}\" name=\"{}\" time=\"{time}\">",
        attr(main.role),
        attr(main.scenario)
    );
    if failed {
        let _ = writeln!(
            x,
            "      <failure message=\"{}\" type=\"{}\">{}</failure>",
            attr(&failure_message(c)),
            attr(most_common_reason(c)),
            text(&failure_text(c, failures))
        );
    }
    let _ = writeln!(
        x,
        "      <system-out>{}</system-out>",
        text(&summary(c, elapsed))
    );
    x.push_str("    </testcase>\n  </testsuite>\n</testsuites>\n");
    x
}

/// Reasons with their counts, most frequent first (ties in `FailureReason::ALL` order).
fn reasons_by_count(c: &Counters) -> Vec<(FailureReason, u64)> {
    let mut v: Vec<(FailureReason, u64)> = FailureReason::ALL
        .iter()
        .map(|r| (*r, c.failures_of(*r)))
        .filter(|(_, n)| *n > 0)
        .collect();
    // Stable sort keeps the ALL order among equal counts.
    v.sort_by_key(|&(_, n)| std::cmp::Reverse(n));
    v
}

/// `N of M calls failed: 3 timeout, 2 unexpected_message`.
fn failure_message(c: &Counters) -> String {
    let mut m = format!("{} of {} calls failed", c.calls_failed, c.calls_started);
    let parts: Vec<String> = reasons_by_count(c)
        .iter()
        .map(|(r, n)| format!("{n} {}", r.as_str()))
        .collect();
    if !parts.is_empty() {
        m.push_str(": ");
        m.push_str(&parts.join(", "));
    }
    m
}

fn most_common_reason(c: &Counters) -> &'static str {
    // Failed calls are always counted under a reason; "failed" only covers counters
    // assembled by hand with calls_failed but no reason.
    reasons_by_count(c)
        .first()
        .map_or("failed", |(r, _)| r.as_str())
}

fn failure_text(c: &Counters, samples: &[FailureSample]) -> String {
    let mut t = String::new();
    for s in samples {
        let _ = writeln!(
            t,
            "call {} ({}): {}: {}",
            s.call_number,
            s.call_id,
            s.reason.as_str(),
            s.detail
        );
    }
    if c.calls_failed > samples.len() as u64 && !samples.is_empty() {
        let _ = writeln!(
            t,
            "({} more failed calls not shown)",
            c.calls_failed - samples.len() as u64
        );
    }
    let reasons: Vec<String> = reasons_by_count(c)
        .iter()
        .map(|(r, n)| format!("{} {n}", r.as_str()))
        .collect();
    let _ = writeln!(t, "failures by reason: {}", none_if_empty(&reasons));
    let codes: Vec<String> = c
        .failure_codes
        .iter()
        .map(|(code, n)| format!("{code} {n}"))
        .collect();
    let _ = writeln!(t, "failures by status code: {}", none_if_empty(&codes));
    t
}

fn none_if_empty(parts: &[String]) -> String {
    if parts.is_empty() {
        "none".to_string()
    } else {
        parts.join(", ")
    }
}

fn summary(c: &Counters, elapsed: Duration) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "calls: {} started, {} succeeded, {} failed in {:.3} s",
        c.calls_started,
        c.calls_succeeded,
        c.calls_failed,
        elapsed.as_secs_f64()
    );
    let _ = writeln!(
        t,
        "messages: {} sent, {} received, {} retransmitted, {} absorbed, {} unparseable, {} stray",
        c.messages_sent,
        c.messages_received,
        c.messages_retransmitted,
        c.messages_absorbed,
        c.messages_unparseable,
        c.messages_stray
    );
    if let Some(line) = super::text::causes_line(c) {
        let _ = writeln!(t, "{line}");
    }
    let _ = writeln!(
        t,
        "starts delayed by the concurrency limit: {}",
        c.starts_delayed
    );
    for (name, s) in c.latency.summaries() {
        let _ = writeln!(
            t,
            "latency {name}: count {} p50 {:.3} ms p90 {:.3} ms p99 {:.3} ms max {:.3} ms",
            s.count, s.p50, s.p90, s.p99, s.max
        );
    }
    t
}

/// XML 1.0 allows tab, LF, CR and everything from U+0020 except U+FFFE/U+FFFF (Rust
/// `char`s are never surrogates). Anything else makes the document unreadable, so it
/// is dropped (e.g. control bytes echoed from a malformed SIP message).
fn legal(ch: char) -> bool {
    matches!(ch, '\t' | '\n' | '\r') || (ch >= ' ' && ch != '\u{FFFE}' && ch != '\u{FFFF}')
}

/// Escape character data.
pub(crate) fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars().filter(|c| legal(*c)) {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            // `>` only matters in `]]>`, but escaping it always is simpler and still valid.
            '>' => out.push_str("&gt;"),
            // A literal CR would be normalised to LF by parsers.
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    out
}

/// Escape an attribute value (always written in double quotes).
pub(crate) fn attr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for ch in s.chars().filter(|c| legal(*c)) {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Attribute-value normalisation turns literal whitespace into spaces;
            // character references keep it.
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::latency::Metric;

    /// A minimal well-formedness check: every tag closes in order, attributes are quoted,
    /// and no raw `<`, `&` or illegal character appears outside markup and references.
    fn assert_well_formed(x: &str) {
        let body = x
            .strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")
            .expect("prolog");
        let mut stack: Vec<String> = Vec::new();
        let mut rest = body;
        while !rest.is_empty() {
            if let Some(after) = rest.strip_prefix('<') {
                let end = after.find('>').expect("unterminated tag");
                let tag = &after[..end];
                assert!(!tag.contains('<'), "`<` inside tag {tag}");
                if let Some(name) = tag.strip_prefix('/') {
                    assert_eq!(stack.pop().as_deref(), Some(name), "mismatched </{name}>");
                } else {
                    let self_closing = tag.ends_with('/');
                    let tag = tag.trim_end_matches('/');
                    let name = tag.split_whitespace().next().expect("tag name");
                    // Attributes: name="value" pairs with no raw `"` or `<` inside.
                    let mut attrs = tag[name.len()..].trim();
                    while !attrs.is_empty() {
                        let eq = attrs.find("=\"").expect("attribute without =\"");
                        let v = &attrs[eq + 2..];
                        let close = v.find('"').expect("unterminated attribute");
                        check_refs(&v[..close]);
                        attrs = v[close + 1..].trim_start();
                    }
                    if !self_closing {
                        stack.push(name.to_string());
                    }
                }
                rest = &after[end + 1..];
            } else {
                let end = rest.find('<').unwrap_or(rest.len());
                check_refs(&rest[..end]);
                rest = &rest[end..];
            }
        }
        assert!(stack.is_empty(), "unclosed {stack:?}");
    }

    fn check_refs(s: &str) {
        assert!(s.chars().all(legal), "illegal char in {s:?}");
        let mut rest = s;
        while let Some(i) = rest.find('&') {
            let r = &rest[i + 1..];
            let semi = r.find(';').expect("unterminated reference");
            let name = &r[..semi];
            assert!(
                ["amp", "lt", "gt", "quot", "apos"].contains(&name)
                    || (name.starts_with('#') && name[1..].bytes().all(|b| b.is_ascii_digit())),
                "bad reference &{name};"
            );
            rest = &r[semi + 1..];
        }
    }

    fn sample(n: u64, reason: FailureReason, detail: &str) -> FailureSample {
        FailureSample {
            call_number: n,
            call_id: format!("{n}-abc@host"),
            reason,
            detail: detail.into(),
        }
    }

    #[test]
    fn passing_run() {
        let mut c = Counters {
            calls_started: 10,
            calls_succeeded: 10,
            ..Default::default()
        };
        c.latency
            .record(Metric::FinalResponse, Duration::from_micros(1234));
        let side = Side {
            scenario: "uac",
            role: "uac",
            counters: &c,
        };
        let x = junit_xml(&side, Duration::from_millis(1500), &[]);
        assert_well_formed(&x);
        assert!(x.contains(
            "<testsuite name=\"sipwright\" tests=\"1\" failures=\"0\" errors=\"0\" skipped=\"0\" time=\"1.500\">"
        ));
        assert!(x.contains("<testcase classname=\"sipwright.uac\" name=\"uac\" time=\"1.500\">"));
        assert!(!x.contains("<failure"));
        assert!(x.contains("<system-out>calls: 10 started, 10 succeeded, 0 failed in 1.500 s\n"));
        assert!(x.contains("latency invite_to_final: count 1 p50 1.234 ms"));
        assert_eq!(x.matches("<testcase").count(), 1);
    }

    #[test]
    fn failing_run() {
        let mut c = Counters {
            calls_started: 100,
            calls_succeeded: 95,
            ..Default::default()
        };
        c.fail(FailureReason::UnexpectedMessage);
        c.fail(FailureReason::UnexpectedMessage);
        for _ in 0..3 {
            c.fail(FailureReason::Timeout);
        }
        c.failure_codes.insert(486, 2);
        let side = Side {
            scenario: "uac",
            role: "uac",
            counters: &c,
        };
        let samples = [
            sample(
                12,
                FailureReason::Timeout,
                "step 2: no response within 32 s",
            ),
            sample(
                13,
                FailureReason::UnexpectedMessage,
                "expected 200, got 486",
            ),
        ];
        let x = junit_xml(&side, Duration::from_secs(10), &samples);
        assert_well_formed(&x);
        assert!(x.contains("failures=\"1\""));
        assert!(x.contains(
            "<failure message=\"5 of 100 calls failed: 3 timeout, 2 unexpected_message\" type=\"timeout\">"
        ));
        assert!(x.contains("call 12 (12-abc@host): timeout: step 2: no response within 32 s\n"));
        assert!(x.contains("call 13 (13-abc@host): unexpected_message: expected 200, got 486\n"));
        assert!(x.contains("(3 more failed calls not shown)"));
        assert!(x.contains("failures by reason: timeout 3, unexpected_message 2\n"));
        assert!(x.contains("failures by status code: 486 2\n"));
    }

    #[test]
    fn escapes_and_strips() {
        assert_eq!(text("a<b&c>d\"e'f"), "a&lt;b&amp;c&gt;d\"e'f");
        assert_eq!(attr("a<b&c>d\"e'f"), "a&lt;b&amp;c&gt;d&quot;e&apos;f");
        assert_eq!(
            text("x\u{0}\u{1}\u{8}\u{b}\u{c}\u{1f}y\tz\n\r\u{FFFE}\u{FFFF}é"),
            "xy\tz\n&#13;é"
        );
        assert_eq!(attr("a\tb\nc\rd\u{7}"), "a&#9;b&#10;c&#13;d");
        assert_eq!(text("]]>"), "]]&gt;");

        let mut c = Counters {
            calls_started: 1,
            ..Default::default()
        };
        c.fail(FailureReason::AssertFailed);
        let side = Side {
            scenario: "a<b>&\"c'\u{1}",
            role: "u\"a'c",
            counters: &c,
        };
        let samples = [FailureSample {
            call_number: 0,
            call_id: "<id>&\u{0}".into(),
            reason: FailureReason::AssertFailed,
            detail: "got `SIP/2.0 486 <Busy> & \"Here\"`\u{1b}[0m".into(),
        }];
        let x = junit_xml(&side, Duration::ZERO, &samples);
        assert_well_formed(&x);
        assert!(x.contains(
            "classname=\"sipwright.u&quot;a&apos;c\" name=\"a&lt;b&gt;&amp;&quot;c&apos;\""
        ));
        assert!(x.contains("call 0 (&lt;id&gt;&amp;): assert_failed: got `SIP/2.0 486 &lt;Busy&gt; &amp; \"Here\"`[0m"));
        assert!(!x.contains('\u{1b}') && !x.contains('\u{0}') && !x.contains('\u{1}'));
    }

    #[test]
    fn checker_rejects_broken_xml() {
        let bad = [
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<a><b></a>",
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<a x=\"1\">&</a>",
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<a>\u{1}</a>",
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<a x=\"<\"></a>",
        ];
        for b in bad {
            assert!(
                std::panic::catch_unwind(|| assert_well_formed(b)).is_err(),
                "{b}"
            );
        }
    }
}
