//! Built-in scenarios shipped under `scenarios/`, addressable by name. Each names its
//! natural peer: what `--loopback` runs on the other side.

pub struct Builtin {
    pub name: &'static str,
    pub text: &'static str,
    /// Built-in scenario `--loopback` runs against this one.
    pub peer: &'static str,
    pub summary: &'static str,
}

pub const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "uac",
        text: include_str!("../../scenarios/uac.yaml"),
        peer: "uas",
        summary: "INVITE, optional 1xx, 200, ACK, pause (--call-duration), BYE, 200",
    },
    Builtin {
        name: "uas",
        text: include_str!("../../scenarios/uas.yaml"),
        peer: "uac",
        summary: "answers INVITE with 180/200 (copies Via and Record-Route), ACK, BYE, 200",
    },
    Builtin {
        name: "options",
        text: include_str!("../../scenarios/options.yaml"),
        peer: "uas",
        summary: "OPTIONS, 200",
    },
    Builtin {
        name: "cancel",
        text: include_str!("../../scenarios/cancel.yaml"),
        peer: "uas-cancel",
        summary: "INVITE, 180, CANCEL, 200 (CANCEL), 487, ACK",
    },
    Builtin {
        name: "uas-cancel",
        text: include_str!("../../scenarios/uas-cancel.yaml"),
        peer: "cancel",
        summary: "answers INVITE with 100/180, then CANCEL with 200 and the INVITE with 487",
    },
    Builtin {
        name: "uac-media",
        text: include_str!("../../scenarios/uac-media.yaml"),
        peer: "uas-media",
        summary: "INVITE with SDP, ACK, plays {{ play }} looped, DTMF 1234 after 1 s, BYE after --call-duration (10s)",
    },
    Builtin {
        name: "uas-media",
        text: include_str!("../../scenarios/uas-media.yaml"),
        peer: "uac-media",
        summary: "answers INVITE with SDP, echoes media, expects DTMF 1234 (RFC 4733 or INFO), BYE",
    },
    Builtin {
        name: "uac-srtp",
        text: include_str!("../../scenarios/uac-srtp.yaml"),
        peer: "uas-srtp",
        summary: "uac-media with SDES-SRTP required: RTP/SAVP offer, encrypted audio and DTMF 1234, BYE after --call-duration (10s)",
    },
    Builtin {
        name: "uas-srtp",
        text: include_str!("../../scenarios/uas-srtp.yaml"),
        peer: "uac-srtp",
        summary: "uas-media with SDES-SRTP required: 488 without usable a=crypto, echoes encrypted media, expects DTMF 1234",
    },
    Builtin {
        name: "register",
        text: include_str!("../../scenarios/register.yaml"),
        peer: "uas-challenge",
        summary: "REGISTER {{ user }} (401/407 answered with {{ password }}, 423 retried), 200 listing our Contact; --set refreshes=N, unregister=yes",
    },
    Builtin {
        name: "register-then-call",
        text: include_str!("../../scenarios/register-then-call.yaml"),
        peer: "uas-challenge",
        summary: "REGISTER {{ user }} with Contact at {{ contact }}, then INVITE that user through the proxy (407 answered), ACK, BYE",
    },
    Builtin {
        name: "uas-challenge",
        text: include_str!("../../scenarios/uas-challenge.yaml"),
        peer: "register",
        summary: "answers REGISTER with a digest challenge (401), checks the retried REGISTER against --inject's user/password (lookup by user), 200 with Contact and Expires",
    },
];

pub fn get(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::compile_str;
    use crate::scenario::plan::StepKind;

    #[test]
    fn every_builtin_compiles_and_names_a_builtin_peer() {
        for b in BUILTINS {
            let plan =
                compile_str(b.name, b.text, &[]).unwrap_or_else(|e| panic!("{}: {e}", b.name));
            assert!(get(b.peer).is_some(), "{} -> {}", b.name, b.peer);
            assert_ne!(
                plan.role,
                compile_str(b.peer, get(b.peer).unwrap().text, &[])
                    .unwrap()
                    .role
            );
        }
    }

    #[test]
    fn only_scenarios_that_read_the_last_message_keep_it() {
        let uses = |name: &str| {
            compile_str(name, get(name).unwrap().text, &[])
                .unwrap()
                .uses_last_message()
        };
        assert!(!uses("uac"));
        assert!(!uses("cancel"));
        assert!(uses("uas"));
        assert!(uses("uas-cancel"));
    }

    #[test]
    fn a_uas_waiting_for_bye_holds_no_copy_of_the_ack() {
        let plan = compile_str("uas", get("uas").unwrap().text, &[]).unwrap();
        let recvs: Vec<(String, bool)> = plan
            .steps
            .iter()
            .enumerate()
            .filter_map(|(i, s)| match &s.kind {
                StepKind::Recv(r) => Some((format!("{:?}", r.matcher), plan.needs_last_after(i))),
                _ => None,
            })
            .collect();
        // INVITE: the responses copy its headers; ACK: the next step waits for the BYE
        // (which replaces it); BYE: the 200 copies its headers.
        assert_eq!(
            recvs,
            vec![
                ("Method(\"INVITE\")".to_string(), true),
                ("Method(\"ACK\")".to_string(), false),
                ("Method(\"BYE\")".to_string(), true),
            ]
        );
    }
}
