//! Properties of the chunked decoder: no input makes it panic, and any body
//! encoded with any chunk sizes, extensions and trailers decodes back to itself,
//! however the bytes are split between reads.

use proptest::collection::vec;
use proptest::prelude::*;

use super::{decode, ChunkState, Chunked};

/// `body` in chunks of the given sizes (the rest in one last chunk), each size
/// line with its extension, then the trailer fields.
fn encode(body: &[u8], sizes: &[usize], exts: &[String], trailers: &[String]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut rest = body;
    let mut i = 0;
    while !rest.is_empty() {
        let n = sizes
            .get(i)
            .copied()
            .unwrap_or(rest.len())
            .clamp(1, rest.len());
        let ext = exts.get(i % exts.len().max(1)).map_or("", String::as_str);
        out.extend_from_slice(format!("{n:x}{ext}\r\n").as_bytes());
        out.extend_from_slice(&rest[..n]);
        out.extend_from_slice(b"\r\n");
        rest = &rest[n..];
        i += 1;
    }
    out.extend_from_slice(b"0\r\n");
    for t in trailers {
        out.extend_from_slice(format!("{t}\r\n").as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// Decodes `wire` as it would arrive in reads of the given sizes, keeping one
/// state throughout as the worker does.
fn decode_split(
    wire: &[u8],
    cuts: &[usize],
    max: u64,
) -> (Result<Chunked, crate::handler::Rejection>, Vec<u8>) {
    let mut st = ChunkState::default();
    let mut end = 0;
    for step in cuts.iter().copied().chain(std::iter::once(wire.len())) {
        end = (end + step).min(wire.len());
        match decode(&wire[..end], max, &mut st) {
            Ok(Chunked::Incomplete) if end < wire.len() => {}
            other => return (other, st.body),
        }
    }
    (Ok(Chunked::Incomplete), st.body)
}

fn extension() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "(;[a-z]{1,8}(=[a-z0-9]{0,8})?){1,3}",
        Just(" \t;x=\"quoted\"".to_string()),
    ]
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(
        bytes in vec(any::<u8>(), 0..2048),
        cuts in vec(1usize..128, 0..8),
        max in 0u64..4096,
    ) {
        let _ = decode_split(&bytes, &cuts, max);
        let _ = decode(&bytes, u64::MAX, &mut ChunkState::default());
    }

    #[test]
    fn an_encoded_body_decodes_back_whatever_the_split(
        body in vec(any::<u8>(), 0..1024),
        sizes in vec(1usize..300, 0..16),
        exts in vec(extension(), 0..4),
        trailers in vec("[A-Za-z-]{1,10}: [ -~]{0,10}", 0..3),
        cuts in vec(1usize..200, 0..16),
        after in vec(any::<u8>(), 0..16),
    ) {
        let wire = encode(&body, &sizes, &exts, &trailers);
        let mut buf = wire.clone();
        // Whatever follows (a pipelined request) is not part of the body.
        buf.extend_from_slice(&after);
        let (whole, decoded) = decode_split(&buf, &[], body.len() as u64);
        prop_assert_eq!(whole, Ok(Chunked::Done { consumed: wire.len() }));
        prop_assert_eq!(&decoded, &body);
        let (split, decoded) = decode_split(&buf, &cuts, body.len() as u64);
        prop_assert_eq!(split, Ok(Chunked::Done { consumed: wire.len() }));
        prop_assert_eq!(&decoded, &body);
    }

    #[test]
    fn a_body_over_the_limit_is_refused_whatever_the_split(
        body in vec(any::<u8>(), 1..512),
        sizes in vec(1usize..100, 0..8),
        cuts in vec(1usize..100, 0..8),
    ) {
        let wire = encode(&body, &sizes, &[], &[]);
        let max = body.len() as u64 - 1;
        let (outcome, _) = decode_split(&wire, &cuts, max);
        prop_assert_eq!(outcome, Err(crate::handler::Rejection::PayloadTooLarge));
    }
}
