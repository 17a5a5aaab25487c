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
        summary: "answers INVITE with 100/180/200 (copies Via and Record-Route), ACK, BYE, 200",
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
];

pub fn get(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.name == name)
}
