//! Request bodies: JSON objects with per-field errors (400 `{"error", "fields"}`)
//! and `application/x-www-form-urlencoded` forms.

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

/// A JSON object body. An empty body counts as `{}` so that missing fields are
/// reported by name rather than as "invalid JSON".
pub struct JsonInput(Map<String, Value>);

pub fn json(req: &Request<'_>) -> Result<JsonInput, Response> {
    if req.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(JsonInput(Map::new()));
    }
    match serde_json::from_slice::<Value>(req.body) {
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
    fn form_fields_are_decoded() {
        let body = b"a=1&csrf_token=x%2By+z&csrf_token=second";
        assert_eq!(form_field(body, "csrf_token").as_deref(), Some("x+y z"));
        assert_eq!(form_field(body, "missing"), None);
    }
}
