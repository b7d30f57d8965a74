//! Every answer the integration tests read, checked against the API's description,
//! `docs/openapi.json` (CONTRACT C14), so the published document cannot drift from
//! the server: `Conn::read_response` hands each final response, with the request it
//! answers, to `check`, which fails the test naming the route, the status and what
//! does not match.
//!
//! For a request whose path a documented operation has, or that is under `/api/`:
//! - path and method must name a documented operation; otherwise the answer must be
//!   one of the document's `x-router-responses` (404 for an unknown path, 405 for a
//!   known path's other method), so an undocumented route fails;
//! - the status must be one the operation documents, or one of the document's
//!   `x-http-layer-responses` (limits, timeouts, a failing handler);
//! - a JSON body must validate against the documented schema (JSON Schema 2020-12,
//!   formats included); documented non-JSON content only has to carry its type.
//!
//! `HEAD` is checked as its `GET`, without a body. Other paths (pages, the
//! exchange fakes) are not the API's and pass, and so do answers that are not
//! blitz's (every blitz answer says `Server: blitz`; a proxy in front, such as the
//! shipped nginx, answers some requests itself). Schemas compile once per test
//! process, the first time an answer needs them.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use jsonschema::{Draft, Registry, Validator};
use serde_json::Value;

use super::client::Resp;
use super::sent::Sent;

/// The document as the binary serves it.
pub const DOCUMENT: &str = include_str!("../../docs/openapi.json");

/// The document's URI in the schema registry: every `#/…` reference of a schema
/// taken out of the document is made absolute with it.
const BASE: &str = "urn:blitz:openapi";

/// A documented answer that was seen: method (upper case), path template, status.
pub type Seen = (String, String, u16);

struct Spec {
    doc: Value,
    registry: Registry<'static>,
    validators: Mutex<HashMap<String, Arc<Validator>>>,
    seen: Mutex<BTreeSet<Seen>>,
}

fn spec() -> &'static Spec {
    static SPEC: OnceLock<Spec> = OnceLock::new();
    SPEC.get_or_init(|| {
        let doc: Value = serde_json::from_str(DOCUMENT).expect("docs/openapi.json is not JSON");
        let registry = Registry::new()
            .draft(Draft::Draft202012)
            .add(BASE, doc.clone())
            .and_then(|r| r.prepare())
            .expect("docs/openapi.json cannot be a schema registry");
        Spec {
            doc,
            registry,
            validators: Mutex::new(HashMap::new()),
            seen: Mutex::new(BTreeSet::new()),
        }
    })
}

/// The parsed document.
pub fn document() -> &'static Value {
    &spec().doc
}

/// Every documented operation answered as documented so far in this process.
pub fn seen() -> BTreeSet<Seen> {
    spec().seen.lock().map(|s| s.clone()).unwrap_or_default()
}

/// Every operation of the document: method (upper case) and path template.
pub fn operations() -> BTreeSet<(String, String)> {
    let paths = document()["paths"].as_object().expect("paths");
    paths
        .iter()
        .flat_map(|(path, item)| {
            item.as_object()
                .into_iter()
                .flatten()
                .filter(|(m, _)| HTTP_METHODS.contains(&m.as_str()))
                .map(move |(m, _)| (m.to_uppercase(), path.clone()))
        })
        .collect()
}

const HTTP_METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// A JSON pointer's escaping of one key.
pub fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Checks one answer; panics (failing the test) when the document does not
/// describe it.
pub fn check(req: &Sent, resp: &Resp) {
    if let Err(why) = verdict(req, resp) {
        let body = String::from_utf8_lossy(&resp.body);
        let body: String = body.chars().take(600).collect();
        panic!(
            "docs/openapi.json does not describe this answer: {} {} answered {}: {why}\n  body: {body}",
            req.method, req.target, resp.status
        );
    }
}

/// Ok when the answer is documented (or not the API's), else why not.
pub fn verdict(req: &Sent, resp: &Resp) -> Result<(), String> {
    if resp.header("server") != Some("blitz") {
        return Ok(());
    }
    let spec = spec();
    let path = req.target.split('?').next().unwrap_or_default();
    let head = req.method == "HEAD";
    let method = if head {
        "get".to_string()
    } else {
        req.method.to_ascii_lowercase()
    };
    let Some(template) = template_of(&spec.doc, path) else {
        if !path.starts_with("/api/") {
            return Ok(());
        }
        return spec
            .unrouted(resp, head)
            .map_err(|e| format!("no operation has this path (an undocumented route?): {e}"));
    };
    let item = pointer_of(&["paths", template]);
    if spec.doc.pointer(&format!("{item}/{method}")).is_none() {
        return spec
            .unrouted(resp, head)
            .map_err(|e| format!("{template} documents no {method}: {e}"));
    }
    let documented = format!("{item}/{method}/responses/{}", resp.status);
    let why = match spec.response(&documented, resp, head) {
        Some(Ok(())) => {
            if let Ok(mut seen) = spec.seen.lock() {
                seen.insert((method.to_uppercase(), template.to_string(), resp.status));
            }
            return Ok(());
        }
        Some(Err(e)) => format!("{method} {template}, response {}: {e}", resp.status),
        None => format!("{method} {template} documents no {} response", resp.status),
    };
    // Not the operation's own answer: the HTTP layer's, or a failure.
    spec.extension("x-http-layer-responses", resp, head)
        .map_err(|_| why)
}

/// The documented path template that `path` matches, the one with the most
/// literal segments when several do.
fn template_of<'d>(doc: &'d Value, path: &str) -> Option<&'d str> {
    let segments: Vec<&str> = path.split('/').collect();
    doc["paths"]
        .as_object()?
        .keys()
        .filter_map(|t| {
            let parts: Vec<&str> = t.split('/').collect();
            if parts.len() != segments.len() {
                return None;
            }
            let mut literal = 0;
            for (p, s) in parts.iter().zip(&segments) {
                if p.starts_with('{') && p.ends_with('}') {
                    if s.is_empty() {
                        return None;
                    }
                } else if p == s {
                    literal += 1;
                } else {
                    return None;
                }
            }
            Some((literal, t.as_str()))
        })
        .max_by_key(|(literal, _)| *literal)
        .map(|(_, t)| t)
}

fn pointer_of(keys: &[&str]) -> String {
    keys.iter().map(|k| format!("/{}", escape(k))).collect()
}

impl Spec {
    /// The response at `pointer` (following a `$ref`) checked against `resp`;
    /// `None` when there is none.
    fn response(&self, pointer: &str, resp: &Resp, head: bool) -> Option<Result<(), String>> {
        let (pointer, described) = self.resolve(pointer)?;
        let Some(content) = described.get("content").and_then(Value::as_object) else {
            return Some(if resp.body.is_empty() {
                Ok(())
            } else {
                Err("a body where the document describes none".into())
            });
        };
        let declared = resp.header("content-type").unwrap_or_default();
        let Some((media, _)) = content
            .iter()
            .find(|(media, _)| declared.starts_with(media.as_str()))
        else {
            let media: Vec<&String> = content.keys().collect();
            return Some(Err(format!(
                "Content-Type {declared:?}, the document says {media:?}"
            )));
        };
        if head || media != "application/json" {
            return Some(Ok(()));
        }
        let schema = format!("{pointer}/content/{}/schema", escape(media));
        Some(self.validate(&schema, &resp.body))
    }

    /// The object at `pointer`, after one `$ref` to the components, and where it is.
    fn resolve(&self, pointer: &str) -> Option<(String, &Value)> {
        let found = self.doc.pointer(pointer)?;
        match found.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let target = r.strip_prefix('#')?;
                Some((target.to_string(), self.doc.pointer(target)?))
            }
            None => Some((pointer.to_string(), found)),
        }
    }

    /// `resp` against one of the document's extension maps of status → response.
    fn extension(&self, name: &str, resp: &Resp, head: bool) -> Result<(), String> {
        let pointer = format!("/{name}/{}", resp.status);
        self.response(&pointer, resp, head).unwrap_or_else(|| {
            Err(format!(
                "status {} is not among the document's {name}",
                resp.status
            ))
        })
    }

    /// A request no operation takes: the router's answer, or the HTTP layer's
    /// (which answers before routing).
    fn unrouted(&self, resp: &Resp, head: bool) -> Result<(), String> {
        self.extension("x-router-responses", resp, head)
            .or_else(|e| {
                self.extension("x-http-layer-responses", resp, head)
                    .map_err(|_| e)
            })
    }

    fn validate(&self, schema_pointer: &str, body: &[u8]) -> Result<(), String> {
        let instance: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
        let validator = self.validator(schema_pointer)?;
        let errors: Vec<String> = validator
            .iter_errors(&instance)
            .take(5)
            .map(|e| format!("at {:?}: {e}", e.instance_path().as_str()))
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(format!("schema {schema_pointer}: {}", errors.join("; ")))
        }
    }

    fn validator(&self, pointer: &str) -> Result<Arc<Validator>, String> {
        let mut cache = self.validators.lock().map_err(|e| e.to_string())?;
        if let Some(v) = cache.get(pointer) {
            return Ok(Arc::clone(v));
        }
        let mut schema = self
            .doc
            .pointer(pointer)
            .cloned()
            .ok_or_else(|| format!("no schema at {pointer}"))?;
        absolute_refs(&mut schema);
        let validator = jsonschema::options()
            .with_draft(Draft::Draft202012)
            .with_registry(&self.registry)
            .should_validate_formats(true)
            .build(&schema)
            .map_err(|e| format!("the schema at {pointer} does not compile: {e}"))?;
        let validator = Arc::new(validator);
        cache.insert(pointer.to_string(), Arc::clone(&validator));
        Ok(validator)
    }
}

/// Makes every `#/…` reference of a schema taken out of the document point into
/// the document in the registry.
fn absolute_refs(v: &mut Value) {
    match v {
        Value::Object(map) => {
            for (k, x) in map.iter_mut() {
                match x {
                    Value::String(r) if k == "$ref" && r.starts_with('#') => {
                        *r = format!("{BASE}{r}");
                    }
                    _ => absolute_refs(x),
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(absolute_refs),
        _ => {}
    }
}

/// Compiles the schema at `pointer` (for the document's own tests).
pub fn compiles(pointer: &str) -> Result<(), String> {
    spec().validator(pointer).map(|_| ())
}
