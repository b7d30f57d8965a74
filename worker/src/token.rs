//! HTTP tokens are ASCII: the optional whitespace around them is SP and HTAB only
//! (RFC 9110 5.6.3). `str::trim` also strips Unicode spaces, which would let
//! `chunked` followed by a no-break space pass for `chunked`; these never do.

/// `v` without leading and trailing SP and HTAB.
pub fn trim_ows(v: &[u8]) -> &[u8] {
    let ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = v.iter().position(|b| !ows(b)).unwrap_or(v.len());
    let end = v.iter().rposition(|b| !ows(b)).map_or(start, |i| i + 1);
    &v[start..end]
}

/// `v` without leading and trailing SP and HTAB.
pub fn trim_ows_str(v: &str) -> &str {
    v.trim_matches([' ', '\t'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_space_and_tab_are_whitespace() {
        assert_eq!(trim_ows(b" \t a b\t "), b"a b");
        assert_eq!(trim_ows(b"\xC2\xA0a\xC2\xA0"), b"\xC2\xA0a\xC2\xA0");
        assert_eq!(trim_ows(b"\x0ba"), b"\x0ba");
        assert_eq!(trim_ows(b"  "), b"");
        assert_eq!(trim_ows_str(" https\u{a0}"), "https\u{a0}");
        assert_eq!(trim_ows_str("\t x \t"), "x");
    }
}
