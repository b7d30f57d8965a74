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
    Done { body: Vec<u8>, consumed: usize },
}

/// Decodes a chunked body at the start of `buf`, refusing more than `max` bytes.
pub(crate) fn decode(buf: &[u8], max: u64) -> Result<Chunked, Rejection> {
    let mut pos = 0;
    let mut body = Vec::new();
    loop {
        let Some(line) = line_at(buf, pos)? else {
            return Ok(Chunked::Incomplete);
        };
        let size = chunk_size(&buf[pos..pos + line.0])?;
        pos += line.1;
        if size == 0 {
            return trailers(buf, pos, body);
        }
        if body.len() as u64 + size > max {
            return Err(Rejection::PayloadTooLarge);
        }
        let size = size as usize;
        if buf.len() < pos + size + 2 {
            return Ok(Chunked::Incomplete);
        }
        body.extend_from_slice(&buf[pos..pos + size]);
        if &buf[pos + size..pos + size + 2] != b"\r\n" {
            return Err(Rejection::BadRequest("chunk data not followed by CRLF"));
        }
        pos += size + 2;
    }
}

/// Finds the line starting at `pos`: (content length, length including CRLF).
fn line_at(buf: &[u8], pos: usize) -> Result<Option<(usize, usize)>, Rejection> {
    let rest = &buf[pos.min(buf.len())..];
    match rest.iter().take(MAX_LINE + 2).position(|b| *b == b'\n') {
        Some(i) if i > 0 && rest[i - 1] == b'\r' => Ok(Some((i - 1, i + 1))),
        Some(_) => Err(Rejection::BadRequest("bare LF in chunked body")),
        None if rest.len() > MAX_LINE => Err(Rejection::BadRequest("chunk line too long")),
        None => Ok(None),
    }
}

fn chunk_size(line: &[u8]) -> Result<u64, Rejection> {
    let hex = line.split(|b| *b == b';').next().unwrap_or(&[]);
    let hex = hex.trim_ascii();
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

/// Skips trailer fields up to the empty line that ends the message.
fn trailers(buf: &[u8], mut pos: usize, body: Vec<u8>) -> Result<Chunked, Rejection> {
    loop {
        let Some((len, total)) = line_at(buf, pos)? else {
            return Ok(Chunked::Incomplete);
        };
        pos += total;
        if len == 0 {
            return Ok(Chunked::Done {
                body,
                consumed: pos,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_chunks_extensions_and_trailers() {
        let raw = b"4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        assert_eq!(
            decode(raw, 100),
            Ok(Chunked::Done {
                body: b"Wikipedia".to_vec(),
                consumed: raw.len() - 4
            })
        );
    }

    #[test]
    fn incomplete_until_final_crlf() {
        let raw = b"4\r\nWiki\r\n0\r\n\r\n";
        for cut in 0..raw.len() {
            assert_eq!(
                decode(&raw[..cut], 100),
                Ok(Chunked::Incomplete),
                "cut {cut}"
            );
        }
    }

    #[test]
    fn rejects_malformed_and_oversized() {
        assert_eq!(
            decode(b"zz\r\n", 10),
            Err(Rejection::BadRequest("bad chunk size"))
        );
        assert_eq!(
            decode(b"4\r\nWikiXX", 10),
            Err(Rejection::BadRequest("chunk data not followed by CRLF"))
        );
        assert_eq!(decode(b"b\r\n", 10), Err(Rejection::PayloadTooLarge));
        assert_eq!(
            decode(b"ffffffffffffffffff\r\n", u64::MAX),
            Err(Rejection::BadRequest("bad chunk size"))
        );
    }
}
