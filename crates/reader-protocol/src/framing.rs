//! Line framing shared by the text protocols: find the next frame, bound its length, resynchronise.
//!
//! Design note: the vendor decoders are stateless functions over a buffer, yet an over-long line
//! must be discarded as a whole without its tail being read as a new frame.
//! The trick is to keep only the first `max + 1` bytes of an unterminated over-long line in the
//! buffer (dropping the rest as it arrives), so the buffer stays bounded and, when the terminator
//! finally comes, the line is still visibly longer than `max` and is reported once as
//! [`DecodeError::TooLong`].
//! The result does not depend on how the bytes were chunked.

use crate::{DecodeError, Decoded};

/// Which bytes end a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Terminator {
    /// LF; one CR right before it is stripped (CRLF protocols that also tolerate bare LF).
    Lf,
    /// CR or LF; CRLF therefore yields an extra empty line, which callers skip.
    CrOrLf,
    /// A single byte such as MYLAPS `$`; nothing is stripped.
    Byte(u8),
}

/// The next line at the front of `bytes`.
#[derive(Debug)]
pub(crate) enum Line<'a> {
    /// A complete line without its terminator, and the bytes it used including the terminator.
    Complete(&'a [u8], usize),
    /// A terminated line longer than the limit, to be dropped: the bytes it used.
    TooLong(usize),
    /// No terminator yet; the first `usize` bytes may be dropped (middle of an over-long line).
    Incomplete(usize),
}

pub(crate) fn next_line(bytes: &[u8], terminator: Terminator, max: usize) -> Line<'_> {
    let end = match terminator {
        Terminator::Lf => bytes.iter().position(|&b| b == b'\n'),
        Terminator::CrOrLf => bytes.iter().position(|&b| b == b'\n' || b == b'\r'),
        Terminator::Byte(t) => bytes.iter().position(|&b| b == t),
    };
    match end {
        Some(p) if p > max => Line::TooLong(p + 1),
        Some(p) => {
            let mut body = &bytes[..p];
            if terminator == Terminator::Lf
                && let [rest @ .., b'\r'] = body
            {
                body = rest;
            }
            Line::Complete(body, p + 1)
        }
        None => Line::Incomplete(bytes.len().saturating_sub(max + 1)),
    }
}

/// Decodes one message from the front of `bytes`, line by line.
///
/// `parse` turns a line into `Ok(Some(message))`, `Ok(None)` to skip the line (a blank line), or
/// an error; skipped lines are consumed and the next line is tried.
pub(crate) fn decode_lines<T>(
    bytes: &[u8],
    terminator: Terminator,
    max: usize,
    protocol: &'static str,
    mut parse: impl FnMut(&[u8]) -> Result<Option<T>, DecodeError>,
) -> Decoded<T> {
    let mut pos = 0;
    loop {
        match next_line(&bytes[pos..], terminator, max) {
            Line::Complete(body, n) => {
                pos += n;
                match parse(body) {
                    Ok(None) => continue,
                    result => {
                        return Decoded { consumed: pos, result };
                    }
                }
            }
            Line::TooLong(n) => {
                return Decoded { consumed: pos + n, result: Err(DecodeError::TooLong { protocol, limit: max }) };
            }
            Line::Incomplete(skip) => {
                return Decoded { consumed: pos + skip, result: Ok(None) };
            }
        }
    }
}

/// A [`DecodeError::Malformed`] carrying (a bounded copy of) the offending frame.
pub(crate) fn malformed(protocol: &'static str, reason: impl Into<String>, bytes: &[u8]) -> DecodeError {
    // Keep a little more than hex_preview shows, so logs can tell frames apart.
    const KEEP: usize = 256;
    DecodeError::Malformed { protocol, reason: reason.into(), bytes: bytes[..bytes.len().min(KEEP)].to_vec() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lf_strips_one_cr_and_crorlf_splits_crlf() {
        match next_line(b"ab\r\ncd", Terminator::Lf, 10) {
            Line::Complete(body, n) => assert_eq!((body, n), (&b"ab"[..], 4)),
            other => panic!("unexpected {other:?}"),
        }
        match next_line(b"ab\r\ncd", Terminator::CrOrLf, 10) {
            Line::Complete(body, n) => assert_eq!((body, n), (&b"ab"[..], 3)),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn over_long_line_is_bounded_then_reported_once() {
        let max = 4;
        let mut buf = b"0123456789".to_vec();
        match next_line(&buf, Terminator::Lf, max) {
            Line::Incomplete(skip) => buf.drain(..skip),
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(buf.len(), max + 1);
        buf.extend_from_slice(b"abc\nok\n");
        match next_line(&buf, Terminator::Lf, max) {
            Line::TooLong(n) => buf.drain(..n),
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(buf, b"ok\n");
    }
}
