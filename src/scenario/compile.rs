//! YAML scenario → validated [`Plan`]. Every problem is reported as a
//! [`Diagnostic`] with file, line, column and key path.
//!
//! Shape errors (bad YAML, unknown keys, wrong value types) come from serde-saphyr,
//! which stops at the first one. Everything after that — meanings of values, names,
//! templates, regexes, labels — is checked here, and all such problems are
//! collected so a scenario author sees them in one run.

use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use regex::Regex;
use serde_saphyr::{Location, MessageFormatter, Spanned, UserMessageFormatter};

use super::compile_media::is_media_action;
use super::duration::parse_duration;
use super::inject::{Injection, Order};
use super::model::{
    AuthDef, CaptureDef, ConditionDef, InjectDef, Node, NodeKind, STEP_ACTIONS, ScenarioDef,
    StepDef, StepEntry, step_modifiers,
};
use super::plan::{
    AuthPlan, Capture, Condition, GotoLimit, PauseSpec, Plan, RecvMatch, RecvStep, Role, SendSpec,
    SendStep, Step, StepKind, Subject, Test, VarSlot,
};
use super::template::{Builtin, Template, TemplateError, TemplateErrorKind};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub file: String,
    /// 1-based; 0 when unknown.
    pub line: u64,
    /// 1-based; 0 when unknown.
    pub column: u64,
    /// Key path such as `steps[3].recv` (may be empty).
    pub path: String,
    pub message: String,
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )?;
        if !self.path.is_empty() {
            write!(f, " (at {})", self.path)?;
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("{}", .diagnostics.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n"))]
pub struct CompileError {
    pub diagnostics: Vec<Diagnostic>,
}

/// What a compilation takes besides the scenario text: the command line's part.
#[derive(Clone, Copy, Default)]
pub struct CompileOptions<'a> {
    /// `--set NAME=VALUE` pairs: they replace a declared variable's initial value or
    /// declare a new one.
    pub overrides: &'a [(String, String)],
    /// `--inject FILE`, already loaded: replaces the scenario's `inject:`. Shared by
    /// both sides of a loopback run (the file is read once).
    pub inject: Option<&'a Arc<Injection>>,
    /// `--inject-order`: the row order for a file the scenario's `inject:` names.
    pub inject_order: Option<Order>,
    /// Folder a scenario's relative paths (`inject.file`) are resolved against;
    /// None: the current directory.
    pub base_dir: Option<&'a Path>,
}

/// Compile scenario text. `source` names it in diagnostics. `overrides` are
/// `--set NAME=VALUE` pairs: they replace a declared variable's initial value or
/// declare a new one.
pub fn compile_str(
    source: &str,
    text: &str,
    overrides: &[(String, String)],
) -> Result<Plan, CompileError> {
    compile_str_with(
        source,
        text,
        &CompileOptions {
            overrides,
            ..Default::default()
        },
    )
}

/// [`compile_str`] with the command line's options.
pub fn compile_str_with(
    source: &str,
    text: &str,
    opts: &CompileOptions<'_>,
) -> Result<Plan, CompileError> {
    // serde-saphyr skips a BOM; dropping it here keeps byte offsets in step with ours.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let def: ScenarioDef = match serde_saphyr::from_str(text) {
        Ok(def) => def,
        Err(err) => {
            return Err(CompileError {
                diagnostics: vec![yaml_diagnostic(source, text, &err)],
            });
        }
    };
    let mut cx = Compiler {
        file: source,
        text,
        diags: Vec::new(),
        elsewhere: Vec::new(),
        vars: Vec::new(),
        labels: HashMap::new(),
        inject: opts.inject.cloned(),
        inject_used: false,
        base_dir: opts.base_dir,
    };
    let plan = cx.plan(def, opts);
    if cx.diags.is_empty() && cx.elsewhere.is_empty() {
        Ok(plan)
    } else {
        // Stable: problems on one line keep the order they were found in; those in
        // another file come right after the place that names the file.
        let mut all: Vec<(Pos, Diagnostic)> = cx
            .diags
            .into_iter()
            .map(|d| ((d.line, d.column), d))
            .collect();
        all.extend(cx.elsewhere);
        all.sort_by_key(|(at, _)| *at);
        Err(CompileError {
            diagnostics: all.into_iter().map(|(_, d)| d).collect(),
        })
    }
}

/// Read and compile a file (I/O errors become a diagnostic at 0:0).
pub fn compile_file(path: &Path, overrides: &[(String, String)]) -> Result<Plan, CompileError> {
    compile_file_with(
        path,
        &CompileOptions {
            overrides,
            ..Default::default()
        },
    )
}

/// [`compile_file`] with the command line's options; relative paths in the scenario
/// are resolved against the file's folder.
pub fn compile_file_with(path: &Path, opts: &CompileOptions<'_>) -> Result<Plan, CompileError> {
    let source = path.display().to_string();
    let opts = CompileOptions {
        base_dir: opts.base_dir.or(path.parent()),
        ..*opts
    };
    match std::fs::read_to_string(path) {
        Ok(text) => compile_str_with(&source, &text, &opts),
        Err(err) => Err(CompileError {
            diagnostics: vec![Diagnostic {
                file: source,
                line: 0,
                column: 0,
                path: String::new(),
                message: format!("can't read the scenario: {err}"),
            }],
        }),
    }
}

pub(super) struct Compiler<'a> {
    pub(super) file: &'a str,
    text: &'a str,
    diags: Vec<Diagnostic>,
    /// Problems in another file (a `send_file` template), each with the position in
    /// the scenario that names that file.
    pub(super) elsewhere: Vec<(Pos, Diagnostic)>,
    pub(super) vars: Vec<VarSlot>,
    /// Label name → (step index it resolves to, line it is defined on).
    labels: HashMap<String, (usize, u64)>,
    /// The run's per-call data: templates may name its columns.
    pub(super) inject: Option<Arc<Injection>>,
    /// Some template (or a `lookup:`) reads a column of `inject`.
    pub(super) inject_used: bool,
    /// Folder relative paths (`send_file`) are resolved against; None: the
    /// current directory.
    pub(super) base_dir: Option<&'a Path>,
}

/// `(line, column)` of a value, 1-based.
pub(super) type Pos = (u64, u64);

pub(super) fn pos_of<T>(s: &Spanned<T>) -> Pos {
    (s.referenced.line(), s.referenced.column())
}

impl Compiler<'_> {
    pub(super) fn error(&mut self, pos: Pos, path: impl Into<String>, message: impl Into<String>) {
        self.diags.push(Diagnostic {
            file: self.file.to_string(),
            line: pos.0,
            column: pos.1,
            path: path.into(),
            message: message.into(),
        });
    }

    fn plan(&mut self, def: ScenarioDef, opts: &CompileOptions<'_>) -> Plan {
        let name = match &def.name {
            Some(n) if !n.value.trim().is_empty() => n.value.trim().to_string(),
            _ => default_name(self.file),
        };
        let steps_def = match def.steps {
            Some(steps) => steps,
            None => {
                let message = if is_blank_yaml(self.text) {
                    "the scenario is empty; it needs at least a `steps:` list"
                } else {
                    "missing `steps:`; a scenario is a list of steps such as `- send: ...` and `- recv: 200`"
                };
                self.error((1, 1), "steps", message);
                Vec::new()
            }
        };

        self.declare_vars(def.vars.map(|v| v.0).unwrap_or_default(), opts.overrides);
        if self.inject.is_none()
            && let Some(def) = &def.inject
        {
            self.inject = self.load_inject(&def.value, opts);
        }
        self.declare_capture_vars(&steps_def);
        self.collect_labels(&steps_def);

        self.check_pipelines(&steps_def);
        let mut steps = Vec::with_capacity(steps_def.len());
        for (i, step) in steps_def.iter().enumerate() {
            if let Some(kind) = self.step(i, step) {
                steps.push(Step {
                    line: step.referenced.line() as u32,
                    kind,
                });
            }
        }

        let role = match &def.role {
            Some(r) => match r.value.trim().to_ascii_lowercase().as_str() {
                "uac" => Role::Uac,
                "uas" => Role::Uas,
                other => {
                    self.error(
                        pos_of(r),
                        "role",
                        format!("unknown role `{other}`; expected `uac` or `uas`"),
                    );
                    Role::Uac
                }
            },
            None => infer_role(&steps_def),
        };

        let recv_timeout = def
            .timeout
            .as_ref()
            .and_then(|t| self.duration(t, "timeout"));

        // Media is on with a `media:` block, a media step or `{{ sdp }}`; otherwise
        // the scenario is signalling only and calls open no ports.
        let uses_media = steps.iter().any(|s| match &s.kind {
            StepKind::Media(_) => true,
            StepKind::Send(SendSpec {
                what: SendStep::Message(t),
                ..
            }) => t.uses_builtin(Builtin::Sdp),
            _ => false,
        });
        let media = match &def.media {
            Some(m) => Some(self.media_config(m)),
            None => uses_media.then(Default::default),
        };
        let peer = def.peer.as_ref().map(|p| p.value.trim().to_string());
        let auth = def.auth.as_ref().and_then(|a| self.auth(&a.value));

        let call_id = (role == Role::Uac)
            .then(|| {
                steps.iter().find_map(|s| match &s.kind {
                    StepKind::Send(SendSpec {
                        what: SendStep::Message(t),
                        ..
                    }) if t.method().is_some() => Some(t),
                    _ => None,
                })
            })
            .flatten()
            .and_then(|t| t.literal_header("call-id"))
            .filter(|id| !id.is_empty());
        Plan {
            name,
            source: self.file.to_string(),
            role,
            call_id,
            last_needed_after: super::plan::last_liveness(&steps),
            steps,
            vars: std::mem::take(&mut self.vars),
            recv_timeout,
            media: media.map(std::sync::Arc::new),
            peer,
            auth,
            inject: self.inject.clone(),
            inject_used: self.inject_used,
        }
    }

    /// The scenario's `inject:` file (not used when `--inject` gave one).
    fn load_inject(
        &mut self,
        def: &InjectDef,
        opts: &CompileOptions<'_>,
    ) -> Option<Arc<Injection>> {
        let order = match &def.order {
            Some(o) => match Order::from_name(&o.value) {
                Some(order) => Some(order),
                None => {
                    self.error(
                        pos_of(o),
                        "inject.order",
                        format!(
                            "unknown order `{}`; expected `sequential`, `random` or `per-worker`",
                            o.value.trim()
                        ),
                    );
                    return None;
                }
            },
            None => None,
        };
        let file = Path::new(def.file.value.trim());
        let path = match opts.base_dir {
            Some(dir) if file.is_relative() => dir.join(file),
            _ => file.to_path_buf(),
        };
        match Injection::load(&path) {
            Ok(mut injection) => {
                if let Some(order) = opts.inject_order.or(order) {
                    injection.set_order(order);
                }
                Some(Arc::new(injection))
            }
            Err(e) => {
                self.error(pos_of(&def.file), "inject.file", e.to_string());
                None
            }
        }
    }

    fn var_slot(&self, name: &str) -> Option<usize> {
        self.vars.iter().position(|v| v.name == name)
    }

    /// Problem with a name used as a variable, or None when it is usable.
    fn bad_var_name(name: &str) -> Option<String> {
        if Builtin::from_name(name).is_some() {
            return Some(format!(
                "`{name}` is a built-in; choose another variable name"
            ));
        }
        let mut chars = name.chars();
        let ok = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        (!ok).then(|| {
            format!(
                "`{name}` is not a valid variable name; use letters, digits, `_` and `-`, starting with a letter"
            )
        })
    }

    fn declare_vars(
        &mut self,
        declared: Vec<(Spanned<String>, Spanned<String>)>,
        overrides: &[(String, String)],
    ) {
        for (key, value) in declared {
            if let Some(problem) = Self::bad_var_name(&key.value) {
                self.error(pos_of(&key), format!("vars.{}", key.value), problem);
                continue;
            }
            self.vars.push(VarSlot {
                name: key.value,
                initial: value.value,
            });
        }
        for (name, value) in overrides {
            match self.var_slot(name) {
                Some(slot) => self.vars[slot].initial = value.clone(),
                None => match Self::bad_var_name(name) {
                    Some(problem) => self.error((0, 0), format!("--set {name}"), problem),
                    None => self.vars.push(VarSlot {
                        name: name.clone(),
                        initial: value.clone(),
                    }),
                },
            }
        }
    }

    /// Captured variables get slots before any step is compiled, so a template may
    /// use a variable that a later step (e.g. in a loop) captures.
    fn declare_capture_vars(&mut self, steps: &[Spanned<StepEntry>]) {
        let captures = steps
            .iter()
            .filter_map(|s| s.value.capture.as_ref())
            .flat_map(|c| c.value.iter());
        for capture in captures {
            if let Some(var) = &capture.value.var {
                let name = var.value.trim();
                if Self::bad_var_name(name).is_none() && self.var_slot(name).is_none() {
                    self.vars.push(VarSlot {
                        name: name.to_string(),
                        initial: String::new(),
                    });
                }
            }
        }
    }

    fn collect_labels(&mut self, steps: &[Spanned<StepEntry>]) {
        // A label produces no step: it names the index of the next real step.
        let mut next_index = 0;
        for (i, step) in steps.iter().enumerate() {
            let Some(label) = &step.value.label else {
                next_index += 1;
                continue;
            };
            if action_keys(&step.value).len() > 1 {
                // Reported by `step`; such a step produces no Step either.
                continue;
            }
            let name = label.value.trim();
            let path = format!("steps[{i}].label");
            if name.is_empty() {
                self.error(pos_of(label), path, "empty label name");
            } else if let Some((_, line)) = self.labels.get(name) {
                let message = format!(
                    "duplicate label `{name}` (first defined on line {line}); label names must be unique"
                );
                self.error(pos_of(label), path, message);
            } else {
                self.labels
                    .insert(name.to_string(), (next_index, label.referenced.line()));
            }
        }
    }

    fn step(&mut self, i: usize, step: &Spanned<StepEntry>) -> Option<StepKind> {
        let st = &step.value;
        let path = format!("steps[{i}]");
        if let Some(word) = st.bare.as_deref()
            && !matches!(word, "silence" | "stop_media")
        {
            self.error(pos_of(step), path, BARE_STEP_MESSAGE);
            return None;
        }
        let actions = action_keys(st);
        let action = match actions.as_slice() {
            [one] => *one,
            [] => {
                let present = modifier_keys(st);
                let message = if present.is_empty() {
                    format!(
                        "step has no action; expected one of {}",
                        STEP_ACTIONS.join(", ")
                    )
                } else {
                    format!(
                        "step has only modifiers ({}); add an action: {}",
                        present
                            .iter()
                            .map(|(k, _)| format!("`{k}`"))
                            .collect::<Vec<_>>()
                            .join(", "),
                        STEP_ACTIONS.join(", ")
                    )
                };
                self.error(pos_of(step), path, message);
                return None;
            }
            [first, second, ..] => {
                let message = format!(
                    "step has both `{first}` and `{second}`; a step does one thing, so split it into separate steps"
                );
                self.error(pos_of(step), path, message);
                return None;
            }
        };

        let allowed = step_modifiers(action);
        for (key, pos) in modifier_keys(st) {
            if !allowed.contains(&key) {
                let takes = if allowed.is_empty() {
                    "it takes no modifiers".to_string()
                } else {
                    format!("it takes: {}", allowed.join(", "))
                };
                let message = format!("`{key}` doesn't apply to a `{action}` step; {takes}");
                self.error(pos, format!("{path}.{key}"), message);
            }
        }

        match action {
            "send" | "send_file" | "bytes_base64" => self.send_step(&path, st, action),
            "recv" => self.recv_step(&path, st),
            "pause" => self.pause_step(&path, st.pause.as_ref()?),
            "label" => None,
            "goto" => {
                let goto = st.goto.as_ref()?;
                let name = goto.value.trim();
                let target = match self.labels.get(name) {
                    Some((target, _)) => Some(*target),
                    None => {
                        let known: Vec<&str> = self.labels.keys().map(String::as_str).collect();
                        let message =
                            format!("no label `{name}`{}", choices_hint(name, &known, "labels"));
                        self.error(pos_of(goto), format!("{path}.goto"), message);
                        None
                    }
                };
                let when = st
                    .when
                    .as_ref()
                    .and_then(|c| self.condition(&format!("{path}.if"), c));
                let times = match &st.times {
                    Some(t) => Some(self.goto_limit(&format!("{path}.times"), t)?),
                    None => None,
                };
                Some(StepKind::Goto {
                    target: target?,
                    when,
                    times,
                })
            }
            "capture" => {
                let list = st.capture.as_ref()?;
                let captures = self.captures(&format!("{path}.capture"), list)?;
                Some(StepKind::Capture(captures))
            }
            "assert" => {
                let cond = self.condition(&format!("{path}.assert"), st.assert.as_ref()?)?;
                Some(StepKind::Assert(cond))
            }
            a if is_media_action(a) => self.media_step(a, &path, st, pos_of(step)),
            "challenge" => self.challenge_step(&path, st),
            _ => None,
        }
    }

    /// Compile template text with the scenario's variables and injected columns.
    pub(super) fn compile_template(
        &mut self,
        text: &str,
        raw: bool,
    ) -> Result<Template, Vec<TemplateError>> {
        let vars = &self.vars;
        let lookup = |name: &str| vars.iter().position(|v| v.name == name);
        let inject = self.inject.as_deref();
        let column = |name: &str| inject.and_then(|i| i.column(name));
        let t = Template::compile_with(text, raw, &lookup, &column)?;
        self.inject_used |= t.uses_inject();
        Ok(t)
    }

    pub(super) fn template_error_message(&self, kind: &TemplateErrorKind) -> String {
        match kind {
            TemplateErrorKind::Undefined(name) => self.undefined_var_message(name),
            other => other.to_string(),
        }
    }

    /// Compile a templated scalar; errors point at the offending `{{` in the file.
    pub(super) fn template(
        &mut self,
        text: &Spanned<String>,
        raw: bool,
        path: &str,
    ) -> Option<Template> {
        match self.compile_template(&text.value, raw) {
            Ok(t) => Some(t),
            Err(errors) => {
                for e in errors {
                    let pos = match e.kind {
                        TemplateErrorKind::Empty => pos_of(text),
                        _ => self.brace_pos(text, e.offset),
                    };
                    let message = self.template_error_message(&e.kind);
                    self.error(pos, path.to_string(), message);
                }
                None
            }
        }
    }

    /// `times:` of a goto: an integer, or `{{ var }}` naming a variable whose value
    /// (after `--set`) is one. Gets a hidden counter slot.
    fn goto_limit(&mut self, path: &str, t: &Spanned<String>) -> Option<GotoLimit> {
        let text = t.value.trim();
        let value = match text
            .strip_prefix("{{")
            .and_then(|r| r.strip_suffix("}}"))
            .map(str::trim)
        {
            Some(name) => match self.var_slot(name) {
                Some(slot) => self.vars[slot].initial.trim().to_string(),
                None => {
                    let message = self.undefined_var_message(name);
                    self.error(pos_of(t), path, message);
                    return None;
                }
            },
            None => text.to_string(),
        };
        let Ok(max) = value.parse::<u32>() else {
            self.error(
                pos_of(t),
                path,
                format!("`times: {text}` is not a whole number of jumps (`{value}`)"),
            );
            return None;
        };
        let slot = self.vars.len();
        self.vars.push(VarSlot {
            name: format!("#goto{slot}"),
            initial: "0".into(),
        });
        Some(GotoLimit { max, slot })
    }

    /// The `auth:` block: username and password are templates (a CSV column, a
    /// variable), compiled like message text but kept byte-exact.
    fn auth(&mut self, def: &AuthDef) -> Option<AuthPlan> {
        let username = self.template(&def.username, true, "auth.username");
        let password = self.template(&def.password, true, "auth.password");
        Some(AuthPlan {
            username: username?,
            password: password?,
            realm: def.realm.as_ref().map(|r| r.value.trim().to_string()),
        })
    }

    /// Where the `{{` at byte `offset` of a scalar's value is in the file. The value
    /// is the YAML scalar after indentation removal, folding and escapes, so offsets
    /// don't map directly; but those transformations never create or remove a `{{`,
    /// so the n-th `{{` of the value is the n-th `{{` of the scalar's source text.
    fn brace_pos(&self, value: &Spanned<String>, offset: usize) -> Pos {
        // `defined`: for an alias, the text lives at the anchor, not at `*name`.
        let loc = &value.defined;
        let fallback = (loc.line(), loc.column());
        let Some(nth) = value.value.get(..offset).map(|v| v.matches("{{").count()) else {
            return fallback;
        };
        let Some(start) = loc.span().byte_offset().map(|o| o as usize) else {
            return fallback;
        };
        let end = loc
            .span()
            .byte_len()
            .map_or(self.text.len(), |l| start.saturating_add(l as usize))
            .min(self.text.len());
        let Some(source) = self.text.get(start..end) else {
            return fallback;
        };
        match source.match_indices("{{").nth(nth) {
            Some((at, _)) => line_col(self.text, start + at),
            None => fallback,
        }
    }

    pub(super) fn undefined_var_message(&self, name: &str) -> String {
        let mut message = format!("undefined variable `{name}`");
        // `#…` slots are the compiler's own (goto counters), not the author's.
        let declared = || {
            self.vars
                .iter()
                .map(|v| v.name.as_str())
                .filter(|n| !n.starts_with('#'))
        };
        let mut candidates: Vec<&str> = declared().collect();
        candidates.extend(Builtin::ALL.iter().map(|(n, _)| *n));
        if let Some(close) = closest(name, &candidates) {
            message.push_str(&format!(" (did you mean `{close}`?)"));
        }
        if declared().next().is_none() {
            message.push_str("; no variables are declared");
        } else {
            let names: Vec<&str> = declared().collect();
            message.push_str(&format!("; declared variables: {}", names.join(", ")));
        }
        match &self.inject {
            Some(i) => message.push_str(&format!(
                "; declare it under `vars:`, capture it, pass `--set {name}=VALUE`, or add a `{name}` column to {} (its columns: {})",
                i.path(),
                i.columns().join(", ")
            )),
            None => message.push_str(&format!(
                "; declare it under `vars:`, capture it, pass `--set {name}=VALUE`, or `--inject` a file with a `{name}` column"
            )),
        }
        message
    }

    fn recv_step(&mut self, path: &str, st: &StepDef) -> Option<StepKind> {
        let recv = st.recv.as_ref()?;
        let matcher = match parse_recv_match(&recv.value) {
            Ok(m) => Some(m),
            Err(message) => {
                self.error(pos_of(recv), format!("{path}.recv"), message);
                None
            }
        };
        let in_reply_to = st.in_reply_to.as_ref().and_then(|m| {
            let p = format!("{path}.in_reply_to");
            if matches!(matcher, Some(RecvMatch::Method(_))) {
                self.error(
                    pos_of(m),
                    p,
                    "`in_reply_to` applies only when receiving a response (e.g. `recv: 200`)",
                );
                return None;
            }
            let method = m.value.trim();
            if !is_token(method) {
                self.error(
                    pos_of(m),
                    p,
                    format!("`{method}` is not a SIP method; expected e.g. `INVITE` or `CANCEL`"),
                );
                return None;
            }
            Some(method.to_ascii_uppercase())
        });
        let timeout = st
            .timeout
            .as_ref()
            .and_then(|t| self.duration(t, &format!("{path}.timeout")));
        let rtd = st.rtd.as_ref().and_then(|r| {
            let name = r.value.trim();
            if name.is_empty() {
                self.error(pos_of(r), format!("{path}.rtd"), "empty `rtd` name");
                return None;
            }
            Some(name.to_string())
        });
        let captures = match &st.capture {
            Some(list) => self.captures(&format!("{path}.capture"), list),
            None => Some(Vec::new()),
        };
        Some(StepKind::Recv(RecvStep {
            matcher: matcher?,
            in_reply_to,
            optional: st.optional.as_ref().is_some_and(|o| o.value),
            timeout,
            captures: captures?,
            rtd,
        }))
    }

    fn pause_step(&mut self, path: &str, pause: &Spanned<String>) -> Option<StepKind> {
        let path = format!("{path}.pause");
        let text = pause.value.trim();
        let Some(inner) = text.strip_prefix("{{").and_then(|t| t.strip_suffix("}}")) else {
            return self
                .duration(pause, &path)
                .map(|d| StepKind::Pause(PauseSpec::Fixed(d)));
        };
        let name = inner.trim();
        if Builtin::from_name(name) == Some(Builtin::RefreshAfter) {
            return Some(StepKind::Pause(PauseSpec::RefreshAfter));
        }
        let Some(slot) = self.var_slot(name) else {
            let message = if Builtin::from_name(name).is_some() {
                format!(
                    "`pause` takes a duration, `{{{{ variable }}}}` or `{{{{ refresh_after }}}}`, not the built-in `{name}`"
                )
            } else {
                self.undefined_var_message(name)
            };
            self.error(pos_of(pause), path, message);
            return None;
        };
        // The value can change at run time (a capture), but a bad initial value is
        // certainly a mistake and is cheaper to report now.
        let initial = &self.vars[slot].initial;
        if !initial.is_empty()
            && let Err(e) = parse_duration(initial)
        {
            let message = format!("variable `{name}` is `{initial}`, not a duration: {e}");
            self.error(pos_of(pause), path, message);
            return None;
        }
        Some(StepKind::Pause(PauseSpec::Var(slot)))
    }

    pub(super) fn duration(
        &mut self,
        value: &Spanned<String>,
        path: &str,
    ) -> Option<std::time::Duration> {
        match parse_duration(&value.value) {
            Ok(d) => Some(d),
            Err(e) => {
                self.error(pos_of(value), path, e);
                None
            }
        }
    }

    fn regex(&mut self, value: &Spanned<String>, path: &str) -> Option<Regex> {
        match Regex::new(&value.value) {
            Ok(r) => Some(r),
            Err(e) => {
                let message = format!("bad regex `{}`: {}", value.value, regex_error_summary(&e));
                self.error(pos_of(value), path, message);
                None
            }
        }
    }

    fn captures(
        &mut self,
        path: &str,
        list: &Spanned<Vec<Spanned<CaptureDef>>>,
    ) -> Option<Vec<Capture>> {
        let mut out = Vec::with_capacity(list.value.len());
        let mut ok = true;
        for (j, c) in list.value.iter().enumerate() {
            match self.capture(&format!("{path}[{j}]"), c) {
                Some(capture) => out.push(capture),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn capture(&mut self, path: &str, c: &Spanned<CaptureDef>) -> Option<Capture> {
        let def = &c.value;
        let mut sources = Vec::new();
        self.message_subjects(&def.header, &def.body, &def.start_line, path, &mut sources);
        let from = match sources.as_slice() {
            [(_, _, subject)] => subject.clone(),
            [] => {
                self.error(
                    pos_of(c),
                    path,
                    "capture needs a source: `header: NAME`, `body: true` or `start_line: true`",
                );
                None
            }
            [(a, _, _), (b, pos, _), ..] => {
                let message = format!("capture has two sources, `{a}` and `{b}`; use exactly one");
                self.error(*pos, path, message);
                None
            }
        };
        let regex = match &def.regex {
            Some(r) => self.regex(r, &format!("{path}.regex")),
            None => {
                self.error(pos_of(c), path, "capture needs `regex:`");
                None
            }
        };
        let var = match &def.var {
            Some(v) => {
                let name = v.value.trim();
                match Self::bad_var_name(name) {
                    Some(problem) => {
                        self.error(pos_of(v), format!("{path}.var"), problem);
                        None
                    }
                    None => self.var_slot(name),
                }
            }
            None => {
                self.error(
                    pos_of(c),
                    path,
                    "capture needs `var:` naming the variable it sets",
                );
                None
            }
        };
        Some(Capture {
            from: from?,
            regex: regex?,
            var: var?,
            required: def.required.as_ref().is_some_and(|r| r.value),
        })
    }

    /// The message subjects a capture or condition names (`header`, `body`,
    /// `start_line`), each with its key and position, for the one-subject check.
    fn message_subjects(
        &mut self,
        header: &Option<Spanned<String>>,
        body: &Option<Spanned<bool>>,
        start_line: &Option<Spanned<bool>>,
        path: &str,
        out: &mut Vec<(&'static str, Pos, Option<Subject>)>,
    ) {
        if let Some(h) = header {
            out.push(("header", pos_of(h), self.header_subject(h, path)));
        }
        if let Some(b) = body {
            out.push((
                "body",
                pos_of(b),
                self.flag_subject(b, "body", Subject::Body, path),
            ));
        }
        if let Some(s) = start_line {
            let subject = self.flag_subject(s, "start_line", Subject::StartLine, path);
            out.push(("start_line", pos_of(s), subject));
        }
    }

    fn header_subject(&mut self, h: &Spanned<String>, path: &str) -> Option<Subject> {
        let name = h.value.trim();
        if is_token(name) {
            Some(Subject::Header(name.to_string()))
        } else {
            self.error(
                pos_of(h),
                format!("{path}.header"),
                format!("`{name}` is not a header name"),
            );
            None
        }
    }

    fn flag_subject(
        &mut self,
        flag: &Spanned<bool>,
        key: &str,
        subject: Subject,
        path: &str,
    ) -> Option<Subject> {
        if flag.value {
            Some(subject)
        } else {
            self.error(
                pos_of(flag),
                format!("{path}.{key}"),
                format!("`{key}: false` selects nothing; write `{key}: true` or remove it"),
            );
            None
        }
    }

    fn condition(&mut self, path: &str, cond: &Spanned<ConditionDef>) -> Option<Condition> {
        let def = &cond.value;
        let mut subjects = Vec::new();
        if let Some(v) = &def.var {
            let name = v.value.trim();
            let subject = match self.var_slot(name) {
                Some(slot) => Some(Subject::Var(slot)),
                None => {
                    let message = self.undefined_var_message(name);
                    self.error(pos_of(v), format!("{path}.var"), message);
                    None
                }
            };
            subjects.push(("var", pos_of(v), subject));
        }
        self.message_subjects(&def.header, &def.body, &def.start_line, path, &mut subjects);
        let subject = match subjects.as_slice() {
            [(_, _, subject)] => subject.clone(),
            [] => {
                self.error(
                    pos_of(cond),
                    path,
                    "condition needs a subject: `var: NAME`, `header: NAME`, `body: true` or `start_line: true`",
                );
                None
            }
            [(a, _, _), (b, pos, _), ..] => {
                let message =
                    format!("condition has two subjects, `{a}` and `{b}`; use exactly one");
                self.error(*pos, path, message);
                None
            }
        };

        let mut tests = Vec::new();
        if let Some(e) = &def.equals {
            tests.push(("equals", pos_of(e), Some(Test::Equals(e.value.clone()))));
        }
        if let Some(m) = &def.matches {
            let test = self.regex(m, &format!("{path}.matches")).map(Test::Matches);
            tests.push(("matches", pos_of(m), test));
        }
        if let Some(x) = &def.exists {
            let test = if x.value {
                Test::Exists
            } else {
                Test::Not(Box::new(Test::Exists))
            };
            tests.push(("exists", pos_of(x), Some(test)));
        }
        let mut tests = tests.into_iter();
        let test = match (tests.next(), tests.next()) {
            (Some((_, _, test)), None) => test,
            (None, _) => {
                self.error(
                    pos_of(cond),
                    path,
                    "condition needs a test: `equals: TEXT`, `matches: REGEX` or `exists: true|false`",
                );
                None
            }
            (Some((a, _, _)), Some((b, pos, _))) => {
                let message = format!("condition has two tests, `{a}` and `{b}`; use exactly one");
                self.error(pos, path, message);
                None
            }
        };
        let negate = def.not.as_ref().is_some_and(|n| n.value);
        let test = test?;
        Some(Condition {
            subject: subject?,
            test: if negate {
                Test::Not(Box::new(test))
            } else {
                test
            },
        })
    }
}

/// Action keys present in a step. `capture` is the action only without `recv`.
fn action_keys(st: &StepDef) -> Vec<&'static str> {
    let mut keys = Vec::new();
    for (key, present) in [
        ("send", st.send.is_some()),
        ("send_file", st.send_file.is_some()),
        ("bytes_base64", st.bytes_base64.is_some()),
        ("recv", st.recv.is_some()),
        ("pause", st.pause.is_some()),
        ("label", st.label.is_some()),
        ("goto", st.goto.is_some()),
        ("capture", st.capture.is_some() && st.recv.is_none()),
        ("assert", st.assert.is_some()),
        ("play", st.play.is_some()),
        ("play_pcap", st.play_pcap.is_some()),
        (
            "silence",
            st.silence.is_some() || st.bare.as_deref() == Some("silence"),
        ),
        (
            "stop_media",
            st.stop_media.is_some() || st.bare.as_deref() == Some("stop_media"),
        ),
        ("dtmf", st.dtmf.is_some()),
        ("expect_media", st.expect_media.is_some()),
        ("expect_dtmf", st.expect_dtmf.is_some()),
        ("challenge", st.challenge.is_some()),
    ] {
        if present {
            keys.push(key);
        }
    }
    keys
}

/// Modifier keys present in a step, with their value positions.
fn modifier_keys(st: &StepDef) -> Vec<(&'static str, Pos)> {
    let mut keys = Vec::new();
    let mut add = |key, pos: Option<Pos>| {
        if let Some(pos) = pos {
            keys.push((key, pos));
        }
    };
    add("raw", st.raw.as_ref().map(pos_of));
    add("template", st.template.as_ref().map(pos_of));
    add("chunks", st.chunks.as_ref().map(pos_of));
    add("pipeline", st.pipeline.as_ref().map(pos_of));
    add("optional", st.optional.as_ref().map(pos_of));
    add("timeout", st.timeout.as_ref().map(pos_of));
    add("in_reply_to", st.in_reply_to.as_ref().map(pos_of));
    add("rtd", st.rtd.as_ref().map(pos_of));
    if st.recv.is_some() {
        add("capture", st.capture.as_ref().map(pos_of));
    }
    add("if", st.when.as_ref().map(pos_of));
    add("loop", st.looped.as_ref().map(pos_of));
    add("until", st.until.as_ref().map(pos_of));
    add("stream", st.stream.as_ref().map(pos_of));
    add("duration", st.duration.as_ref().map(pos_of));
    add("gap", st.gap.as_ref().map(pos_of));
    add("volume", st.volume.as_ref().map(pos_of));
    add("mode", st.mode.as_ref().map(pos_of));
    keys
}

fn infer_role(steps: &[Spanned<StepEntry>]) -> Role {
    for step in steps {
        let st = &step.value;
        if st.send.is_some() || st.send_file.is_some() || st.bytes_base64.is_some() {
            return Role::Uac;
        }
        if step.value.recv.is_some() {
            return Role::Uas;
        }
    }
    Role::Uac
}

/// `scenarios/uac.yaml` → "uac", `builtin:options` → "options".
fn default_name(source: &str) -> String {
    let tail = source.rsplit(['/', '\\', ':']).next().unwrap_or(source);
    Path::new(tail)
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| source.to_string())
}

/// RFC 3261 `token`, which is what methods and header names are.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-.!%*_+`'~".contains(&b))
}

fn parse_recv_match(text: &str) -> Result<RecvMatch, String> {
    let t = text.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return match t.parse::<u16>() {
            Ok(code) if (100..=699).contains(&code) => Ok(RecvMatch::Status(code)),
            _ => Err(format!(
                "status code {t} is out of range; expected 100-699, a class like `2xx`, or a method like `INVITE`"
            )),
        };
    }
    let b = t.as_bytes();
    if b.len() == 3 && b[0].is_ascii_digit() && b[1..].eq_ignore_ascii_case(b"xx") {
        return match b[0] {
            b'1'..=b'6' => Ok(RecvMatch::Class(b[0] - b'0')),
            _ => Err(format!("`{t}` is not a status class; expected 1xx to 6xx")),
        };
    }
    if is_token(t) && !t.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Ok(RecvMatch::Method(t.to_ascii_uppercase()));
    }
    Err(format!(
        "`{t}` is not a status code, status class or method; expected e.g. `200`, `2xx` or `INVITE`"
    ))
}

/// The regex crate's syntax errors are a multi-line drawing; the last line says
/// what is wrong, which is what fits in a one-line diagnostic.
fn regex_error_summary(e: &regex::Error) -> String {
    let text = e.to_string();
    let last = text.lines().last().unwrap_or(&text).trim();
    last.strip_prefix("error: ").unwrap_or(last).to_string()
}

/// 1-based line and column (in characters) of a byte offset.
pub(super) fn line_col(text: &str, offset: usize) -> Pos {
    let before = text.get(..offset).unwrap_or(text);
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let line = before.bytes().filter(|&b| b == b'\n').count() as u64 + 1;
    let column = before[line_start..].chars().count() as u64 + 1;
    (line, column)
}

/// Optimal string alignment distance: Levenshtein plus adjacent transpositions,
/// the most common typo (`sned`).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut d = vec![0usize; (a.len() + 1) * width];
    for (i, cell) in d.iter_mut().step_by(width).enumerate() {
        *cell = i;
    }
    for (j, cell) in d.iter_mut().take(width).enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[(i - 1) * width + j] + 1)
                .min(d[i * width + j - 1] + 1)
                .min(d[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[(i - 2) * width + j - 2] + 1);
            }
            d[i * width + j] = best;
        }
    }
    d[a.len() * width + b.len()]
}

/// The candidate a typo most likely meant, if any is close enough.
fn closest<'a>(name: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).clamp(1, 3);
    candidates
        .iter()
        .map(|c| (edit_distance(&name.to_ascii_lowercase(), c), *c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// "; did you mean `x`?" and/or "; known labels: a, b" for a name not found.
fn choices_hint(name: &str, known: &[&str], what: &str) -> String {
    let mut known = known.to_vec();
    known.sort_unstable();
    let mut hint = String::new();
    if let Some(close) = closest(name, &known) {
        hint.push_str(&format!(" (did you mean `{close}`?)"));
    }
    if known.is_empty() {
        hint.push_str(&format!("; no {what} are defined"));
    } else {
        hint.push_str(&format!("; {what}: {}", known.join(", ")));
    }
    hint
}

/// One diagnostic for a serde-saphyr error: its position, the key path found by
/// re-reading the document without a schema, and a one-line message.
fn yaml_diagnostic(file: &str, text: &str, err: &serde_saphyr::Error) -> Diagnostic {
    let inner = err.without_snippet();
    let (line, column) = inner
        .location()
        .or_else(|| err.location())
        .filter(|l| *l != Location::UNKNOWN)
        .map_or((0, 0), |l| (l.line(), l.column()));
    let tree = serde_saphyr::from_str::<Node>(text).ok();
    let (path, step) = match &tree {
        Some(root) if line > 0 => path_at(root, (line, column)),
        _ => (String::new(), None),
    };
    let message = match inner {
        _ if is_blank_yaml(text) => {
            "the scenario is empty; it needs at least a `steps:` list".to_string()
        }
        serde_saphyr::Error::SerdeUnknownField {
            field, expected, ..
        } => unknown_key_message(field, expected, step),
        serde_saphyr::Error::Unexpected { expected, .. }
            if *expected == "string scalar" && starts_with_braces(text, line, column) =>
        {
            // Unquoted `{{ x }}` is a YAML flow mapping inside a flow mapping.
            "a value starting with `{{` must be quoted, e.g. \"{{ name }}\"".to_string()
        }
        serde_saphyr::Error::Unexpected { expected, .. } => unexpected_message(expected, &path)
            .unwrap_or_else(|| one_line(UserMessageFormatter.format_message(inner))),
        _ => {
            let message = one_line(UserMessageFormatter.format_message(inner));
            match message.as_str() {
                "invalid boolean" => "invalid boolean; expected true or false".to_string(),
                "null is not allowed here" => {
                    "missing value; write `\"\"` for empty text".to_string()
                }
                _ => message,
            }
        }
    };
    Diagnostic {
        file: file.to_string(),
        line,
        column,
        path,
        message,
    }
}

const BARE_STEP_MESSAGE: &str = "a step must be a mapping such as `send: ...` or `recv: 200` (the bare-word steps are `silence` and `stop_media`)";

/// serde-saphyr names parser events ("mapping start"); say it in YAML terms.
fn unexpected_message(expected: &str, path: &str) -> Option<String> {
    Some(match expected {
        "mapping start" if path.is_empty() => {
            "a scenario must be a mapping with at least a `steps:` list".to_string()
        }
        "mapping start" if path.starts_with("steps[") && path.ends_with(']') => {
            BARE_STEP_MESSAGE.to_string()
        }
        "mapping start" => "expected a mapping of `key: value` entries".to_string(),
        "sequence start" => "expected a list (`- item` lines or `[a, b]`)".to_string(),
        "string scalar" => "expected a single value, not a list or mapping".to_string(),
        _ => return None,
    })
}

fn starts_with_braces(text: &str, line: u64, column: u64) -> bool {
    let Some(l) = text.lines().nth(line.saturating_sub(1) as usize) else {
        return false;
    };
    l.chars()
        .skip(column.saturating_sub(1) as usize)
        .collect::<String>()
        .starts_with("{{")
}

fn is_blank_yaml(text: &str) -> bool {
    text.lines()
        .map(str::trim)
        .all(|l| l.is_empty() || l.starts_with('#') || l == "---" || l == "...")
}

fn one_line(message: Cow<'_, str>) -> String {
    message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn unknown_key_message(field: &str, expected: &[&str], step: Option<&Node>) -> String {
    if let Some(step) = step {
        let action = STEP_ACTIONS
            .iter()
            .copied()
            .find(|a| step.get(a).is_some() && !(*a == "capture" && step.get("recv").is_some()));
        return match action {
            None => {
                let hint = closest(field, STEP_ACTIONS)
                    .map(|c| format!(" (did you mean `{c}`?)"))
                    .unwrap_or_default();
                format!(
                    "unknown step `{field}`{hint}; expected one of {}",
                    STEP_ACTIONS.join(", ")
                )
            }
            Some(action) => {
                let allowed = step_modifiers(action);
                let hint = closest(field, allowed)
                    .map(|c| format!(" (did you mean `{c}`?)"))
                    .unwrap_or_default();
                let takes = if allowed.is_empty() {
                    "it takes no other keys".to_string()
                } else {
                    format!("it takes: {}", allowed.join(", "))
                };
                format!("unknown key `{field}` in a `{action}` step{hint}; {takes}")
            }
        };
    }
    let hint = closest(field, expected)
        .map(|c| format!(" (did you mean `{c}`?)"))
        .unwrap_or_default();
    format!(
        "unknown key `{field}`{hint}; expected one of {}",
        expected.join(", ")
    )
}

/// Key path of the deepest node at or before `pos`, and the step mapping when the
/// path ends in a key of a step (`steps[N].key`), for step-specific messages.
fn path_at(root: &Node, pos: Pos) -> (String, Option<&Node>) {
    let mut path = String::new();
    let mut node = root;
    let mut step = None;
    loop {
        match &node.kind {
            NodeKind::Map(entries) => {
                let Some((key, value)) = entries.iter().rev().find(|(k, _)| k.pos() <= pos) else {
                    break;
                };
                let key_text = key.as_str().unwrap_or("?");
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key_text);
                step = is_step_path(&path, key_text).then_some(node);
                if value.pos() > pos || matches!(value.kind, NodeKind::Scalar(_)) {
                    break;
                }
                node = value;
            }
            NodeKind::Seq(items) => {
                let Some((i, item)) = items
                    .iter()
                    .enumerate()
                    .rev()
                    .find(|(_, it)| it.pos() <= pos)
                else {
                    break;
                };
                path.push_str(&format!("[{i}]"));
                node = item;
            }
            NodeKind::Scalar(_) => break,
        }
    }
    (path, step)
}

/// True for `steps[N].key`.
fn is_step_path(path: &str, key: &str) -> bool {
    path.strip_suffix(key)
        .and_then(|p| p.strip_suffix('.'))
        .and_then(|p| p.strip_prefix("steps["))
        .and_then(|p| p.strip_suffix(']'))
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::scenario::template::SimpleContext;

    const UAC_BASIC: &str = include_str!("../../tests/fixtures/scenarios/uac_basic.yaml");
    const BAD_YAML: &str = include_str!("../../tests/fixtures/scenarios/bad_yaml.yaml");
    const UNKNOWN_STEP: &str = include_str!("../../tests/fixtures/scenarios/unknown_step.yaml");
    const UNKNOWN_RECV_FIELD: &str =
        include_str!("../../tests/fixtures/scenarios/unknown_recv_field.yaml");
    const SEMANTIC_ERRORS: &str =
        include_str!("../../tests/fixtures/scenarios/semantic_errors.yaml");

    fn ok(text: &str) -> Plan {
        match compile_str("test.yaml", text, &[]) {
            Ok(plan) => plan,
            Err(e) => panic!("unexpected errors:\n{e}"),
        }
    }

    fn errs(text: &str) -> Vec<Diagnostic> {
        match compile_str("test.yaml", text, &[]) {
            Ok(_) => panic!("expected errors for:\n{text}"),
            Err(e) => e.diagnostics,
        }
    }

    /// The single diagnostic of `text`, as (line, column, path, message).
    fn one_err(text: &str) -> (u64, u64, String, String) {
        let d = errs(text);
        assert_eq!(d.len(), 1, "{d:#?}");
        let d = d.into_iter().next().unwrap();
        (d.line, d.column, d.path, d.message)
    }

    fn recv(step: &Step) -> &RecvStep {
        match &step.kind {
            StepKind::Recv(r) => r,
            other => panic!("not a recv: {other:?}"),
        }
    }

    #[test]
    fn valid_fixture_compiles_to_the_expected_plan() {
        let plan = compile_str("fixtures/uac_basic.yaml", UAC_BASIC, &[]).unwrap();
        assert_eq!(plan.name, "basic-uac");
        assert_eq!(plan.source, "fixtures/uac_basic.yaml");
        assert_eq!(plan.role, Role::Uac);
        assert_eq!(plan.recv_timeout, Some(Duration::from_secs(32)));
        let vars: Vec<(&str, &str)> = plan
            .vars
            .iter()
            .map(|v| (v.name.as_str(), v.initial.as_str()))
            .collect();
        assert_eq!(
            vars,
            [
                ("service", "service"),
                ("call_duration", "0s"),
                ("max_forwards", "70"),
                ("contact", ""),
                ("peer_tag", ""),
                ("last_code", ""),
            ]
        );

        let lines: Vec<u32> = plan.steps.iter().map(|s| s.line).collect();
        assert_eq!(lines, [12, 32, 34, 37, 47, 48, 49, 50, 51, 53, 57, 60, 61]);

        let StepKind::Send(SendSpec {
            what: SendStep::Message(invite),
            ..
        }) = &plan.steps[0].kind
        else {
            panic!("{:?}", plan.steps[0].kind);
        };
        assert_eq!(invite.method(), Some("INVITE"));

        let r = recv(&plan.steps[1]);
        assert_eq!(r.matcher, RecvMatch::Status(100));
        assert!(r.optional);
        assert_eq!(r.timeout, None);
        let r = recv(&plan.steps[2]);
        assert_eq!(r.matcher, RecvMatch::Class(1));
        assert_eq!(r.timeout, Some(Duration::from_secs(5)));
        let r = recv(&plan.steps[3]);
        assert_eq!(r.matcher, RecvMatch::Class(2));
        assert!(!r.optional);
        assert_eq!(r.rtd.as_deref(), Some("setup"));
        assert_eq!(r.captures.len(), 2);
        assert_eq!(r.captures[0].from, Subject::Header("Contact".into()));
        assert_eq!(r.captures[0].var, 3);
        assert!(!r.captures[0].required);
        assert_eq!(r.captures[0].regex.as_str(), "<([^>]*)>");
        assert_eq!(r.captures[1].var, 4);
        assert!(r.captures[1].required);

        assert!(matches!(
            plan.steps[4].kind,
            StepKind::Send(SendSpec {
                what: SendStep::Ack,
                ..
            })
        ));
        let StepKind::Assert(cond) = &plan.steps[5].kind else {
            panic!("{:?}", plan.steps[5].kind);
        };
        assert_eq!(cond.subject, Subject::Header("Via".into()));
        assert!(matches!(&cond.test, Test::Matches(re) if re.as_str() == r"rport=\d+"));
        assert!(matches!(
            plan.steps[6].kind,
            StepKind::Pause(PauseSpec::Var(1))
        ));
        assert!(matches!(
            plan.steps[7].kind,
            StepKind::Send(SendSpec {
                what: SendStep::Bye,
                ..
            })
        ));
        let r = recv(&plan.steps[8]);
        assert_eq!(r.in_reply_to.as_deref(), Some("BYE"));
        let StepKind::Capture(caps) = &plan.steps[9].kind else {
            panic!("{:?}", plan.steps[9].kind);
        };
        assert_eq!(caps[0].from, Subject::StartLine);
        assert_eq!(caps[0].var, 5);

        // `done` is the trailing label: the end of the scenario.
        let StepKind::Goto { target, when, .. } = &plan.steps[10].kind else {
            panic!("{:?}", plan.steps[10].kind);
        };
        assert_eq!(*target, plan.steps.len());
        let when = when.as_ref().unwrap();
        assert_eq!(when.subject, Subject::Var(5));
        assert!(matches!(&when.test, Test::Equals(v) if v == "200"));
        assert!(matches!(
            plan.steps[11].kind,
            StepKind::Pause(PauseSpec::Fixed(d)) if d == Duration::from_millis(1500)
        ));
        // `invite` labels the first step; `exists: false` + `not: true` nest two Nots.
        let StepKind::Goto { target, when, .. } = &plan.steps[12].kind else {
            panic!("{:?}", plan.steps[12].kind);
        };
        assert_eq!(*target, 0);
        let when = when.as_ref().unwrap();
        assert_eq!(when.subject, Subject::Var(3));
        assert!(
            matches!(&when.test, Test::Not(inner) if matches!(&**inner, Test::Not(e) if matches!(**e, Test::Exists)))
        );
    }

    #[test]
    fn fixture_template_renders_with_sdp_body() {
        let plan = ok(UAC_BASIC);
        let StepKind::Send(SendSpec {
            what: SendStep::Message(invite),
            ..
        }) = &plan.steps[0].kind
        else {
            panic!();
        };
        let mut ctx = SimpleContext {
            vars: plan.vars.iter().map(|v| v.initial.clone()).collect(),
            ..SimpleContext::default()
        }
        .with_builtin(Builtin::RemoteIp, "10.0.0.2")
        .with_builtin(Builtin::RemotePort, "5060")
        .with_builtin(Builtin::MediaIp, "10.0.0.1")
        .with_builtin(Builtin::MediaPort, "4000")
        .with_builtin(Builtin::CallNumber, "7");
        let mut out = Vec::new();
        invite.render(&mut ctx, &mut out);
        let msg = String::from_utf8(out).unwrap();
        let (head, body) = msg.split_once("\r\n\r\n").unwrap();
        assert!(head.starts_with("INVITE sip:service@10.0.0.2:5060 SIP/2.0\r\n"));
        assert!(head.contains("\r\nMax-Forwards: 70\r\n"));
        assert!(head.ends_with(&format!("\r\nContent-Length: {}", body.len())));
        assert_eq!(head.matches("Content-Length").count(), 1);
        assert!(body.starts_with("v=0\r\no=- 7 1 IN IP4 10.0.0.1\r\n"));
        assert!(body.contains("t=0 0\r\n\r\nm=audio 4000 RTP/AVP 0\r\n"));
        assert!(body.ends_with("a=rtpmap:0 PCMU/8000\r\n"));
        assert!(!body.replace("\r\n", "").contains('\n'));
    }

    #[test]
    fn role_is_inferred_from_the_first_send_or_recv() {
        assert_eq!(
            ok("steps:\n  - label: a\n  - recv: INVITE\n").role,
            Role::Uas
        );
        assert_eq!(ok("steps:\n  - pause: 1s\n  - send: bye\n").role, Role::Uac);
        assert_eq!(ok("steps: []\n").role, Role::Uac);
        assert_eq!(ok("role: uas\nsteps:\n  - send: bye\n").role, Role::Uas);
        assert_eq!(
            one_err("role: proxy\nsteps: []\n"),
            (
                1,
                7,
                "role".into(),
                "unknown role `proxy`; expected `uac` or `uas`".into()
            )
        );
    }

    #[test]
    fn recv_matchers() {
        let m = |v: &str| {
            recv(&ok(&format!("steps:\n  - recv: {v}\n")).steps[0])
                .matcher
                .clone()
        };
        assert_eq!(m("180"), RecvMatch::Status(180));
        assert_eq!(m("\"200\""), RecvMatch::Status(200));
        assert_eq!(m("100"), RecvMatch::Status(100));
        assert_eq!(m("699"), RecvMatch::Status(699));
        assert_eq!(m("6xx"), RecvMatch::Class(6));
        assert_eq!(m("4XX"), RecvMatch::Class(4));
        assert_eq!(m("invite"), RecvMatch::Method("INVITE".into()));
        assert_eq!(m("x-Custom"), RecvMatch::Method("X-CUSTOM".into()));
        for (bad, msg) in [
            ("99", "status code 99 is out of range"),
            ("700", "status code 700 is out of range"),
            ("70000", "status code 70000 is out of range"),
            ("7xx", "`7xx` is not a status class; expected 1xx to 6xx"),
            ("0xx", "`0xx` is not a status class"),
            ("2.5", "`2.5` is not a status code, status class or method"),
            ("\"IN VITE\"", "`IN VITE` is not a status code"),
        ] {
            let (line, col, path, message) = one_err(&format!("steps:\n  - recv: {bad}\n"));
            assert_eq!(
                (line, col, path.as_str()),
                (2, 11, "steps[0].recv"),
                "{bad}"
            );
            assert!(message.starts_with(msg), "{bad}: {message}");
        }
    }

    #[test]
    fn labels_resolve_to_the_next_step() {
        let plan = ok(
            "steps:\n  - label: a\n  - label: b\n  - send: bye\n  - label: c\n  - goto: a\n  - goto: b\n  - goto: c\n  - label: end\n  - goto: end\n",
        );
        let targets: Vec<usize> = plan
            .steps
            .iter()
            .filter_map(|s| match s.kind {
                StepKind::Goto { target, .. } => Some(target),
                _ => None,
            })
            .collect();
        assert_eq!(targets, [0, 0, 1, 4]);
        assert_eq!(plan.steps.len(), 5);
    }

    #[test]
    fn goto_to_a_missing_label() {
        assert_eq!(
            one_err("steps:\n  - label: retry\n  - goto: rety\n"),
            (
                3,
                11,
                "steps[1].goto".into(),
                "no label `rety` (did you mean `retry`?); labels: retry".into()
            )
        );
        let (.., message) = one_err("steps:\n  - goto: x\n");
        assert_eq!(message, "no label `x`; no labels are defined");
    }

    #[test]
    fn duplicate_label() {
        assert_eq!(
            one_err("steps:\n  - label: a\n  - send: bye\n  - label: a\n"),
            (
                4,
                12,
                "steps[2].label".into(),
                "duplicate label `a` (first defined on line 2); label names must be unique".into()
            )
        );
    }

    #[test]
    fn bad_yaml_is_one_diagnostic_with_position() {
        let d = compile_str("bad.yaml", BAD_YAML, &[])
            .unwrap_err()
            .diagnostics;
        assert_eq!(
            d,
            [Diagnostic {
                file: "bad.yaml".into(),
                line: 3,
                column: 11,
                path: String::new(),
                message: "unclosed quote".into(),
            }]
        );
        let (line, col, _, message) = one_err("steps:\n  - send: ack\n   recv: 200\n");
        assert_eq!((line, col), (3, 4));
        assert!(!message.contains('\n'), "{message}");
    }

    #[test]
    fn unknown_step_key() {
        assert_eq!(
            one_err(UNKNOWN_STEP),
            (
                5,
                5,
                "steps[1].sned".into(),
                "unknown step `sned` (did you mean `send`?); expected one of send, send_file, bytes_base64, recv, pause, label, goto, capture, assert, play, play_pcap, silence, stop_media, dtmf, expect_media, expect_dtmf, challenge".into()
            )
        );
    }

    #[test]
    fn unknown_field_on_recv() {
        assert_eq!(
            one_err(UNKNOWN_RECV_FIELD),
            (
                4,
                5,
                "steps[1].optinal".into(),
                "unknown key `optinal` in a `recv` step (did you mean `optional`?); it takes: optional, timeout, in_reply_to, rtd, capture".into()
            )
        );
    }

    #[test]
    fn other_shape_errors_name_their_key_path() {
        let (line, col, path, message) = one_err("stepz: []\n");
        assert_eq!((line, col, path.as_str()), (1, 1, "stepz"));
        assert_eq!(
            message,
            "unknown key `stepz` (did you mean `steps`?); expected one of name, description, role, vars, timeout, peer, media, auth, inject, steps"
        );
        let (line, col, path, message) =
            one_err("steps:\n  - recv: 200\n    capture:\n      - header: X\n        regx: a\n");
        assert_eq!(
            (line, col, path.as_str()),
            (5, 9, "steps[0].capture[0].regx")
        );
        assert!(message.starts_with("unknown key `regx` (did you mean `regex`?)"));
        let (line, col, path, message) = one_err("steps:\n  - recv: 200\n    optional: maybe\n");
        assert_eq!((line, col, path.as_str()), (3, 15, "steps[0].optional"));
        assert_eq!(message, "invalid boolean; expected true or false");
        let (line, col, path, message) = one_err("steps:\n  - send\n");
        assert_eq!((line, col, path.as_str()), (2, 5, "steps[0]"));
        assert_eq!(message, BARE_STEP_MESSAGE);
        let (.., path, message) = one_err("steps:\n  - pause: 1s\n    if: {var: x, equal: y}\n");
        assert_eq!(path, "steps[0].if.equal");
        assert!(message.starts_with("unknown key `equal` (did you mean `equals`?)"));
        for blank in ["", "# nothing\n", "---\n", "\n\n"] {
            let (.., message) = one_err(blank);
            assert_eq!(
                message, "the scenario is empty; it needs at least a `steps:` list",
                "{blank:?}"
            );
        }
        for (text, col) in [
            ("steps:\n  - pause: {{ d }}\n", 12),
            ("steps:\n  - send: {{msg}}\n", 11),
        ] {
            assert_eq!(one_err(text).0..=one_err(text).1, 2..=col, "{text}");
            let (.., message) = one_err(text);
            assert_eq!(
                message,
                "a value starting with `{{` must be quoted, e.g. \"{{ name }}\""
            );
        }
        let (.., message) = one_err("name: x\n");
        assert!(message.starts_with("missing `steps:`"));
    }

    #[test]
    fn semantic_errors_are_all_collected() {
        let d = compile_str("semantic_errors.yaml", SEMANTIC_ERRORS, &[])
            .unwrap_err()
            .diagnostics;
        let got: Vec<(u64, u64, &str)> = d
            .iter()
            .map(|d| (d.line, d.column, d.path.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (10, 14, "steps[1].send"),
                (12, 11, "steps[2].recv"),
                (13, 11, "steps[3].recv"),
                (14, 11, "steps[4].recv"),
                (16, 14, "steps[5].timeout"),
                (18, 15, "steps[6].optional"),
                (21, 16, "steps[7].capture[0].regex"),
                (23, 11, "steps[8].goto"),
                (24, 12, "steps[9].label"),
                (25, 12, "steps[10].pause"),
                (26, 5, "steps[11]"),
            ],
            "{d:#?}"
        );
        let messages: Vec<&str> = d.iter().map(|d| d.message.as_str()).collect();
        assert!(messages[0].starts_with(
            "undefined variable `servce` (did you mean `service`?); declared variables: service, delay, contact"
        ));
        assert!(messages[4].contains("add a unit: ms, s, m or h"));
        assert_eq!(
            messages[5],
            "`optional` doesn't apply to a `send` step; it takes: raw, chunks, pipeline"
        );
        assert_eq!(messages[6], "bad regex `<([^>]*`: unclosed group");
        assert_eq!(
            messages[10],
            "step has both `send` and `pause`; a step does one thing, so split it into separate steps"
        );
        let shown = CompileError { diagnostics: d }.to_string();
        assert!(shown.starts_with("semantic_errors.yaml:10:14: undefined variable `servce`"));
        assert!(
            shown
                .lines()
                .all(|l| l.starts_with("semantic_errors.yaml:"))
        );
    }

    #[test]
    fn undefined_variable_positions_in_every_scalar_style() {
        // Literal block, deeper indentation, second `{{` on the line.
        let text = "steps:\n  - send: |\n        OPTIONS sip:x SIP/2.0\n        Via: {{ branch }} {{ nope }}\n";
        assert_eq!(one_err(text).0, 4);
        assert_eq!(one_err(text).1, 27);
        // Folded block.
        let text = "steps:\n  - send: >\n      OPTIONS {{ a }}\n      sip:x\n";
        assert_eq!(one_err(text).0..=one_err(text).1, 3..=15);
        // Double-quoted with escapes before the brace.
        let text = "steps:\n  - send: \"OPTIONS \\t {{ call_id }}{{ x }} SIP/2.0\\r\\n\"\n";
        assert_eq!((one_err(text).0, one_err(text).1), (2, 36));
        // Alias: the text lives at the anchor.
        let text =
            "steps:\n  - send: &m |\n      OPTIONS {{ q }} SIP/2.0\n  - recv: 200\n  - send: *m\n";
        let d = errs(text);
        assert_eq!(d.len(), 2);
        assert!(d.iter().all(|d| (d.line, d.column) == (3, 15)), "{d:#?}");
        assert_eq!(d[1].path, "steps[2].send");
        // Non-ASCII before the brace: columns count characters.
        let text = "steps:\n  - send: |\n      MESSAGE sip:x SIP/2.0\n      X-Émoji: ✓ {{ zz }}\n";
        assert_eq!((one_err(text).0, one_err(text).1), (4, 18));
        // A comment after the block indicator is not part of the text.
        let text = "steps:\n  - send: | # {{ not_a_slot }}\n      OPTIONS {{ z }}\n";
        assert_eq!((one_err(text).0, one_err(text).1), (3, 15));
    }

    #[test]
    fn template_syntax_errors() {
        let (line, col, _, message) = one_err("steps:\n  - send: |\n      OPTIONS {{ call_id\n");
        assert_eq!((line, col), (3, 15));
        assert!(message.starts_with("unterminated `{{`"), "{message}");
        let (.., message) = one_err("steps:\n  - send: \"  \"\n");
        assert_eq!(message, "empty message template");
        let (.., message) = one_err("steps:\n  - send: invite\n");
        assert!(
            message.contains("neither `ack`, `bye` nor `cancel`"),
            "{message}"
        );
    }

    #[test]
    fn send_shorthands_and_raw() {
        let plan = ok(
            "steps:\n  - send: ack\n  - send: BYE\n  - send: cancel\n  - send: \"X {{ call_id }}\\r\\n\"\n    raw: true\n  - send: \"{{ msg }}\"\nvars: {msg: \"OPTIONS sip:x SIP/2.0\"}\n",
        );
        assert!(matches!(
            plan.steps[0].kind,
            StepKind::Send(SendSpec {
                what: SendStep::Ack,
                ..
            })
        ));
        assert!(matches!(
            plan.steps[1].kind,
            StepKind::Send(SendSpec {
                what: SendStep::Bye,
                ..
            })
        ));
        assert!(matches!(
            plan.steps[2].kind,
            StepKind::Send(SendSpec {
                what: SendStep::Cancel,
                ..
            })
        ));
        let StepKind::Send(SendSpec {
            what: SendStep::Message(t),
            ..
        }) = &plan.steps[3].kind
        else {
            panic!()
        };
        assert!(t.is_raw());
        assert!(matches!(
            plan.steps[4].kind,
            StepKind::Send(SendSpec {
                what: SendStep::Message(_),
                ..
            })
        ));
        let (line, col, path, message) = one_err("steps:\n  - send: ack\n    raw: true\n");
        assert_eq!((line, col, path.as_str()), (3, 10, "steps[0].raw"));
        assert!(message.starts_with("`raw` applies only to message templates"));
    }

    #[test]
    fn modifiers_must_fit_the_action() {
        let d = errs(
            "steps:\n  - pause: 1s\n    timeout: 2s\n  - goto: x\n    optional: true\n  - label: x\n  - recv: INVITE\n    if: {var: v, exists: true}\n    in_reply_to: BYE\n  - raw: true\n\nvars: {v: a}\n",
        );
        let got: Vec<(u64, &str, &str)> = d
            .iter()
            .map(|d| (d.line, d.path.as_str(), d.message.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    3,
                    "steps[0].timeout",
                    "`timeout` doesn't apply to a `pause` step; it takes no modifiers"
                ),
                (
                    5,
                    "steps[1].optional",
                    "`optional` doesn't apply to a `goto` step; it takes: if, times"
                ),
                (
                    8,
                    "steps[3].if",
                    "`if` doesn't apply to a `recv` step; it takes: optional, timeout, in_reply_to, rtd, capture"
                ),
                (
                    9,
                    "steps[3].in_reply_to",
                    "`in_reply_to` applies only when receiving a response (e.g. `recv: 200`)"
                ),
                (
                    10,
                    "steps[4]",
                    "step has only modifiers (`raw`); add an action: send, send_file, bytes_base64, recv, pause, label, goto, capture, assert, play, play_pcap, silence, stop_media, dtmf, expect_media, expect_dtmf, challenge"
                ),
            ]
        );
    }

    #[test]
    fn conditions() {
        let plan = ok(
            "vars: {x: \"1\"}\nsteps:\n  - assert: {var: x, equals: \"1\"}\n  - assert: {header: i, exists: true, not: true}\n  - assert: {body: true, matches: \"^v=0\"}\n  - assert: {start_line: true, exists: false}\n  - assert: {var: x, equals: \"2\", not: false}\n",
        );
        let conds: Vec<&Condition> = plan
            .steps
            .iter()
            .map(|s| match &s.kind {
                StepKind::Assert(c) => c,
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(conds[0].subject, Subject::Var(0));
        assert!(matches!(&conds[0].test, Test::Equals(v) if v == "1"));
        assert_eq!(conds[1].subject, Subject::Header("i".into()));
        assert!(matches!(&conds[1].test, Test::Not(t) if matches!(**t, Test::Exists)));
        assert_eq!(conds[2].subject, Subject::Body);
        assert!(matches!(&conds[2].test, Test::Matches(_)));
        assert_eq!(conds[3].subject, Subject::StartLine);
        assert!(matches!(&conds[3].test, Test::Not(t) if matches!(**t, Test::Exists)));
        assert!(matches!(&conds[4].test, Test::Equals(v) if v == "2"));

        let d = errs(
            "steps:\n  - assert: {var: x, header: y, equals: a}\n  - assert: {body: true}\n  - assert: {equals: a}\n  - assert: {body: false, equals: a, matches: b}\n  - assert: {var: y, matches: \"(\"}\n",
        );
        let got: Vec<(u64, u64, &str, &str)> = d
            .iter()
            .map(|d| (d.line, d.column, d.path.as_str(), d.message.as_str()))
            .collect();
        assert_eq!(got[0].0..=got[0].1, 2..=19);
        assert!(got[0].3.starts_with("undefined variable `x`"));
        assert_eq!(
            &got[1..5],
            [
                (
                    2,
                    30,
                    "steps[0].assert",
                    "condition has two subjects, `var` and `header`; use exactly one"
                ),
                (
                    3,
                    13,
                    "steps[1].assert",
                    "condition needs a test: `equals: TEXT`, `matches: REGEX` or `exists: true|false`"
                ),
                (
                    4,
                    13,
                    "steps[2].assert",
                    "condition needs a subject: `var: NAME`, `header: NAME`, `body: true` or `start_line: true`"
                ),
                (
                    5,
                    20,
                    "steps[3].assert.body",
                    "`body: false` selects nothing; write `body: true` or remove it"
                ),
            ]
        );
        assert_eq!((got[5].0, got[5].2), (5, "steps[3].assert"));
        assert!(got[5].3.starts_with("condition has two tests"));
        assert_eq!(
            (got[6].2, got[7].2),
            ("steps[4].assert.var", "steps[4].assert.matches")
        );
        assert!(got[7].3.starts_with("bad regex `(`"));
    }

    #[test]
    fn capture_errors() {
        let d = errs(
            "steps:\n  - capture:\n      - regex: a\n        var: v\n      - header: X\n        body: true\n        var: w\n      - header: X\n        regex: a\n      - header: X\n        regex: a\n        var: call_id\n",
        );
        let got: Vec<(u64, &str, &str)> = d
            .iter()
            .map(|d| (d.line, d.path.as_str(), d.message.as_str()))
            .collect();
        assert_eq!(
            got,
            [
                (
                    3,
                    "steps[0].capture[0]",
                    "capture needs a source: `header: NAME`, `body: true` or `start_line: true`"
                ),
                (5, "steps[0].capture[1]", "capture needs `regex:`"),
                (
                    6,
                    "steps[0].capture[1]",
                    "capture has two sources, `header` and `body`; use exactly one"
                ),
                (
                    8,
                    "steps[0].capture[2]",
                    "capture needs `var:` naming the variable it sets"
                ),
                (
                    12,
                    "steps[0].capture[3].var",
                    "`call_id` is a built-in; choose another variable name"
                ),
            ]
        );
    }

    #[test]
    fn captured_variables_are_usable_anywhere() {
        let plan = ok(
            "steps:\n  - send: \"OPTIONS sip:{{ target }} SIP/2.0\"\n  - recv: 200\n    capture: [{header: Contact, regex: \"<(.*)>\", var: target}]\n",
        );
        assert_eq!(plan.vars.len(), 1);
        assert_eq!(plan.vars[0].name, "target");
        assert_eq!(plan.vars[0].initial, "");
    }

    #[test]
    fn pause_forms() {
        let plan = ok(
            "vars: {d: 2s, e: \"\"}\nsteps:\n  - pause: 0\n  - pause: 250ms\n  - pause: \"{{ d }}\"\n  - pause: \"{{e}}\"\n",
        );
        assert!(matches!(
            plan.steps[0].kind,
            StepKind::Pause(PauseSpec::Fixed(Duration::ZERO))
        ));
        assert!(matches!(
            plan.steps[2].kind,
            StepKind::Pause(PauseSpec::Var(0))
        ));
        assert!(matches!(
            plan.steps[3].kind,
            StepKind::Pause(PauseSpec::Var(1))
        ));
        let (line, col, path, message) = one_err("steps:\n  - pause: 10\n");
        assert_eq!((line, col, path.as_str()), (2, 12, "steps[0].pause"));
        assert!(message.contains("add a unit: ms, s, m or h"), "{message}");
        let (.., message) = one_err("steps:\n  - pause: \"{{ call_id }}\"\n");
        assert!(message.contains("not the built-in `call_id`"), "{message}");
        let (.., message) = one_err("steps:\n  - pause: \"{{ nope }}\"\n");
        assert!(
            message.starts_with("undefined variable `nope`"),
            "{message}"
        );
        let (line, col, path, message) = one_err("timeout: 2x\nsteps: []\n");
        assert_eq!((line, col, path.as_str()), (1, 10, "timeout"));
        assert!(message.contains("unknown unit `x`"), "{message}");
    }

    #[test]
    fn overrides_replace_or_declare() {
        let text = "vars: {a: one, d: 1s}\nsteps:\n  - send: \"X {{ a }} {{ b }}\"\n  - pause: \"{{ d }}\"\n";
        assert!(compile_str("t", text, &[]).is_err());
        let set = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let plan = compile_str("t", text, &set(&[("a", "two"), ("b", "new")])).unwrap();
        let vars: Vec<(&str, &str)> = plan
            .vars
            .iter()
            .map(|v| (v.name.as_str(), v.initial.as_str()))
            .collect();
        assert_eq!(vars, [("a", "two"), ("d", "1s"), ("b", "new")]);
        let d = compile_str(
            "t",
            text,
            &set(&[("b", "x"), ("d", "7"), ("bad name", "1")]),
        )
        .unwrap_err()
        .diagnostics;
        assert_eq!(d.len(), 2, "{d:#?}");
        assert_eq!((d[0].line, d[0].path.as_str()), (0, "--set bad name"));
        assert!(
            d[1].message
                .starts_with("variable `d` is `7`, not a duration")
        );
    }

    #[test]
    fn variable_names_are_checked() {
        let d = errs("vars:\n  call_id: x\n  \"a b\": y\n  ok_name-2: z\nsteps: []\n");
        let got: Vec<(u64, u64, &str)> = d
            .iter()
            .map(|d| (d.line, d.column, d.path.as_str()))
            .collect();
        assert_eq!(got, [(2, 3, "vars.call_id"), (3, 3, "vars.a b")]);
    }

    #[test]
    fn default_name_comes_from_the_source() {
        assert_eq!(
            compile_str("dir/my-call.yaml", "steps: []", &[])
                .unwrap()
                .name,
            "my-call"
        );
        assert_eq!(
            compile_str("builtin:uas", "steps: []", &[]).unwrap().name,
            "uas"
        );
        assert_eq!(
            compile_str("x", "name: named\nsteps: []", &[])
                .unwrap()
                .name,
            "named"
        );
    }

    #[test]
    fn compile_file_reads_and_reports_io_errors() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scenarios");
        let plan = compile_file(&dir.join("uac_basic.yaml"), &[]).unwrap();
        assert!(plan.source.ends_with("uac_basic.yaml"));
        let missing = dir.join("does-not-exist.yaml");
        let d = compile_file(&missing, &[]).unwrap_err().diagnostics;
        assert_eq!(d.len(), 1);
        assert_eq!((d[0].line, d[0].column), (0, 0));
        assert_eq!(d[0].file, missing.display().to_string());
        assert!(
            d[0].message.starts_with("can't read the scenario: "),
            "{}",
            d[0].message
        );
    }

    #[test]
    fn bom_is_ignored() {
        let (line, col, ..) = one_err("\u{feff}steps:\n  - recv: 99\n");
        assert_eq!((line, col), (2, 11));
    }

    /// Compilation must turn any text into a Plan or diagnostics, never a panic.
    #[test]
    fn never_panics_on_mangled_input() {
        for source in [UAC_BASIC, SEMANTIC_ERRORS] {
            for (i, _) in source.char_indices() {
                let _ = compile_str("prefix", &source[..i], &[]);
            }
        }
        let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        const INTERESTING: &[u8] = b"{}[]:-|>\"'\\#&*!% \t\n\r01xX";
        let base = UAC_BASIC.as_bytes();
        for _ in 0..2500 {
            let mut bytes = base.to_vec();
            for _ in 0..1 + next() % 4 {
                let at = (next() % bytes.len() as u64) as usize;
                let r = next();
                bytes[at] = if r % 2 == 0 {
                    INTERESTING[(r >> 8) as usize % INTERESTING.len()]
                } else {
                    (r >> 8) as u8
                };
            }
            let text = String::from_utf8_lossy(&bytes);
            let _ = compile_str("flipped", &text, &[]);
        }
    }

    #[test]
    fn auth_block_compiles_templates() {
        let p = ok(
            "vars:\n  user: alice\nauth:\n  username: \"{{ user }}\"\n  password: secret\n  realm: example.com\nsteps:\n  - send: ack\n",
        );
        let a = p.auth.expect("auth compiled");
        assert_eq!(a.realm.as_deref(), Some("example.com"));
        assert!(!a.username.uses_builtin(Builtin::CallId));
        let (line, col, path, message) =
            one_err("auth:\n  username: \"{{ nobody }}\"\n  password: x\nsteps:\n  - send: ack\n");
        assert_eq!(
            (line, col, path.as_str()),
            (2, 14, "auth.username"),
            "{message}"
        );
        assert!(message.contains("nobody"), "{message}");
        let d = errs("auth:\n  username: a\n  pasword: x\nsteps:\n  - send: ack\n");
        assert!(d.iter().any(|d| d.message.contains("pasword")), "{d:#?}");
    }

    #[test]
    fn inject_key_loads_a_file_beside_the_scenario() {
        let dir = std::env::temp_dir().join(format!("sipwright-inject-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("users.csv"), "user,password\nalice,a1\nbob\n").unwrap();
        std::fs::write(dir.join("good.csv"), "SEQUENTIAL\nalice;a1;\n").unwrap();
        let scenario = |file: &str, order: &str| {
            format!(
                "inject: {{file: {file}{order}}}\nsteps:\n  - send: |\n      OPTIONS sip:{{{{ field0 }}}}@x SIP/2.0\n      Content-Length: 0\n"
            )
        };
        let path = dir.join("s.yaml");
        std::fs::write(&path, scenario("good.csv", ", order: random")).unwrap();
        let plan = compile_file(&path, &[]).unwrap();
        let inj = plan.inject.as_ref().unwrap();
        assert_eq!((inj.rows(), inj.order()), (1, Order::Random));

        // A short row: the file's own line, at the `file:` value.
        std::fs::write(&path, scenario("users.csv", "")).unwrap();
        let err = compile_file(&path, &[]).unwrap_err().to_string();
        assert!(err.contains("s.yaml:1:16: "), "{err}");
        assert!(err.contains("users.csv:3: "), "{err}");

        std::fs::write(&path, scenario("good.csv", ", order: sideways")).unwrap();
        let err = compile_file(&path, &[]).unwrap_err().to_string();
        assert!(err.contains("unknown order `sideways`"), "{err}");

        // A column the file lacks: the message lists the file's columns.
        std::fs::write(
            &path,
            "inject: {file: good.csv}\nsteps:\n  - send: |\n      OPTIONS sip:{{ user }}@x SIP/2.0\n      Content-Length: 0\n",
        )
        .unwrap();
        let err = compile_file(&path, &[]).unwrap_err().to_string();
        assert!(err.contains("add a `user` column to"), "{err}");
        assert!(err.contains("(its columns: field0, field1)"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_uac_writing_its_call_id_keeps_it() {
        let fixed = "steps:\n  - send: \"INVITE sip:x SIP/2.0\\r\\nCall-ID: cap-1@h\\r\\nVia: {{ branch }}\\r\\n\\r\\n\"\n    raw: true\n";
        assert_eq!(ok(fixed).call_id.as_deref(), Some("cap-1@h"));
        let slot =
            "steps:\n  - send: |\n      INVITE sip:x SIP/2.0\n      Call-ID: {{ call_id }}\n";
        assert_eq!(ok(slot).call_id, None);
        // A UAS answers with the caller's Call-ID whatever it writes.
        let uas = "steps:\n  - recv: INVITE\n  - send: |\n      SIP/2.0 200 OK\n      Call-ID: x\n";
        assert_eq!(ok(uas).call_id, None);
    }
}
