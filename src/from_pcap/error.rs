//! Why a capture cannot be turned into a scenario pair. Every message says what was
//! found and what to do; none of them is a panic.

use crate::capture::CaptureError;

/// One call found in a capture, for the list an ambiguous or wrong `--call-id` gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallSummary {
    /// The Call-ID as written (lossy UTF-8 for display).
    pub call_id: String,
    /// Method of the call's first request, when the capture has one.
    pub first_request: Option<String>,
    /// Frame number (1-based) of that request, else of the call's first message.
    pub frame: u64,
    pub messages: u64,
}

impl std::fmt::Display for CallSummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let what = match &self.first_request {
            Some(m) => format!("{m} at frame {}", self.frame),
            None => format!("no request; first message at frame {}", self.frame),
        };
        write!(
            f,
            "  {}  ({what}, {} message{})",
            self.call_id,
            self.messages,
            if self.messages == 1 { "" } else { "s" }
        )
    }
}

/// The list of calls in an error message: at most this many, then a count.
const LISTED: usize = 20;

fn list(calls: &[CallSummary], more: u64) -> String {
    let mut s = String::new();
    for c in calls.iter().take(LISTED) {
        s.push('\n');
        s.push_str(&c.to_string());
    }
    let left = (calls.len().saturating_sub(LISTED)) as u64 + more;
    if left > 0 {
        s.push_str(&format!("\n  … and {left} more"));
    }
    s
}

#[derive(Debug, thiserror::Error)]
pub enum FromPcapError {
    /// Not a capture at all.
    #[error("{0}")]
    Capture(CaptureError),
    /// A capture damaged (cut, corrupt) after its start: the call may be incomplete.
    #[error(
        "{0}; no scenario written, since the call may be cut short (`editcap` can keep the frames before the damage)"
    )]
    Damaged(CaptureError),
    #[error(
        "no SIP message in the capture ({frames} frames read; SIP over UDP and TCP, IPv4 \
         and IPv6, fragments included, is looked for)"
    )]
    NoSip { frames: u64 },
    #[error("the capture holds {} calls; pick one with --call-id:{}", .calls.len() as u64 + .more, list(.calls, *.more))]
    SeveralCalls { calls: Vec<CallSummary>, more: u64 },
    #[error("no call with Call-ID `{id}` in the capture; its calls:{}", list(.calls, *.more))]
    UnknownCallId {
        id: String,
        calls: Vec<CallSummary>,
        more: u64,
    },
    #[error(
        "call `{call_id}` has no request in the capture (it starts with a response, at frame \
         {frame}): which side is the UAC is not known"
    )]
    NoRequest { call_id: String, frame: u64 },
    /// A bug: the scenario written does not give the captured messages back.
    #[error("internal error, please report it with the capture: {0}")]
    Internal(String),
    #[error(
        "call `{call_id}` has more than {limit} messages or {limit_bytes} bytes of SIP; \
         a scenario that long is not a call (pick another --call-id)"
    )]
    TooLarge {
        call_id: String,
        limit: usize,
        limit_bytes: usize,
    },
}

impl FromPcapError {
    /// Problems of the input (everything but a converter bug).
    pub fn is_input(&self) -> bool {
        !matches!(self, FromPcapError::Internal(_))
    }
}
