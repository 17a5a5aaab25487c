//! One cryptographic context per direction (one master key), any number of SSRCs inside.
//!
//! Per SSRC it keeps the highest authenticated index (which carries the ROC and s_l of
//! RFC 3711 §3.3.1) with its replay bitmap, and, only when KDR ≠ 0, that stream's current
//! session keys. With KDR = 0 every SSRC shares one set of session keys derived up front.
//!
//! Nothing is committed before a packet authenticates: an SSRC seen for the first time is
//! processed against a scratch state that is inserted into the map only on success, so
//! forged or foreign packets neither move the ROC nor allocate.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::kdf::Kdf;
use super::layout::{self, SrtcpLayout, SrtpLayout};
use super::replay::{ReplayWindow, estimate_index, index_of};
use super::transform::{Kind, Transform};
use super::{MasterKey, SrtpError, Suite};

/// What an unprotect call found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Unprotected {
    /// Plaintext packet length: the packet's bytes [..len] are now plain RTP/RTCP.
    pub len: usize,
    pub ssrc: u32,
    /// SRTP: ROC<<16 | SEQ; SRTCP: the 31-bit SRTCP index.
    pub index: u64,
    /// SRTP: ROC used; SRTCP: 0.
    pub roc: u32,
}

/// Default number of ROC values tried on the first packet of an SSRC.
const DEFAULT_ROC_TRIALS: u32 = 64;

/// SSRCs are already random, and only authenticated ones get into a map, so a multiply-fold
/// is enough and avoids SipHash on every packet.
#[derive(Default, Clone, Copy)]
struct SsrcHasher(u64);

impl Hasher for SsrcHasher {
    fn finish(&self) -> u64 {
        let wide = u128::from(self.0) * 0x9e37_79b9_7f4a_7c15;
        (wide as u64) ^ ((wide >> 64) as u64)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n);
    }
}

type SsrcMap<V> = HashMap<u32, V, BuildHasherDefault<SsrcHasher>>;

/// Session keys of one stream when KDR ≠ 0, with the r = index DIV KDR they were made for.
/// Boxed: with KDR = 0 (nearly always) the stream state stays a few words.
type KeyCache = Option<Box<(u64, Transform)>>;

/// Per-SSRC states. A call's context sees one SSRC per direction: that one lives inline
/// (no hashing, no heap, one cache line), further ones in a map. With thousands of calls
/// per thread the state is cold at every packet, so its size is what a packet costs.
#[derive(Clone, Default)]
struct Streams {
    first: Option<(u32, Stream)>,
    rest: SsrcMap<Stream>,
}

impl Streams {
    fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest.len()
    }

    fn get(&self, ssrc: u32) -> Option<&Stream> {
        match &self.first {
            Some((s, st)) if *s == ssrc => Some(st),
            _ => self.rest.get(&ssrc),
        }
    }

    fn get_mut(&mut self, ssrc: u32) -> Option<&mut Stream> {
        match &mut self.first {
            Some((s, st)) if *s == ssrc => Some(st),
            _ => self.rest.get_mut(&ssrc),
        }
    }

    fn insert(&mut self, ssrc: u32, stream: Stream) {
        match &mut self.first {
            Some((s, st)) if *s == ssrc => *st = stream,
            Some(_) => {
                self.rest.insert(ssrc, stream);
            }
            None => self.first = Some((ssrc, stream)),
        }
    }

    /// Run a receive step on `ssrc`'s state. A new SSRC works on a scratch state that
    /// joins only if the step succeeds (the packet was authentic), so forged packets
    /// neither allocate nor move anything.
    fn receive<T>(
        &mut self,
        ssrc: u32,
        step: impl FnOnce(&mut Stream) -> Result<T, SrtpError>,
    ) -> Result<T, SrtpError> {
        if let Some(stream) = self.get_mut(ssrc) {
            return step(stream);
        }
        let mut stream = Stream::default();
        let done = step(&mut stream)?;
        self.insert(ssrc, stream);
        Ok(done)
    }

    fn entry(&mut self, ssrc: u32) -> &mut Stream {
        if self.first.is_none() {
            self.first = Some((ssrc, Stream::default()));
        }
        match &mut self.first {
            Some((s, st)) if *s == ssrc => st,
            _ => self.rest.entry(ssrc).or_default(),
        }
    }
}

/// Receive or send state of one SRTP or SRTCP stream.
#[derive(Clone, Default)]
struct Stream {
    /// Highest authenticated (received) or used (sent) index and the replay bitmap;
    /// None until the first packet.
    window: Option<ReplayWindow>,
    /// A ROC given by `set_roc`, used for the next packet instead of the estimate.
    pending_roc: Option<u32>,
    keys: KeyCache,
}

impl Stream {
    /// The SRTP index of `seq` for this stream (RFC 3711 §3.3.1).
    fn estimate(&self, seq: u16) -> u64 {
        match (self.pending_roc, self.window) {
            (Some(roc), _) => index_of(roc, seq),
            (None, Some(w)) => estimate_index(w.highest(), seq),
            (None, None) => u64::from(seq),
        }
    }

    fn commit(&mut self, index: u64) {
        match &mut self.window {
            // A ROC set from outside starts the stream over at that point.
            Some(w) if self.pending_roc.is_none() => w.commit(index),
            w => *w = Some(ReplayWindow::starting_at(index)),
        }
        self.pending_roc = None;
    }

    fn roc(&self) -> Option<u32> {
        self.pending_roc
            .or_else(|| self.window.map(|w| (w.highest() >> 16) as u32))
    }
}

/// Where session keys come from: the shared ones (KDR = 0), or the stream's own, derived
/// again when index DIV KDR moves on.
struct KeySource<'a> {
    shared: Option<&'a Transform>,
    kdf: &'a Kdf,
    suite: Suite,
    kind: Kind,
    kdr: u64,
}

impl<'a> KeySource<'a> {
    fn get<'b>(&self, cache: &'b mut KeyCache, index: u64) -> &'b Transform
    where
        'a: 'b,
    {
        if let Some(t) = self.shared {
            return t;
        }
        let r = index.checked_div(self.kdr).unwrap_or(0);
        if !matches!(cache, Some(c) if c.0 == r) {
            *cache = None;
        }
        &cache
            .get_or_insert_with(|| {
                Box::new((r, Transform::derive(self.suite, self.kdf, self.kind, r)))
            })
            .1
    }

    /// Try each ROC in `rocs`; decrypt with, and return the index of, the first that
    /// authenticates.
    fn roc_search(
        &self,
        packet: &mut [u8],
        lay: &SrtpLayout,
        cache: &mut KeyCache,
        rocs: impl Iterator<Item = u32>,
    ) -> Option<u64> {
        if let Some(cm) = self.shared.and_then(Transform::as_cm_hmac) {
            // One HMAC pass over the body, then only the ROC per candidate.
            let roc = cm.find_roc(packet, lay, rocs)?;
            let index = index_of(roc, lay.seq);
            cm.decrypt_rtp(packet, lay, index);
            return Some(index);
        }
        for roc in rocs {
            let index = index_of(roc, lay.seq);
            if self.get(cache, index).open_rtp(packet, lay, index) {
                return Some(index);
            }
        }
        None
    }
}

/// One master key's SRTP and SRTCP state, for any number of SSRCs, in one direction.
///
/// A context either protects or unprotects: the send and receive states are kept apart,
/// but a ROC given with [`Context::set_roc`] applies to both.
#[derive(Clone)]
pub struct Context {
    suite: Suite,
    /// Cold (KDR ≠ 0 and set-up only), and so is SRTCP: boxed, so that what every RTP
    /// packet reads sits in fewer cache lines.
    kdf: Box<Kdf>,
    kdr: u64,
    mki: Vec<u8>,
    roc_trials: u32,
    replay_check: bool,
    /// Shared session keys when KDR = 0 (None: per-stream keys).
    rtp_keys: Option<Transform>,
    rtcp_keys: Option<Box<Transform>>,
    rtp_in: Streams,
    rtcp_in: Streams,
    rtp_out: Streams,
    rtcp_out: Streams,
}

impl std::fmt::Debug for Context {
    /// No key material in logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Context")
            .field("suite", &self.suite)
            .field("kdr", &self.kdr)
            .field("mki_len", &self.mki.len())
            .field("rtp_ssrcs", &(self.rtp_in.len() + self.rtp_out.len()))
            .field("rtcp_ssrcs", &(self.rtcp_in.len() + self.rtcp_out.len()))
            .finish_non_exhaustive()
    }
}

impl Context {
    pub fn new(key: &MasterKey) -> Result<Context, SrtpError> {
        key.check_lengths()?;
        let suite = key.suite;
        let kdf = Kdf::new(&key.key, &key.salt).ok_or(SrtpError::BadKeyLength {
            suite,
            expected: suite.master_key_len(),
            got: key.key.len(),
        })?;
        let shared = |kind| (key.kdr == 0).then(|| Transform::derive(suite, &kdf, kind, 0));
        Ok(Context {
            suite,
            rtp_keys: shared(Kind::Rtp),
            rtcp_keys: shared(Kind::Rtcp).map(Box::new),
            kdf: Box::new(kdf),
            kdr: key.kdr,
            mki: key.mki.clone().unwrap_or_default(),
            roc_trials: DEFAULT_ROC_TRIALS,
            replay_check: true,
            rtp_in: Streams::default(),
            rtcp_in: Streams::default(),
            rtp_out: Streams::default(),
            rtcp_out: Streams::default(),
        })
    }

    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// How many ROC values to try (0, 1, … max) on the FIRST packet of an SSRC when the tag
    /// fails at the estimated ROC (capture that starts mid-call). Default 64.
    pub fn set_roc_trials(&mut self, max: u32) {
        self.roc_trials = max;
    }

    /// Turn the replay check off (on by default), e.g. to decrypt a capture that holds the
    /// same packet twice, or to benchmark one packet over and over.
    pub fn set_replay_check(&mut self, on: bool) {
        self.replay_check = on;
    }

    /// Known ROC for a stream: the next packet of `ssrc` (sent or received) uses it instead
    /// of the estimate.
    pub fn set_roc(&mut self, ssrc: u32, roc: u32) {
        self.rtp_in.entry(ssrc).pending_roc = Some(roc);
        self.rtp_out.entry(ssrc).pending_roc = Some(roc);
    }

    /// The ROC of the highest packet index seen for `ssrc` (or the one set for it).
    pub fn roc(&self, ssrc: u32) -> Option<u32> {
        let of = |map: &Streams| map.get(ssrc).and_then(Stream::roc);
        of(&self.rtp_in).or_else(|| of(&self.rtp_out))
    }

    fn check_mki(&self, packet: &[u8], at: usize) -> Result<(), SrtpError> {
        match packet.get(at..at + self.mki.len()) {
            Some(mki) if mki == self.mki.as_slice() => Ok(()),
            _ => Err(SrtpError::MkiMismatch),
        }
    }

    /// The key source for `kind`, borrowing only the fields it needs so that a stream of
    /// the maps can be borrowed mutably at the same time.
    fn key_source<'a>(
        shared: Option<&'a Transform>,
        kdf: &'a Kdf,
        suite: Suite,
        kind: Kind,
        kdr: u64,
    ) -> KeySource<'a> {
        KeySource {
            shared,
            kdf,
            suite,
            kind,
            kdr,
        }
    }

    /// Verify and decrypt in place. On success bytes [..len] hold plain RTP (MKI and tag
    /// removed). The ROC/replay state is committed only when authentication succeeds. Does not
    /// allocate on the steady-state path (only when a new SSRC first appears).
    pub fn unprotect_rtp(&mut self, packet: &mut [u8]) -> Result<Unprotected, SrtpError> {
        let lay = layout::srtp(self.suite, packet, self.mki.len())?;
        self.check_mki(packet, lay.mki_at)?;
        let keys = Self::key_source(
            self.rtp_keys.as_ref(),
            &self.kdf,
            self.suite,
            Kind::Rtp,
            self.kdr,
        );
        let checks = (self.replay_check, self.roc_trials);
        self.rtp_in.receive(lay.ssrc, |stream| {
            unprotect_rtp_in(&keys, checks, stream, packet, &lay)
        })
    }

    /// Verify and decrypt an SRTCP packet in place; bytes [..len] then hold the plain RTCP
    /// compound packet (E+index, MKI and tag removed). Packets sent with E = 0 are only
    /// verified.
    pub fn unprotect_rtcp(&mut self, packet: &mut [u8]) -> Result<Unprotected, SrtpError> {
        let lay = layout::srtcp(self.suite, packet, self.mki.len())?;
        self.check_mki(packet, lay.mki_at)?;
        let keys = Self::key_source(
            self.rtcp_keys.as_deref(),
            &self.kdf,
            self.suite,
            Kind::Rtcp,
            self.kdr,
        );
        let replay_check = self.replay_check;
        self.rtcp_in.receive(lay.ssrc, |stream| {
            unprotect_rtcp_in(&keys, replay_check, stream, packet, &lay)
        })
    }

    /// Encrypt plain RTP held in `packet`, appending MKI and tag (in the suite's order).
    /// The index comes from the sequence number with the ROC tracked per SSRC.
    pub fn protect_rtp(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        if packet.len() < layout::RTP_HEADER {
            return Err(SrtpError::Truncated);
        }
        let header = layout::rtp_header(packet, packet.len())?;
        let keys = Self::key_source(
            self.rtp_keys.as_ref(),
            &self.kdf,
            self.suite,
            Kind::Rtp,
            self.kdr,
        );
        let stream = self.rtp_out.entry(header.ssrc);
        let index = stream.estimate(header.seq);
        let t = keys.get(&mut stream.keys, index);
        if !t.seal_rtp(packet, header.len, header.ssrc, index, &self.mki) {
            return Err(SrtpError::NotRtp);
        }
        stream.commit(index);
        Ok(())
    }

    /// Encrypt a plain RTCP compound packet held in `packet`, appending E+index, MKI and
    /// tag. The SRTCP index counts from 0 per SSRC (RFC 3711 §3.4).
    pub fn protect_rtcp(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        if packet.len() < layout::RTCP_HEADER {
            return Err(SrtpError::Truncated);
        }
        if packet.first().is_none_or(|b| b >> 6 != 2) {
            return Err(SrtpError::NotRtp);
        }
        let ssrc = packet
            .get(4..8)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_be_bytes)
            .ok_or(SrtpError::Truncated)?;
        let keys = Self::key_source(
            self.rtcp_keys.as_deref(),
            &self.kdf,
            self.suite,
            Kind::Rtcp,
            self.kdr,
        );
        let stream = self.rtcp_out.entry(ssrc);
        let index = stream.window.map_or(0, |w| (w.highest() + 1) & 0x7fff_ffff);
        let t = keys.get(&mut stream.keys, index);
        if !t.seal_rtcp(packet, ssrc, index as u32, &self.mki) {
            return Err(SrtpError::Truncated);
        }
        // After the index wraps, a new window rather than what would look like a replay.
        stream.window = Some(match stream.window {
            Some(mut w) if index > 0 => {
                w.commit(index);
                w
            }
            _ => ReplayWindow::starting_at(index),
        });
        Ok(())
    }
}

/// The SRTP receive path for one stream: estimate the index, check replay, authenticate
/// (with ROC trials while the stream has no authenticated packet), decrypt, commit.
fn unprotect_rtp_in(
    keys: &KeySource<'_>,
    (replay_check, roc_trials): (bool, u32),
    stream: &mut Stream,
    packet: &mut [u8],
    lay: &SrtpLayout,
) -> Result<Unprotected, SrtpError> {
    let estimated = stream.estimate(lay.seq);
    if let Some(w) = &stream.window
        && replay_check
        && stream.pending_roc.is_none()
    {
        w.check(estimated)?;
    }
    let index = if keys
        .get(&mut stream.keys, estimated)
        .open_rtp(packet, lay, estimated)
    {
        estimated
    } else if stream.window.is_none() {
        // Nothing authenticated yet on this SSRC: the capture may start mid-call.
        let tried = (estimated >> 16) as u32;
        let rocs = (0..=roc_trials).filter(|&r| r != tried);
        keys.roc_search(packet, lay, &mut stream.keys, rocs)
            .ok_or(SrtpError::AuthFailed)?
    } else {
        return Err(SrtpError::AuthFailed);
    };
    stream.commit(index);
    Ok(Unprotected {
        len: lay.body_end,
        ssrc: lay.ssrc,
        index,
        roc: (index >> 16) as u32,
    })
}

/// The SRTCP receive path for one stream.
fn unprotect_rtcp_in(
    keys: &KeySource<'_>,
    replay_check: bool,
    stream: &mut Stream,
    packet: &mut [u8],
    lay: &SrtcpLayout,
) -> Result<Unprotected, SrtpError> {
    let index = u64::from(lay.index);
    if let Some(w) = &stream.window
        && replay_check
    {
        w.check(index)?;
    }
    if !keys.get(&mut stream.keys, index).open_rtcp(packet, lay) {
        return Err(SrtpError::AuthFailed);
    }
    stream.commit(index);
    Ok(Unprotected {
        len: lay.body_end,
        ssrc: lay.ssrc,
        index,
        roc: 0,
    })
}
