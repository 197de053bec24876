//! The server's request parsing on arbitrary input (part of the fuzz campaign, see
//! tests/fuzz.rs): bodies of any bytes under any content type, sent in process through the
//! real routes (`tower::ServiceExt::oneshot`) to a server with the tiny random model. Every
//! answer must be one of the documented statuses with a JSON error naming what is wrong, and
//! nothing may panic. Also: `/health` and translations while the model loads.
//!
//!     PROPTEST_CASES=100000 cargo test --release --test serve_fuzz

mod common;

use std::sync::OnceLock;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use proptest::prelude::*;
use serde_json::Value;
use tower::ServiceExt;
use traduire::marian::ModelOptions;
use traduire::segment::SegmentOptions;
use traduire::serve::request::Fields;
use traduire::serve::{App, BatchPolicy, Limits, Loader, ServeConfig};
use traduire::translator::{Translator, TranslatorOptions};

fn config() -> ServeConfig {
    ServeConfig {
        limits: Limits {
            body_bytes: 64 * 1024,
            chars_per_request: 2000,
            items_per_request: 16,
            request_timeout: Duration::from_secs(30),
            body_read_timeout: Duration::from_secs(5),
        },
        policy: BatchPolicy {
            max_batch_wait: Duration::ZERO,
            queue_limit: 1024,
            one_request_per_batch: false,
        },
        cache_size: 1000,
        keys: None,
        cors_origins: Some(Vec::new()),
        header_read_timeout: Duration::from_secs(5),
        shutdown_timeout: Duration::from_secs(5),
        segment: SegmentOptions::default(),
    }
}

fn tiny_loader() -> Loader {
    Box::new(|| {
        let translator =
            Translator::load(&common::model_dir("tiny-swish"), &ModelOptions::default())?;
        let mut decode = translator.default_decode_options();
        decode.max_new_tokens = 4;
        decode.num_return_sequences = 2;
        let options = TranslatorOptions {
            decode,
            batch: Default::default(),
            max_sentence_tokens: 200,
            alignments: false,
        };
        Ok((translator, options))
    })
}

struct Shared {
    runtime: tokio::runtime::Runtime,
    app: App,
}

fn shared() -> &'static Shared {
    static SHARED: OnceLock<Shared> = OnceLock::new();
    SHARED.get_or_init(|| {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let mut app = App::new(config(), tiny_loader()).unwrap();
        runtime.block_on(app.loaded()).unwrap();
        Shared { runtime, app }
    })
}

/// Sends one request in process; returns the status and the body.
fn send(method: &str, path: &str, content_type: Option<&str>, body: Vec<u8>) -> (u16, Vec<u8>) {
    let shared = shared();
    let mut request = Request::builder().method(method).uri(path);
    if let Some(ct) = content_type {
        request = request.header("content-type", ct);
    }
    let request = request.body(Body::from(body)).unwrap();
    shared.runtime.block_on(async {
        let response = shared.app.router.clone().oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (status, bytes.to_vec())
    })
}

/// JSON-ish bodies: fragments of valid requests glued with hostile pieces.
fn body() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        Just(b"{\"q\": ".to_vec()),
        Just(b"\"Bonjour tout le monde.\"".to_vec()),
        Just(b"[\"Oui.\", \"Non.\"]".to_vec()),
        Just(b", \"source\": \"auto\"".to_vec()),
        Just(b", \"target\": \"en\"".to_vec()),
        Just(b", \"format\": \"html\"".to_vec()),
        Just(b", \"alternatives\": ".to_vec()),
        Just(b"1e999".to_vec()),
        Just(b"18446744073709551616".to_vec()),
        Just(b"-3".to_vec()),
        Just(b"2".to_vec()),
        Just(b"null".to_vec()),
        Just(b"}".to_vec()),
        Just(b"q=".to_vec()),
        Just(b"&text=".to_vec()),
        Just(b"%FF%".to_vec()),
        Just(b"&target_lang=EN".to_vec()),
        Just(b"\xff\xfe".to_vec()),
        Just(b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[".to_vec()),
        prop::collection::vec(any::<u8>(), 0..64),
        "[a-zA-Zéà .,!?«»<>/\"{}:\\[\\]0-9]{0,40}".prop_map(String::into_bytes),
    ];
    prop::collection::vec(piece, 0..10).prop_map(|p| p.concat())
}

fn content_type() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some("application/json".to_string())),
        Just(Some("application/json; charset=utf-8".to_string())),
        Just(Some("application/x-www-form-urlencoded".to_string())),
        Just(Some("multipart/form-data; boundary=B".to_string())),
        Just(Some("multipart/form-data".to_string())),
        Just(Some("text/plain".to_string())),
        "[ -~]{0,30}".prop_map(Some),
    ]
}

/// Text that stresses the segmenter and tokenizer (as tests/fuzz.rs).
fn hostile_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        any::<String>(),
        "[\\x00-\\x1f\\x7f\\u{80}-\\u{9f}]{0,6}",
        "[a-zA-ZéèàçœÉ0-9 .,;:!?'’()«»\\-—…\\u{a0}\\u{202f}]{0,40}",
        Just("M. Dupont est arrivé. ".to_string()),
        Just("\n\n".to_string()),
        Just("</s> <unk> <pad> ".to_string()),
        Just("<p>Bonjour <a href=\"x\">toi</a></p>".to_string()),
    ];
    prop::collection::vec(piece, 0..6).prop_map(|p| p.concat())
}

/// A JSON value of any type, hostile text in strings.
fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        (0u64..6).prop_map(Value::from),
        hostile_text().prop_map(Value::String),
        prop::sample::select(vec![
            "fr", "auto", "en", "EN-GB", "FR", "html", "text", "xml", "de", ""
        ])
        .prop_map(|s| Value::String(s.into())),
    ];
    leaf.prop_recursive(2, 12, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec(hostile_text().prop_map(Value::String), 0..6)
                .prop_map(Value::Array),
        ]
    })
}

/// One text or an array of them.
fn texts() -> impl Strategy<Value = Value> {
    prop_oneof![
        hostile_text().prop_map(Value::String),
        prop::collection::vec(hostile_text().prop_map(Value::String), 0..5).prop_map(Value::Array),
    ]
}

/// A valid request of either API, then up to three fields replaced by any value, added or
/// removed: most reach the model, the rest are refused field by field.
fn request_object() -> impl Strategy<Value = (&'static str, Value)> {
    let libretranslate = (texts(), prop::sample::select(vec!["fr", "fr", "auto"]), 0u64..3).prop_map(
        |(q, source, alternatives)| {
            ("/translate", serde_json::json!({"q": q, "source": source, "target": "en", "format": "text", "alternatives": alternatives}))
        },
    );
    let deepl = (
        prop::collection::vec(hostile_text(), 0..5),
        prop::sample::select(vec!["EN", "EN-GB", "EN-US"]),
    )
        .prop_map(|(text, target)| {
            (
                "/v2/translate",
                serde_json::json!({"text": text, "target_lang": target, "source_lang": "FR"}),
            )
        });
    let detect = hostile_text().prop_map(|q| ("/detect", serde_json::json!({ "q": q })));
    let name = prop::sample::select(vec![
        "q",
        "source",
        "target",
        "format",
        "alternatives",
        "api_key",
        "secret",
        "text",
        "source_lang",
        "target_lang",
        "tag_handling",
        "formality",
        "glossary_id",
        "auth_key",
        "x",
    ]);
    let mutation = (name, prop::option::weighted(0.8, value()));
    (
        prop_oneof![libretranslate, deepl, detect],
        prop::collection::vec(mutation, 0..3),
    )
        .prop_map(|((path, mut object), mutations)| {
            let fields = object.as_object_mut().expect("an object");
            for (name, value) in mutations {
                match value {
                    Some(v) => fields.insert(name.to_string(), v),
                    None => fields.remove(name),
                };
            }
            (path, object)
        })
}

proptest! {
    /// Well-formed JSON objects with hostile values, through both APIs: an answer per text
    /// when 200, a named error otherwise, never a panic. Many of these reach the model.
    #[test]
    fn hostile_values_in_well_formed_requests((path, object) in request_object()) {
        let body = object.to_string().into_bytes();
        let (status, answer) = send("POST", path, Some("application/json"), body);
        prop_assert!([200, 400, 403, 413, 429].contains(&status), "status {status}: {object}");
        let json: Value = serde_json::from_slice(&answer).expect("a JSON answer");
        if status == 200 && path == "/translate" {
            let texts = match &object["q"] {
                Value::Array(a) => a.len(),
                _ => 1,
            };
            match &json["translatedText"] {
                Value::Array(a) => prop_assert_eq!(a.len(), texts),
                Value::String(_) => prop_assert!(!object["q"].is_array()),
                other => prop_assert!(false, "translatedText is {other}"),
            }
        } else if status == 200 && path == "/v2/translate" {
            let texts = object["text"].as_array().map_or(1, Vec::len);
            prop_assert_eq!(json["translations"].as_array().map(Vec::len), Some(texts));
        } else if status != 200 {
            let message = json.get("error").or_else(|| json.get("message"));
            prop_assert!(message.and_then(Value::as_str).is_some_and(|m| !m.is_empty()), "{json}");
        }
    }

    /// Any body, any content type, any route: a documented status, a JSON error naming what
    /// is wrong, never a panic.
    #[test]
    fn any_request_gets_a_documented_answer(
        path in prop::sample::select(vec!["/translate", "/detect", "/v2/translate", "/translate?q=x"]),
        content_type in content_type(),
        body in body(),
    ) {
        let (status, answer) = send("POST", path, content_type.as_deref(), body);
        prop_assert!([200, 400, 413, 415, 429].contains(&status), "status {status}");
        let json: Value = serde_json::from_slice(&answer).expect("a JSON answer");
        if status != 200 {
            let message = json.get("error").or_else(|| json.get("message"));
            prop_assert!(message.and_then(Value::as_str).is_some_and(|m| !m.is_empty()), "{json}");
        }
    }

    /// The body readers alone, on arbitrary bytes: an error or fields, never a panic.
    #[test]
    fn body_readers_never_panic(content_type in content_type(), body in prop::collection::vec(any::<u8>(), 0..512)) {
        let shared = shared();
        let parsed = shared.runtime.block_on(Fields::parse(content_type.as_deref(), &body));
        if let Ok(mut fields) = parsed {
            let _ = fields.text_or_list("q");
            let _ = fields.count("alternatives", 3);
            let _ = fields.string("source");
            let _ = fields.finish();
        }
    }
}

#[test]
fn while_loading_health_is_503_and_translations_wait_outside() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let (release, wait) = std::sync::mpsc::channel::<()>();
    let load: Loader = Box::new(move || {
        let _ = wait.recv();
        (tiny_loader())()
    });
    let mut app = App::new(config(), load).unwrap();
    let call = |app: &App, method: &str, path: &str, body: &str| {
        let request = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json")
            .body(Body::from(body.to_string()))
            .unwrap();
        runtime.block_on(async {
            let response = app.router.clone().oneshot(request).await.unwrap();
            let status = response.status().as_u16();
            let retry = response.headers().get("retry-after").is_some();
            let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
                .await
                .unwrap();
            (status, retry, String::from_utf8(bytes.to_vec()).unwrap())
        })
    };
    let (status, _, body) = call(&app, "GET", "/health", "");
    assert_eq!(status, 503);
    assert!(body.contains("loading"));
    let (status, retry, body) = call(&app, "POST", "/translate", r#"{"q": "Oui."}"#);
    assert_eq!((status, retry), (503, true), "{body}");
    release.send(()).unwrap();
    runtime.block_on(app.loaded()).unwrap();
    assert_eq!(call(&app, "GET", "/health", "").0, 200);
    assert_eq!(call(&app, "POST", "/translate", r#"{"q": "Oui."}"#).0, 200);
}

#[test]
fn a_model_that_fails_to_load_is_an_error() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let load: Loader = Box::new(|| anyhow::bail!("no such model"));
    let mut app = App::new(config(), load).unwrap();
    let err = runtime.block_on(app.loaded()).unwrap_err();
    assert!(format!("{err:#}").contains("no such model"), "{err:#}");
}
