//! `traduire serve` end to end: the real binary on a loopback port, with the tiny random
//! model (`tests/fixtures/marian/tiny-swish`, 8 new tokens at most), which translates into
//! nonsense. Every answer is compared with what the command line's pipeline gives for the
//! same text and options (`common::serve::Reference`, itself checked against
//! `traduire translate` here).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::OnceLock;
use std::time::Duration;

use common::serve::{self as srv, Reference};
use serde_json::{json, Value};

fn reference() -> &'static Reference {
    static REF: OnceLock<Reference> = OnceLock::new();
    REF.get_or_init(Reference::new)
}

const FRENCH: [&str; 4] = [
    "Le gouvernement a annoncé mardi une réforme des retraites.",
    "Les syndicats dénoncent un projet injuste et appellent à la grève.",
    "M. Dupont est arrivé à 23h30. Il a dit : « Bonjour ! » puis il est reparti.",
    "La pluie revient sur Paris\n\nLes averses reprendront dès mardi matin.",
];

#[test]
fn the_reference_is_the_command_line() {
    // One sentence per input: `translate -f jsonl` gives its English in "en".
    for text in &FRENCH[..2] {
        let out = common::cli::run(
            common::cli::traduire()
                .arg("translate")
                .arg("--model-dir")
                .arg(common::model_dir("tiny-swish"))
                .args([
                    "--max-new-tokens",
                    srv::MAX_NEW_TOKENS,
                    "-f",
                    "jsonl",
                    "--quiet",
                ]),
            text.as_bytes(),
        );
        common::cli::assert_success(&out);
        let row: Value =
            serde_json::from_str(common::cli::stdout(&out).lines().next().unwrap()).unwrap();
        assert_eq!(row["en"].as_str().unwrap(), reference().text(text));
    }
}

#[test]
fn libretranslate_translate_in_every_body_encoding() {
    let server = srv::start(&[]);
    let r = reference();
    // JSON, one string (SearXNG's shape, with alternatives).
    let a = server.post_json(
        "/translate",
        &json!({"q": FRENCH[0], "source": "fr", "target": "en", "alternatives": 3}),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    let body = a.json();
    assert_eq!(body["translatedText"], r.text(FRENCH[0]));
    let alternatives = body["alternatives"].as_array().expect("alternatives");
    assert!(alternatives.len() <= 3);
    for alt in alternatives {
        assert_ne!(
            alt.as_str().unwrap(),
            r.text(FRENCH[0]),
            "an alternative repeats the best"
        );
    }
    assert!(body.get("detectedLanguage").is_none());

    // JSON, an array (Weblate's shape: empty api_key, no format).
    let a = server.post_json(
        "/translate",
        &json!({"api_key": "", "q": FRENCH, "source": "fr", "target": "en"}),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    let texts: Vec<String> = FRENCH.iter().map(|t| r.text(t)).collect();
    assert_eq!(a.json()["translatedText"], json!(texts));
    // Paragraphs and the gaps between sentences come back as they were.
    assert!(texts[3].contains("\n\n"));

    // urlencoded (curl -d, older Weblate).
    let form = format!("q={}&source=fr&target=en", encode(FRENCH[1]));
    let a = server.request(
        "POST",
        "/translate",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        form.as_bytes(),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["translatedText"], r.text(FRENCH[1]));

    // multipart (curl -F).
    let boundary = "XyZ123";
    let multipart = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"q\"\r\n\r\n{}\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"source\"\r\n\r\nauto\r\n--{boundary}--\r\n",
        FRENCH[2]
    );
    let ct = format!("multipart/form-data; boundary={boundary}");
    let a = server.request(
        "POST",
        "/translate",
        &[("Content-Type", &ct)],
        multipart.as_bytes(),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["translatedText"], r.text(FRENCH[2]));
    assert_eq!(a.json()["detectedLanguage"]["language"], "fr");

    // No Content-Type, a JSON body: read as JSON.
    let a = server.request(
        "POST",
        "/translate",
        &[],
        json!({"q": FRENCH[0], "source": "fr"})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(a.json()["translatedText"], r.text(FRENCH[0]));
    // Fields in the query string of a form request, as LibreTranslate reads them.
    let a = server.request(
        "POST",
        &format!("/translate?source=fr&q={}", encode(FRENCH[1])),
        &[("Content-Type", "application/x-www-form-urlencoded")],
        b"",
    );
    assert_eq!(a.json()["translatedText"], r.text(FRENCH[1]));
    // An empty text is an empty translation.
    let a = server.post_json(
        "/translate",
        &json!({"q": "", "source": "fr", "target": "en"}),
    );
    assert_eq!(a.json()["translatedText"], "");
}

#[test]
fn mastodon_shape_and_languages() {
    let server = srv::start(&[]);
    // Mastodon: GET /languages, then {q: [...], source, target, format: html, api_key: null}.
    let langs = server.request(
        "GET",
        "/languages",
        &[("Content-Type", "application/json")],
        b"",
    );
    assert_eq!(langs.status, 200);
    let langs = langs.json();
    let fr = langs
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["code"] == "fr")
        .expect("fr listed");
    assert_eq!(fr["targets"], json!(["en"]));
    assert!(langs
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["targets"].is_array() && l["name"].is_string()));

    let toots = [
        "<p>Le gouvernement a annoncé mardi une réforme des retraites.</p>",
        "<p>Bonjour <a href=\"https://example.social/@marie\" class=\"u-url mention\">@<span>marie</span></a> ! Les syndicats appellent à la grève.</p>",
    ];
    let a = server.post_json(
        "/translate",
        &json!({"q": toots, "source": "auto", "target": "en", "format": "html", "api_key": null}),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    let body = a.json();
    let texts = body["translatedText"].as_array().unwrap();
    assert_eq!(texts.len(), 2);
    assert!(texts.iter().all(|t| t.as_str().unwrap().starts_with("<p>")));
    assert!(texts[1]
        .as_str()
        .unwrap()
        .contains("href=\"https://example.social/@marie\""));
    for i in 0..2 {
        assert_eq!(body["detectedLanguage"][i]["language"], "fr");
    }
    // Each toot's answer is the command line's translation of it, byte for byte.
    for (toot, got) in toots.iter().zip(texts) {
        assert_eq!(got.as_str().unwrap(), srv::cli_html(toot), "{toot}");
    }
    // The same toots as text: Mastodon reads detectedLanguage[i].
    let plain = [
        "Le gouvernement a annoncé mardi une réforme des retraites.",
        "Bonjour !",
    ];
    let a = server.post_json(
        "/translate",
        &json!({"q": plain, "source": "auto", "target": "en", "api_key": null}),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    let body = a.json();
    assert_eq!(body["detectedLanguage"].as_array().unwrap().len(), 2);
    assert_eq!(body["detectedLanguage"][0]["language"], "fr");
    assert!(body["detectedLanguage"][0]["confidence"].as_f64().unwrap() > 50.0);
    // Too short to tell: taken as French.
    assert_eq!(body["detectedLanguage"][1]["language"], "fr");
}

#[test]
fn detect_settings_and_language_refusal() {
    let server = srv::start(&[]);
    let a = server.post_json("/detect", &json!({"q": FRENCH[1]}));
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()[0]["language"], "fr");
    let english = "The government announced on Tuesday a pension reform that will be presented to the cabinet in January.";
    let a = server.post_json("/detect", &json!({"q": english}));
    assert_eq!(a.json()[0]["language"], "en");
    let a = server.post_json(
        "/translate",
        &json!({"q": ["Bonjour !", english], "source": "auto", "target": "en"}),
    );
    assert_eq!(a.status, 400);
    assert!(a.error().contains("q[1] is in English"), "{}", a.error());
    // With source=fr the client is believed.
    let a = server.post_json(
        "/translate",
        &json!({"q": english, "source": "fr", "target": "en"}),
    );
    assert_eq!(a.status, 200);

    let s = server.get("/frontend/settings").json();
    assert_eq!(s["charLimit"], 20000);
    assert_eq!(s["language"]["source"]["code"], "fr");
    assert_eq!(s["keyRequired"], false);
}

#[test]
fn deepl_v2() {
    let server = srv::start(&[]);
    let r = reference();
    let a = server.post_json(
        "/v2/translate",
        &json!({"text": [FRENCH[0], FRENCH[3]], "target_lang": "EN-GB", "source_lang": "FR"}),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    let t = &a.json()["translations"];
    assert_eq!(t[0]["text"], r.text(FRENCH[0]));
    assert_eq!(t[1]["text"], r.text(FRENCH[3]));
    assert_eq!(t[0]["detected_source_language"], "FR");
    // Form, repeated text, no source_lang (identified), DeepL's extra fields accepted.
    let form = format!(
        "text={}&text={}&target_lang=EN-US&formality=prefer_less&split_sentences=1",
        encode(FRENCH[1]),
        encode(FRENCH[2])
    );
    let a = server.request(
        "POST",
        "/v2/translate",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Authorization", "DeepL-Auth-Key anything"),
        ],
        form.as_bytes(),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["translations"][1]["text"], r.text(FRENCH[2]));
    // Errors are {"message"}.
    let texts: Vec<&str> = vec!["Oui."; 51];
    let a = server.post_json(
        "/v2/translate",
        &json!({"text": texts, "target_lang": "EN"}),
    );
    assert_eq!(a.status, 400);
    assert!(a.json()["message"].as_str().unwrap().contains("at most 50"));
    let a = server.post_json(
        "/v2/translate",
        &json!({"text": ["Oui."], "target_lang": "DE"}),
    );
    assert!(a.json()["message"]
        .as_str()
        .unwrap()
        .starts_with("target_lang"));
    let a = server.post_json("/v2/translate", &json!({"text": ["Oui."]}));
    assert!(a.json()["message"]
        .as_str()
        .unwrap()
        .contains("target_lang"));
    let a = server.post_json(
        "/v2/translate",
        &json!({"text": ["<p>Oui.</p>"], "target_lang": "EN", "tag_handling": "html"}),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    assert!(a.json()["translations"][0]["text"]
        .as_str()
        .unwrap()
        .starts_with("<p>"));
    assert_eq!(
        a.json()["translations"][0]["text"].as_str().unwrap(),
        srv::cli_html("<p>Oui.</p>")
    );
    let a = server.post_json(
        "/v2/translate",
        &json!({"text": ["Oui."], "target_lang": "EN", "tag_handling": "xml"}),
    );
    assert!(a.json()["message"]
        .as_str()
        .unwrap()
        .starts_with("tag_handling"));

    let langs = server.get("/v2/languages?type=target").json();
    assert!(langs
        .as_array()
        .unwrap()
        .iter()
        .any(|l| l["language"] == "EN-US"));
    assert_eq!(server.get("/v2/languages").json()[0]["language"], "FR");
    let usage = server.get("/v2/usage").json();
    // The HTML request counts too, its tags included.
    let chars: usize = [FRENCH[0], FRENCH[3], FRENCH[1], FRENCH[2], "<p>Oui.</p>"]
        .iter()
        .map(|t| t.chars().count())
        .sum();
    assert_eq!(usage["character_count"], chars);
}

#[test]
fn bad_requests_name_the_field() {
    let server = srv::start(&[
        "--char-limit",
        "100",
        "--batch-limit",
        "3",
        "--body-limit",
        "2048",
    ]);
    let cases: Vec<(&[u8], &str, &str)> = vec![
        (b"{\"q\": \"a\"", "application/json", "invalid JSON body"),
        (b"[\"q\"]", "application/json", "invalid JSON body"),
        (
            b"{\"q\": 5}",
            "application/json",
            "q must be a string or an array of strings, not a number",
        ),
        (
            b"{\"q\": [\"a\", 5]}",
            "application/json",
            "q[1] must be a string, not a number",
        ),
        (
            b"{\"q\": \"a\", \"source\": 1}",
            "application/json",
            "source must be a string",
        ),
        (
            b"{\"q\": \"a\", \"alternatives\": 1e400}",
            "application/json",
            "alternatives: invalid JSON",
        ),
        (
            b"{\"q\": \"a\", \"alternatives\": 99999999999999999999999}",
            "application/json",
            "alternatives must be a whole number",
        ),
        (
            b"{\"q\": \"a\", \"alternatives\": -1}",
            "application/json",
            "alternatives must be a whole number",
        ),
        (
            b"{\"q\": \"a\", \"alternatives\": 4}",
            "application/json",
            "alternatives: at most 3",
        ),
        // LibreTranslate's issue #978: one request with alternatives=10000 took the server down.
        (
            b"{\"q\": \"a\", \"alternatives\": 10000}",
            "application/json",
            "alternatives: at most 3",
        ),
        (
            b"q=a&alternatives=10000",
            "application/x-www-form-urlencoded",
            "alternatives: at most 3",
        ),
        (
            b"{\"q\": \"a\", \"alternatives\": \"2\"}",
            "application/json",
            "alternatives must be a whole number",
        ),
        (
            b"{\"q\": \"a\", \"sauce\": \"fr\"}",
            "application/json",
            "unknown field \"sauce\"",
        ),
        (b"{\"q\": \"\xff\"}", "application/json", "not valid UTF-8"),
        (
            b"q=%C3%28",
            "application/x-www-form-urlencoded",
            "q is not valid UTF-8",
        ),
        (b"{\"source\": \"fr\"}", "application/json", "missing q"),
        (
            b"{\"q\": \"a\", \"source\": \"de\"}",
            "application/json",
            "source: de is not supported",
        ),
        (
            b"{\"q\": \"a\", \"target\": \"es\"}",
            "application/json",
            "target: es is not supported",
        ),
        (
            b"{\"q\": \"a\", \"format\": \"pdf\"}",
            "application/json",
            "format: \"pdf\" is not supported",
        ),
        (
            b"{\"q\": [\"a\", \"b\", \"c\", \"d\"]}",
            "application/json",
            "q: 4 texts; at most 3",
        ),
    ];
    for (body, ct, expected) in cases {
        let a = server.request("POST", "/translate", &[("Content-Type", ct)], body);
        assert_eq!(
            a.status,
            400,
            "{}: {}",
            String::from_utf8_lossy(body),
            a.body
        );
        assert!(
            a.error().contains(expected),
            "{}: {:?} lacks {expected:?}",
            String::from_utf8_lossy(body),
            a.error()
        );
    }
    let long = "a".repeat(101);
    let a = server.post_json("/translate", &json!({"q": long}));
    assert_eq!(a.status, 400);
    assert!(a.error().contains("101 characters"), "{}", a.error());
    let huge = format!("{{\"q\": \"{}\"}}", "a".repeat(3000));
    let a = server.request(
        "POST",
        "/translate",
        &[("Content-Type", "application/json")],
        huge.as_bytes(),
    );
    assert_eq!(a.status, 413, "{}", a.body);
    assert!(a.error().contains("2048 bytes"));
    let a = server.request(
        "POST",
        "/translate",
        &[("Content-Type", "text/xml")],
        b"<q/>",
    );
    assert_eq!(a.status, 415);
    assert_eq!(server.get("/nowhere").status, 404);
    // Nothing above reached the model, and the server still translates.
    assert_eq!(server.metric("traduire_sentences_translated_total"), 0.0);
    assert_eq!(
        server.post_json("/translate", &json!({"q": "Oui."})).status,
        200
    );
    assert!(!server.log_text().contains("panicked"));
}

#[test]
fn api_keys_and_their_rates() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.txt");
    std::fs::write(&keys, "# test keys\nmastodon-key 2\nchars-key 0 30\n").unwrap();
    let server = srv::start(&["--api-keys", keys.to_str().unwrap()]);
    let a = server.post_json(
        "/translate",
        &json!({"q": "Oui.", "source": "fr", "target": "en"}),
    );
    assert_eq!(a.status, 400);
    assert!(a.error().contains("API key"));
    let a = server.post_json(
        "/translate",
        &json!({"q": "Oui.", "api_key": "mastodon-kex"}),
    );
    assert_eq!(a.status, 403);
    assert_eq!(a.error(), "Invalid API key");
    for _ in 0..2 {
        let a = server.post_json(
            "/translate",
            &json!({"q": "Oui.", "api_key": "mastodon-key"}),
        );
        assert_eq!(a.status, 200, "{}", a.body);
    }
    let a = server.post_json(
        "/translate",
        &json!({"q": "Oui.", "api_key": "mastodon-key"}),
    );
    assert_eq!(a.status, 429, "{}", a.body);
    assert!(a.header("retry-after").unwrap().parse::<u64>().unwrap() >= 1);
    // Characters per minute: 30.
    let a = server.post_json(
        "/translate",
        &json!({"q": "a".repeat(20), "api_key": "chars-key"}),
    );
    assert_eq!(a.status, 200);
    let a = server.post_json(
        "/translate",
        &json!({"q": "a".repeat(20), "api_key": "chars-key"}),
    );
    assert_eq!(a.status, 429);
    // DeepL: the header, and 403 without it.
    let body = json!({"text": ["Oui."], "target_lang": "EN"}).to_string();
    let a = server.request(
        "POST",
        "/v2/translate",
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    );
    assert_eq!(a.status, 403);
    let a = server.request(
        "POST",
        "/v2/translate",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", "DeepL-Auth-Key chars-key"),
        ],
        body.as_bytes(),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(server.get("/frontend/settings").json()["keyRequired"], true);
    // No key appears in the metrics or the log.
    assert!(!server.get("/metrics").body.contains("mastodon-key"));
    assert!(!server.log_text().contains("mastodon-key"));
}

#[test]
fn cross_request_batching_dedup_and_cache() {
    // A long wait for company: the requests below all land in one batch.
    let server = srv::start(&["--max-batch-wait", "1500"]);
    let r = reference();
    let shared = "Le président a réuni ses ministres à l'Élysée.";
    let handles: Vec<_> = (0..6)
        .map(|i| {
            let address = server.address.clone();
            std::thread::spawn(move || {
                let own = format!("Le conseil municipal numéro {i} a voté le budget.");
                let body = json!({"q": [shared, own.as_str()], "source": "fr"}).to_string();
                let a = srv::request(
                    &address,
                    "POST",
                    "/translate",
                    &[("Content-Type", "application/json")],
                    body.as_bytes(),
                );
                (own, a)
            })
        })
        .collect();
    for h in handles {
        let (own, a) = h.join().unwrap();
        assert_eq!(a.status, 200, "{}", a.body);
        assert_eq!(
            a.json()["translatedText"],
            json!([r.text(shared), r.text(&own)])
        );
    }
    // The shared sentence was translated once for all six requests.
    assert_eq!(server.metric("traduire_sentences_translated_total"), 7.0);
    assert_eq!(server.metric("traduire_sentences_answered_total"), 12.0);
    let batches = server.metric("traduire_batch_sentences_count");
    assert!(
        batches < 6.0,
        "{batches} batches for 6 requests: no cross-request batching"
    );
    // A repeat comes from the cache.
    let a = server.post_json("/translate", &json!({"q": shared, "source": "fr"}));
    assert_eq!(a.json()["translatedText"], r.text(shared));
    assert_eq!(server.metric("traduire_cache_hits_total"), 1.0);
    assert_eq!(server.metric("traduire_sentences_translated_total"), 7.0);
}

#[test]
fn many_concurrent_clients_every_answer_correct() {
    // 24 clients x 40 requests, each 1 to 4 texts drawn from 60 sentences; a cache smaller
    // than the set, so that the model keeps working. No error of any kind is allowed.
    let server = srv::start(&["--cache-size", "16", "--queue-limit", "100000"]);
    let pool: Vec<String> = (0..60)
        .map(|i| {
            format!(
                "Selon le rapport numéro {i}, la ville de Lyon a {} habitants.",
                i * 37 + 5
            )
        })
        .collect();
    let expected: Vec<String> = pool.iter().map(|s| reference().text(s)).collect();
    let pool = std::sync::Arc::new((pool, expected));
    let handles: Vec<_> = (0..24u64)
        .map(|client| {
            let address = server.address.clone();
            let pool = pool.clone();
            std::thread::spawn(move || {
                let mut seed = client * 7919 + 1;
                let mut next = move |n: u64| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((seed >> 33) % n) as usize
                };
                for _ in 0..40 {
                    let picks: Vec<usize> = (0..1 + next(4)).map(|_| next(60)).collect();
                    let q: Vec<&str> = picks.iter().map(|&i| pool.0[i].as_str()).collect();
                    let body = json!({"q": q, "source": "fr", "target": "en"}).to_string();
                    let a = srv::request(
                        &address,
                        "POST",
                        "/translate",
                        &[("Content-Type", "application/json")],
                        body.as_bytes(),
                    );
                    assert_eq!(a.status, 200, "{}", a.body);
                    let want: Vec<&str> = picks.iter().map(|&i| pool.1[i].as_str()).collect();
                    assert_eq!(a.json()["translatedText"], json!(want));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().expect("a client thread");
    }
    let page = server.get("/metrics").body;
    assert!(
        page.contains("traduire_http_requests_total{route=\"/translate\",status=\"200\"} 960"),
        "{page}"
    );
    assert!(server.metric("traduire_sentences_translated_total") >= 60.0);
}

#[test]
fn a_burst_over_the_queue_limit_gets_429_only_past_it() {
    let server = srv::start(&[
        "--queue-limit",
        "4",
        "--max-batch-wait",
        "1500",
        "--cache-size",
        "0",
    ]);
    let r = reference();
    let handles: Vec<_> = (0..16)
        .map(|i| {
            let address = server.address.clone();
            std::thread::spawn(move || {
                let text = format!("La réunion numéro {i} commence.");
                let body = json!({"q": text, "source": "fr"}).to_string();
                (
                    text,
                    srv::request(
                        &address,
                        "POST",
                        "/translate",
                        &[("Content-Type", "application/json")],
                        body.as_bytes(),
                    ),
                )
            })
        })
        .collect();
    let (mut ok, mut refused) = (0, 0);
    for h in handles {
        let (text, a) = h.join().unwrap();
        match a.status {
            200 => {
                ok += 1;
                assert_eq!(a.json()["translatedText"], r.text(&text));
            }
            429 => {
                refused += 1;
                assert!(a.header("retry-after").is_some());
                assert!(a.error().contains("queue is full"));
            }
            other => panic!("status {other}: {}", a.body),
        }
    }
    assert!(ok >= 4, "{ok} answered: the queue holds 4");
    assert!(
        refused > 0,
        "16 requests into a queue of 4 during a 1.5 s wait: none refused"
    );
    assert_eq!(
        server.metric("traduire_requests_rejected_total"),
        refused as f64
    );
    // The queue drained: the server answers again.
    assert_eq!(
        server.post_json("/translate", &json!({"q": "Oui."})).status,
        200
    );
    assert_eq!(server.metric("traduire_queue_sentences"), 0.0);
}

#[test]
fn deadline_then_504_and_the_job_is_dropped() {
    let server = srv::start(&["--request-timeout", "1", "--max-batch-wait", "4000"]);
    let a = server.post_json(
        "/translate",
        &json!({"q": "Une phrase qui attend.", "source": "fr"}),
    );
    assert_eq!(a.status, 504, "{}", a.body);
    assert!(a.error().contains("--request-timeout"));
    // The worker drops the abandoned job instead of translating it.
    wait_for(
        || server.metric("traduire_requests_dropped_total") == 1.0,
        "the job to be dropped",
    );
    assert_eq!(server.metric("traduire_sentences_translated_total"), 0.0);
}

#[test]
fn a_client_that_goes_away_is_dropped_from_the_queue() {
    let server = srv::start(&["--max-batch-wait", "3000"]);
    let body = json!({"q": "Personne n'attendra cette phrase.", "source": "fr"}).to_string();
    let mut stream = TcpStream::connect(&server.address).unwrap();
    write!(stream, "POST /translate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}", body.len()).unwrap();
    wait_for(
        || server.metric("traduire_queue_sentences") == 1.0,
        "the sentence to be queued",
    );
    drop(stream);
    wait_for(
        || server.metric("traduire_requests_dropped_total") == 1.0,
        "the job to be dropped",
    );
    assert_eq!(server.metric("traduire_sentences_translated_total"), 0.0);
    wait_for(
        || server.log_text().contains("client went away"),
        "a log line for it",
    );
    assert_eq!(
        server.post_json("/translate", &json!({"q": "Oui."})).status,
        200
    );
}

#[test]
fn slow_clients_are_cut_off_and_others_served() {
    let server = srv::start(&["--header-read-timeout", "1", "--body-read-timeout", "1"]);
    // Headers that never end.
    let mut silent = TcpStream::connect(&server.address).unwrap();
    silent
        .write_all(b"POST /translate HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    // A body that never ends.
    let mut slow = TcpStream::connect(&server.address).unwrap();
    slow.write_all(b"POST /translate HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"q\":").unwrap();
    // Meanwhile others are served.
    assert_eq!(
        server.post_json("/translate", &json!({"q": "Oui."})).status,
        200
    );
    silent
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut buf = Vec::new();
    let read = silent.read_to_end(&mut buf);
    assert!(
        read.is_ok() || buf.is_empty(),
        "the connection was not closed: {read:?}"
    );
    slow.set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut raw = Vec::new();
    let _ = slow.read_to_end(&mut raw);
    let a = srv::parse_answer(&raw);
    assert_eq!(a.status, 408, "{}", a.body);
    assert!(a.error().contains("did not arrive"));
}

#[test]
fn sigterm_answers_what_is_in_flight_then_exits_0() {
    let mut server = srv::start(&["--max-batch-wait", "2000", "--shutdown-timeout", "30"]);
    let r = reference();
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let address = server.address.clone();
            std::thread::spawn(move || {
                let text = format!("Le train numéro {i} part à l'heure.");
                let body = json!({"q": text, "source": "fr"}).to_string();
                (
                    text,
                    srv::request(
                        &address,
                        "POST",
                        "/translate",
                        &[("Content-Type", "application/json")],
                        body.as_bytes(),
                    ),
                )
            })
        })
        .collect();
    wait_for(
        || server.metric("traduire_queue_sentences") == 8.0,
        "8 sentences in the queue",
    );
    let status = server.terminate();
    for h in handles {
        let (text, a) = h.join().unwrap();
        assert_eq!(a.status, 200, "{}", a.body);
        assert_eq!(a.json()["translatedText"], r.text(&text));
    }
    assert!(status.success(), "exit status {status}");
    assert!(
        TcpStream::connect(&server.address).is_err(),
        "still accepting after shutdown"
    );
}

#[test]
fn health_metrics_and_one_log_line_per_request() {
    let server = srv::start(&[]);
    let h = server.get("/health");
    assert_eq!((h.status, h.json()["status"].as_str()), (200, Some("ok")));
    let a = server.post_json("/translate", &json!({"q": FRENCH[0]}));
    let id = a.header("x-request-id").expect("a request id").to_string();
    let page = server.get("/metrics").body;
    for name in [
        "traduire_http_requests_total",
        "traduire_http_request_duration_seconds_bucket",
        "traduire_queue_wait_seconds_bucket",
        "traduire_queue_sentences",
        "traduire_batch_sentences_bucket",
        "traduire_sentences_translated_total",
        "traduire_source_tokens_total",
        "traduire_target_tokens_total",
        "traduire_cache_hits_total",
        "traduire_ready",
    ] {
        assert!(page.contains(name), "{name} missing from /metrics");
    }
    assert!(
        page.contains("traduire_http_requests_total{route=\"/translate\",status=\"200\"} 1"),
        "{page}"
    );
    assert!(!page.contains("127.0.0.1"), "an address in a label");
    wait_for(
        || server.log_text().contains(&format!("id={id} ")),
        "the request's log line",
    );
    let log = server.log_text();
    let line = log
        .lines()
        .find(|l| l.contains(&format!("id={id} ")))
        .unwrap();
    assert!(
        line.contains("route=/translate") && line.contains("status=200"),
        "{line}"
    );
    assert_eq!(
        log.lines()
            .filter(|l| l.contains(&format!("id={id} ")))
            .count(),
        1
    );
}

#[test]
fn options_are_checked_before_serving() {
    for args in [
        vec!["--queue-limit", "0"],
        vec!["--max-batch-wait", "10001"],
        vec!["--port", "70000"],
        vec!["--alternatives-limit", "200"],
        vec!["--cors-origin", "x", "--no-cors"],
    ] {
        let out = common::cli::run(common::cli::traduire().arg("serve").args(&args), b"");
        common::cli::assert_failure(&out);
    }
    // Beams 2 leave room for one alternative only: refused once the model is loaded.
    let out = common::cli::run(
        common::cli::traduire()
            .arg("serve")
            .arg("--model-dir")
            .arg(common::model_dir("tiny-swish"))
            .args(["--port", "0", "--beams", "2", "--alternatives-limit", "2"]),
        b"",
    );
    let err = common::cli::assert_failure(&out);
    assert!(
        err.contains("--alternatives-limit 2 needs --beams 3"),
        "{err}"
    );
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    std::fs::write(&keys, "k x\n").unwrap();
    let out = common::cli::run(
        common::cli::traduire()
            .arg("serve")
            .arg("--api-keys")
            .arg(&keys),
        b"",
    );
    let err = common::cli::assert_failure(&out);
    assert!(err.contains("line 1"), "{err}");
}

fn wait_for(mut condition: impl FnMut() -> bool, what: &str) {
    for _ in 0..1500 {
        if condition() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("gave up waiting for {what}");
}

/// Percent-encodes a form value.
fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[test]
fn cors_as_libretranslate_or_restricted_or_off() {
    let preflight = [
        ("Origin", "https://app.example"),
        ("Access-Control-Request-Method", "POST"),
        ("Access-Control-Request-Headers", "content-type"),
    ];
    let any = srv::start(&[]);
    let a = any.request("OPTIONS", "/translate", &preflight, b"");
    assert_eq!(a.header("access-control-allow-origin"), Some("*"));
    let a = any.request(
        "POST",
        "/translate",
        &[
            ("Origin", "https://app.example"),
            ("Content-Type", "application/json"),
        ],
        br#"{"q": "Oui."}"#,
    );
    assert_eq!(
        (a.status, a.header("access-control-allow-origin")),
        (200, Some("*"))
    );

    let one = srv::start(&["--cors-origin", "https://app.example"]);
    let a = one.request("OPTIONS", "/translate", &preflight, b"");
    assert_eq!(
        a.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    let other = [
        ("Origin", "https://evil.example"),
        ("Access-Control-Request-Method", "POST"),
    ];
    assert_eq!(
        one.request("OPTIONS", "/translate", &other, b"")
            .header("access-control-allow-origin"),
        None
    );

    let off = srv::start(&["--no-cors"]);
    let a = off.request(
        "POST",
        "/translate",
        &[
            ("Origin", "https://app.example"),
            ("Content-Type", "application/json"),
        ],
        br#"{"q": "Oui."}"#,
    );
    assert_eq!(
        (a.status, a.header("access-control-allow-origin")),
        (200, None)
    );
}

#[test]
fn ctrl_c_stops_it_cleanly_too() {
    let mut server = srv::start(&[]);
    assert_eq!(
        server.post_json("/translate", &json!({"q": "Oui."})).status,
        200
    );
    let pid = server.pid();
    srv::signal(pid, "INT");
    let status = server.wait_exit();
    assert!(status.success(), "exit status {status}");
    wait_for(
        || server.log_text().contains("stopped"),
        "the last log line",
    );
}

#[test]
fn a_long_article_spans_batches_and_comes_back_whole() {
    // Batches of 3 sentences: the seed article takes many, shared with another request.
    let server = srv::start(&["--max-batch-sentences", "3", "--max-batch-wait", "20"]);
    let article = common::seed_text();
    let other = {
        let address = server.address.clone();
        std::thread::spawn(move || {
            let body = json!({"q": [FRENCH[0], FRENCH[1]], "source": "fr"}).to_string();
            srv::request(
                &address,
                "POST",
                "/translate",
                &[("Content-Type", "application/json")],
                body.as_bytes(),
            )
        })
    };
    let a = server.post_json(
        "/v2/translate",
        &json!({"text": [article.as_str()], "target_lang": "EN"}),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(
        a.json()["translations"][0]["text"],
        reference().text(&article)
    );
    let b = other.join().unwrap();
    assert_eq!(
        b.json()["translatedText"],
        json!([reference().text(FRENCH[0]), reference().text(FRENCH[1])])
    );
    assert!(server.metric("traduire_batch_sentences_count") >= 3.0);
}
