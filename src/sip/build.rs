//! Messages built from other messages (RFC 3261): the ACK for a non-2xx final
//! response (§17.1.1.3) and CANCEL (§9.1). Output uses CRLF line ends.
//! STUB: signatures are the contract.

use super::message::Message;

/// ACK for a non-2xx final response, sent inside the INVITE client transaction:
/// Request-URI, Call-ID, From, CSeq number and the single top Via (same branch) of
/// the INVITE; To from the response (it carries the tag); Route headers of the INVITE;
/// `Max-Forwards: 70`, `Content-Length: 0`. Appends to `out`.
pub fn non2xx_ack(invite: &Message<'_>, response: &Message<'_>, out: &mut Vec<u8>) {
    let _ = (invite, response, out);
    todo!()
}

/// CANCEL for a pending INVITE: same Request-URI, Call-ID, From, To (as in the INVITE,
/// no tag added), CSeq number with method CANCEL, exactly one Via equal to the INVITE's
/// top Via, the INVITE's Route headers, `Max-Forwards: 70`, `Content-Length: 0`.
pub fn cancel(invite: &Message<'_>, out: &mut Vec<u8>) {
    let _ = (invite, out);
    todo!()
}
