//! Per-call data from a file (`--inject FILE`), as SIPp's `-inf` does.
//!
//! # Formats
//!
//! The first line that is neither blank nor a `#` comment decides:
//!
//! - `SEQUENTIAL`, `RANDOM` or `USER` (exactly, in capitals, optionally followed by
//!   `,OPTION=…`): a SIPp injection file, used unchanged. Every later line is one row
//!   of `;`-separated fields named `field0`, `field1`, …; no quoting (SIPp has none, so
//!   `"` is data); one trailing `;` ends the row rather than adding an empty field
//!   (SIPp files are often written `alice;secret;`). The row count is fixed by the
//!   first row. `PRINTF`, `PRINTFOFFSET` and `PRINTFMULTIPLE` are refused: they make
//!   SIPp rewrite each line per call, which would put a literal `%d` on the wire here;
//!   other options are ignored with a note ([`Injection::notes`]).
//! - Anything else is a header row naming the columns (`user,password,domain`) of a
//!   comma-separated file with RFC 4180 quoting (`"a,b"`, `""` for a quote, line
//!   breaks inside quotes). Header names are trimmed of spaces; a header file could
//!   only be mistaken for SIPp's when its first column is literally `USER` (etc.).
//!
//! In both: lines starting with `#` are comments (SIPp's rule; in a header file a
//! value starting with `#` in the first column must be quoted), blank or
//! whitespace-only lines are skipped (so a one-column file can't hold an empty value),
//! LF and CRLF both end lines, a UTF-8 BOM is skipped. A row must have exactly as many
//! fields as there are columns.
//!
//! # Storage
//!
//! The file is read once into one `Vec<u8>` and compacted *in place* while parsing:
//! each field's bytes (quotes removed, `""` unescaped) are moved down to the write
//! position, which never passes the read position because separators, quotes and
//! line ends are only ever dropped. Fields are then contiguous, so one flat
//! `Vec<u32>` of `rows × columns + 1` offsets describes them all: field `i` (row-major)
//! is `data[ends[i]..ends[i + 1]]`. No per-field allocation, no second buffer; the
//! held size is the file minus separators plus 4 bytes per field (a 1M-row two-column
//! file of ~25-byte lines: ~23 MB + 8 MB). Offsets are `u32`, so files are limited to
//! 4 GiB.
//!
//! # Row selection
//!
//! [`Order`]: SIPp's `SEQUENTIAL` → [`Order::Sequential`], `RANDOM` →
//! [`Order::Random`], `USER` → [`Order::PerWorker`]. SIPp's USER binds a line to a
//! simulated user so that one line (one account) is never used by two users at once;
//! sipwright has no user objects, and the nearest guarantee it can give is that a row
//! belongs to exactly one worker (so two workers never register or call with the same
//! account concurrently). Header files default to `Sequential`; the caller may
//! override with [`Injection::set_order`].
//!
//! # Templates
//!
//! A template names a column like any variable: `{{ user }}`, or `{{ field0 }}` by
//! position. [`super::template::Template::compile_with`] takes a column lookup
//! ([`Injection::column`]) besides the variable lookup and compiles such names to an
//! `Inject(col)` segment (a column wins over a scenario variable of the same name, as
//! `--set` does: the file is the per-run override of the scenario's defaults).
//! Rendering calls [`super::template::RenderContext::inject`], which the interpreter
//! implements as `out.extend_from_slice(injection.field(row, col))` with the row
//! chosen once when the call starts ([`Injection::row_for`]) — bytes go straight from
//! the file buffer into the message, nothing is copied per call. Still to wire (by the
//! CLI/compiler work): the `--inject` flag and `inject:` key, passing
//! `Injection::column` to `compile_with` in `compile.rs`, an `Arc<Injection>` in the
//! plan, a row in the call, and `RenderContext::inject` in `call.rs` (its default
//! renders nothing).
//!
//! # Lookup by value
//!
//! A challenging UAS (`challenge:` with `lookup: COLUMN`) must check each caller
//! against the caller's own row, whichever call number its request got.
//! [`Injection::index`] builds a [`ColumnIndex`] of one column once, at compile
//! time; [`ColumnIndex::find`] then maps the user name in the credentials to its
//! row without allocating.

use std::fmt;
use std::path::Path;

use memchr::{memchr, memchr_iter, memchr3};
use rand::{Rng, RngCore};

/// How a call picks its row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// Call k takes row (k − 1) mod rows.
    Sequential,
    /// A uniformly random row per call.
    Random,
    /// Each worker owns a contiguous share of the rows and cycles through it.
    PerWorker,
}

impl Order {
    /// `sequential`, `random`, `per-worker` (as written in `inject.order` and
    /// `--inject-order`).
    pub fn from_name(name: &str) -> Option<Order> {
        match name.trim().to_ascii_lowercase().as_str() {
            "sequential" => Some(Order::Sequential),
            "random" => Some(Order::Random),
            "per-worker" | "per_worker" => Some(Order::PerWorker),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Order::Sequential => "sequential",
            Order::Random => "random",
            Order::PerWorker => "per-worker",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum InjectError {
    #[error("{path}: can't read the injection file: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {kind}")]
    Parse {
        path: String,
        line: usize,
        kind: ParseErrorKind,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseErrorKind {
    #[error("empty injection file (expected a header row or SEQUENTIAL/RANDOM/USER)")]
    Empty,
    #[error("no data rows")]
    NoRows,
    #[error("row has {found} field(s), expected {expected} (missing {missing})")]
    TooFewColumns {
        found: usize,
        expected: usize,
        /// The missing columns' names, comma-separated.
        missing: String,
    },
    #[error("row has {found} fields, expected {expected}")]
    TooManyColumns { found: usize, expected: usize },
    #[error("unterminated quoted field (opened here)")]
    UnterminatedQuote,
    #[error("unexpected `{0}` after a closing quote; expected `,` or the end of the line")]
    AfterQuote(char),
    #[error("header column {0} has an empty name")]
    EmptyColumnName(usize),
    #[error("duplicate column name `{0}`")]
    DuplicateColumn(String),
    #[error("header column {0} is not valid UTF-8")]
    InvalidUtf8(usize),
    #[error("{0} is not supported (SIPp rewrites each line per call); expand the file instead")]
    Printf(String),
    #[error("file too large ({0} bytes; the limit is 4 GiB)")]
    TooLarge(usize),
}

/// A loaded injection file: rows of byte fields (see the module documentation).
pub struct Injection {
    path: String,
    /// Every field's bytes, back to back, in row-major order.
    data: Vec<u8>,
    /// `rows × columns + 1` offsets into `data`: field i is `ends[i]..ends[i + 1]`.
    ends: Vec<u32>,
    columns: Vec<String>,
    order: Order,
    notes: Vec<String>,
}

impl fmt::Debug for Injection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Injection")
            .field("path", &self.path)
            .field("columns", &self.columns)
            .field("rows", &self.rows())
            .field("order", &self.order)
            .finish()
    }
}

impl Injection {
    /// Read and parse `path`.
    pub fn load(path: &Path) -> Result<Injection, InjectError> {
        let name = path.display().to_string();
        match std::fs::read(path) {
            Ok(bytes) => Injection::parse(bytes, &name),
            Err(source) => Err(InjectError::Read { path: name, source }),
        }
    }

    /// Parse file contents; `name` is used in error messages. Never panics.
    pub fn parse(bytes: Vec<u8>, name: &str) -> Result<Injection, InjectError> {
        let err = |line, kind| InjectError::Parse {
            path: name.to_string(),
            line,
            kind,
        };
        if u32::try_from(bytes.len()).is_err() {
            return Err(err(1, ParseErrorKind::TooLarge(bytes.len())));
        }
        let start = if bytes.starts_with(b"\xEF\xBB\xBF") {
            3
        } else {
            0
        };
        let mut p = Parser {
            buf: bytes,
            r: start,
            w: 0,
            line: 1,
            sep: b',',
            quotes: true,
        };
        let first_line = p.skip_ignored().map_err(|k| err(p.line, k))?;
        if !first_line {
            return Err(err(1, ParseErrorKind::Empty));
        }
        let header_line = p.line;
        let mut notes = Vec::new();
        let mut ends: Vec<u32> = vec![0];
        let (columns, order) = match sipp_order(p.current_line()) {
            Some((order, options)) => {
                for opt in options {
                    let key = opt.split('=').next().unwrap_or("").trim();
                    if key.starts_with("PRINTF") {
                        return Err(err(header_line, ParseErrorKind::Printf(key.into())));
                    }
                    if !opt.trim().is_empty() {
                        notes.push(format!(
                            "{name}:{header_line}: ignoring unknown option `{}`",
                            opt.trim()
                        ));
                    }
                }
                p.next_line();
                p.sep = b';';
                p.quotes = false;
                // SIPp names its columns by position; the first row fixes how many.
                if !p.skip_ignored().map_err(|k| err(p.line, k))? {
                    return Err(err(header_line, ParseErrorKind::NoRows));
                }
                p.row(&mut ends).map_err(|(line, k)| err(line, k))?;
                let columns = (0..ends.len() - 1).map(|i| format!("field{i}")).collect();
                (columns, order)
            }
            None => {
                p.row(&mut ends).map_err(|(line, k)| err(line, k))?;
                let columns = header_names(&p.buf, &ends).map_err(|k| err(header_line, k))?;
                // The header's bytes were compacted to the front; rows overwrite them.
                p.w = 0;
                ends.truncate(1);
                (columns, Order::Sequential)
            }
        };
        let cols = columns.len();
        // One pass over the rest to size the offsets exactly (blank and comment lines
        // only make it an over-estimate), so the vector never doubles past what it needs.
        let lines = memchr_iter(b'\n', &p.buf[p.r..]).count() + 1;
        ends.reserve(lines.saturating_mul(cols));
        let expected_check = |found: usize, line: usize| {
            if found < cols {
                Err(err(
                    line,
                    ParseErrorKind::TooFewColumns {
                        found,
                        expected: cols,
                        missing: columns[found..].join(", "),
                    },
                ))
            } else if found > cols {
                Err(err(
                    line,
                    ParseErrorKind::TooManyColumns {
                        found,
                        expected: cols,
                    },
                ))
            } else {
                Ok(())
            }
        };
        while p.skip_ignored().map_err(|k| err(p.line, k))? {
            let line = p.line;
            let before = ends.len();
            p.row(&mut ends).map_err(|(line, k)| err(line, k))?;
            expected_check(ends.len() - before, line)?;
        }
        if ends.len() == 1 {
            return Err(err(header_line, ParseErrorKind::NoRows));
        }
        let mut data = p.buf;
        data.truncate(p.w);
        data.shrink_to_fit();
        ends.shrink_to_fit();
        Ok(Injection {
            path: name.to_string(),
            data,
            ends,
            columns,
            order,
            notes,
        })
    }

    /// The file name given to [`Injection::load`] or [`Injection::parse`].
    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn rows(&self) -> usize {
        (self.ends.len() - 1) / self.columns.len()
    }

    /// Column names: the header's, or `field0`… for SIPp files.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// Name the first columns `names` (`--inject-columns user,password` for a SIPp
    /// file, whose fields are otherwise only `field0`…); `fieldN` keeps working.
    pub fn rename_columns(&mut self, names: &[String]) -> Result<(), String> {
        if names.len() > self.columns.len() {
            return Err(format!(
                "{} names for {} column(s) ({})",
                names.len(),
                self.columns.len(),
                self.columns.join(", ")
            ));
        }
        for (i, name) in names.iter().enumerate() {
            let name = name.trim();
            if name.is_empty() {
                return Err(format!("column {} gets an empty name", i + 1));
            }
            if names[..i].iter().any(|n| n.trim() == name) {
                return Err(format!("`{name}` names two columns"));
            }
            self.columns[i] = name.to_string();
        }
        Ok(())
    }

    /// A column by header name, or `fieldN` by position (in either format).
    pub fn column(&self, name: &str) -> Option<usize> {
        if let Some(i) = self.columns.iter().position(|c| c == name) {
            return Some(i);
        }
        let n = name.strip_prefix("field")?;
        // `field01` would be a second spelling of `field1`: only canonical numbers.
        if n.is_empty() || (n.len() > 1 && n.starts_with('0')) {
            return None;
        }
        n.parse::<usize>().ok().filter(|&i| i < self.columns.len())
    }

    /// The bytes of one field. Panics when `row >= rows()` or `col >= columns().len()`.
    pub fn field(&self, row: usize, col: usize) -> &[u8] {
        assert!(col < self.columns.len(), "column {col} out of range");
        let i = row * self.columns.len() + col;
        &self.data[self.ends[i] as usize..self.ends[i + 1] as usize]
    }

    /// The order from the file (SIPp's first line), `Sequential` for header files.
    pub fn order(&self) -> Order {
        self.order
    }

    pub fn set_order(&mut self, order: Order) {
        self.order = order;
    }

    /// Things accepted but ignored (unknown SIPp options), as `FILE:LINE: …` lines.
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// Heap bytes held (capacities), for the memory budget.
    pub fn heap_bytes(&self) -> usize {
        self.data.capacity()
            + self.ends.capacity() * size_of::<u32>()
            + self.columns.iter().map(String::capacity).sum::<usize>()
            + self.columns.capacity() * size_of::<String>()
    }

    /// The row for call `call_number` (1-based) started by `worker` of `workers`.
    /// Per worker: worker w owns rows `[rows·w/W, rows·(w+1)/W)` and takes them in turn,
    /// counting its own calls as `(call_number − 1) / workers` — exact for UAC workers,
    /// which start every W-th call, and still within the worker's share otherwise.
    /// With fewer rows than workers, worker w uses row `w mod rows` alone.
    pub fn row_for(
        &self,
        call_number: u64,
        worker: usize,
        workers: usize,
        rng: &mut impl RngCore,
    ) -> usize {
        let rows = self.rows() as u64;
        let k = call_number.saturating_sub(1);
        let row = match self.order {
            Order::Sequential => k % rows,
            Order::Random => rng.random_range(0..rows),
            Order::PerWorker => {
                let workers = workers.max(1) as u64;
                let w = worker as u64 % workers;
                if rows < workers {
                    w % rows
                } else {
                    // rows ≥ workers, so every share is non-empty.
                    let lo = (u128::from(rows) * u128::from(w) / u128::from(workers)) as u64;
                    let hi = (u128::from(rows) * u128::from(w + 1) / u128::from(workers)) as u64;
                    lo + (k / workers) % (hi - lo)
                }
            }
        };
        row as usize
    }
}

/// Rows by the value of one column, for the `challenge:` step's `lookup:` (which
/// row a caller's credentials belong to, whatever order calls arrive in). Built
/// once at compile time, shared read-only by all calls.
///
/// A sorted `(hash, row)` list rather than a map keyed by the values: 8 bytes a
/// row, no copy of the values (they stay in the injection's buffer, which
/// [`ColumnIndex::find`] takes), and one sort instead of a million inserts. Equal
/// hashes (collisions, or a value on several rows) are told apart by comparing the
/// bytes; of rows with the same value the first one wins.
#[derive(Debug)]
pub struct ColumnIndex {
    col: usize,
    entries: Vec<(u32, u32)>,
}

impl Injection {
    /// An index of column `col` (which must be `< columns().len()`; a column out
    /// of range gives an index that finds nothing). Rows past `u32::MAX` cannot
    /// exist: offsets are `u32` (see the module documentation).
    pub fn index(&self, col: usize) -> ColumnIndex {
        let cols = self.columns.len();
        let mut entries = Vec::new();
        if col < cols {
            entries.reserve_exact(self.rows());
            for row in 0..self.rows() {
                let i = row * cols + col;
                let field = &self.data[self.ends[i] as usize..self.ends[i + 1] as usize];
                entries.push((value_hash(field), row as u32));
            }
            // Sorting whole pairs keeps rows of equal hash in row order: the first
            // row with a value is the one found.
            entries.sort_unstable();
        }
        ColumnIndex { col, entries }
    }
}

impl ColumnIndex {
    /// The column this index is over.
    pub fn column(&self) -> usize {
        self.col
    }

    /// The first row of `inj` whose column holds exactly `value`. `inj` must be
    /// the injection the index was built from (another one finds nothing useful,
    /// but never panics).
    pub fn find(&self, inj: &Injection, value: &[u8]) -> Option<usize> {
        let h = value_hash(value);
        let start = self.entries.partition_point(|&(eh, _)| eh < h);
        self.entries
            .get(start..)?
            .iter()
            .take_while(|&&(eh, _)| eh == h)
            .map(|&(_, row)| row as usize)
            .find(|&row| {
                row < inj.rows()
                    && self.col < inj.columns.len()
                    && inj.field(row, self.col) == value
            })
    }

    /// Heap bytes held, for the memory budget.
    pub fn heap_bytes(&self) -> usize {
        self.entries.capacity() * size_of::<(u32, u32)>()
    }
}

/// FNV-1a: fast on the short values of a users file (user names, numbers) and
/// well spread over them. Not keyed: the values are the file's, not an attacker's,
/// and a collision only costs a byte comparison.
fn value_hash(value: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for &b in value {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// `SEQUENTIAL[,OPT…]`, `RANDOM…`, `USER…` → the order and the options.
fn sipp_order(line: &[u8]) -> Option<(Order, Vec<String>)> {
    let line = std::str::from_utf8(line).ok()?;
    let mut parts = line.split(',');
    let order = match parts.next()?.trim() {
        "SEQUENTIAL" => Order::Sequential,
        "RANDOM" => Order::Random,
        "USER" => Order::PerWorker,
        _ => return None,
    };
    Some((order, parts.map(str::to_string).collect()))
}

fn header_names(buf: &[u8], ends: &[u32]) -> Result<Vec<String>, ParseErrorKind> {
    let mut names: Vec<String> = Vec::with_capacity(ends.len() - 1);
    for (i, pair) in ends.windows(2).enumerate() {
        let raw = &buf[pair[0] as usize..pair[1] as usize];
        let name = std::str::from_utf8(raw)
            .map_err(|_| ParseErrorKind::InvalidUtf8(i + 1))?
            .trim();
        if name.is_empty() {
            return Err(ParseErrorKind::EmptyColumnName(i + 1));
        }
        if names.iter().any(|n| n == name) {
            return Err(ParseErrorKind::DuplicateColumn(name.to_string()));
        }
        names.push(name.to_string());
    }
    Ok(names)
}

/// Reads rows at `r` and compacts their fields to `w` (`w <= r` always holds).
struct Parser {
    buf: Vec<u8>,
    r: usize,
    w: usize,
    /// 1-based line of `r`.
    line: usize,
    sep: u8,
    quotes: bool,
}

impl Parser {
    /// Skip blank, whitespace-only and `#` lines; true when a line with content starts
    /// at `r`.
    fn skip_ignored(&mut self) -> Result<bool, ParseErrorKind> {
        loop {
            let rest = &self.buf[self.r..];
            if rest.is_empty() {
                return Ok(false);
            }
            let content = rest.iter().position(|&b| b != b' ' && b != b'\t');
            let blank = match content {
                None => true,
                Some(i) => {
                    rest[i] == b'\n' || rest[i..].starts_with(b"\r\n") || &rest[i..] == b"\r"
                }
            };
            if !blank && rest[0] != b'#' {
                return Ok(true);
            }
            self.next_line();
        }
    }

    /// The line at `r`, without its line end.
    fn current_line(&self) -> &[u8] {
        let rest = &self.buf[self.r..];
        let end = memchr(b'\n', rest).unwrap_or(rest.len());
        rest[..end].strip_suffix(b"\r").unwrap_or(&rest[..end])
    }

    /// Move `r` past the current line.
    fn next_line(&mut self) {
        match memchr(b'\n', &self.buf[self.r..]) {
            Some(i) => {
                self.r += i + 1;
                self.line += 1;
            }
            None => self.r = self.buf.len(),
        }
    }

    /// Append `buf[from..to]` at `w`.
    fn keep(&mut self, from: usize, to: usize) {
        self.buf.copy_within(from..to, self.w);
        self.w += to - from;
    }

    /// Is `r` at a line end (`\n`, `\r\n`, a final `\r`) or the end of the buffer?
    fn at_line_end(&self) -> bool {
        let rest = &self.buf[self.r..];
        rest.is_empty() || rest[0] == b'\n' || rest.starts_with(b"\r\n") || rest == b"\r"
    }

    /// Consume a line end at `r` (the caller checked `at_line_end`).
    fn eat_line_end(&mut self) {
        if self.buf[self.r..].starts_with(b"\r") {
            self.r += 1;
        }
        if self.r < self.buf.len() {
            self.r += 1;
            self.line += 1;
        }
    }

    /// Parse one row starting at `r`, pushing each field's end offset. Errors carry the
    /// line they belong to.
    fn row(&mut self, ends: &mut Vec<u32>) -> Result<(), (usize, ParseErrorKind)> {
        loop {
            if self.quotes && self.buf.get(self.r) == Some(&b'"') {
                self.quoted()?;
            } else {
                self.unquoted();
            }
            // `w` <= `r` < 4 GiB (checked in `parse`).
            ends.push(self.w as u32);
            if self.at_line_end() {
                self.eat_line_end();
                return Ok(());
            }
            // Not a line end: the separator.
            self.r += 1;
            if !self.quotes && self.at_line_end() {
                // SIPp's trailing `;` closes the row.
                self.eat_line_end();
                return Ok(());
            }
        }
    }

    /// An unquoted field: up to the separator or the line end (a `\r` not before `\n`
    /// is data).
    fn unquoted(&mut self) {
        let start = self.r;
        let mut pos = self.r;
        let end = loop {
            match memchr3(self.sep, b'\n', b'\r', &self.buf[pos..]) {
                None => break self.buf.len(),
                Some(i) => {
                    let at = pos + i;
                    let b = self.buf[at];
                    if b == b'\r' && !matches!(self.buf.get(at + 1), None | Some(b'\n')) {
                        pos = at + 1;
                        continue;
                    }
                    break at;
                }
            }
        };
        self.keep(start, end);
        self.r = end;
    }

    /// A quoted field at `r` (on its opening quote): quotes removed, `""` unescaped.
    fn quoted(&mut self) -> Result<(), (usize, ParseErrorKind)> {
        let open_line = self.line;
        self.r += 1;
        loop {
            let Some(i) = memchr(b'"', &self.buf[self.r..]) else {
                return Err((open_line, ParseErrorKind::UnterminatedQuote));
            };
            let q = self.r + i;
            self.line += memchr_iter(b'\n', &self.buf[self.r..q]).count();
            self.keep(self.r, q);
            if self.buf.get(q + 1) == Some(&b'"') {
                // `""`: keep one quote.
                self.keep(q, q + 1);
                self.r = q + 2;
                continue;
            }
            self.r = q + 1;
            if self.at_line_end() || self.buf[self.r] == self.sep {
                return Ok(());
            }
            let c = self.buf[self.r..]
                .utf8_chunks()
                .next()
                .and_then(|c| c.valid().chars().next())
                .unwrap_or('\u{fffd}');
            return Err((self.line, ParseErrorKind::AfterQuote(c)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::template::{Builtin, RenderContext, Template, TemplateErrorKind};
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    fn parse(text: &str) -> Injection {
        Injection::parse(text.as_bytes().to_vec(), "t.csv").unwrap()
    }

    #[test]
    fn sipp_fields_can_be_named() {
        let mut inj = parse("SEQUENTIAL\nalice;pw-a;\n");
        inj.rename_columns(&["user".into(), "password".into()])
            .unwrap();
        assert_eq!(inj.column("password"), Some(1));
        assert_eq!(inj.column("field1"), Some(1));
        assert_eq!(inj.field(0, inj.column("user").unwrap()), b"alice");
        let err = inj.rename_columns(&["a".into(), "b".into(), "c".into()]);
        assert_eq!(err.unwrap_err(), "3 names for 2 column(s) (user, password)");
        let err = inj.rename_columns(&["a".into(), "a".into()]);
        assert_eq!(err.unwrap_err(), "`a` names two columns");
    }

    fn parse_err(text: &[u8]) -> String {
        Injection::parse(text.to_vec(), "t.csv")
            .unwrap_err()
            .to_string()
    }

    /// Every row as strings.
    fn table(inj: &Injection) -> Vec<Vec<String>> {
        (0..inj.rows())
            .map(|r| {
                (0..inj.columns().len())
                    .map(|c| String::from_utf8_lossy(inj.field(r, c)).into_owned())
                    .collect()
            })
            .collect()
    }

    #[test]
    fn header_file() {
        let inj = parse("user,password,domain\nalice,s1,example.com\nbob,,b.org\n");
        assert_eq!(inj.columns(), ["user", "password", "domain"]);
        assert_eq!(inj.rows(), 2);
        assert_eq!(
            table(&inj),
            [["alice", "s1", "example.com"], ["bob", "", "b.org"]]
        );
        assert_eq!(inj.column("password"), Some(1));
        assert_eq!(inj.column("field2"), Some(2));
        assert_eq!(inj.column("field3"), None);
        assert_eq!(inj.column("field02"), None);
        assert_eq!(inj.column("nope"), None);
        assert_eq!(inj.order(), Order::Sequential);
        assert_eq!(inj.path(), "t.csv");
        assert!(inj.notes().is_empty());
    }

    #[test]
    fn quoting() {
        let inj = parse(
            "name,\"odd,col\"\n\"a,b\",\"say \"\"hi\"\"\"\n\"multi\nline\",\"\"\nplain\"quote,x\n",
        );
        assert_eq!(inj.columns(), ["name", "odd,col"]);
        assert_eq!(
            table(&inj),
            [
                ["a,b", "say \"hi\""],
                ["multi\nline", ""],
                ["plain\"quote", "x"]
            ]
        );
    }

    #[test]
    fn crlf_bom_comments_blank_lines() {
        let inj =
            parse("\u{feff}# users\r\n\r\nuser,pw\r\n  \r\n# skip\r\na,1\r\n\r\n\"#b\",2\r\n\tc,3");
        assert_eq!(inj.columns(), ["user", "pw"]);
        assert_eq!(table(&inj), [["a", "1"], ["#b", "2"], ["\tc", "3"]]);
        // A lone CR inside a field is data; a final CR is a line end.
        let inj = parse("a\nx\ry\r");
        assert_eq!(table(&inj), [["x\ry"]]);
    }

    #[test]
    fn sipp_file() {
        let inj = parse(
            "SEQUENTIAL\n#This line will be ignored\nSarah;sipphone32\nBob;sipphone12;\n\n#This line too\nFred;sip,phone\"94\n",
        );
        assert_eq!(inj.columns(), ["field0", "field1"]);
        assert_eq!(
            table(&inj),
            [
                ["Sarah", "sipphone32"],
                ["Bob", "sipphone12"],
                ["Fred", "sip,phone\"94"]
            ]
        );
        assert_eq!(inj.column("field1"), Some(1));
        assert_eq!(inj.order(), Order::Sequential);

        let inj =
            parse("RANDOM\r\n3001;sip.x.com;[authentication username=3001 password=3001]\r\n");
        assert_eq!(inj.order(), Order::Random);
        assert_eq!(
            table(&inj),
            [[
                "3001",
                "sip.x.com",
                "[authentication username=3001 password=3001]"
            ]]
        );
        let inj = parse("USER,FOO=1\na;;\n");
        assert_eq!(inj.order(), Order::PerWorker);
        assert_eq!(table(&inj), [["a", ""]]);
        assert_eq!(inj.notes(), ["t.csv:1: ignoring unknown option `FOO=1`"]);
        // Lower case is a header: a one-column file of users is not SIPp's USER.
        assert_eq!(parse("user\nalice\n").columns(), ["user"]);
    }

    #[test]
    fn errors_with_line_numbers() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "t.csv:1: empty injection file"),
            (b"\xEF\xBB\xBF\n# c\n\n", "t.csv:1: empty injection file"),
            (b"user,pw\n", "t.csv:1: no data rows"),
            (b"SEQUENTIAL\n# only\n", "t.csv:1: no data rows"),
            (
                b"a,b,c\n1,2,3\n\n4,5\n",
                "t.csv:4: row has 2 field(s), expected 3 (missing c)",
            ),
            (
                b"a,b,c\n1\n",
                "t.csv:2: row has 1 field(s), expected 3 (missing b, c)",
            ),
            (b"a,b\n1,2,3\n", "t.csv:2: row has 3 fields, expected 2"),
            (
                b"SEQUENTIAL\nx;y\nx;y;z\n",
                "t.csv:3: row has 3 fields, expected 2",
            ),
            (
                b"a,b\n1,2\n\"3\n\n,4\n",
                "t.csv:3: unterminated quoted field",
            ),
            (
                b"a,b\n\"x\"y,2\n",
                "t.csv:2: unexpected `y` after a closing quote",
            ),
            (
                b"a,,c\n1,2,3\n",
                "t.csv:1: header column 2 has an empty name",
            ),
            (b"a, b ,b\n1,2,3\n", "t.csv:1: duplicate column name `b`"),
            (
                b"a,\xFF\n1,2\n",
                "t.csv:1: header column 2 is not valid UTF-8",
            ),
            (
                b"SEQUENTIAL,PRINTF=10\nuser%d\n",
                "t.csv:1: PRINTF is not supported",
            ),
            (
                b"# h\nRANDOM,PRINTFOFFSET=1\nx\n",
                "t.csv:2: PRINTFOFFSET is not supported",
            ),
        ];
        for (input, want) in cases {
            let got = parse_err(input);
            assert!(
                got.starts_with(want),
                "{:?}: got {got:?}, want {want:?}",
                String::from_utf8_lossy(input)
            );
        }
        let missing = Injection::load(Path::new("/nonexistent/inject.csv")).unwrap_err();
        assert!(
            missing
                .to_string()
                .starts_with("/nonexistent/inject.csv: can't read"),
            "{missing}"
        );
    }

    #[test]
    fn odd_inputs_never_panic() {
        for input in [
            &b"\""[..],
            b"\"\"",
            b"a\n\"",
            b"a\n\"\"\"",
            b"SEQUENTIAL",
            b"SEQUENTIAL\n;",
            b"SEQUENTIAL\n;;\n;;",
            b"\r",
            b"\r\r\n",
            b"a\r\n\r",
            b"\xEF\xBB",
            b",",
            b"a\n,",
            b"#",
            b"a\n\"x\"\r",
            b"a\n\"x\"\rb",
        ] {
            if let Ok(inj) = Injection::parse(input.to_vec(), "t") {
                let _ = table(&inj);
            }
        }
        assert_eq!(table(&parse("SEQUENTIAL\n;")), [[""]]);
        assert_eq!(table(&parse("a\n\"x\"\r")), [["x"]]);
    }

    #[test]
    fn sequential_wraps() {
        let inj = parse("u\na\nb\nc\n");
        let mut rng = SmallRng::seed_from_u64(1);
        let rows: Vec<usize> = (1..=7).map(|k| inj.row_for(k, 0, 1, &mut rng)).collect();
        assert_eq!(rows, [0, 1, 2, 0, 1, 2, 0]);
        assert_eq!(inj.row_for(0, 0, 1, &mut rng), 0);
    }

    #[test]
    fn per_worker_shares() {
        let text = format!(
            "u\n{}",
            (0..10).map(|i| format!("{i}\n")).collect::<String>()
        );
        let mut inj = parse(&text);
        inj.set_order(Order::PerWorker);
        let mut rng = SmallRng::seed_from_u64(1);
        // 3 workers, UAC-style: worker w starts calls w+1, w+1+3, ...
        let share = |w: usize| -> Vec<usize> {
            (0..8)
                .map(|i| {
                    inj.row_for(
                        (w + 1 + 3 * i) as u64,
                        w,
                        3,
                        &mut SmallRng::seed_from_u64(0),
                    )
                })
                .collect()
        };
        assert_eq!(share(0), [0, 1, 2, 0, 1, 2, 0, 1]);
        assert_eq!(share(1), [3, 4, 5, 3, 4, 5, 3, 4]);
        assert_eq!(share(2), [6, 7, 8, 9, 6, 7, 8, 9]);
        // Fewer rows than workers: each worker keeps one row.
        let mut small = parse("u\na\nb\n");
        small.set_order(Order::PerWorker);
        let rows: Vec<usize> = (0..5).map(|w| small.row_for(9, w, 5, &mut rng)).collect();
        assert_eq!(rows, [0, 1, 0, 1, 0]);
        // Zero workers is treated as one.
        assert_eq!(small.row_for(2, 0, 0, &mut rng), 1);
    }

    #[test]
    fn random_stays_in_range() {
        let mut inj = parse("u\na\nb\nc\nd\n");
        inj.set_order(Order::Random);
        let mut rng = SmallRng::seed_from_u64(7);
        let mut seen = [0usize; 4];
        for k in 1..=400 {
            seen[inj.row_for(k, 0, 1, &mut rng)] += 1;
        }
        assert!(seen.iter().all(|&n| n > 50), "{seen:?}");
    }

    /// The interpreter's side of the hook: a context whose `inject` copies the call's
    /// row straight from the file buffer.
    struct RowContext<'a> {
        inj: &'a Injection,
        row: usize,
    }

    impl RenderContext for RowContext<'_> {
        fn builtin(&mut self, _: Builtin, _: &mut Vec<u8>) {}
        fn var(&self, _: usize, _: &mut Vec<u8>) {}
        fn last_header(&self, _: &str, _: &mut Vec<u8>) {}
        fn inject(&self, col: usize, out: &mut Vec<u8>) {
            out.extend_from_slice(self.inj.field(self.row, col));
        }
    }

    #[test]
    fn templates_render_injected_fields() {
        let inj = parse("SEQUENTIAL\nalice;a.org\nbob;b.org;\n");
        let column = |name: &str| inj.column(name);
        let no_vars = |_: &str| None;
        let t = Template::compile_with(
            "REGISTER sip:{{ field1 }} SIP/2.0\nTo: <sip:{{field0}}@{{ field1 }}>\n",
            false,
            &no_vars,
            &column,
        )
        .unwrap();
        let mut rng = SmallRng::seed_from_u64(0);
        let rendered: Vec<String> = (1..=3)
            .map(|k| {
                let mut ctx = RowContext {
                    inj: &inj,
                    row: inj.row_for(k, 0, 1, &mut rng),
                };
                let mut out = Vec::new();
                t.render(&mut ctx, &mut out);
                String::from_utf8(out).unwrap()
            })
            .collect();
        let msg = |user: &str, domain: &str| {
            format!(
                "REGISTER sip:{domain} SIP/2.0\r\nTo: <sip:{user}@{domain}>\r\nContent-Length: 0\r\n\r\n"
            )
        };
        assert_eq!(
            rendered,
            [
                msg("alice", "a.org"),
                msg("bob", "b.org"),
                msg("alice", "a.org")
            ]
        );
        let err = Template::compile_with("X {{ field2 }}", false, &no_vars, &column).unwrap_err();
        assert_eq!(err[0].kind, TemplateErrorKind::Undefined("field2".into()));
    }

    #[test]
    fn column_index_finds_rows_by_value() {
        let inj = parse("user,password\nalice,a1\nbob,b2\n\"\",e\ncarol,c3\nbob,b5\n");
        let users = inj.index(0);
        assert_eq!(users.column(), 0);
        assert_eq!(users.find(&inj, b"alice"), Some(0));
        assert_eq!(users.find(&inj, b"carol"), Some(3));
        // A value on two rows: the first one.
        assert_eq!(users.find(&inj, b"bob"), Some(1));
        assert_eq!(users.find(&inj, b""), Some(2));
        assert_eq!(users.find(&inj, b"bo"), None);
        assert_eq!(users.find(&inj, b"alice "), None);
        let pw = inj.index(1);
        assert_eq!(pw.find(&inj, b"b5"), Some(4));
        assert_eq!(pw.find(&inj, b"alice"), None);
        // Out of range, or used with another file: finds nothing, never panics.
        assert_eq!(inj.index(7).find(&inj, b"alice"), None);
        let other = parse("u\nalice\n");
        assert_eq!(pw.find(&other, b"a1"), None);
        assert_eq!(users.find(&other, b"alice"), Some(0));
        assert!(users.heap_bytes() >= 5 * 8);
    }

    #[test]
    fn column_index_tells_colliding_values_apart() {
        // Many distinct values: some 32-bit hashes are bound to be close; every value
        // must still find its own row.
        let mut text = String::from("u\n");
        for i in 0..20_000 {
            text.push_str(&format!("user{i}\n"));
        }
        let inj = parse(&text);
        let idx = inj.index(0);
        for i in (0..20_000).step_by(7) {
            assert_eq!(idx.find(&inj, format!("user{i}").as_bytes()), Some(i));
        }
        assert_eq!(idx.find(&inj, b"user20000"), None);
    }

    /// `cargo test --release --lib scenario::inject::tests::million_rows -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn million_rows() {
        let mut text = Vec::with_capacity(26_000_000);
        text.extend_from_slice(b"user,password\n");
        for i in 1..=1_000_000 {
            text.extend_from_slice(format!("user{i:06},secret{i:06}\n").as_bytes());
        }
        let path =
            std::env::temp_dir().join(format!("sipwright-inject-{}.csv", std::process::id()));
        std::fs::write(&path, &text).unwrap();
        let size = text.len();
        drop(text);
        // Peak RSS of the load itself (Linux): reset the high-water mark, then compare.
        let status = |key: &str| -> usize {
            let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
            s.lines()
                .find_map(|l| l.strip_prefix(key))
                .and_then(|v| v.trim().trim_end_matches(" kB").parse::<usize>().ok())
                .unwrap_or(0)
                * 1024
        };
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        let rss_before = status("VmRSS:");
        let t = std::time::Instant::now();
        let inj = Injection::load(&path).unwrap();
        let elapsed = t.elapsed();
        let peak = status("VmHWM:").saturating_sub(rss_before);
        std::fs::remove_file(&path).unwrap();
        assert_eq!(inj.rows(), 1_000_000);
        assert_eq!(inj.field(999_999, 1), b"secret1000000");
        let t = std::time::Instant::now();
        let index = inj.index(0);
        let index_time = t.elapsed();
        assert_eq!(index.find(&inj, b"user765432"), Some(765_431));
        println!(
            "1M rows: column index built in {index_time:?}, {} bytes",
            index.heap_bytes()
        );
        let held = inj.heap_bytes();
        println!(
            "1M rows: file {size} bytes, load {elapsed:?}, held {held} bytes ({:.2}× the file), \
             peak RSS growth {peak} bytes ({:.2}×)",
            held as f64 / size as f64,
            peak as f64 / size as f64
        );
        assert!(held <= 2 * size);
    }
}
