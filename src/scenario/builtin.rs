//! Built-in scenarios shipped under `scenarios/`, addressable by name.

pub struct Builtin {
    pub name: &'static str,
    pub text: &'static str,
}

pub const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "uac",
        text: include_str!("../../scenarios/uac.yaml"),
    },
    Builtin {
        name: "uas",
        text: include_str!("../../scenarios/uas.yaml"),
    },
    Builtin {
        name: "options",
        text: include_str!("../../scenarios/options.yaml"),
    },
    Builtin {
        name: "cancel",
        text: include_str!("../../scenarios/cancel.yaml"),
    },
];

pub fn get(name: &str) -> Option<&'static Builtin> {
    BUILTINS.iter().find(|b| b.name == name)
}
