//! The `challenge:` step (a UAS digest server) compiled: algorithm, qop and the
//! templates checked here, and the `lookup:` column indexed once, so a bad value is
//! a FILE:LINE:COL diagnostic at `check` rather than a failure of every call.

use serde_saphyr::Spanned;

use super::compile::{Compiler, pos_of};
use super::model::StepDef;
use super::plan::{ChallengeStep, LookupPlan, StepKind};
use crate::sip::digest::{Algorithm, Qop};

impl Compiler<'_> {
    pub(super) fn challenge_step(&mut self, path: &str, st: &StepDef) -> Option<StepKind> {
        let def_spanned = st.challenge.as_ref()?;
        let def = &def_spanned.value;
        let path = format!("{path}.challenge");

        let algorithm = match &def.algorithm {
            Some(a) => match Algorithm::parse(a.value.trim()) {
                Some(alg) => Some(alg),
                None => {
                    let names: Vec<&str> = Algorithm::ALL.iter().map(|a| a.name()).collect();
                    self.error(
                        pos_of(a),
                        format!("{path}.algorithm"),
                        format!(
                            "unknown digest algorithm `{}`; expected one of {}",
                            a.value.trim(),
                            names.join(", ")
                        ),
                    );
                    None
                }
            },
            None => Some(Algorithm::Md5),
        };
        let qop = match &def.qop {
            Some(q) => match q.value.trim().to_ascii_lowercase().as_str() {
                "auth" => Some(Some(Qop::Auth)),
                "auth-int" => Some(Some(Qop::AuthInt)),
                "none" => Some(None),
                other => {
                    self.error(
                        pos_of(q),
                        format!("{path}.qop"),
                        format!("unknown qop `{other}`; expected `auth`, `auth-int` or `none`"),
                    );
                    None
                }
            },
            None => Some(Some(Qop::Auth)),
        };
        let password = match &def.password {
            Some(p) => self.template(p, true, &format!("{path}.password")),
            None => {
                self.error(
                    pos_of(def_spanned),
                    path.clone(),
                    "`challenge` needs `password:` (the password the credentials are checked against, e.g. \"{{ password }}\")",
                );
                None
            }
        };
        // Templates of single values: rendered byte-exact, like `auth:`.
        let optional = |c: &mut Self, t: &Option<Spanned<String>>, key: &str| match t {
            Some(t) => c.template(t, true, &format!("{path}.{key}")).map(Some),
            None => Some(None),
        };
        let realm = optional(self, &def.realm, "realm");
        let username = optional(self, &def.username, "username");
        let opaque = optional(self, &def.opaque, "opaque");
        let stale_after = match &def.stale_after {
            Some(d) => self.duration(d, &format!("{path}.stale_after")).map(Some),
            None => Some(None),
        };
        let timeout = match &st.timeout {
            Some(t) => self.duration(t, &format!("{path}.timeout")).map(Some),
            None => Some(None),
        };
        let lookup = match &def.lookup {
            Some(l) => self.lookup(l, &format!("{path}.lookup")),
            None => Some(None),
        };

        Some(StepKind::Challenge(Box::new(ChallengeStep {
            realm: realm?,
            algorithm: algorithm?,
            qop: qop?,
            proxy: def.proxy.as_ref().is_some_and(|p| p.value),
            password: password?,
            username: username?,
            lookup: lookup?,
            stale_after: stale_after?,
            opaque: opaque?,
            timeout: timeout?,
        })))
    }

    /// `lookup: COLUMN`. With an injection, the column must be one of its columns
    /// and is indexed here, once. Without one, a variable of that name is the
    /// scenario's default for runs without a file (a column wins over a variable of
    /// the same name): then every call is checked against the variables and the
    /// lookup is off. Neither is a mistake worth a diagnostic. Outer None: error.
    fn lookup(&mut self, l: &Spanned<String>, path: &str) -> Option<Option<LookupPlan>> {
        let name = l.value.trim();
        let message = match &self.inject {
            Some(inj) => match inj.column(name) {
                Some(col) => {
                    return Some(Some(LookupPlan {
                        column: name.to_string(),
                        index: inj.index(col),
                    }));
                }
                None => format!(
                    "`lookup: {name}`: {} has no column `{name}` (its columns: {})",
                    inj.path(),
                    inj.columns().join(", ")
                ),
            },
            None if self.vars.iter().any(|v| v.name == name) => return Some(None),
            None => format!(
                "`lookup: {name}` needs per-call data with a `{name}` column (`--inject FILE` or `inject:`); to run without a file, declare `{name}` under `vars:` (every call is then checked against the variables)"
            ),
        };
        self.error(pos_of(l), path, message);
        None
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use crate::scenario::inject::Injection;
    use crate::scenario::plan::StepKind;
    use crate::scenario::{CompileOptions, Plan, compile_str, compile_str_with};
    use crate::sip::digest::{Algorithm, Qop};

    fn with_inject(text: &str, csv: &str) -> Result<Plan, String> {
        let inj = Arc::new(Injection::parse(csv.as_bytes().to_vec(), "users.csv").unwrap());
        compile_str_with(
            "t.yaml",
            text,
            &CompileOptions {
                inject: Some(&inj),
                ..Default::default()
            },
        )
        .map_err(|e| e.to_string())
    }

    fn challenge(plan: &Plan) -> &crate::scenario::plan::ChallengeStep {
        plan.steps
            .iter()
            .find_map(|s| match &s.kind {
                StepKind::Challenge(c) => Some(&**c),
                _ => None,
            })
            .expect("a challenge step")
    }

    const HEAD: &str = "vars: {user: alice, password: secret}\nsteps:\n  - recv: REGISTER\n";

    #[test]
    fn defaults_and_every_key() {
        let plan = compile_str(
            "t.yaml",
            &format!("{HEAD}  - challenge:\n      password: \"{{{{ password }}}}\"\n"),
            &[],
        )
        .unwrap();
        let c = challenge(&plan);
        assert_eq!(c.algorithm, Algorithm::Md5);
        assert_eq!(c.qop, Some(Qop::Auth));
        assert!(!c.proxy && c.realm.is_none() && c.username.is_none() && c.lookup.is_none());
        assert!(c.stale_after.is_none() && c.opaque.is_none() && c.timeout.is_none());
        // The challenge reads the REGISTER: the recv keeps it.
        assert!(plan.needs_last_after(0));

        let plan = compile_str(
            "t.yaml",
            &format!(
                "{HEAD}  - challenge:\n      realm: \"{{{{ user }}}}.test\"\n      algorithm: sha-512-256-SESS\n      qop: none\n      proxy: true\n      password: pw\n      username: \"{{{{ user }}}}\"\n      stale_after: 30s\n      opaque: xyz\n    timeout: 5s\n  - send: |\n      SIP/2.0 200 OK\n      {{{{ last.via }}}}\n"
            ),
            &[],
        )
        .unwrap();
        let c = challenge(&plan);
        assert_eq!(c.algorithm, Algorithm::Sha512_256Sess);
        assert_eq!(c.qop, None);
        assert!(c.proxy && c.realm.is_some() && c.username.is_some() && c.opaque.is_some());
        assert_eq!(c.stale_after, Some(Duration::from_secs(30)));
        assert_eq!(c.timeout, Some(Duration::from_secs(5)));
        // The retried request is the last message for the send after it.
        assert!(plan.needs_last_after(1));
    }

    #[test]
    fn lookup_indexes_the_injection_column() {
        let text = format!(
            "{HEAD}  - challenge:\n      password: \"{{{{ password }}}}\"\n      lookup: user\n"
        );
        let plan = with_inject(&text, "user,password\nalice,a\nbob,b\n").unwrap();
        let l = challenge(&plan).lookup.as_ref().expect("lookup on");
        assert_eq!(l.column, "user");
        let inj = plan.inject.as_ref().unwrap();
        assert_eq!(l.index.find(inj, b"bob"), Some(1));
        // SIPp files name columns by position.
        let text = text.replace("lookup: user", "lookup: field0");
        let plan = with_inject(&text, "SEQUENTIAL\nalice;a\nbob;b\n").unwrap();
        assert_eq!(challenge(&plan).lookup.as_ref().unwrap().column, "field0");
        // No file, but a variable of that name: the lookup is off.
        let plan = compile_str("t.yaml", &text.replace("field0", "user"), &[]).unwrap();
        assert!(challenge(&plan).lookup.is_none());
    }

    #[test]
    fn diagnostics_point_at_the_value() {
        let err = |text: &str| compile_str("t.yaml", text, &[]).unwrap_err().to_string();
        let step = |body: &str| format!("{HEAD}  - challenge:\n{body}");

        let e = err(&step("      password: x\n      lookup: nobody\n"));
        assert!(
            e.starts_with(
                "t.yaml:6:15: `lookup: nobody` needs per-call data with a `nobody` column"
            ),
            "{e}"
        );
        assert!(e.ends_with("(at steps[1].challenge.lookup)"), "{e}");

        let e = with_inject(
            &step("      password: x\n      lookup: login\n"),
            "user,password\nalice,a\n",
        )
        .unwrap_err();
        assert!(
            e.starts_with("t.yaml:6:15: `lookup: login`: users.csv has no column `login` (its columns: user, password)"),
            "{e}"
        );

        let e = err(&step("      password: x\n      algorithm: SHA-1\n"));
        assert!(e.starts_with("t.yaml:6:18: unknown digest algorithm `SHA-1`; expected one of MD5, MD5-sess, SHA-256"), "{e}");

        let e = err(&step("      password: x\n      qop: auth-conf\n"));
        assert!(e.starts_with("t.yaml:6:12: unknown qop `auth-conf`"), "{e}");

        let e = err(&step("      realm: sipwright.test\n"));
        assert!(
            e.starts_with("t.yaml:5:7: `challenge` needs `password:`"),
            "{e}"
        );

        let e = err(&step("      password: \"{{ pasword }}\"\n"));
        assert!(
            e.starts_with("t.yaml:5:18: undefined variable `pasword`"),
            "{e}"
        );
        assert!(e.contains("(at steps[1].challenge.password)"), "{e}");

        let e = err(&step("      password: x\n      stale_after: 30\n"));
        assert!(e.starts_with("t.yaml:6:20: "), "{e}");
        assert!(e.contains("add a unit"), "{e}");

        let e = err(&step("      password: x\n    timeout: soon\n"));
        assert!(e.starts_with("t.yaml:6:14: "), "{e}");

        // All problems together, in file order.
        let e = err(&step("      algorithm: X\n      qop: Y\n"));
        assert_eq!(e.lines().count(), 3, "{e}");

        // Shape errors: an unknown key, a modifier that doesn't fit.
        let e = err(&step("      password: x\n      nonce: fixed\n"));
        assert!(e.contains("unknown key `nonce`"), "{e}");
        let e = err(&step("      password: x\n    optional: true\n"));
        assert!(
            e.contains("`optional` doesn't apply to a `challenge` step; it takes: timeout"),
            "{e}"
        );
    }
}
