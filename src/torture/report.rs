//! What a torture run prints and writes: the table (text, or Markdown for
//! docs), JSON, and JUnit XML with one test case per message (so a CI job
//! against a deployment shows each message as a test).

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use serde_json::{Value, json};

use super::pack::Reaction;
use super::runner::CaseResult;
use crate::report::junit::{attr, text};

/// The table's header line (the column widths of [`table_row`]).
pub fn table_header(width: usize) -> String {
    format!(
        "{:<width$}  {:<12}  {:<12}  {:<5}  result",
        "message", "expected", "actual", "alive"
    )
}

/// One row: message, expected reaction, actual reaction, target still alive,
/// and whether that is a pass.
pub fn table_row(r: &CaseResult, width: usize) -> String {
    format!(
        "{:<width$}  {:<12}  {:<12}  {:<5}  {}",
        r.name,
        r.expect.to_string(),
        r.reaction.to_string(),
        yes_no(r.alive),
        if r.passed() { "pass" } else { "FAIL" }
    )
}

/// Width of the message column for these names.
pub fn name_width<'a>(names: impl Iterator<Item = &'a str>) -> usize {
    names.map(str::len).max().unwrap_or(0).max("message".len())
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}

/// The closing line: how many passed, whether the target lived through it.
pub fn summary_line(results: &[CaseResult]) -> String {
    let passed = results.iter().filter(|r| r.passed()).count();
    let unexpected = results.iter().filter(|r| !r.as_expected()).count();
    let dead = results.iter().filter(|r| !r.alive).count();
    let alive = match (dead, results.last()) {
        (0, _) => "the target answered the probe after every message".to_string(),
        (_, Some(last)) if !last.alive => format!(
            "the target did not answer the probe after {dead} message(s), the last one included"
        ),
        _ => format!("the target did not answer the probe after {dead} message(s)"),
    };
    format!(
        "{} messages: {passed} passed, {unexpected} reacted otherwise than expected; {alive}",
        results.len()
    )
}

/// The whole table as text (what the command prints, in one piece).
pub fn text_table(results: &[CaseResult]) -> String {
    let w = name_width(results.iter().map(|r| r.name.as_str()));
    let mut t = table_header(w);
    t.push('\n');
    for r in results {
        t.push_str(&table_row(r, w));
        t.push('\n');
    }
    t.push_str(&summary_line(results));
    t.push('\n');
    t
}

/// The table in Markdown, with each response's status line and warning.
pub fn markdown_table(results: &[CaseResult]) -> String {
    let mut t = String::from(
        "| message | category | expected | actual | alive | response |\n|---|---|---|---|---|---|\n",
    );
    for r in results {
        let mark = if r.as_expected() { "" } else { " ≠" };
        let _ = writeln!(
            t,
            "| {} | {} | {} | {}{mark} | {} | {} |",
            r.name,
            r.category,
            r.expect,
            r.reaction,
            yes_no(r.alive),
            r.detail.replace('|', "\\|")
        );
    }
    t
}

pub fn json_report(target: &str, timeout: Duration, results: &[CaseResult]) -> Value {
    let messages: Vec<Value> = results
        .iter()
        .map(|r| {
            let status = match r.reaction {
                Reaction::Accept(c) | Reaction::Reject(c) | Reaction::Provisional(c) => json!(c),
                _ => Value::Null,
            };
            json!({
                "name": r.name,
                "category": r.category,
                "description": r.description,
                "expected": r.expect.to_string(),
                "actual": r.reaction.to_string(),
                "status": status,
                "detail": r.detail,
                "as_expected": r.as_expected(),
                "alive": r.alive,
                "passed": r.passed(),
                "elapsed_ms": (r.elapsed.as_secs_f64() * 1e6).round() / 1e3,
            })
        })
        .collect();
    json!({
        "version": 1,
        "target": target,
        "timeout_ms": timeout.as_millis() as u64,
        "messages_total": results.len(),
        "passed": results.iter().filter(|r| r.passed()).count(),
        "failed": results.iter().filter(|r| !r.passed()).count(),
        "alive": results.iter().all(|r| r.alive),
        "messages": messages,
    })
}

/// JUnit XML: one `<testcase>` per message, failed when the reaction was not
/// the expected one or the target stopped answering.
pub fn junit_xml(target: &str, results: &[CaseResult]) -> String {
    let failed = results.iter().filter(|r| !r.passed()).count();
    let time: f64 = results.iter().map(|r| r.elapsed.as_secs_f64()).sum();
    let mut x = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        x,
        "<testsuites name=\"sipwright torture\" tests=\"{}\" failures=\"{failed}\" errors=\"0\" time=\"{time:.3}\">",
        results.len()
    );
    let _ = writeln!(
        x,
        "  <testsuite name=\"torture {}\" tests=\"{}\" failures=\"{failed}\" errors=\"0\" skipped=\"0\" time=\"{time:.3}\">",
        attr(target),
        results.len()
    );
    for r in results {
        let _ = writeln!(
            x,
            "    <testcase classname=\"torture.{}\" name=\"{}\" time=\"{:.3}\">",
            attr(&r.category),
            attr(&r.name),
            r.elapsed.as_secs_f64()
        );
        if !r.passed() {
            let mut why = Vec::new();
            if !r.as_expected() {
                why.push(format!("expected {}, got {}", r.expect, r.reaction));
            }
            if !r.alive {
                why.push("the target did not answer the OPTIONS probe afterwards".to_string());
            }
            let kind = if r.as_expected() { "dead" } else { "reaction" };
            let _ = writeln!(
                x,
                "      <failure message=\"{}\" type=\"{kind}\">{}</failure>",
                attr(&why.join("; ")),
                text(&r.detail)
            );
        }
        let _ = writeln!(
            x,
            "      <system-out>{}\nexpected: {}\nactual: {}\nresponse: {}\nalive: {}</system-out>",
            text(&r.description),
            r.expect,
            r.reaction,
            text(&r.detail),
            yes_no(r.alive)
        );
        x.push_str("    </testcase>\n");
    }
    x.push_str("  </testsuite>\n</testsuites>\n");
    x
}

/// Writes the report `path` asks for: `.xml` JUnit, `.md` Markdown, `.txt`
/// the text table, anything else JSON.
pub fn write_report(
    path: &Path,
    target: &str,
    timeout: Duration,
    results: &[CaseResult],
) -> std::io::Result<()> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let body = match ext.as_str() {
        "xml" => junit_xml(target, results),
        "md" => markdown_table(results),
        "txt" => text_table(results),
        _ => {
            let mut t = serde_json::to_string_pretty(&json_report(target, timeout, results))
                .map_err(std::io::Error::other)?;
            t.push('\n');
            t
        }
    };
    std::fs::write(path, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::torture::pack::Expectation;

    fn result(name: &str, expect: Expectation, reaction: Reaction, alive: bool) -> CaseResult {
        CaseResult {
            name: name.into(),
            category: "invalid".into(),
            description: "a <test> & more".into(),
            expect,
            reaction,
            detail: "400 Bad Request; Warning: 399 sipwright \"x\"".into(),
            alive,
            elapsed: Duration::from_millis(3),
        }
    }

    fn sample() -> Vec<CaseResult> {
        vec![
            result(
                "good",
                Expectation::Reject(400),
                Reaction::Reject(400),
                true,
            ),
            result(
                "wrong",
                Expectation::Reject(400),
                Reaction::Accept(200),
                true,
            ),
            result("killer", Expectation::Ignore, Reaction::Ignore, false),
        ]
    }

    #[test]
    fn table_rows_and_summary() {
        let t = text_table(&sample());
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines[0],
            "message  expected      actual        alive  result"
        );
        assert_eq!(lines[1], "good     reject 400    reject 400    yes    pass");
        assert_eq!(lines[2], "wrong    reject 400    accept 200    yes    FAIL");
        assert_eq!(lines[3], "killer   ignore        ignore        no     FAIL");
        assert_eq!(
            lines[4],
            "3 messages: 1 passed, 1 reacted otherwise than expected; the target did not answer the probe after 1 message(s), the last one included"
        );
    }

    #[test]
    fn junit_has_a_case_per_message_and_escapes() {
        let x = junit_xml("127.0.0.1:5060", &sample());
        assert!(x.contains("<testsuites name=\"sipwright torture\" tests=\"3\" failures=\"2\""));
        assert_eq!(x.matches("<testcase ").count(), 3);
        assert!(x.contains("name=\"good\""));
        assert!(x.contains(
            "<failure message=\"expected reject 400, got accept 200\" type=\"reaction\">"
        ));
        assert!(x.contains(
            "<failure message=\"the target did not answer the OPTIONS probe afterwards\" type=\"dead\">"
        ));
        assert!(x.contains("a &lt;test&gt; &amp; more"));
        assert!(!x.contains("<test>"));
    }

    #[test]
    fn json_and_markdown() {
        let v = json_report("h:1", Duration::from_secs(2), &sample());
        assert_eq!(
            (v["passed"].clone(), v["failed"].clone(), v["alive"].clone()),
            (json!(1), json!(2), json!(false))
        );
        assert_eq!(v["messages"][1]["actual"], "accept 200");
        assert_eq!(v["messages"][1]["status"], 200);
        assert_eq!(v["messages"][2]["status"], Value::Null);
        assert_eq!(v["timeout_ms"], 2000);
        let md = markdown_table(&sample());
        assert!(md.contains("| wrong | invalid | reject 400 | accept 200 ≠ | yes |"));
    }
}
