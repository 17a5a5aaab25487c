//! `record:` — one WAV file per call and direction, written as packets go by:
//! G.711 payloads decoded to 16-bit 8 kHz mono with `hound`; a gap in RTP timestamps
//! (loss, a DTMF event) becomes silence so the file keeps the call's timeline.
//! CONTRACT STUB: implemented by the media-sources work; signatures are fixed.

use std::io;
use std::path::Path;

use super::g711::Law;

pub struct Recorder {
    _private: (),
}

impl Recorder {
    pub fn create(_path: &Path) -> io::Result<Recorder> {
        todo!()
    }
    /// An audio payload with its RTP timestamp. A timestamp behind what was written is
    /// dropped (late or duplicate); a gap up to one second is filled with silence.
    pub fn write(&mut self, _law: Law, _timestamp: u32, _payload: &[u8]) -> io::Result<()> {
        todo!()
    }
    /// Samples written so far.
    pub fn samples(&self) -> u64 {
        todo!()
    }
    /// Fix the WAV header's lengths and close the file.
    pub fn finish(self) -> io::Result<()> {
        todo!()
    }
}
