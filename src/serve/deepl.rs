//! A subset of DeepL's v2 API: `POST /v2/translate`, `GET /v2/languages`, `GET /v2/usage`,
//! with the `Authorization: DeepL-Auth-Key KEY` header. Errors are `{"message": "..."}`.
//!
//! A thin adapter over the same core as LibreTranslate's API: only the shapes differ.

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::core::{Caller, Core, Source, TextFormat, TranslateRequest};
use super::error::ApiError;
use super::request::Fields;
use super::{content_type, read_body, with_retry_after, AppState};

/// DeepL takes at most 50 texts per request.
pub const MAX_TEXTS: usize = 50;

/// DeepL's fields that change nothing here (English has no formality; sentences are always
/// split), accepted so that clients sending them work.
const IGNORED: [&str; 10] = [
    "split_sentences",
    "preserve_formatting",
    "formality",
    "context",
    "show_billed_characters",
    "model_type",
    "outline_detection",
    "non_splitting_tags",
    "splitting_tags",
    "ignore_tags",
];

/// The DeepL routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v2/translate", axum::routing::post(translate))
        .route("/v2/languages", get(languages).post(languages))
        .route("/v2/usage", get(usage).post(usage))
}

/// An error in DeepL's shape.
pub fn error_response(error: &ApiError) -> Response {
    let response = (error.status, Json(json!({ "message": error.message }))).into_response();
    with_retry_after(response, error)
}

/// The caller from `Authorization: DeepL-Auth-Key KEY`, or the older `auth_key` field.
fn authorize(core: &Core, headers: &HeaderMap, field: Option<&str>) -> Result<Caller, ApiError> {
    let header_key = match headers.get(header::AUTHORIZATION) {
        None => None,
        Some(value) => {
            let value = value
                .to_str()
                .map_err(|_| ApiError::forbidden("Authorization: not a DeepL-Auth-Key"))?;
            match value.strip_prefix("DeepL-Auth-Key ") {
                Some(key) => Some(key.trim()),
                None if core.keys_required() => {
                    return Err(ApiError::forbidden(
                        "Authorization: expected \"DeepL-Auth-Key KEY\"",
                    ))
                }
                None => None,
            }
        }
    };
    match core.authorize(header_key.or(field)) {
        // DeepL answers a missing key with 403 as well.
        Err(e) if core.keys_required() && e.status.as_u16() == 400 => Err(ApiError::forbidden(
            "Authorization failure: missing DeepL-Auth-Key",
        )),
        other => other,
    }
}

async fn translate(State(state): State<AppState>, request: Request) -> Response {
    match translate_request(&state, request).await {
        Ok(response) => response,
        Err(e) => error_response(&e),
    }
}

async fn translate_request(state: &AppState, request: Request) -> Result<Response, ApiError> {
    let core = state.core();
    let (headers, body) = read_body(core, request).await?;
    let mut fields = Fields::parse(content_type(&headers), &body).await?;
    let text = fields.text_or_list("text")?;
    let source_lang = fields.string("source_lang")?;
    let target_lang = fields.string("target_lang")?;
    let tag_handling = fields.string("tag_handling")?;
    let auth_key = fields.string("auth_key")?;
    if fields.string("glossary_id")?.is_some() {
        return Err(ApiError::bad_request(
            "glossary_id: glossaries are not supported",
        ));
    }
    for name in IGNORED {
        fields.ignore(name);
    }
    fields.finish()?;
    let caller = authorize(core, &headers, auth_key.as_deref())?;

    let (items, _) =
        text.ok_or_else(|| ApiError::bad_request("Parameter 'text' not specified."))?;
    let source = match source_lang.map(|s| s.to_ascii_uppercase()).as_deref() {
        None => Source::Auto,
        Some("FR") => Source::French,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "source_lang: {other} is not supported: this server translates French (FR) into English"
            )))
        }
    };
    match target_lang.map(|s| s.to_ascii_uppercase()).as_deref() {
        Some("EN" | "EN-GB" | "EN-US") => {}
        None => return Err(ApiError::bad_request("Parameter 'target_lang' not specified.")),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "target_lang: {other} is not supported: this server translates into English (EN, EN-GB, EN-US) only"
            )))
        }
    }
    let format = match tag_handling.as_deref() {
        None => TextFormat::Text,
        Some("html") => TextFormat::Html,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "tag_handling: {other:?} is not supported (html, or none)"
            )))
        }
    };
    let request = TranslateRequest {
        items,
        source,
        format,
        alternatives: 0,
        max_items: MAX_TEXTS,
        field: "text",
        list: true,
    };
    let translated = core.translate(caller, request).await?;
    let translations: Vec<_> = translated
        .items
        .iter()
        .map(|item| json!({ "detected_source_language": "FR", "text": item.text }))
        .collect();
    let mut response = Json(json!({ "translations": translations })).into_response();
    response.extensions_mut().insert(translated.stats);
    Ok(response)
}

/// `GET /v2/languages?type=source|target`.
async fn languages(request: Request) -> Response {
    let query = request.uri().query().unwrap_or("").as_bytes().to_vec();
    let kind = Fields::form(&query).and_then(|mut f| f.string("type"));
    match kind.as_ref().map(|k| k.as_deref()) {
        Ok(None | Some("source")) => Json(json!([
            { "language": "FR", "name": "French", "supports_formality": false },
        ]))
        .into_response(),
        Ok(Some("target")) => Json(json!([
            { "language": "EN-GB", "name": "English (British)", "supports_formality": false },
            { "language": "EN-US", "name": "English (American)", "supports_formality": false },
        ]))
        .into_response(),
        Ok(Some(other)) => error_response(&ApiError::bad_request(format!(
            "type: {other:?} is not supported (source or target)"
        ))),
        Err(e) => error_response(e),
    }
}

/// `GET /v2/usage`: characters translated (for this key when keys are configured) and no
/// real limit (rates are per minute, not a monthly quota).
async fn usage(State(state): State<AppState>, request: Request) -> Response {
    let core = state.core();
    match authorize(core, request.headers(), None) {
        Ok(caller) => Json(json!({
            "character_count": core.usage(caller),
            "character_limit": 1_000_000_000_000u64,
        }))
        .into_response(),
        Err(e) => error_response(&e),
    }
}
