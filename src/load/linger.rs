//! Finished calls' answered requests, kept until timer J (RFC 3261 §17.2.2) so
//! that a retransmitted request (a BYE, typically) gets the same response again
//! after its call has gone.
//!
//! At 70,000 calls/s, 32 s of finished calls is over two million entries, so an
//! entry is one allocation: the Call-ID and, for each transaction, its match
//! keys (branch, sent-by, method), where to answer and the response bytes, all
//! in one buffer. The index holds the Call-ID's hash and the entry's sequence
//! number, like the live-call index; a lookup confirms the Call-ID.

use std::collections::VecDeque;
use std::hash::BuildHasher;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::time::Instant;

use hashbrown::{DefaultHashBuilder, HashTable};

use crate::sip::transaction::ServerTransaction;

#[derive(Default)]
pub struct Linger {
    /// (hash of the Call-ID, sequence number of its entry).
    index: HashTable<(u64, u64)>,
    hasher: DefaultHashBuilder,
    /// Entries in the order they were added, which is expiry order (timer J is
    /// the same for every transaction of a run); `entries[0]` has number `first`.
    entries: VecDeque<Entry>,
    first: u64,
}

struct Entry {
    bytes: Box<[u8]>,
    expires: Instant,
}

/// One transaction of an entry, read back from its bytes.
struct Tx<'e> {
    dest: SocketAddr,
    branch: &'e [u8],
    sent_by: &'e [u8],
    method: &'e [u8],
    response: &'e [u8],
}

impl Linger {
    /// Keep `txs` of the call `call_id` until the latest of their deadlines.
    /// Transactions past their timers are dropped; nothing is kept when none is left.
    pub fn insert(&mut self, call_id: &str, txs: &[ServerTransaction]) {
        let Some(expires) = txs.iter().filter_map(|t| t.deadline()).max() else {
            return;
        };
        let live = || txs.iter().filter(|t| t.deadline().is_some());
        let size = live()
            .map(|t| {
                // Address (19 bytes) and four length prefixes, then the fields.
                35 + t.branch().len()
                    + t.sent_by().len()
                    + t.method().len()
                    + t.last_response().map_or(0, <[u8]>::len)
            })
            .sum::<usize>();
        let mut bytes = Vec::with_capacity(4 + call_id.len() + size);
        put_field(&mut bytes, call_id.as_bytes());
        for t in live() {
            put_addr(&mut bytes, t.dest());
            put_field(&mut bytes, t.branch().as_bytes());
            put_field(&mut bytes, t.sent_by().as_bytes());
            put_field(&mut bytes, t.method().as_bytes());
            put_field(&mut bytes, t.last_response().unwrap_or(&[]));
        }
        let hash = self.hash(call_id.as_bytes());
        let seq = self.first + self.entries.len() as u64;
        self.index.insert_unique(hash, (hash, seq), |&(h, _)| h);
        self.entries.push_back(Entry {
            bytes: bytes.into_boxed_slice(),
            expires,
        });
    }

    /// Is `call_id` a finished call kept here?
    pub fn contains(&self, call_id: &str) -> bool {
        self.find(call_id).is_some()
    }

    /// For a request of the finished call `call_id` that repeats one it answered
    /// (same branch, sent-by and method): where to send the response again, and
    /// the response (empty when none was sent).
    pub fn response_to(
        &self,
        call_id: &str,
        branch: &str,
        sent_by: &str,
        method: &str,
    ) -> Option<(SocketAddr, &[u8])> {
        let entry = self.find(call_id)?;
        let sent_by = sent_by.trim().as_bytes();
        txs(&entry.bytes)
            .find(|t| {
                t.branch == branch.as_bytes()
                    && t.sent_by.eq_ignore_ascii_case(sent_by)
                    && t.method.eq_ignore_ascii_case(method.as_bytes())
            })
            .map(|t| (t.dest, t.response))
    }

    /// Forget the entries whose time has come.
    pub fn expire(&mut self, now: Instant) {
        while let Some(front) = self.entries.front()
            && front.expires <= now
        {
            let seq = self.first;
            let hash = self.hash(entry_call_id(&front.bytes));
            if let Ok(slot) = self.index.find_entry(hash, |&(h, s)| h == hash && s == seq) {
                slot.remove();
            }
            self.entries.pop_front();
            self.first += 1;
        }
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        assert_eq!(
            self.index.len(),
            self.entries.len(),
            "index and entries agree"
        );
        self.entries.len()
    }

    /// The index's hash of a Call-ID. Always of the bytes: `str` and `[u8]`
    /// hash differently, and the entries only have bytes.
    fn hash(&self, call_id: &[u8]) -> u64 {
        self.hasher.hash_one(call_id)
    }

    fn find(&self, call_id: &str) -> Option<&Entry> {
        let hash = self.hash(call_id.as_bytes());
        let (first, entries) = (self.first, &self.entries);
        let entry = |seq: u64| entries.get(usize::try_from(seq.checked_sub(first)?).ok()?);
        self.index
            .find(hash, |&(h, seq)| {
                h == hash
                    && entry(seq).is_some_and(|e| entry_call_id(&e.bytes) == call_id.as_bytes())
            })
            .and_then(|&(_, seq)| entry(seq))
    }
}

fn put_field(out: &mut Vec<u8>, field: &[u8]) {
    // A datagram is at most 64 KB, so a length always fits; clamp rather than wrap.
    let len = u32::try_from(field.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&field[..len as usize]);
}

fn put_addr(out: &mut Vec<u8>, addr: SocketAddr) {
    let ip = match addr.ip() {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    };
    out.push(u8::from(addr.is_ipv6()));
    out.extend_from_slice(&ip.octets());
    out.extend_from_slice(&addr.port().to_le_bytes());
}

/// Reads what `put_field`/`put_addr` wrote; `None` at the end (or on bytes
/// this module did not write, which cannot happen).
struct Reader<'e> {
    bytes: &'e [u8],
}

impl<'e> Reader<'e> {
    fn field(&mut self) -> Option<&'e [u8]> {
        let (len, rest) = self.bytes.split_first_chunk::<4>()?;
        let len = u32::from_le_bytes(*len) as usize;
        let field = rest.get(..len)?;
        self.bytes = &rest[len..];
        Some(field)
    }

    fn addr(&mut self) -> Option<SocketAddr> {
        let (&v6, rest) = self.bytes.split_first()?;
        let (ip, rest) = rest.split_first_chunk::<16>()?;
        let (port, rest) = rest.split_first_chunk::<2>()?;
        self.bytes = rest;
        let ip = Ipv6Addr::from(*ip);
        let ip = match (v6, ip.to_ipv4_mapped()) {
            (0, Some(v4)) => IpAddr::V4(v4),
            _ => IpAddr::V6(ip),
        };
        Some(SocketAddr::new(ip, u16::from_le_bytes(*port)))
    }
}

fn entry_call_id(bytes: &[u8]) -> &[u8] {
    Reader { bytes }.field().unwrap_or(&[])
}

fn txs(bytes: &[u8]) -> impl Iterator<Item = Tx<'_>> {
    let mut r = Reader { bytes };
    let _call_id = r.field();
    std::iter::from_fn(move || {
        Some(Tx {
            dest: r.addr()?,
            branch: r.field()?,
            sent_by: r.field()?,
            method: r.field()?,
            response: r.field()?,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sip::transaction::Timers;
    use std::time::Duration;

    fn answered(
        method: &str,
        branch: &str,
        dest: &str,
        response: &[u8],
        now: Instant,
    ) -> ServerTransaction {
        let mut tx = ServerTransaction::new(
            method,
            branch,
            "client.example.com:5070",
            dest.parse().unwrap(),
            false,
            now,
            Timers::default(),
        );
        tx.on_send_response(200, response.to_vec(), now);
        tx
    }

    #[test]
    fn keeps_answers_until_timer_j_then_forgets() {
        let t0 = Instant::now();
        let mut linger = Linger::default();
        let bye = answered(
            "BYE",
            "z9hG4bK-1",
            "192.0.2.1:5070",
            b"SIP/2.0 200 OK\r\n\r\n",
            t0,
        );
        let info = answered(
            "INFO",
            "z9hG4bK-2",
            "[2001:db8::1]:5070",
            b"SIP/2.0 200 Info\r\n\r\n",
            t0,
        );
        linger.insert("a@h", &[bye, info]);
        let later = answered(
            "BYE",
            "z9hG4bK-3",
            "192.0.2.2:5060",
            b"SIP/2.0 200 Late\r\n\r\n",
            t0 + Duration::from_secs(5),
        );
        linger.insert("b@h", &[later]);
        assert_eq!(linger.len(), 2);
        // Exactly sized: Call-ID field, then per transaction 35 bytes of address
        // and length prefixes plus branch, sent-by, method and response.
        assert_eq!(
            linger.entries[0].bytes.len(),
            (4 + 3) + (35 + 9 + 23 + 3 + 18) + (35 + 9 + 23 + 4 + 20)
        );
        assert!(linger.contains("a@h") && linger.contains("b@h") && !linger.contains("c@h"));

        let (dest, resp) = linger
            .response_to("a@h", "z9hG4bK-2", " CLIENT.example.com:5070 ", "info")
            .unwrap();
        assert_eq!(dest, "[2001:db8::1]:5070".parse::<SocketAddr>().unwrap());
        assert_eq!(resp, b"SIP/2.0 200 Info\r\n\r\n");
        let (dest, resp) = linger
            .response_to("a@h", "z9hG4bK-1", "client.example.com:5070", "BYE")
            .unwrap();
        assert_eq!(dest, "192.0.2.1:5070".parse::<SocketAddr>().unwrap());
        assert_eq!(resp, b"SIP/2.0 200 OK\r\n\r\n");
        // Another branch, sent-by or method is not a retransmission.
        for (call, branch, sent_by, method) in [
            ("a@h", "z9hG4bK-9", "client.example.com:5070", "BYE"),
            ("a@h", "z9hG4bK-1", "other:5070", "BYE"),
            ("a@h", "z9hG4bK-1", "client.example.com:5070", "INFO"),
            ("b@h", "z9hG4bK-1", "client.example.com:5070", "BYE"),
        ] {
            assert!(
                linger.response_to(call, branch, sent_by, method).is_none(),
                "{call} {branch} {sent_by} {method}"
            );
        }

        // Timer J (64 × T1 = 32 s) ends the first call's entry, then the second's.
        linger.expire(t0 + Duration::from_secs(31));
        assert_eq!(linger.len(), 2);
        linger.expire(t0 + Duration::from_secs(33));
        assert!(!linger.contains("a@h") && linger.contains("b@h"));
        assert!(
            linger
                .response_to("b@h", "z9hG4bK-3", "client.example.com:5070", "BYE")
                .is_some()
        );
        linger.expire(t0 + Duration::from_secs(38));
        assert_eq!(linger.len(), 0);
        assert!(!linger.contains("b@h"));
        // Numbers go on after the queue emptied.
        linger.insert(
            "a@h",
            &[answered(
                "BYE",
                "z9hG4bK-4",
                "192.0.2.1:5070",
                b"x",
                t0 + Duration::from_secs(40),
            )],
        );
        assert!(
            linger
                .response_to("a@h", "z9hG4bK-4", "client.example.com:5070", "BYE")
                .is_some()
        );
    }

    #[test]
    fn nothing_kept_without_a_running_timer() {
        let t0 = Instant::now();
        let mut linger = Linger::default();
        let mut tx = answered("BYE", "z9hG4bK-1", "192.0.2.1:5070", b"r", t0);
        tx.on_timer(t0 + Duration::from_secs(40));
        assert!(tx.deadline().is_none());
        linger.insert("a@h", &[tx]);
        linger.insert("b@h", &[]);
        assert_eq!(linger.len(), 0);
    }
}
