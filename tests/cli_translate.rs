//! End-to-end tests of `traduire translate`: the real binary, the seed article, every output
//! format, batching, deduplication, long sentences, inputs, atomic output, errors and the Hub.
//!
//! The model is `tests/fixtures/marian/tiny-swish`, a tiny **randomly initialised** Marian
//! checkpoint: it translates into nonsense ("price price price ..."). These tests check the
//! pipeline (segmentation → batches → generation → writers), never the English. Generation is
//! capped with `--max-new-tokens 8` to keep every run well under a second.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::cli::{assert_failure, assert_success, run, stderr, stdout, traduire};
use common::formats::{parse_tmx, tsv_unescape};
use serde_json::Value;

/// Generated tokens per sentence: enough to exercise decoding, few enough to be fast.
const MAX_NEW_TOKENS: &str = "8";

/// The tiny random checkpoint every test here translates with.
fn model_dir() -> PathBuf {
    common::model_dir("tiny-swish")
}

/// The seed article (the one copy, in `seeds/`).
const SEED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/seeds/000_63993c6b9a9c911d.txt"
);

/// `traduire translate --model-dir tiny-swish --max-new-tokens 8 ARGS...` with `stdin`.
fn translate(args: &[&str], stdin: &[u8]) -> Output {
    run(
        traduire()
            .arg("translate")
            .arg("--model-dir")
            .arg(model_dir())
            .args(["--max-new-tokens", MAX_NEW_TOKENS])
            .args(args),
        stdin,
    )
}

/// The same, on files only (empty stdin).
fn translate_files(args: &[&str]) -> Output {
    translate(args, b"")
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temp path")
}

/// One sentence as `traduire segment --format jsonl` reports it.
#[derive(Debug, Clone, PartialEq)]
struct Segment {
    doc: String,
    paragraph: u64,
    sentence: u64,
    text: String,
}

/// The segmentation of `args` by `traduire segment --format jsonl`.
fn segment(args: &[&str], stdin: &[u8]) -> Vec<Segment> {
    let out = run(
        traduire().args(["segment", "--format", "jsonl"]).args(args),
        stdin,
    );
    assert_success(&out);
    stdout(&out)
        .lines()
        .map(|line| {
            let v: Value = serde_json::from_str(line).expect("segment JSONL");
            Segment {
                doc: v["doc"].as_str().expect("doc").to_string(),
                paragraph: v["paragraph"].as_u64().expect("paragraph"),
                sentence: v["sentence"].as_u64().expect("sentence"),
                text: v["text"].as_str().expect("text").to_string(),
            }
        })
        .collect()
}

fn seed_segments() -> Vec<Segment> {
    let segments = segment(&[SEED], b"");
    assert!(segments.len() >= 10, "the seed article has many sentences");
    segments
}

/// Parses `translate --format jsonl` output.
fn jsonl_records(text: &str) -> Vec<Value> {
    text.lines()
        .map(|line| serde_json::from_str(line).expect("valid JSON line"))
        .collect()
}

/// Checks translated records against a segmentation: same count, text and indices; every
/// record has a string translation and a finite score.
#[track_caller]
fn assert_matches_segments(records: &[Value], segments: &[Segment]) {
    assert_eq!(records.len(), segments.len(), "one record per sentence");
    for (record, seg) in records.iter().zip(segments) {
        assert_eq!(record["doc"], seg.doc.as_str());
        assert_eq!(record["paragraph"], seg.paragraph);
        assert_eq!(record["sentence"], seg.sentence);
        assert_eq!(record["fr"], seg.text.as_str());
        assert!(record["en"].is_string(), "{record}");
        assert!(
            record["score"].as_f64().is_some_and(f64::is_finite),
            "{record}"
        );
    }
}

/// A temp dir holding a copy of the tiny model, to break.
fn model_copy() -> tempfile::TempDir {
    common::model_copy("tiny-swish")
}

// ---------------------------------------------------------------------------------------------
// 1. Every format
// ---------------------------------------------------------------------------------------------

#[test]
fn jsonl_matches_the_segmentation() {
    let out = translate_files(&["-f", "jsonl", SEED]);
    assert_success(&out);
    // stderr is not a terminal: no progress bar, and nothing else to say.
    assert!(out.stderr.is_empty(), "{}", stderr(&out));
    let records = jsonl_records(&stdout(&out));
    assert_matches_segments(&records, &seed_segments());
    assert_eq!(records[0]["kind"], "title");
    assert!(records[1..].iter().all(|r| r["kind"] == "paragraph"));
}

/// Undoes the TSV field escapes `\\ \t \n \r`.
#[test]
fn tsv_matches_the_segmentation() {
    let out = translate_files(&["-f", "tsv", SEED]);
    assert_success(&out);
    let text = stdout(&out);
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("doc\tparagraph\tsentence\tfr\ten\tscore\tflags")
    );
    let rows: Vec<Vec<String>> = lines
        .map(|line| line.split('\t').map(tsv_unescape).collect())
        .collect();
    let segments = seed_segments();
    assert_eq!(rows.len(), segments.len(), "one row per sentence");
    for (row, seg) in rows.iter().zip(&segments) {
        assert_eq!(row.len(), 7, "seven fields: {row:?}");
        assert_eq!(row[0], seg.doc);
        assert_eq!(row[1], seg.paragraph.to_string());
        assert_eq!(row[2], seg.sentence.to_string());
        assert_eq!(row[3], seg.text);
        let score: f32 = row[5].parse().expect("numeric score");
        assert!(score.is_finite());
    }
}

/// `--alignments` adds Marian's hard alignment to every JSONL record and TSV row, leaves the
/// translations unchanged, does not depend on the batch, and is refused by the formats that
/// cannot carry it before any model is loaded.
#[test]
fn alignments_in_jsonl_and_tsv() {
    let plain = translate_files(&["-f", "jsonl", "--beams", "1", SEED]);
    assert_success(&plain);
    let pharaoh = regex::Regex::new(r"^(\d+-\d+( \d+-\d+)*)?$").unwrap();
    let out = translate_files(&["-f", "jsonl", "--beams", "1", "--alignments", SEED]);
    assert_success(&out);
    for batch in ["1", "7"] {
        let batched = translate_files(&[
            "-f",
            "jsonl",
            "--beams",
            "1",
            "--alignments",
            "--max-batch-sentences",
            batch,
            SEED,
        ]);
        assert_success(&batched);
        assert_eq!(out.stdout, batched.stdout, "alignments depend on the batch");
    }
    let records = jsonl_records(&stdout(&out));
    let without = jsonl_records(&stdout(&plain));
    assert_eq!(records.len(), without.len());
    let mut pairs = 0;
    for (with, without) in records.iter().zip(&without) {
        let alignment = with["alignment"].as_str().expect("an alignment string");
        assert!(pharaoh.is_match(alignment), "{alignment:?}");
        pairs += alignment.split_whitespace().count();
        let mut stripped = with.clone();
        stripped.as_object_mut().unwrap().remove("alignment");
        assert_eq!(&stripped, without, "alignments change the translation");
    }
    assert!(pairs > records.len(), "{pairs} pairs");

    let tsv = translate_files(&["-f", "tsv", "--alignments", SEED]);
    assert_success(&tsv);
    let text = stdout(&tsv);
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("doc\tparagraph\tsentence\tfr\ten\tscore\tflags\talignment")
    );
    for line in lines {
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(fields.len(), 8, "{line}");
        assert!(pharaoh.is_match(fields[7]), "{line}");
    }

    for format in ["text", "markdown", "html", "tmx"] {
        let out = translate(&["-f", format, "--alignments"], b"Oui.");
        let err = assert_failure(&out);
        assert!(
            err.contains("--alignments") && err.contains(format),
            "{err}"
        );
    }
}

/// The `(lang, segment text)` pairs of each `<tu>`, plus the header's `srclang`.
#[test]
fn tmx_parses_and_matches_the_segmentation() {
    let out = translate_files(&["-f", "tmx", SEED]);
    assert_success(&out);
    let (srclang, units) = parse_tmx(&stdout(&out));
    assert_eq!(srclang, "fr");
    let segments = seed_segments();
    assert_eq!(units.len(), segments.len(), "one <tu> per sentence");
    for (unit, seg) in units.iter().zip(&segments) {
        assert_eq!(unit.len(), 2, "a French and an English <tuv>: {unit:?}");
        assert_eq!(unit[0], ("fr".to_string(), seg.text.clone()));
        assert_eq!(unit[1].0, "en");
    }
}

#[test]
fn moses_writes_two_aligned_files() {
    let dir = tempfile::tempdir().expect("temp dir");
    let prefix = dir.path().join("corpus");
    let out = translate_files(&["-f", "moses", "-o", path_str(&prefix), SEED]);
    assert_success(&out);
    assert!(out.stdout.is_empty(), "moses writes files only");
    let fr = std::fs::read_to_string(dir.path().join("corpus.fr")).expect("corpus.fr");
    let en = std::fs::read_to_string(dir.path().join("corpus.en")).expect("corpus.en");
    let segments = seed_segments();
    let fr_lines: Vec<&str> = fr.lines().collect();
    assert_eq!(fr_lines.len(), segments.len());
    assert_eq!(en.lines().count(), segments.len());
    for (line, seg) in fr_lines.iter().zip(&segments) {
        assert_eq!(*line, seg.text);
    }
    // Nothing else (no temporary files) is left in the folder.
    assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 2);
}

#[test]
fn moses_refuses_stdout() {
    let out = translate_files(&["-f", "moses", SEED]);
    let err = assert_failure(&out);
    assert!(err.contains("PREFIX"), "{err}");
}

/// HTML escaping of text content as the writer does it (`& < > " '`).
fn html_escape(text: &str) -> String {
    quick_xml::escape::escape(text).into_owned()
}

#[test]
fn html_page_holds_every_sentence() {
    let out = translate_files(&["-f", "html", SEED]);
    assert_success(&out);
    let html = stdout(&out);
    assert!(html.starts_with("<!DOCTYPE html>"), "{}", &html[..80]);
    assert!(html.trim_end().ends_with("</html>"));
    assert!(html.contains("<meta charset=\"utf-8\">"));
    for seg in seed_segments() {
        let escaped = html_escape(&seg.text);
        assert!(html.contains(&escaped), "missing {escaped:?}");
    }
}

#[test]
fn markdown_has_one_row_per_sentence() {
    let out = translate_files(&["-f", "markdown", SEED]);
    assert_success(&out);
    let md = stdout(&out);
    let rows: Vec<&str> = md
        .lines()
        .filter(|l| l.starts_with("| "))
        .filter(|l| *l != "| Français | English |" && *l != "| --- | --- |")
        .collect();
    let segments = seed_segments();
    assert_eq!(rows.len(), segments.len());
    for (row, seg) in rows.iter().zip(&segments) {
        let fr = row
            .strip_prefix("| ")
            .and_then(|r| r.split(" | ").next())
            .expect("cells");
        // Titles are bold; the seed has no characters that markdown escapes.
        assert_eq!(fr.trim_matches('*'), seg.text, "{row}");
    }
}

#[test]
fn text_shows_every_sentence() {
    let out = translate_files(&["-f", "text", SEED]);
    assert_success(&out);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], format!("==> {SEED} <=="));
    let segments = seed_segments();
    for seg in &segments {
        assert!(lines.contains(&seg.text.as_str()), "missing {:?}", seg.text);
    }
    let arrows = lines.iter().filter(|l| l.starts_with("  →")).count();
    assert_eq!(arrows, segments.len(), "one translation line per sentence");
    // The default format is text.
    assert_eq!(translate_files(&[SEED]).stdout, out.stdout);
}

// ---------------------------------------------------------------------------------------------
// 2. Batch settings do not change the output
// ---------------------------------------------------------------------------------------------

/// Splits translated JSONL records into everything but the score, and the scores.
fn without_scores(jsonl: &[u8]) -> (Vec<Value>, Vec<f64>) {
    let mut records = jsonl_records(std::str::from_utf8(jsonl).expect("UTF-8"));
    let scores = records
        .iter_mut()
        .map(|r| {
            r.as_object_mut()
                .expect("object")
                .remove("score")
                .and_then(|s| s.as_f64())
                .expect("numeric score")
        })
        .collect();
    (records, scores)
}

/// The batch plan changes which sentences share a padded batch, hence the shapes of the
/// matrix products: the generated ids (so every text field) must be identical; the scores are
/// sums of float32 log-probabilities and may differ in their last digits (observed: 1.6e-5),
/// so they are compared within the 1e-4 tolerance of the transformers parity tests.
#[test]
fn output_does_not_depend_on_batch_settings() {
    let batchings: [&[&str]; 4] = [
        &["--max-batch-sentences", "1"],
        &["--max-batch-sentences", "64"],
        &["--max-batch-tokens", "50"],
        // Smaller than any sentence: each sentence is a batch of its own.
        &["--max-batch-tokens", "1"],
    ];
    let mut default_batching = BTreeMap::new();
    let mut texts_by_beams = BTreeMap::new();
    for beams in ["1", "4"] {
        let outputs: Vec<Vec<u8>> = batchings
            .iter()
            .map(|batching| {
                let mut args = vec!["-f", "jsonl", "--beams", beams];
                args.extend_from_slice(batching);
                args.push(SEED);
                let out = translate_files(&args);
                assert_success(&out);
                out.stdout
            })
            .collect();
        let (texts, scores) = without_scores(&outputs[0]);
        assert_matches_segments(
            &jsonl_records(std::str::from_utf8(&outputs[0]).expect("UTF-8")),
            &seed_segments(),
        );
        for (output, batching) in outputs.iter().zip(&batchings).skip(1) {
            let (other_texts, other_scores) = without_scores(output);
            assert_eq!(
                other_texts, texts,
                "--beams {beams} {batching:?} translates differently from {:?}",
                batchings[0]
            );
            for (a, b) in scores.iter().zip(&other_scores) {
                assert!(
                    (a - b).abs() <= 1e-4,
                    "--beams {beams} {batching:?}: score {b} against {a}"
                );
            }
        }
        default_batching.insert(beams, outputs[1].clone());
        texts_by_beams.insert(beams, texts);
    }
    assert_ne!(
        texts_by_beams["1"], texts_by_beams["4"],
        "--beams reaches the search"
    );

    // The model's default is beam search with 4 beams; 64 sentences is the default batch.
    let default = translate_files(&["-f", "jsonl", SEED]);
    assert_success(&default);
    assert!(
        default.stdout == default_batching["4"],
        "--beams 4 is the default"
    );
    // The same settings twice: the same bytes.
    let again = translate_files(&["-f", "jsonl", "--beams", "1", SEED]);
    assert_success(&again);
    assert!(
        again.stdout == default_batching["1"],
        "runs are deterministic"
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Deduplication
// ---------------------------------------------------------------------------------------------

#[test]
fn repeated_sentence_gets_the_same_translation() {
    let text = "Le chat dort sur le canapé. Il pleut à Paris.\n\nLe chat dort sur le canapé.\n";
    let mut translations = Vec::new();
    for quiet in [false, true] {
        let mut args = vec!["-f", "jsonl", "-"];
        if quiet {
            args.push("--quiet");
        }
        let out = translate(&args, text.as_bytes());
        assert_success(&out);
        assert!(out.stderr.is_empty(), "{}", stderr(&out));
        let records = jsonl_records(&stdout(&out));
        assert_eq!(records.len(), 3);
        assert_eq!(records[0]["fr"], records[2]["fr"]);
        assert_eq!(records[0]["en"], records[2]["en"]);
        assert_eq!(records[0]["score"], records[2]["score"]);
        assert_eq!(records[2]["paragraph"], 1);
        translations.push(stdout(&out));
    }
    assert_eq!(
        translations[0], translations[1],
        "--quiet changes nothing but stderr"
    );

    // And the same translation as the sentence alone.
    let alone = translate(&["-f", "jsonl"], "Le chat dort sur le canapé.\n".as_bytes());
    assert_success(&alone);
    let records = jsonl_records(&translations[0]);
    assert_eq!(jsonl_records(&stdout(&alone))[0]["en"], records[0]["en"]);
}

// ---------------------------------------------------------------------------------------------
// 4. Long sentences
// ---------------------------------------------------------------------------------------------

#[test]
fn long_sentence_is_split_with_a_warning_and_never_truncated() {
    let segments = seed_segments();
    let long = segments
        .iter()
        .map(|s| s.text.as_str())
        .max_by_key(|s| s.len())
        .expect("a sentence");
    assert!(long.chars().count() > 200);
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("long.txt");
    std::fs::write(&file, format!("{long}\n")).expect("write input");
    let file = path_str(&file);

    let out = translate_files(&["-f", "jsonl", "--max-sentence-tokens", "12", file]);
    assert_success(&out);
    let err = stderr(&out);
    let warnings: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(warnings.len(), 1, "one warning:\n{err}");
    assert!(warnings[0].starts_with("warning: "), "{err}");
    assert!(
        warnings[0].contains(file),
        "the warning names the file: {err}"
    );
    assert!(warnings[0].contains("limit 12"), "{err}");
    let head: String = long.chars().take(40).collect();
    assert!(
        warnings[0].contains(&head),
        "the warning names the sentence: {err}"
    );
    let records = jsonl_records(&stdout(&out));
    assert_eq!(records.len(), 1);
    assert_eq!(
        records[0]["fr"], long,
        "the whole sentence, nothing truncated"
    );
    assert!(!records[0]["en"].as_str().expect("en").trim().is_empty());

    // --quiet: the same output, no warning.
    let quiet = translate_files(&[
        "-f",
        "jsonl",
        "--max-sentence-tokens",
        "12",
        "--quiet",
        file,
    ]);
    assert_success(&quiet);
    assert!(quiet.stderr.is_empty(), "{}", stderr(&quiet));
    assert_eq!(quiet.stdout, out.stdout);

    // Under the default limit: no split, no warning.
    let normal = translate_files(&["-f", "jsonl", file]);
    assert_success(&normal);
    assert!(normal.stderr.is_empty(), "{}", stderr(&normal));
}

// ---------------------------------------------------------------------------------------------
// 5. --sentences
// ---------------------------------------------------------------------------------------------

#[test]
fn sentences_mode_keeps_each_line_whole() {
    let text = "Il pleut. Il vente.\nLe soleil revient.\n\nUn autre paragraphe. Encore.\n";
    let out = translate(&["-f", "jsonl", "--sentences"], text.as_bytes());
    assert_success(&out);
    let records = jsonl_records(&stdout(&out));
    let fr: Vec<&str> = records
        .iter()
        .map(|r| r["fr"].as_str().expect("fr"))
        .collect();
    assert_eq!(
        fr,
        [
            "Il pleut. Il vente.",
            "Le soleil revient.",
            "Un autre paragraphe. Encore."
        ]
    );
    assert_eq!(
        records[2]["paragraph"], 1,
        "blank lines still separate paragraphs"
    );

    // Without --sentences the lines are segmented.
    let segmented = translate(&["-f", "jsonl"], text.as_bytes());
    assert_success(&segmented);
    assert_eq!(jsonl_records(&stdout(&segmented)).len(), 5);
}

// ---------------------------------------------------------------------------------------------
// 6. stdin, several files, directories
// ---------------------------------------------------------------------------------------------

#[test]
fn stdin_gives_the_same_sentences_as_the_file() {
    let seed = std::fs::read(SEED).expect("seed");
    let from_stdin = translate(&["-f", "jsonl", "-"], &seed);
    assert_success(&from_stdin);
    let default_stdin = translate(&["-f", "jsonl"], &seed);
    assert_success(&default_stdin);
    assert_eq!(
        default_stdin.stdout, from_stdin.stdout,
        "stdin is the default"
    );
    let from_file = translate_files(&["-f", "jsonl", SEED]);
    assert_success(&from_file);

    let stdin_records = jsonl_records(&stdout(&from_stdin));
    let mut file_records = jsonl_records(&stdout(&from_file));
    assert!(stdin_records.iter().all(|r| r["doc"] == "-"));
    for record in &mut file_records {
        record["doc"] = "-".into();
    }
    assert_eq!(stdin_records, file_records);
    assert_matches_segments(&stdin_records, &segment(&["-"], &seed));
}

#[test]
fn several_files_and_a_directory() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("articles");
    std::fs::create_dir_all(root.join("sub/deeper")).expect("mkdir");
    let files = [
        ("b.txt", "Deuxième article. Il fait beau.\n"),
        ("a.md", "Titre\n\nPremier article.\n"),
        ("sub/deeper/c.TXT", "Troisième article.\n"),
        ("sub/d.txt", "Quatrième article.\n"),
        ("notes.json", "{\"pas\": \"du texte\"}\n"),
        ("sub/e.html", "<p>Une <b>page</b>.</p>\n"),
        (
            "sub/f.srt",
            "1\n00:00:01,000 --> 00:00:02,000\nUn sous-titre.\n",
        ),
    ];
    for (name, text) in files {
        std::fs::write(root.join(name), text).expect("write input");
    }

    // A directory: text, Markdown, HTML and subtitle files, recursively, in sorted path
    // order; each read in its own format (the HTML as its text).
    let out = translate_files(&["-f", "jsonl", path_str(&root)]);
    assert_success(&out);
    let records = jsonl_records(&stdout(&out));
    let mut docs: Vec<String> = Vec::new();
    for r in &records {
        let doc = r["doc"].as_str().expect("doc").to_string();
        if docs.last() != Some(&doc) {
            docs.push(doc);
        }
    }
    let expected: Vec<String> = [
        "a.md",
        "b.txt",
        "sub/d.txt",
        "sub/deeper/c.TXT",
        "sub/e.html",
        "sub/f.srt",
    ]
    .iter()
    .map(|f| root.join(f).display().to_string())
    .collect();
    assert_eq!(docs, expected);
    let fr: Vec<&str> = records
        .iter()
        .map(|r| r["fr"].as_str().expect("fr"))
        .collect();
    assert_eq!(
        fr,
        [
            "Titre",
            "Premier article.",
            "Deuxième article.",
            "Il fait beau.",
            "Quatrième article.",
            "Troisième article.",
            "Une page.",
            "Un sous-titre."
        ]
    );

    // Several files, in the order given, each under its own name; stdin among them.
    let a = root.join("b.txt");
    let b = root.join("sub/d.txt");
    let out = translate(
        &["-f", "jsonl", path_str(&a), "-", path_str(&b)],
        "De l'entrée standard.\n".as_bytes(),
    );
    assert_success(&out);
    let records = jsonl_records(&stdout(&out));
    let pairs: Vec<(&str, &str)> = records
        .iter()
        .map(|r| {
            (
                r["doc"].as_str().expect("doc"),
                r["fr"].as_str().expect("fr"),
            )
        })
        .collect();
    assert_eq!(
        pairs,
        [
            (path_str(&a), "Deuxième article."),
            (path_str(&a), "Il fait beau."),
            ("-", "De l'entrée standard."),
            (path_str(&b), "Quatrième article."),
        ]
    );

    // The text format names each document.
    let out = translate_files(&[path_str(&a), path_str(&b)]);
    assert_success(&out);
    let text = stdout(&out);
    assert!(text.contains(&format!("==> {} <==", a.display())), "{text}");
    assert!(text.contains(&format!("==> {} <==", b.display())), "{text}");
}

// ---------------------------------------------------------------------------------------------
// 7. --output is atomic
// ---------------------------------------------------------------------------------------------

/// The names in a folder, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn output_file_is_written_atomically() {
    let dir = tempfile::tempdir().expect("temp dir");
    let good = dir.path().join("good.txt");
    let bad = dir.path().join("bad.txt");
    std::fs::write(&good, "Bonjour tout le monde.\n").expect("write");
    std::fs::write(&bad, b"Bonjour \xff le monde.\n").expect("write");
    let output = dir.path().join("out.jsonl");

    // A run that fails on its second input creates no output file and leaves no temp file.
    let out = translate_files(&[
        "-f",
        "jsonl",
        "-o",
        path_str(&output),
        path_str(&good),
        path_str(&bad),
    ]);
    let err = assert_failure(&out);
    assert!(err.contains("bad.txt"), "{err}");
    assert!(!output.exists(), "a failed run must not create the output");
    assert_eq!(listing(dir.path()), ["bad.txt", "good.txt"]);

    // A pre-existing output file is left unchanged.
    std::fs::write(&output, "previous contents\n").expect("write");
    let out = translate_files(&[
        "-f",
        "jsonl",
        "-o",
        path_str(&output),
        path_str(&good),
        path_str(&bad),
    ]);
    assert_failure(&out);
    assert_eq!(
        std::fs::read_to_string(&output).expect("read"),
        "previous contents\n"
    );
    assert_eq!(listing(dir.path()), ["bad.txt", "good.txt", "out.jsonl"]);

    // Moses: neither file appears.
    let prefix = dir.path().join("corpus");
    let out = translate_files(&[
        "-f",
        "moses",
        "-o",
        path_str(&prefix),
        path_str(&good),
        path_str(&bad),
    ]);
    assert_failure(&out);
    assert_eq!(listing(dir.path()), ["bad.txt", "good.txt", "out.jsonl"]);

    // A successful run replaces the file, and writes nothing on stdout.
    let out = translate_files(&["-f", "jsonl", "-o", path_str(&output), path_str(&good)]);
    assert_success(&out);
    assert!(out.stdout.is_empty());
    let records = jsonl_records(&std::fs::read_to_string(&output).expect("read"));
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["fr"], "Bonjour tout le monde.");
    assert_eq!(listing(dir.path()), ["bad.txt", "good.txt", "out.jsonl"]);
}

// ---------------------------------------------------------------------------------------------
// 8. Bad inputs, bad models, bad devices
// ---------------------------------------------------------------------------------------------

#[test]
fn missing_input_file_is_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("absent.txt");
    let out = translate_files(&[SEED, path_str(&missing)]);
    let err = assert_failure(&out);
    assert!(err.contains(path_str(&missing)), "{err}");
    assert!(
        out.stdout.is_empty(),
        "inputs are checked before translating"
    );
}

#[test]
fn directory_without_text_files_is_an_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("image.png"), b"\x89PNG").expect("write");
    let out = translate_files(&[path_str(dir.path())]);
    let err = assert_failure(&out);
    assert!(err.contains(path_str(dir.path())), "{err}");
    assert!(err.contains(".txt"), "{err}");
}

#[test]
fn invalid_utf8_names_the_file_and_the_byte() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("latin1.txt");
    std::fs::write(&file, b"Le caf\xe9 est ferm\xe9.\n").expect("write");
    let out = translate_files(&[path_str(&file)]);
    let err = assert_failure(&out);
    assert!(err.contains(path_str(&file)), "{err}");
    assert!(err.contains("byte 6"), "{err}");
    assert!(err.contains("--lossy"), "{err}");

    // From stdin too.
    let out = translate(&[], b"Bonjour \xff.\n");
    let err = assert_failure(&out);
    assert!(err.contains("byte 8"), "{err}");

    // --lossy translates it.
    let out = translate_files(&["-f", "jsonl", "--lossy", path_str(&file)]);
    assert_success(&out);
    assert_eq!(
        jsonl_records(&stdout(&out))[0]["fr"],
        "Le caf\u{FFFD} est ferm\u{FFFD}."
    );
}

#[test]
fn empty_input_needs_no_model() {
    for format in ["text", "jsonl", "tsv", "markdown"] {
        for input in [&b""[..], b"\n\n  \n"] {
            let out = run(
                traduire().args([
                    "translate",
                    "--model-dir",
                    "/nonexistent/model",
                    "-f",
                    format,
                ]),
                input,
            );
            assert_success(&out);
            let text = stdout(&out);
            match format {
                "tsv" => assert_eq!(text, "doc\tparagraph\tsentence\tfr\ten\tscore\tflags\n"),
                // Markdown names the (empty) document.
                "markdown" => assert!(!text.contains('|'), "{text:?}"),
                _ => assert_eq!(text, "", "--format {format}"),
            }
        }
    }
    // An empty file is fine as well, and the model is still not needed.
    let dir = tempfile::tempdir().expect("temp dir");
    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, "").expect("write");
    let out = run(
        traduire().args([
            "translate",
            "--model-dir",
            "/nonexistent/model",
            "-f",
            "jsonl",
            path_str(&empty),
        ]),
        b"",
    );
    assert_success(&out);
    assert!(out.stdout.is_empty());
}

/// Translates one sentence with the model in `dir` and returns the failure's stderr.
fn translate_with_broken_model(dir: &Path) -> String {
    let out = run(
        traduire()
            .args(["translate", "--model-dir", path_str(dir)])
            .args(["--max-new-tokens", MAX_NEW_TOKENS]),
        "Bonjour.\n".as_bytes(),
    );
    assert_failure(&out)
}

#[test]
fn model_folder_missing_a_file_is_named() {
    for file in [
        "vocab.json",
        "source.spm",
        "target.spm",
        "config.json",
        "model.safetensors",
    ] {
        let model = model_copy();
        std::fs::remove_file(model.path().join(file)).expect("remove");
        let err = translate_with_broken_model(model.path());
        assert!(err.contains(file), "missing {file}: {err}");
        assert!(
            err.contains(path_str(model.path())),
            "missing {file}: {err}"
        );
    }
}

#[test]
fn corrupt_weights_are_named() {
    let model = model_copy();
    let weights = model.path().join("model.safetensors");
    let bytes = std::fs::read(&weights).expect("read");

    // Truncated: the header promises more bytes than the file has.
    std::fs::write(&weights, &bytes[..bytes.len() / 2]).expect("write");
    let err = translate_with_broken_model(model.path());
    assert!(err.contains("model.safetensors"), "truncated: {err}");

    // Cut inside the header.
    std::fs::write(&weights, &bytes[..20]).expect("write");
    let err = translate_with_broken_model(model.path());
    assert!(err.contains("model.safetensors"), "cut header: {err}");

    // Not a safetensors file at all.
    std::fs::write(&weights, b"this is not a safetensors file").expect("write");
    let err = translate_with_broken_model(model.path());
    assert!(err.contains("model.safetensors"), "garbage: {err}");

    // Empty.
    std::fs::write(&weights, b"").expect("write");
    let err = translate_with_broken_model(model.path());
    assert!(err.contains("model.safetensors"), "empty: {err}");
}

#[test]
fn corrupt_config_and_vocab_are_named() {
    for file in ["config.json", "vocab.json"] {
        let model = model_copy();
        std::fs::write(model.path().join(file), "{ not json").expect("write");
        let err = translate_with_broken_model(model.path());
        assert!(err.contains(file), "corrupt {file}: {err}");
    }
}

#[cfg(not(feature = "cuda"))]
#[test]
fn cuda_without_the_feature_is_a_clear_error() {
    let out = translate(&["--device", "cuda"], "Bonjour.\n".as_bytes());
    let err = assert_failure(&out);
    let lines: Vec<&str> = err.trim().lines().collect();
    assert_eq!(
        lines,
        [
            "error: this traduire was built without CUDA support",
            "hint: rebuild with `cargo build --release --features cuda` (needs the toolkit), or use --device cpu"
        ],
        "{err}"
    );
}

/// Every subcommand that loads a model gives the same two lines, before reading any input.
#[cfg(not(feature = "cuda"))]
#[test]
fn cuda_without_the_feature_is_the_same_clear_error_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let fr = common::root().join("scripts/corpus/fr.txt");
    let en = common::root().join("scripts/corpus/en.txt");
    let (fr, en) = (fr.to_str().unwrap(), en.to_str().unwrap());
    let out = dir.path().join("out");
    let out = out.to_str().unwrap();
    let commands: [&[&str]; 6] = [
        &["translate", "--device", "cuda:1", fr],
        &["corpus", "--device", "cuda", fr, "-o", out],
        &["score", "--device", "cuda", "--src", fr, "--tgt", en],
        &["bench", "--device", "cuda", "--dtype", "f16"],
        &["eval", "--device", "cuda", "--src", fr, "--ref", en],
        &[
            "eval",
            "--device",
            "cuda",
            "--src",
            fr,
            "--ref",
            en,
            "--compare",
            "--beams",
            "1,4",
        ],
    ];
    for args in commands {
        let output = run(traduire().args(args), b"");
        let err = assert_failure(&output);
        let lines: Vec<&str> = err.trim().lines().collect();
        assert_eq!(
            lines,
            [
                "error: this traduire was built without CUDA support",
                "hint: rebuild with `cargo build --release --features cuda` (needs the toolkit), or use --device cpu"
            ],
            "{args:?}: {err}"
        );
        assert!(!dir.path().join("out").exists() && !dir.path().join("out.en").exists());
    }
}

#[test]
fn bf16_on_the_cpu_is_a_clear_error() {
    let out = translate(&["--dtype", "bf16"], "Bonjour.\n".as_bytes());
    let err = assert_failure(&out);
    assert!(
        err.starts_with("error: bf16 is not supported on the CPU"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 2, "{err}");
}

/// Options are checked before the model is looked for: with a model that is not in the cache
/// (offline), a bad option is what the error names, not the missing model.
#[test]
fn options_are_checked_before_the_model_is_resolved() {
    let hf_home = tempfile::tempdir().expect("temp dir");
    for (args, expected) in [
        (vec!["--dtype", "bf16"], "bf16 is not supported on the CPU"),
        (vec!["--device", "cdua"], "cdua"),
        (vec!["--kernels", "sse"], "sse"),
        (vec!["--threads", "0"], "--threads"),
        (vec!["--beams", "100000000"], "--beams"),
    ] {
        let out = run(
            traduire()
                .env("HF_HOME", hf_home.path())
                .args(["translate", "--model", "opus-mt-fr-en", "--offline"])
                .args(&args),
            "Bonjour.\n".as_bytes(),
        );
        let err = assert_failure(&out);
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(
            !err.contains("cache"),
            "{args:?} reached the model lookup: {err}"
        );
    }
}

#[test]
fn bad_option_values_are_refused() {
    for (args, expected) in [
        (vec!["-f", "docx"], "docx"),
        (vec!["--dtype", "f64"], "f64"),
        (vec!["--max-batch-sentences", "0"], "0 is not in 1..=65536"),
        (
            vec!["--max-batch-tokens", "99999999999"],
            "--max-batch-tokens",
        ),
        // Used to wrap around to an 8-token limit (inf) or cap at 9 tokens (nan, 0).
        (
            vec!["--max-length-ratio", "inf"],
            "must be above 0 and at most 1000, or off",
        ),
        (vec!["--max-length-ratio", "nan"], "must be above 0"),
        (vec!["--max-length-ratio", "0"], "must be above 0"),
        (vec!["--max-length-ratio", "-2"], "must be above 0"),
        // Used to abort the process allocating 2 TB.
        (vec!["--beams", "100000000"], "100000000 is not in 1..=128"),
        (vec!["--beams", "0"], "0 is not in 1..=128"),
        (vec!["--threads", "100000"], "100000 is not in 1..=1024"),
        (vec!["--max-new-tokens", "0"], "--max-new-tokens"),
        (vec!["--length-penalty", "inf"], "finite"),
        (vec!["--max-sentence-tokens", "1"], "--max-sentence-tokens"),
    ] {
        let out = translate(&args, "Bonjour.\n".as_bytes());
        let err = assert_failure(&out);
        assert!(err.contains(expected), "{args:?}: {err}");
    }
    // Within clap's ranges but beyond this model's 512 positions: refused after loading,
    // before translating, naming the flag.
    let out = run(
        traduire()
            .arg("translate")
            .arg("--model-dir")
            .arg(model_dir())
            .args(["--max-new-tokens", "600"]),
        "Bonjour.\n".as_bytes(),
    );
    let err = assert_failure(&out);
    assert!(
        err.contains("max_new_tokens = 600 is out of range (1 to 512"),
        "{err}"
    );
    assert!(err.contains("hint: see --max-new-tokens"), "{err}");
    // `off` turns the relative limit off.
    assert_success(&translate(
        &["--max-length-ratio", "off"],
        "Bonjour.\n".as_bytes(),
    ));
}

#[test]
fn help_lists_the_choices() {
    let out = run(traduire().args(["translate", "-h"]), b"");
    assert_success(&out);
    // Help text is wrapped to the terminal: compare with whitespace collapsed.
    let help = stdout(&out)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for choice in [
        "[possible values: f32, f16, bf16, int8]",
        "[possible values: cpu, cuda, cuda:N, metal, metal:N]",
        "[possible values: text, markdown, html, tsv, jsonl, tmx, moses, same]",
        "[possible values: auto, text, markdown, html, srt, vtt]",
        "[possible values: auto, avx512, avx2, portable, candle]",
    ] {
        assert!(help.contains(choice), "{choice} missing from:\n{help}");
    }
}

// ---------------------------------------------------------------------------------------------
// 9. Downloading from the Hub through the CLI
// ---------------------------------------------------------------------------------------------

/// The binary with a given Hub endpoint and cache, and no offline setting.
fn traduire_hub(endpoint: &str, hf_home: &Path) -> Command {
    let mut cmd = traduire();
    cmd.env("HF_ENDPOINT", endpoint)
        .env("HF_HOME", hf_home)
        .env_remove("HF_HUB_OFFLINE")
        .env_remove("HF_HUB_CACHE")
        .env_remove("HF_TOKEN")
        .env_remove("XDG_CACHE_HOME");
    cmd
}

#[test]
fn hub_download_then_offline_cache() {
    let reference = translate_files(&["-f", "jsonl", SEED]);
    assert_success(&reference);
    let hf_home = tempfile::tempdir().expect("temp dir");
    let args = [
        "translate",
        "--model",
        "opus-mt-fr-en",
        "--max-new-tokens",
        MAX_NEW_TOKENS,
        "-f",
        "jsonl",
        SEED,
    ];

    let (endpoint, server) =
        common::hub_server::serve_dir("Helsinki-NLP/opus-mt-fr-en", "refs/pr/4", &model_dir());
    let out = run(traduire_hub(&endpoint, hf_home.path()).args(args), b"");
    assert_success(&out);
    assert!(
        out.stderr.is_empty(),
        "no download bar off a terminal: {}",
        stderr(&out)
    );
    assert!(
        out.stdout == reference.stdout,
        "the Hub model is the same model"
    );
    let requests = server.requests.lock().expect("lock").clone();
    assert!(
        requests
            .iter()
            .any(|r| r.contains("/api/models/Helsinki-NLP/opus-mt-fr-en/revision/refs")),
        "{requests:?}"
    );
    let sha = server.sha.clone();
    drop(server);

    // The standard cache layout, with the revision recorded for offline runs.
    let repo = hf_home
        .path()
        .join("hub/models--Helsinki-NLP--opus-mt-fr-en");
    let snapshot: PathBuf = repo.join("snapshots").join(&sha);
    assert!(snapshot.join("model.safetensors").is_file());
    assert_eq!(
        std::fs::read_to_string(repo.join("refs/refs/pr/4"))
            .expect("ref")
            .trim(),
        sha
    );

    // Offline, the server gone: from the cache.
    let out = run(
        traduire_hub(&endpoint, hf_home.path())
            .env("HF_HUB_OFFLINE", "1")
            .args(args),
        b"",
    );
    assert_success(&out);
    assert!(out.stdout == reference.stdout, "the cached model");

    // --offline does the same.
    let out = run(
        traduire_hub(&endpoint, hf_home.path())
            .arg("translate")
            .arg("--offline")
            .args(&args[1..]),
        b"",
    );
    assert_success(&out);
    assert!(out.stdout == reference.stdout, "--offline");
}

#[test]
fn unreachable_hub_is_a_short_error() {
    let closed = common::hub_server::closed_endpoint();
    let hf_home = tempfile::tempdir().expect("temp dir");
    let out = run(
        traduire_hub(&closed.endpoint, hf_home.path()).args([
            "translate",
            "--model",
            "opus-mt-fr-en",
            "--max-new-tokens",
            MAX_NEW_TOKENS,
        ]),
        "Bonjour.\n".as_bytes(),
    );
    let err = assert_failure(&out);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() <= 2, "at most two lines:\n{err}");
    assert!(err.contains("--model-dir"), "{err}");
    assert!(out.stdout.is_empty());

    // Offline with an empty cache: also short, also pointing at --model-dir.
    let out = run(
        traduire_hub(&closed.endpoint, hf_home.path())
            .env("HF_HUB_OFFLINE", "1")
            .args(["translate", "--model", "opus-mt-fr-en"]),
        "Bonjour.\n".as_bytes(),
    );
    let err = assert_failure(&out);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() <= 2, "at most two lines:\n{err}");
    assert!(err.contains("--model-dir"), "{err}");
}
