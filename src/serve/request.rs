//! Request bodies as LibreTranslate and DeepL clients send them (JSON, urlencoded or
//! multipart), read into one list of named fields, and typed accessors that name the field in
//! every error. Nothing here panics on any input: `tests/serve_fuzz.rs` feeds it arbitrary
//! bytes.

use std::convert::Infallible;

use serde_json::{Map, Value};

use super::error::ApiError;

/// How the body was encoded: JSON keeps its types; form fields are all strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `application/json`.
    Json,
    /// `application/x-www-form-urlencoded` or `multipart/form-data`.
    Form,
}

/// The fields of a request body, taken one by one; whatever is left at the end is an
/// unknown field.
#[derive(Debug, Clone)]
pub struct Fields {
    encoding: Encoding,
    fields: Map<String, Value>,
}

/// The most form fields read from one body: beyond any real client, far below what could
/// cost memory (the body limit bounds the rest).
const MAX_FORM_FIELDS: usize = 10_000;

impl Fields {
    /// Reads a body given its `Content-Type` (absent: JSON when the body starts with `{`, as
    /// curl users expect, else a form). Invalid UTF-8, malformed JSON, a body that is not an
    /// object and an unsupported content type are 400s that say what is wrong.
    pub async fn parse(content_type: Option<&str>, body: &[u8]) -> Result<Self, ApiError> {
        let mime = content_type
            .map(|c| {
                c.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
            .unwrap_or_default();
        match mime.as_str() {
            "application/json" => Self::json(body),
            "application/x-www-form-urlencoded" => Self::form(body),
            "multipart/form-data" => {
                let boundary = content_type
                    .and_then(|c| multer::parse_boundary(c).ok())
                    .ok_or_else(|| {
                        ApiError::bad_request("multipart/form-data without a boundary")
                    })?;
                Self::multipart(body, boundary).await
            }
            "" if body.trim_ascii_start().starts_with(b"{") => Self::json(body),
            "" | "text/plain" => Self::form(body),
            other => Err(ApiError::new(
                axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!(
                    "unsupported Content-Type {other:?}: send application/json, application/x-www-form-urlencoded or multipart/form-data"
                ),
            )),
        }
    }

    /// A JSON object body.
    pub fn json(body: &[u8]) -> Result<Self, ApiError> {
        let text = utf8(body, "the body")?;
        let mut de = serde_json::Deserializer::from_str(text);
        let fields: Map<String, Value> =
            serde_path_to_error::deserialize(&mut de).map_err(|e| {
                let path = e.path().to_string();
                let inner = e.into_inner();
                // "." is the body itself; "?" a place serde could not name (cut-off input).
                if path == "." || path.starts_with('?') {
                    ApiError::bad_request(format!("invalid JSON body: {inner}"))
                } else {
                    ApiError::bad_request(format!("{path}: invalid JSON: {inner}"))
                }
            })?;
        de.end()
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))?;
        Ok(Self {
            encoding: Encoding::Json,
            fields,
        })
    }

    /// An `application/x-www-form-urlencoded` body: `+` is a space, `%XX` a byte, and the
    /// decoded bytes must be UTF-8. A name given more than once is a list.
    pub fn form(body: &[u8]) -> Result<Self, ApiError> {
        let mut fields = FormBuilder::default();
        for pair in body.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &pair[pair.len()..]),
            };
            let name = form_decode(name, "a field name")?;
            let value = form_decode(value, &name)?;
            fields.push(name, value)?;
        }
        Ok(fields.finish())
    }

    /// A `multipart/form-data` body: text fields only (file parts are refused).
    pub async fn multipart(body: &[u8], boundary: String) -> Result<Self, ApiError> {
        let bytes = bytes::Bytes::copy_from_slice(body);
        let stream = futures_util::stream::once(async move { Ok::<_, Infallible>(bytes) });
        let mut multipart = multer::Multipart::new(stream, boundary);
        let mut fields = FormBuilder::default();
        loop {
            let field = match multipart.next_field().await {
                Ok(Some(field)) => field,
                Ok(None) => break,
                Err(e) => {
                    return Err(ApiError::bad_request(format!(
                        "invalid multipart body: {e}"
                    )))
                }
            };
            let name = field
                .name()
                .ok_or_else(|| ApiError::bad_request("a multipart field has no name"))?
                .to_string();
            if field.file_name().is_some() {
                return Err(ApiError::bad_request(format!(
                    "{name}: file uploads are not supported; send the text as a field"
                )));
            }
            let data = field
                .bytes()
                .await
                .map_err(|e| ApiError::bad_request(format!("{name}: {e}")))?;
            let value = utf8(&data, &name)?.to_string();
            fields.push(name, value)?;
        }
        Ok(fields.finish())
    }

    /// Adds the fields of a URL's query string that the body does not have, as
    /// LibreTranslate reads form requests (`POST /translate?q=...&source=fr`). A JSON body
    /// stands alone.
    pub fn merge_query(&mut self, query: Option<&str>) -> Result<(), ApiError> {
        let Some(query) = query.filter(|q| !q.is_empty()) else {
            return Ok(());
        };
        if self.encoding == Encoding::Json {
            return Ok(());
        }
        for (name, value) in Self::form(query.as_bytes())?.fields {
            self.fields.entry(name).or_insert(value);
        }
        Ok(())
    }

    /// How the body was encoded.
    pub fn encoding(&self) -> Encoding {
        self.encoding
    }

    /// Takes a field out, `None` when absent. JSON `null` counts as absent (Mastodon sends
    /// `"api_key": null`).
    fn take(&mut self, name: &str) -> Option<Value> {
        self.fields.remove(name).filter(|v| !v.is_null())
    }

    /// An optional string field.
    pub fn string(&mut self, name: &str) -> Result<Option<String>, ApiError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(wrong_type(name, "a string", &other)),
        }
    }

    /// A string or a list of strings: `(items, was a list)`.
    pub fn text_or_list(&mut self, name: &str) -> Result<Option<(Vec<String>, bool)>, ApiError> {
        match self.take(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some((vec![s], false))),
            Some(Value::Array(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.into_iter().enumerate() {
                    match item {
                        Value::String(s) => out.push(s),
                        other => {
                            return Err(wrong_type(&format!("{name}[{i}]"), "a string", &other))
                        }
                    }
                }
                Ok(Some((out, true)))
            }
            Some(other) => Err(wrong_type(name, "a string or an array of strings", &other)),
        }
    }

    /// An optional whole number from 0 to `max` (a form sends it as digits).
    pub fn count(&mut self, name: &str, max: u64) -> Result<Option<u64>, ApiError> {
        let value = match self.take(name) {
            None => return Ok(None),
            Some(v) => v,
        };
        let n = match &value {
            Value::Number(n) => n.as_u64(),
            Value::String(s) if self.encoding == Encoding::Form => s.trim().parse::<u64>().ok(),
            _ => None,
        };
        match n {
            Some(n) if n <= max => Ok(Some(n)),
            _ if max == u64::MAX => Err(ApiError::bad_request(format!(
                "{name} must be a whole number (got {})",
                preview(&value)
            ))),
            _ => Err(ApiError::bad_request(format!(
                "{name} must be a whole number from 0 to {max} (got {})",
                preview(&value)
            ))),
        }
    }

    /// Drops a field whose value does not matter here (accepted for compatibility).
    pub fn ignore(&mut self, name: &str) {
        self.fields.remove(name);
    }

    /// Fails on the first field nobody took: a typo must not be ignored silently.
    pub fn finish(self) -> Result<(), ApiError> {
        match self.fields.keys().next() {
            None => Ok(()),
            Some(name) => Err(ApiError::bad_request(format!(
                "unknown field {:?}",
                truncate(name, 64)
            ))),
        }
    }
}

/// Form fields in order; a repeated name becomes a list.
#[derive(Default)]
struct FormBuilder {
    fields: Map<String, Value>,
    count: usize,
}

impl FormBuilder {
    fn push(&mut self, name: String, value: String) -> Result<(), ApiError> {
        self.count += 1;
        if self.count > MAX_FORM_FIELDS {
            return Err(ApiError::bad_request(format!(
                "more than {MAX_FORM_FIELDS} form fields"
            )));
        }
        match self.fields.get_mut(&name) {
            None => {
                self.fields.insert(name, Value::String(value));
            }
            Some(Value::Array(list)) => list.push(Value::String(value)),
            Some(first) => {
                let first = first.take();
                self.fields
                    .insert(name, Value::Array(vec![first, Value::String(value)]));
            }
        }
        Ok(())
    }

    fn finish(self) -> Fields {
        Fields {
            encoding: Encoding::Form,
            fields: self.fields,
        }
    }
}

/// Bytes as UTF-8, or a 400 naming `what` and the first bad byte.
fn utf8<'a>(bytes: &'a [u8], what: &str) -> Result<&'a str, ApiError> {
    std::str::from_utf8(bytes).map_err(|e| {
        ApiError::bad_request(format!(
            "{what} is not valid UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        ))
    })
}

/// One urlencoded name or value.
fn form_decode(raw: &[u8], what: &str) -> Result<String, ApiError> {
    let spaced: Vec<u8> = raw
        .iter()
        .map(|&b| if b == b'+' { b' ' } else { b })
        .collect();
    let decoded: Vec<u8> = percent_encoding::percent_decode(&spaced).collect();
    String::from_utf8(decoded).map_err(|e| {
        ApiError::bad_request(format!(
            "{} is not valid UTF-8 once decoded (invalid byte at offset {})",
            truncate(what, 64),
            e.utf8_error().valid_up_to()
        ))
    })
}

fn wrong_type(name: &str, expected: &str, got: &Value) -> ApiError {
    let kind = match got {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    };
    ApiError::bad_request(format!("{name} must be {expected}, not {kind}"))
}

/// A short rendering of a value for an error message.
fn preview(value: &Value) -> String {
    truncate(&value.to_string(), 40)
}

fn truncate(s: &str, max: usize) -> String {
    let mut chars = s.chars();
    let head: String = chars.by_ref().take(max).collect();
    if chars.next().is_some() {
        format!("{head}…")
    } else {
        head
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_fields_are_typed_and_named_in_errors() {
        let mut f =
            Fields::json(br#"{"q": ["a", "b"], "alternatives": 2, "api_key": null}"#).unwrap();
        assert_eq!(
            f.text_or_list("q").unwrap(),
            Some((vec!["a".into(), "b".into()], true))
        );
        assert_eq!(f.count("alternatives", 3).unwrap(), Some(2));
        assert_eq!(f.string("api_key").unwrap(), None);
        f.finish().unwrap();

        let mut f = Fields::json(br#"{"q": [1], "x": 1}"#).unwrap();
        assert_eq!(
            f.text_or_list("q").unwrap_err().message,
            "q[0] must be a string, not a number"
        );
        assert_eq!(f.finish().unwrap_err().message, "unknown field \"x\"");

        let err = Fields::json(br#"{"alternatives": 1e999}"#).unwrap_err();
        assert!(
            err.message.starts_with("alternatives: invalid JSON"),
            "{}",
            err.message
        );
        let mut f = Fields::json(br#"{"alternatives": 18446744073709551616}"#).unwrap();
        assert!(f
            .count("alternatives", 3)
            .unwrap_err()
            .message
            .starts_with("alternatives must be"));
        assert!(Fields::json(b"[1]")
            .unwrap_err()
            .message
            .starts_with("invalid JSON body"));
        assert!(Fields::json(b"{\"q\": \"\xff\"}")
            .unwrap_err()
            .message
            .contains("UTF-8"));
        assert!(Fields::json(b"{} {}").is_err());
    }

    #[test]
    fn forms_decode_and_repeat() {
        let mut f =
            Fields::form(b"q=Bonjour+%C3%A0+tous&q=Salut&alternatives=2&source=fr").unwrap();
        assert_eq!(
            f.text_or_list("q").unwrap(),
            Some((vec!["Bonjour à tous".into(), "Salut".into()], true))
        );
        assert_eq!(f.count("alternatives", 3).unwrap(), Some(2));
        assert_eq!(f.string("source").unwrap().as_deref(), Some("fr"));
        assert!(Fields::form(b"q=%FF")
            .unwrap_err()
            .message
            .contains("q is not valid UTF-8"));
        assert!(Fields::form(b"q=%").is_ok());
        let mut f = Fields::form(b"q=corps").unwrap();
        f.merge_query(Some("q=url&source=fr")).unwrap();
        assert_eq!(f.string("q").unwrap().as_deref(), Some("corps"));
        assert_eq!(f.string("source").unwrap().as_deref(), Some("fr"));
    }
}
