//! Request bodies: JSON objects with per-field errors (400 `{"error", "fields"}`)
//! and `application/x-www-form-urlencoded` forms.
//!
//! A JSON body must be declared `Content-Type: application/json` (415 otherwise):
//! a cross-site HTML form can send `text/plain`, `multipart/form-data` or a
//! urlencoded body without asking, but not that type, so no JSON endpoint can be
//! driven by another site's form. Every handler that reads a JSON body reads it
//! here, so the rule cannot be forgotten by one of them. A request without a body
//! needs no type (a `DELETE`, a `POST` that takes no input).

use std::collections::BTreeMap;

use blitz_worker::{Request, Response};
use serde_json::{Map, Value};

use super::reply;

/// Collects per-field problems; `finish` turns them into the 400 answer.
#[derive(Default)]
pub struct FieldErrors(BTreeMap<String, String>);

impl FieldErrors {
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0
            .entry(field.to_string())
            .or_insert_with(|| message.into());
    }

    pub fn finish(self) -> Result<(), Response> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(reply::invalid_fields(&self.0))
        }
    }
}

/// The longest name of a bot or an exchange account (`JsonInput::label`).
pub const MAX_LABEL: usize = 64;

/// A JSON object body. An empty body counts as `{}` so that missing fields are
/// reported by name rather than as "invalid JSON".
pub struct JsonInput(Map<String, Value>);

pub fn json(req: &Request<'_>) -> Result<JsonInput, Response> {
    json_body(req.body, req.header_str("content-type"))
}

/// The rules of `json` over a body and its declared type.
pub fn json_body(body: &[u8], content_type: Option<&str>) -> Result<JsonInput, Response> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(JsonInput(Map::new()));
    }
    if !content_type.is_some_and(is_json_type) {
        return Err(reply::error(415, "Content-Type must be application/json"));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(JsonInput(map)),
        Ok(_) => Err(reply::error(400, "Request body must be a JSON object")),
        Err(e) => Err(reply::error(400, format!("Invalid JSON: {e}"))),
    }
}

impl JsonInput {
    /// The whole object, for handlers that validate many fields at once.
    pub fn fields(&self) -> &Map<String, Value> {
        &self.0
    }

    /// A required string field; records an error and returns "" when absent or not
    /// a string.
    pub fn string(&self, name: &str, errors: &mut FieldErrors) -> String {
        match self.0.get(name) {
            Some(Value::String(s)) => s.clone(),
            Some(_) => {
                errors.add(name, "must be a string");
                String::new()
            }
            None => {
                errors.add(name, "is required");
                String::new()
            }
        }
    }

    pub fn opt_string(&self, name: &str, errors: &mut FieldErrors) -> Option<String> {
        match self.0.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.clone()),
            Some(_) => {
                errors.add(name, "must be a string");
                None
            }
        }
    }

    /// A name the user gives something of theirs (a bot, an exchange account):
    /// trimmed, 1 to `MAX_LABEL` characters, no control characters. Absent is an
    /// error only when `required`.
    pub fn label(&self, name: &str, required: bool, errors: &mut FieldErrors) -> Option<String> {
        let msg = || format!("must be a name of 1 to {MAX_LABEL} characters");
        match self.0.get(name) {
            None if required => errors.add(name, "is required"),
            None => {}
            Some(Value::String(s)) => {
                let s = s.trim();
                let n = s.chars().count();
                if (1..=MAX_LABEL).contains(&n) && !s.chars().any(char::is_control) {
                    return Some(s.to_string());
                }
                errors.add(name, msg());
            }
            Some(_) => errors.add(name, msg()),
        }
        None
    }

    pub fn opt_bool(&self, name: &str, errors: &mut FieldErrors) -> Option<bool> {
        match self.0.get(name) {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => {
                errors.add(name, "must be true or false");
                None
            }
        }
    }
}

/// `application/json`, in any case, with or without parameters
/// (`; charset=utf-8`).
fn is_json_type(value: &str) -> bool {
    value
        .split(';')
        .next()
        .is_some_and(|m| blitz_worker::trim_ows_str(m).eq_ignore_ascii_case("application/json"))
}

/// Whether the body is an HTML form.
pub fn is_form(req: &Request<'_>) -> bool {
    req.header_str("content-type").is_some_and(|ct| {
        ct.split(';').next().is_some_and(|m| {
            blitz_worker::trim_ows_str(m).eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
    })
}

/// The first value of `name` in a query string.
pub fn query_param(query: &str, name: &str) -> Option<String> {
    form_field(query.as_bytes(), name)
}

/// A whole-number query parameter in `min..=max`, `default` when absent; a 400 that
/// names the parameter otherwise.
pub fn query_number(
    query: &str,
    name: &str,
    min: i64,
    max: i64,
    default: i64,
) -> Result<i64, Response> {
    let Some(raw) = query_param(query, name) else {
        return Ok(default);
    };
    match raw.trim().parse::<i64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => {
            let mut e = FieldErrors::default();
            e.add(name, format!("must be a whole number from {min} to {max}"));
            e.finish().map(|()| default)
        }
    }
}

/// The first value of `name` in a urlencoded form body.
pub fn form_field(body: &[u8], name: &str) -> Option<String> {
    form_urlencoded::parse(body)
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_needs_its_content_type() {
        let ok = |ct: &str| json_body(b"{}", Some(ct)).is_ok();
        assert!(ok("application/json"));
        assert!(ok("Application/JSON; charset=utf-8"));
        assert!(ok(" application/json ;charset=UTF-8"));
        for bad in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/jsonx",
            "application/json-seq",
            "",
        ] {
            let refused = json_body(b"{}", Some(bad)).err().map(|r| r.status);
            assert_eq!(refused, Some(415), "{bad}");
        }
        assert_eq!(json_body(b"{}", None).err().map(|r| r.status), Some(415));
        // No body, no type needed.
        assert!(json_body(b"", None).is_ok());
        assert!(json_body(b" \r\n", Some("text/plain")).is_ok());
    }

    #[test]
    fn labels_are_trimmed_and_bounded() {
        let read = |text: &str, required: bool| {
            let input = json_body(text.as_bytes(), Some("application/json")).unwrap();
            let mut errors = FieldErrors::default();
            let got = input.label("name", required, &mut errors);
            (got, errors.finish().is_err())
        };
        assert_eq!(
            read(r#"{"name": "  ETH short "}"#, true),
            (Some("ETH short".into()), false)
        );
        assert_eq!(read("{}", false), (None, false));
        assert_eq!(read("{}", true), (None, true));
        let long = format!(r#"{{"name": "{}"}}"#, "é".repeat(MAX_LABEL));
        assert!(!read(&long, true).1, "characters, not bytes");
        let longer = format!(r#"{{"name": "{}"}}"#, "x".repeat(MAX_LABEL + 1));
        for bad in [
            r#"{"name": "  "}"#,
            r#"{"name": 7}"#,
            r#"{"name": "a\u0007b"}"#,
            &longer,
        ] {
            assert_eq!(read(bad, false), (None, true), "{bad}");
        }
    }

    #[test]
    fn form_fields_are_decoded() {
        let body = b"a=1&csrf_token=x%2By+z&csrf_token=second";
        assert_eq!(form_field(body, "csrf_token").as_deref(), Some("x+y z"));
        assert_eq!(form_field(body, "missing"), None);
    }
}

/// Property tests: whatever bytes or JSON a client sends to the account endpoints,
/// the body parser and the field readers answer 400 (or 415) with an `"error"`
/// string, never panic and never a 5xx.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;
    use serde_json::{Map, Value};

    use super::*;

    /// The fields the account endpoints read, as their handlers read them.
    const STRINGS: [&str; 6] = [
        "email",
        "password",
        "current_password",
        "new_password",
        "token",
        "name",
    ];

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            ".{0,40}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(".{0,8}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// An object that may hold any of the account fields, with any values, and
    /// other keys besides.
    fn account_body() -> impl Strategy<Value = Map<String, Value>> {
        let names = prop::sample::select(
            STRINGS
                .iter()
                .copied()
                .chain(["keep_tokens", "other"])
                .collect::<Vec<_>>(),
        );
        prop::collection::btree_map(names, json_value(), 0..6)
            .prop_map(|m| m.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
    }

    fn error_answer(r: &Response) -> Value {
        let body: Value = serde_json::from_slice(r.body.as_slice()).expect("a JSON error body");
        assert!(body["error"].is_string(), "{body}");
        body
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_bytes_are_an_object_or_a_400(body in prop::collection::vec(any::<u8>(), 0..256)) {
            match json_body(&body, Some("application/json")) {
                Ok(_) => {}
                Err(r) => {
                    prop_assert_eq!(r.status, 400);
                    error_answer(&r);
                }
            }
        }

        #[test]
        fn any_text_is_an_object_or_a_400(text in ".{0,200}") {
            if let Err(r) = json_body(text.as_bytes(), Some("application/json; charset=utf-8")) {
                prop_assert_eq!(r.status, 400);
                error_answer(&r);
            }
        }

        #[test]
        fn a_body_of_another_type_is_415(
            body in "[!-~].{0,40}",
            ctype in ".{0,40}",
        ) {
            let r = json_body(body.as_bytes(), Some(&ctype));
            if !is_json_type(&ctype) {
                let r = r.err().expect("refused");
                prop_assert_eq!(r.status, 415);
                error_answer(&r);
            }
        }

        /// Every account field read as the handlers read it: a value of the wrong
        /// type or a missing one is a 400 naming that field.
        #[test]
        fn account_fields_are_read_or_named(fields in account_body()) {
            let text = Value::Object(fields.clone()).to_string();
            let input = json_body(text.as_bytes(), Some("application/json")).expect("an object");
            let mut errors = FieldErrors::default();
            for name in STRINGS {
                input.string(name, &mut errors);
            }
            input.opt_string("name", &mut errors);
            input.opt_bool("keep_tokens", &mut errors);
            let bad: Vec<&str> = STRINGS
                .iter()
                .copied()
                .filter(|n| !matches!(fields.get(*n), Some(Value::String(_))))
                .chain(
                    fields
                        .get("keep_tokens")
                        .filter(|v| !matches!(v, Value::Null | Value::Bool(_)))
                        .map(|_| "keep_tokens"),
                )
                .collect();
            match errors.finish() {
                Ok(()) => prop_assert!(bad.is_empty()),
                Err(r) => {
                    prop_assert_eq!(r.status, 400);
                    let body = error_answer(&r);
                    for name in bad {
                        prop_assert!(body["fields"][name].is_string(), "{} in {}", name, body);
                    }
                }
            }
        }
    }
}
