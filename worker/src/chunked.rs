//! Decoding of `Transfer-Encoding: chunked` request bodies.
//!
//! The decoder is re-run over the buffered bytes until the body is complete; bodies
//! are capped by `MAX_REQUEST_BYTES`, so the rescan stays cheap and no state has to be
//! kept between reads.

use crate::handler::Rejection;

/// Longest chunk-size line (size, extensions) or trailer line we accept.
const MAX_LINE: usize = 8192;

#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Chunked {
    Incomplete,
    /// The body is complete (in `ChunkState::body`); `consumed` wire bytes.
    Done {
        consumed: usize,
    },
}

/// Progress through one chunked body, kept between reads so that every byte is
/// decoded once: a body trickling in byte by byte costs O(n), not O(n²).
#[derive(Debug, Default)]
pub(crate) struct ChunkState {
    /// Offset of the next unparsed wire byte (a size line, or a trailer line).
    pos: usize,
    pub body: Vec<u8>,
    in_trailers: bool,
}

/// Continues decoding the chunked body at the start of `buf`, refusing more than
/// `max` decoded bytes.
pub(crate) fn decode(buf: &[u8], max: u64, st: &mut ChunkState) -> Result<Chunked, Rejection> {
    loop {
        let Some((len, total)) = line_at(buf, st.pos)? else {
            return Ok(Chunked::Incomplete);
        };
        if st.in_trailers {
            st.pos += total;
            if len == 0 {
                return Ok(Chunked::Done { consumed: st.pos });
            }
            continue;
        }
        let size = chunk_size(&buf[st.pos..st.pos + len])?;
        if size == 0 {
            st.pos += total;
            st.in_trailers = true;
            continue;
        }
        if st.body.len() as u64 + size > max {
            return Err(Rejection::PayloadTooLarge);
        }
        let (start, size) = (st.pos + total, size as usize);
        if buf.len() < start + size + 2 {
            // Re-reading the size line next time is cheap (bounded by MAX_LINE).
            return Ok(Chunked::Incomplete);
        }
        if &buf[start + size..start + size + 2] != b"\r\n" {
            return Err(Rejection::BadRequest("chunk data not followed by CRLF"));
        }
        st.body.extend_from_slice(&buf[start..start + size]);
        st.pos = start + size + 2;
    }
}

/// Finds the line starting at `pos`: (content length, length including CRLF).
fn line_at(buf: &[u8], pos: usize) -> Result<Option<(usize, usize)>, Rejection> {
    let rest = &buf[pos.min(buf.len())..];
    match rest.iter().take(MAX_LINE + 2).position(|b| *b == b'\n') {
        Some(i) if i > 0 && rest[i - 1] == b'\r' => Ok(Some((i - 1, i + 1))),
        Some(_) => Err(Rejection::BadRequest("bare LF in chunked body")),
        // MAX_LINE bytes and a CR may still be followed by the LF that ends them.
        None if rest.len() > MAX_LINE + 1 => Err(Rejection::BadRequest("chunk line too long")),
        None => Ok(None),
    }
}

/// The size before any extension; only SP and HTAB may stand between the two
/// (RFC 9112 7.1.1's BWS), never in front of the digits.
fn chunk_size(line: &[u8]) -> Result<u64, Rejection> {
    let hex = line.split(|b| *b == b';').next().unwrap_or(&[]);
    let end = hex
        .iter()
        .rposition(|b| *b != b' ' && *b != b'\t')
        .map_or(0, |i| i + 1);
    let hex = &hex[..end];
    if hex.is_empty() || hex.len() > 15 {
        return Err(Rejection::BadRequest("bad chunk size"));
    }
    hex.iter().try_fold(0u64, |acc, b| {
        let d = (*b as char)
            .to_digit(16)
            .ok_or(Rejection::BadRequest("bad chunk size"))?;
        Ok(acc * 16 + u64::from(d))
    })
}

#[cfg(test)]
mod props;

#[cfg(test)]
mod tests {
    use super::*;

    fn once(buf: &[u8], max: u64) -> Result<(Chunked, Vec<u8>), Rejection> {
        let mut st = ChunkState::default();
        decode(buf, max, &mut st).map(|c| (c, st.body))
    }

    #[test]
    fn decodes_chunks_extensions_and_trailers() {
        let raw = b"4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        let (c, body) = once(raw, 100).unwrap();
        assert_eq!(
            c,
            Chunked::Done {
                consumed: raw.len() - 4
            }
        );
        assert_eq!(body, b"Wikipedia");
    }

    #[test]
    fn incomplete_until_final_crlf() {
        let raw = b"4\r\nWiki\r\n0\r\n\r\n";
        for cut in 0..raw.len() {
            assert_eq!(
                once(&raw[..cut], 100).unwrap().0,
                Chunked::Incomplete,
                "cut {cut}"
            );
        }
    }

    #[test]
    fn resumes_across_reads_with_the_same_state() {
        let raw = b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let mut st = ChunkState::default();
        for cut in 0..raw.len() {
            assert_eq!(decode(&raw[..cut], 100, &mut st), Ok(Chunked::Incomplete));
        }
        assert_eq!(
            decode(raw, 100, &mut st),
            Ok(Chunked::Done {
                consumed: raw.len()
            })
        );
        assert_eq!(st.body, b"abcde");
    }

    #[test]
    fn longest_line_is_accepted_however_it_arrives() {
        // A size line of exactly MAX_LINE bytes, its CR read before its LF.
        let line = format!("1;{}", "x".repeat(MAX_LINE - 2));
        let raw = format!("{line}\r\na\r\n0\r\n\r\n");
        let mut st = ChunkState::default();
        assert_eq!(
            decode(&raw.as_bytes()[..MAX_LINE + 1], 100, &mut st),
            Ok(Chunked::Incomplete)
        );
        assert_eq!(
            decode(raw.as_bytes(), 100, &mut st),
            Ok(Chunked::Done {
                consumed: raw.len()
            })
        );
        let longer = format!("1;{}\r", "x".repeat(MAX_LINE - 1));
        assert_eq!(
            once(longer.as_bytes(), 100).unwrap_err(),
            Rejection::BadRequest("chunk line too long")
        );
    }

    #[test]
    fn rejects_malformed_and_oversized() {
        assert_eq!(
            once(b"zz\r\n", 10).unwrap_err(),
            Rejection::BadRequest("bad chunk size")
        );
        assert_eq!(
            once(b"4\r\nWikiXX", 10).unwrap_err(),
            Rejection::BadRequest("chunk data not followed by CRLF")
        );
        assert_eq!(once(b"b\r\n", 10).unwrap_err(), Rejection::PayloadTooLarge);
        assert_eq!(
            once(b"ffffffffffffffffff\r\n", u64::MAX).unwrap_err(),
            Rejection::BadRequest("bad chunk size")
        );
        for line in [&b" 4\r\n"[..], b"\xC2\xA04\r\n", b"4\xC2\xA0\r\n", b"\r\n"] {
            assert_eq!(
                once(line, 10).unwrap_err(),
                Rejection::BadRequest("bad chunk size")
            );
        }
        let spaced = b"4 \t;x=1\r\nWiki\r\n0\r\n\r\n";
        assert_eq!(once(spaced, 10).unwrap().1, b"Wiki");
    }
}
