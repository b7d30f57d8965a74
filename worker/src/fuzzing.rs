//! Entry points for the fuzz targets in `fuzz/` (docs/operations.md, Fuzzing): the
//! request-head parser and the chunked decoder are crate-private, so these wrappers
//! drive them the way the server does and panic when a property fails. Not an API.
//!
//! Properties checked beyond "never panics":
//! - a result never depends on how the bytes were split into reads: a complete head
//!   is `Ok(None)` (wait) for every shorter prefix, and a chunked body decoded read
//!   by read ends exactly as when decoded in one go;
//! - what is consumed lies within what was given.

use crate::chunked::{self, ChunkState, Chunked};
use crate::head;
use crate::limits::Limits;

/// Limits small enough that a fuzzer reaches every limit check quickly.
fn tight() -> Limits {
    Limits {
        request_line: 24,
        header_fields: 3,
        header_field_size: 16,
        max_body: 64,
        ..Limits::default()
    }
}

/// Parses `buf` as a request head under the default and under tight limits.
pub fn request_head(buf: &[u8]) {
    for limits in [Limits::default(), tight()] {
        head_consistent(buf, &limits);
    }
}

fn head_consistent(buf: &[u8], limits: &Limits) {
    let whole = head_len(buf, limits);
    if let Some(Ok(len)) = whole {
        assert!(len <= buf.len(), "head of {len} bytes in {}", buf.len());
    }
    // Every prefix, up to a bound that keeps one run fast: a prefix that decides
    // (a head, or a refusal) must decide the same for the whole.
    for cut in (0..buf.len()).take(512) {
        match (head_len(&buf[..cut], limits), whole) {
            (None, _) | (Some(Err(_)), Some(Err(_))) => {}
            (Some(Ok(len)), whole) => assert_eq!(
                whole,
                Some(Ok(len)),
                "a {cut}-byte prefix is a {len}-byte head, the whole is not"
            ),
            (Some(Err(status)), whole) => {
                panic!("a {cut}-byte prefix is refused with {status}, the whole is {whole:?}")
            }
        }
    }
}

/// `None` = wait for more, `Some(Ok(head length))`, `Some(Err(status))`.
fn head_len(buf: &[u8], limits: &Limits) -> Option<Result<usize, u16>> {
    let mut headers = vec![httparse::EMPTY_HEADER; limits.header_fields.max(1)];
    match head::parse(buf, &mut headers, limits) {
        Ok(None) => None,
        Ok(Some(h)) => Some(Ok(h.len)),
        Err(r) => Some(Err(r.status())),
    }
}

/// Decodes `buf` as a chunked body whole, then again read by read with cuts taken
/// from `cuts`, and requires both to end the same.
pub fn chunked_body(buf: &[u8], cuts: &[u8], max: u64) {
    let mut st = ChunkState::default();
    let whole = chunked::decode(buf, max, &mut st).map(|c| (c, std::mem::take(&mut st.body)));
    if let Ok((Chunked::Done { consumed }, _)) = &whole {
        assert!(*consumed <= buf.len());
    }
    let mut st = ChunkState::default();
    let mut end = 0usize;
    let mut step = cuts.iter().cycle().map(|c| usize::from(*c) + 1);
    let stepwise = loop {
        end = (end + step.next().unwrap_or(buf.len() + 1)).min(buf.len());
        match chunked::decode(&buf[..end], max, &mut st) {
            Ok(Chunked::Incomplete) if end < buf.len() => continue,
            other => break other.map(|c| (c, std::mem::take(&mut st.body))),
        }
    };
    assert_eq!(whole, stepwise, "read by read (cuts {cuts:?}) differs");
}
