//! LibreTranslate's API, as its clients (Mastodon, Weblate, SearXNG, Discourse, browser
//! extensions) call it: `POST /translate`, `POST /detect`, `GET /languages`,
//! `GET /frontend/settings`. Errors are `{"error": "..."}` with LibreTranslate's status codes.
//!
//! A thin adapter: it reads the request shape into a [`TranslateRequest`] and writes the
//! answer back; the meaning of a request is the core's.

use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Map, Value};

use super::core::{Source, TextFormat, TranslateRequest};
use super::detect::Detection;
use super::error::ApiError;
use super::request::Fields;
use super::{content_type, read_body, with_retry_after, AppState};

/// The LibreTranslate routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/translate", post(translate))
        .route("/detect", post(detect))
        .route("/languages", get(languages).post(languages))
        .route("/frontend/settings", get(settings))
}

/// An error in LibreTranslate's shape.
pub fn error_response(error: &ApiError) -> Response {
    let response = (error.status, Json(json!({ "error": error.message }))).into_response();
    with_retry_after(response, error)
}

async fn translate(State(state): State<AppState>, request: Request) -> Response {
    match translate_request(&state, request).await {
        Ok(response) => response,
        Err(e) => error_response(&e),
    }
}

async fn translate_request(state: &AppState, request: Request) -> Result<Response, ApiError> {
    let core = state.core();
    let query = request.uri().query().map(str::to_string);
    let (headers, body) = read_body(core, request).await?;
    let mut fields = Fields::parse(content_type(&headers), &body).await?;
    fields.merge_query(query.as_deref())?;
    let q = fields.text_or_list("q")?;
    let source = fields.string("source")?;
    let target = fields.string("target")?;
    let format = fields.string("format")?;
    let alternatives = fields.count("alternatives", u64::MAX)?.unwrap_or(0);
    let api_key = fields.string("api_key")?;
    // LibreTranslate's own web page sends it (for `--require-api-key-secret`).
    fields.ignore("secret");
    fields.finish()?;
    let caller = core.authorize(api_key.as_deref())?;

    let (items, list) =
        q.ok_or_else(|| ApiError::bad_request("Invalid request: missing q parameter"))?;
    let source = parse_source(source.as_deref())?;
    check_target(target.as_deref())?;
    let format = match format.as_deref() {
        None | Some("text") => TextFormat::Text,
        Some("html") => TextFormat::Html,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "format: {other:?} is not supported (text or html)"
            )))
        }
    };
    let request = TranslateRequest {
        items,
        source,
        format,
        alternatives: usize::try_from(alternatives).unwrap_or(usize::MAX),
        max_items: usize::MAX,
        field: "q",
        list,
    };
    let asked_alternatives = request.alternatives > 0;
    let translated = core.translate(caller, request).await?;

    let mut body = Map::new();
    let detected: Vec<Value> = translated
        .items
        .iter()
        .filter_map(|item| item.detected.as_ref().map(detection_json))
        .collect();
    if list {
        let texts: Vec<&str> = translated.items.iter().map(|i| i.text.as_str()).collect();
        body.insert("translatedText".into(), json!(texts));
        if asked_alternatives {
            let alternatives: Vec<&Vec<String>> =
                translated.items.iter().map(|i| &i.alternatives).collect();
            body.insert("alternatives".into(), json!(alternatives));
        }
        if source == Source::Auto {
            body.insert("detectedLanguage".into(), Value::Array(detected));
        }
    } else {
        let item = translated
            .items
            .first()
            .ok_or_else(|| ApiError::internal("no translation for the text"))?;
        body.insert("translatedText".into(), json!(item.text));
        if asked_alternatives {
            body.insert("alternatives".into(), json!(item.alternatives));
        }
        if let Some(d) = detected.into_iter().next() {
            body.insert("detectedLanguage".into(), d);
        }
    }
    let mut response = Json(Value::Object(body)).into_response();
    response.extensions_mut().insert(translated.stats);
    Ok(response)
}

/// `source`: `fr` or `auto` (absent: auto).
fn parse_source(source: Option<&str>) -> Result<Source, ApiError> {
    match source.map(str::to_ascii_lowercase).as_deref() {
        None | Some("auto") => Ok(Source::Auto),
        Some("fr") => Ok(Source::French),
        Some(other) => Err(ApiError::bad_request(format!(
            "source: {other} is not supported: this server translates French (fr, or auto) into English (en)"
        ))),
    }
}

/// `target`: English (`en`, or a regional variant such as `en-GB`; absent: en).
fn check_target(target: Option<&str>) -> Result<(), ApiError> {
    match target
        .map(|t| t.to_ascii_lowercase().replace('_', "-"))
        .as_deref()
    {
        None | Some("en" | "en-gb" | "en-us") => Ok(()),
        Some(other) => Err(ApiError::bad_request(format!(
            "target: {other} is not supported: this server translates into English (en) only"
        ))),
    }
}

fn detection_json(d: &Detection) -> Value {
    json!({
        "confidence": (d.confidence * 10.0).round() / 10.0,
        "language": d.code,
    })
}

async fn detect(State(state): State<AppState>, request: Request) -> Response {
    let result = async {
        let core = state.core();
        let query = request.uri().query().map(str::to_string);
        let (headers, body) = read_body(core, request).await?;
        let mut fields = Fields::parse(content_type(&headers), &body).await?;
        fields.merge_query(query.as_deref())?;
        let q = fields.string("q")?;
        let api_key = fields.string("api_key")?;
        fields.ignore("secret");
        fields.finish()?;
        let caller = core.authorize(api_key.as_deref())?;
        let q = q
            .filter(|q| !q.is_empty())
            .ok_or_else(|| ApiError::bad_request("Invalid request: missing q parameter"))?;
        let detection = core.detect(caller, &q)?;
        Ok::<_, ApiError>(Json(json!([detection_json(&detection)])).into_response())
    }
    .await;
    result.unwrap_or_else(|e| error_response(&e))
}

/// `GET /languages`: French, which translates into English, and English (a target).
async fn languages() -> Response {
    Json(json!([
        { "code": "fr", "name": "French", "targets": ["en"] },
        { "code": "en", "name": "English", "targets": [] },
    ]))
    .into_response()
}

/// `GET /frontend/settings`: what LibreTranslate's web page and some clients read.
async fn settings(State(state): State<AppState>) -> Response {
    let core = state.core();
    let keys = core.keys_required();
    Json(json!({
        "charLimit": core.limits().chars_per_request,
        "frontendTimeout": 500,
        "apiKeys": keys,
        "keyRequired": keys,
        "suggestions": false,
        "filesTranslation": false,
        "supportedFilesFormat": [],
        "language": {
            "source": { "code": "fr", "name": "French" },
            "target": { "code": "en", "name": "English" },
        },
    }))
    .into_response()
}
