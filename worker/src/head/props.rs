//! Properties of the head parser: no input makes it panic, a head built from
//! parts parses back to those parts, and where the bytes are split does not matter.

use proptest::collection::vec;
use proptest::prelude::*;

use super::{parse, BodyKind};
use crate::limits::Limits;
use crate::request::Version;

/// What a parse says, owned, for comparing two parses.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Parsed {
    method: String,
    path: String,
    query: String,
    version: Version,
    headers: Vec<(String, Vec<u8>)>,
    len: usize,
    body: BodyKind,
}

type Outcome = Result<Option<Parsed>, crate::handler::Rejection>;

fn run(buf: &[u8], limits: &Limits) -> Outcome {
    let mut hs = vec![httparse::EMPTY_HEADER; limits.header_fields.max(1)];
    parse(buf, &mut hs, limits).map(|o| {
        o.map(|h| Parsed {
            method: h.method.to_string(),
            path: h.path.to_string(),
            query: h.query.to_string(),
            version: h.version,
            headers: h
                .headers
                .iter()
                .map(|x| (x.name.to_string(), x.value.to_vec()))
                .collect(),
            len: h.len,
            body: h.body,
        })
    })
}

fn small_limits() -> Limits {
    Limits {
        request_line: 200,
        header_fields: 12,
        header_field_size: 200,
        ..Limits::default()
    }
}

/// Field names that change framing or connection handling are left to the unit
/// tests; any other token is an ordinary field.
fn field_name() -> impl Strategy<Value = String> {
    "[A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]{0,15}".prop_filter("special field", |n| {
        let n = n.to_ascii_lowercase();
        !matches!(
            n.as_str(),
            "host" | "content-length" | "transfer-encoding" | "connection" | "expect"
        )
    })
}

/// Visible characters with inner spaces (surrounding whitespace is not part of a
/// field value).
fn field_value() -> impl Strategy<Value = String> {
    "[!-~]([ -~]{0,30}[!-~])?|"
}

#[derive(Debug, Clone)]
struct Parts {
    method: String,
    path: String,
    query: Option<String>,
    http10: bool,
    fields: Vec<(String, String)>,
}

fn parts() -> impl Strategy<Value = Parts> {
    (
        "[A-Z]{1,10}",
        "/[A-Za-z0-9._~%/!$&'()*+,;=:@-]{0,40}",
        proptest::option::of("[A-Za-z0-9._~%/?=&-]{0,20}"),
        any::<bool>(),
        vec((field_name(), field_value()), 0..8),
    )
        .prop_map(|(method, path, query, http10, fields)| Parts {
            method,
            path,
            query,
            http10,
            fields,
        })
}

impl Parts {
    /// The head on the wire; HTTP/1.1 gets its one `Host` first.
    fn wire(&self) -> Vec<u8> {
        let mut out = format!("{} {}", self.method, self.path);
        if let Some(q) = &self.query {
            out.push('?');
            out.push_str(q);
        }
        out.push_str(if self.http10 {
            " HTTP/1.0\r\n"
        } else {
            " HTTP/1.1\r\nHost: h\r\n"
        });
        for (n, v) in &self.fields {
            out.push_str(&format!("{n}: {v}\r\n"));
        }
        out.push_str("\r\n");
        out.into_bytes()
    }
}

proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..2048)) {
        let _ = run(&bytes, &small_limits());
        let _ = run(&bytes, &Limits::default());
    }

    #[test]
    fn arbitrary_fields_after_a_request_line_never_panic(
        line in "[A-Z]{1,6} /[ -~]{0,20} HTTP/1\\.[01]\r\n",
        rest in vec(any::<u8>(), 0..512),
    ) {
        let mut buf = line.into_bytes();
        buf.extend_from_slice(&rest);
        let _ = run(&buf, &small_limits());
    }

    #[test]
    fn a_head_built_from_parts_parses_back_to_them(p in parts(), body in vec(any::<u8>(), 0..64)) {
        let wire = p.wire();
        let mut buf = wire.clone();
        buf.extend_from_slice(&body);
        let parsed = run(&buf, &small_limits())
            .expect("a valid head")
            .expect("a complete head");
        prop_assert_eq!(&parsed.method, &p.method);
        prop_assert_eq!(&parsed.path, &p.path);
        prop_assert_eq!(&parsed.query, p.query.as_deref().unwrap_or(""));
        let version = if p.http10 { Version::Http10 } else { Version::Http11 };
        prop_assert_eq!(parsed.version, version);
        prop_assert_eq!(parsed.len, wire.len());
        prop_assert_eq!(parsed.body, BodyKind::None);
        let mut fields: Vec<(String, Vec<u8>)> = parsed.headers;
        if !p.http10 {
            prop_assert_eq!(fields.remove(0), ("Host".to_string(), b"h".to_vec()));
        }
        let want: Vec<(String, Vec<u8>)> = p
            .fields
            .iter()
            .map(|(n, v)| (n.clone(), v.clone().into_bytes()))
            .collect();
        prop_assert_eq!(fields, want);
    }

    /// Fed chunk by chunk (the worker parses its growing buffer after each
    /// read), a head is incomplete until its last byte, then exactly what it is
    /// all at once. Bytes refused early are refused as a whole too (the reason may
    /// differ: a prefix cannot show that a line will be too long).
    #[test]
    fn split_points_do_not_matter(
        wire in prop_oneof![
            parts().prop_map(|p| p.wire()),
            vec(any::<u8>(), 0..300),
        ],
        cuts in vec(1usize..64, 0..12),
    ) {
        let limits = small_limits();
        let whole = run(&wire, &limits);
        let mut end = 0;
        for step in cuts.iter().copied().chain(std::iter::once(wire.len())) {
            end = (end + step).min(wire.len());
            match run(&wire[..end], &limits) {
                Ok(None) => {}
                Err(_) => {
                    prop_assert!(whole.is_err(), "refused at {}: {:?}", end, whole);
                    return Ok(());
                }
                seen => {
                    prop_assert_eq!(&seen, &whole, "at {} of {}", end, wire.len());
                    return Ok(());
                }
            }
        }
        prop_assert_eq!(whole, Ok(None));
    }
}
