//! Shared checks for the codec property tests: full decoding, re-chunking, garbage tolerance.

use std::fmt::Debug;

use proptest::prelude::*;

use crate::DecodeError;

pub(crate) type DecodeFn<M> = fn(&mut Vec<u8>) -> Result<Option<M>, DecodeError>;

/// Decodes every complete frame in `buf`, asserting that each frame result consumed bytes.
pub(crate) fn drain<M>(buf: &mut Vec<u8>, decode: DecodeFn<M>) -> Vec<Result<M, DecodeError>> {
    let mut out = Vec::new();
    loop {
        let before = buf.len();
        match decode(buf) {
            Ok(None) => {
                assert!(buf.len() <= before);
                return out;
            }
            Ok(Some(m)) => {
                assert!(buf.len() < before, "a decoded frame must consume bytes");
                out.push(Ok(m));
            }
            Err(e) => {
                assert!(buf.len() < before, "a bad frame must be consumed: {e}");
                out.push(Err(e));
            }
        }
    }
}

/// Decodes `bytes` fed in pieces cut at `cuts` (taken modulo the length), draining after each piece.
pub(crate) fn decode_chunked<M>(bytes: &[u8], cuts: &[usize], decode: DecodeFn<M>) -> Vec<Result<M, DecodeError>> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
    points.push(0);
    points.push(bytes.len());
    points.sort_unstable();
    let mut buf = Vec::new();
    let mut out = Vec::new();
    for w in points.windows(2) {
        buf.extend_from_slice(&bytes[w[0]..w[1]]);
        out.extend(drain(&mut buf, decode));
    }
    out
}

/// Decodes `bytes` in one piece.
pub(crate) fn decode_whole<M>(bytes: &[u8], decode: DecodeFn<M>) -> Vec<Result<M, DecodeError>> {
    drain(&mut bytes.to_vec(), decode)
}

/// Arbitrary bytes, half of them drawn from a protocol's own alphabet so parsers get exercised deeply.
pub(crate) fn noisy_bytes(alphabet: &'static [u8], max_len: usize) -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(prop_oneof![any::<u8>(), proptest::sample::select(alphabet)], 0..max_len)
}

/// Decoding arbitrary bytes, whole or in pieces, neither panics nor stalls.
pub(crate) fn check_no_panic<M>(bytes: &[u8], cuts: &[usize], decode: DecodeFn<M>) {
    let _ = decode_whole(bytes, decode);
    let _ = decode_chunked(bytes, cuts, decode);
}

/// The same stream cut anywhere decodes to the same results, and to `expected` when given.
pub(crate) fn check_rechunk<M: PartialEq + Debug>(
    stream: &[u8],
    cuts: &[usize],
    decode: DecodeFn<M>,
    expected: &[M],
) -> Result<(), TestCaseError> {
    let whole = decode_whole(stream, decode);
    let pieces = decode_chunked(stream, cuts, decode);
    prop_assert_eq!(&whole, &pieces);
    let ok: Vec<&M> = whole.iter().filter_map(|r| r.as_ref().ok()).collect();
    prop_assert_eq!(ok, expected.iter().collect::<Vec<_>>(), "stream {:?}", String::from_utf8_lossy(stream));
    Ok(())
}

/// Every expected message is still decoded, in order, when garbage sits between the frames.
pub(crate) fn check_garbage<M: PartialEq + Debug>(
    stream: &[u8],
    decode: DecodeFn<M>,
    expected: &[M],
) -> Result<(), TestCaseError> {
    let got = decode_whole(stream, decode);
    let mut want = expected.iter().peekable();
    for m in got.iter().flatten() {
        if want.peek() == Some(&m) {
            want.next();
        }
    }
    prop_assert!(
        want.peek().is_none(),
        "lost {:?} in {:?}; got {:?}",
        want.peek(),
        String::from_utf8_lossy(stream),
        got
    );
    Ok(())
}

/// Arbitrary bytes without any of `forbidden`, then `end`: one garbage frame, sometimes over 1 KiB.
pub(crate) fn garbage_frame(forbidden: &'static [u8], end: &'static [u8]) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => proptest::collection::vec(any::<u8>(), 0..40),
        1 => proptest::collection::vec(any::<u8>(), 1030..1100),
    ]
    .prop_map(move |mut v| {
        v.retain(|b| !forbidden.contains(b));
        v.extend_from_slice(end);
        v
    })
}

/// Printable field text without the given separators.
pub(crate) fn field_text(forbidden: &'static str, max_len: usize) -> impl Strategy<Value = String> {
    proptest::collection::vec(proptest::char::range(' ', '~'), 1..=max_len).prop_map(move |cs| {
        let s: String = cs.into_iter().filter(|c| !forbidden.contains(*c)).collect();
        if s.is_empty() { "x".to_owned() } else { s }
    })
}
