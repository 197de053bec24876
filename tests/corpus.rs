//! `traduire corpus` end to end on the tiny random checkpoint (it translates into nonsense:
//! these tests check rows, order, resumption and shards, never the English).

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::cli::{assert_failure, assert_success, run, stderr, traduire};
use serde_json::Value;

/// The corpus command on the tiny model, short outputs.
fn corpus() -> Command {
    let mut cmd = traduire();
    cmd.arg("corpus")
        .arg("--model-dir")
        .arg(common::model_dir("tiny-swish"))
        .args(["--max-new-tokens", "6", "--quiet"])
        // As if not inside a job array, even when the tests run in one.
        .env_remove("SLURM_ARRAY_TASK_ID")
        .env_remove("JOB_COMPLETION_INDEX");
    cmd
}

fn ok(cmd: &mut Command) -> Output {
    let out = run(cmd, b"");
    assert_success(&out);
    out
}

/// `n` pseudo-French lines, about one in ten repeated, a few empty: deterministic.
fn lines(n: usize) -> Vec<String> {
    const WORDS: [&str; 24] = [
        "le",
        "la",
        "gouvernement",
        "a",
        "annoncé",
        "mardi",
        "une",
        "réforme",
        "des",
        "retraites",
        "qui",
        "sera",
        "présentée",
        "au",
        "conseil",
        "des",
        "ministres",
        "en",
        "janvier",
        "les",
        "syndicats",
        "dénoncent",
        "économie",
        "française",
    ];
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..n)
        .map(|i| {
            if i % 37 == 5 {
                return String::new();
            }
            if i % 10 == 9 {
                return "Le gouvernement a annoncé une réforme.".to_string();
            }
            let len = 3 + (next() % 12) as usize;
            let mut words: Vec<&str> = (0..len).map(|_| WORDS[(next() % 24) as usize]).collect();
            words[0] = "Selon";
            words.join(" ") + "."
        })
        .collect()
}

fn write_lines(path: &Path, lines: &[String]) {
    std::fs::write(
        path,
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn lines_in_every_format_keep_order_ids_and_empty_rows() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("corpus.fr");
    let text = lines(120);
    write_lines(&input, &text);

    let out = dir.path().join("out.tsv");
    ok(corpus().args([
        path(&input),
        "-f",
        "tsv",
        "-o",
        path(&out),
        "--window",
        "17",
    ]));
    let tsv = std::fs::read_to_string(&out).unwrap();
    let rows: Vec<Vec<String>> = tsv
        .lines()
        .skip(1)
        .map(|l| l.split('\t').map(common::formats::tsv_unescape).collect())
        .collect();
    assert_eq!(tsv.lines().next(), Some("id\tfr\ten\tscore\tflags"));
    assert_eq!(rows.len(), text.len());
    for (i, (row, fr)) in rows.iter().zip(&text).enumerate() {
        assert_eq!(row[0], format!("{}:{}", input.display(), i + 1));
        assert_eq!(&row[1], fr);
        if fr.is_empty() {
            assert_eq!((row[2].as_str(), row[3].as_str()), ("", "0.0"));
        } else {
            // A log-probability (the tiny model may well generate nothing but the end token).
            assert!(row[3].parse::<f32>().unwrap() <= 0.0, "{row:?}");
        }
    }
    // Repeated sentences share their translation.
    assert_eq!(rows[9][2], rows[19][2]);

    let manifest: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("out.tsv.manifest.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(manifest["rows"], 120);
    assert_eq!(manifest["total_rows"], 120);
    assert_eq!(manifest["shard"], serde_json::json!([0, 1]));

    // The same rows as JSONL and as Moses files; the window does not matter.
    let jsonl = dir.path().join("out.jsonl");
    ok(corpus().args([
        path(&input),
        "-f",
        "jsonl",
        "-o",
        path(&jsonl),
        "--window",
        "1000",
    ]));
    let records: Vec<Value> = std::fs::read_to_string(&jsonl)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 120);
    for (record, row) in records.iter().zip(&rows) {
        assert_eq!(record["id"], row[0].as_str());
        assert_eq!(record["fr"], row[1].as_str());
        assert_eq!(record["en"], row[2].as_str());
        assert_eq!(
            record["line"].as_u64().unwrap().to_string(),
            row[0].rsplit(':').next().unwrap()
        );
    }
    let moses = dir.path().join("moses");
    ok(corpus().args([path(&input), "-o", path(&moses)]));
    let fr = std::fs::read_to_string(dir.path().join("moses.fr")).unwrap();
    let en = std::fs::read_to_string(dir.path().join("moses.en")).unwrap();
    assert_eq!(fr.lines().collect::<Vec<_>>(), text);
    assert_eq!(
        en.lines().collect::<Vec<_>>(),
        rows.iter().map(|r| r[2].as_str()).collect::<Vec<_>>()
    );
}

#[test]
fn compressed_and_directory_inputs_read_the_same_rows() {
    let dir = tempfile::tempdir().unwrap();
    let text = lines(40);
    let plain = dir.path().join("a.txt");
    write_lines(&plain, &text);
    let raw = std::fs::read(&plain).unwrap();
    let gz = dir.path().join("a.txt.gz");
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(&raw).unwrap();
    std::fs::write(&gz, encoder.finish().unwrap()).unwrap();
    let zst = dir.path().join("a.txt.zst");
    std::fs::write(&zst, zstd::encode_all(&raw[..], 3).unwrap()).unwrap();

    let translate = |input: &Path, name: &str| -> Vec<String> {
        let out = dir.path().join(name);
        ok(corpus().args([path(input), "-o", path(&out)]));
        std::fs::read_to_string(dir.path().join(format!("{name}.en")))
            .unwrap()
            .lines()
            .map(String::from)
            .collect()
    };
    let reference = translate(&plain, "plain");
    assert_eq!(translate(&gz, "gz"), reference);
    assert_eq!(translate(&zst, "zst"), reference);

    // A directory: its files in sorted order.
    let sub = dir.path().join("d");
    std::fs::create_dir(&sub).unwrap();
    write_lines(&sub.join("2.txt"), &text[20..]);
    write_lines(&sub.join("1.txt"), &text[..20]);
    assert_eq!(translate(&sub, "dir"), reference);

    // A truncated gzip file is an error naming it, and no output appears.
    let bytes = std::fs::read(&gz).unwrap();
    std::fs::write(&gz, &bytes[..bytes.len() / 2]).unwrap();
    let out = dir.path().join("broken");
    let err = assert_failure(&run(corpus().args([path(&gz), "-o", path(&out)]), b""));
    assert!(
        err.contains(&gz.display().to_string()) && err.contains("truncated or corrupt"),
        "{err}"
    );
    assert!(!dir.path().join("broken.en").exists());
}

#[test]
fn jsonl_input_keeps_its_fields_and_documents_are_segmented() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(
        &input,
        "{\"id\":\"x1\",\"text\":\"Bonjour.\",\"source\":\"web\"}\n{\"text\":\"\",\"n\":2}\n",
    )
    .unwrap();
    let out = dir.path().join("out.jsonl");
    ok(corpus().args([
        path(&input),
        "--field",
        "text",
        "-f",
        "jsonl",
        "-o",
        path(&out),
    ]));
    let records: Vec<Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 2);
    assert_eq!(records[0]["source"], "web");
    assert_eq!(records[0]["text"], "Bonjour.");
    assert_eq!(records[0]["id"], format!("{}:1", input.display()));
    assert!(records[0]["en"].is_string());
    assert_eq!(records[1]["n"], 2);
    assert_eq!(records[1]["en"], "");

    // Bad JSONL: the file and line are named.
    for (content, expected) in [
        ("{\"text\":\"a\"}\n{not json\n", ":2: not a valid JSON line"),
        ("{\"text\":\"a\"}\n{\"other\":1}\n", ":2: no field \"text\""),
        ("{\"text\":3}\n", ":1: field \"text\" is not a string"),
    ] {
        std::fs::write(&input, content).unwrap();
        let err = assert_failure(&run(
            corpus().args([
                path(&input),
                "--field",
                "text",
                "-f",
                "jsonl",
                "-o",
                path(&out),
            ]),
            b"",
        ));
        assert!(
            err.contains(&format!("{}{expected}", input.display())),
            "{err}"
        );
    }

    // Articles: exactly the sentences `segment` finds, with doc:paragraph:sentence ids.
    let seed = common::seed_path();
    let out = dir.path().join("doc.jsonl");
    ok(corpus().args(["--documents", path(&seed), "-f", "jsonl", "-o", path(&out)]));
    let rows: Vec<Value> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let segmented = ok(traduire().args(["segment", "--format", "jsonl", path(&seed)]));
    let sentences: Vec<Value> = String::from_utf8(segmented.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), sentences.len());
    for (row, sentence) in rows.iter().zip(&sentences) {
        assert_eq!(row["fr"], sentence["text"]);
        for field in ["doc", "paragraph", "sentence"] {
            assert_eq!(row[field], sentence[field], "{field}");
        }
        let id = format!(
            "{}:{}:{}",
            seed.display(),
            sentence["paragraph"],
            sentence["sentence"]
        );
        assert_eq!(row["id"], id.as_str());
    }
}

#[test]
fn invalid_utf8_names_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    std::fs::write(&input, b"Bonjour.\nAu revoir \xff.\n").unwrap();
    let out = dir.path().join("out");
    let err = assert_failure(&run(corpus().args([path(&input), "-o", path(&out)]), b""));
    assert!(
        err.contains(&format!("{}:2: invalid UTF-8 at byte 10", input.display())),
        "{err}"
    );
    assert!(err.contains("--lossy"), "{err}");
    ok(corpus().args([path(&input), "-o", path(&out), "--lossy"]));
    let fr = std::fs::read_to_string(dir.path().join("out.fr")).unwrap();
    assert_eq!(fr, "Bonjour.\nAu revoir \u{fffd}.\n");
}

/// Reads the statistics a run wrote with --stats.
fn stats(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn the_cache_serves_later_runs_and_other_options_are_kept_apart() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    let text = lines(60);
    write_lines(&input, &text);
    let cache = dir.path().join("shared.sqlite");
    let st = dir.path().join("stats.json");
    let run_once = |extra: &[&str]| -> Output {
        let out = dir.path().join("out");
        let mut cmd = traduire();
        cmd.arg("corpus")
            .arg("--model-dir")
            .arg(common::model_dir("tiny-swish"))
            .args(["--max-new-tokens", "6"])
            .args([
                path(&input),
                "-o",
                path(&out),
                "--cache",
                path(&cache),
                "--stats",
                path(&st),
            ])
            .args(extra);
        let out = run(&mut cmd, b"");
        assert_success(&out);
        out
    };
    let first = run_once(&[]);
    let non_empty = text.iter().filter(|l| !l.is_empty()).count() as u64;
    let s = stats(&st);
    assert_eq!(s["rows"], 60);
    assert_eq!(s["cache_hits"], 0);
    let distinct = text
        .iter()
        .filter(|l| !l.is_empty())
        .collect::<std::collections::HashSet<_>>()
        .len();
    assert_eq!(s["translated"], distinct as u64);
    let line = stderr(&first);
    assert!(
        line.contains("corpus: 60 rows (0 from the cache)"),
        "{line}"
    );

    run_once(&["--window", "7"]);
    let s = stats(&st);
    assert_eq!(
        (s["cache_hits"].as_u64(), s["translated"].as_u64()),
        (Some(non_empty), Some(0))
    );

    let other = run_once(&["--beams", "2"]);
    let s = stats(&st);
    assert_eq!(s["cache_hits"], 0);
    assert!(
        stderr(&other).contains("other model(s) or option set(s); they are not reused"),
        "{}",
        stderr(&other)
    );
}

/// The uninterrupted output of `input` (fresh cache), as bytes of each output file.
fn reference_output(dir: &Path, input: &Path, format: &str) -> Vec<Vec<u8>> {
    let out = dir.join("reference");
    ok(corpus().args([
        path(input),
        "-f",
        format,
        "-o",
        path(&out),
        "--window",
        "50",
    ]));
    output_files(&out, format)
}

fn output_files(out: &Path, format: &str) -> Vec<Vec<u8>> {
    let names: Vec<PathBuf> = if format == "moses" {
        vec![suffixed(out, ".fr"), suffixed(out, ".en")]
    } else {
        vec![out.to_path_buf()]
    };
    names.iter().map(|n| std::fs::read(n).unwrap()).collect()
}

fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Kills a run with SIGKILL at several points, resumes it each time, and compares the final
/// output with an uninterrupted run: byte for byte, no row lost or repeated, and every
/// distinct sentence stored once.
#[test]
fn killed_runs_resume_to_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    let text = lines(2500);
    write_lines(&input, &text);
    for format in ["tsv", "moses"] {
        let reference = reference_output(dir.path(), &input, format);
        let out = dir.path().join(format!("resumed-{format}"));
        let cache = dir.path().join(format!("resumed-{format}.sqlite"));
        let command = || {
            let mut cmd = corpus();
            cmd.args([
                path(&input),
                "-f",
                format,
                "-o",
                path(&out),
                "--window",
                "50",
            ])
            .args(["--cache", path(&cache)])
            .stdin(Stdio::null());
            cmd
        };
        let mut kills = 0;
        // Random kill delays from a fixed generator: the same points on every run.
        let mut state = 0x9e37_79b9_7f4a_7c15u64 ^ format.len() as u64;
        for _ in 0..5 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let delay = Duration::from_millis(30 + state % 250);
            let mut child = command().spawn().unwrap();
            std::thread::sleep(delay);
            if child.try_wait().unwrap().is_none() {
                child.kill().unwrap(); // SIGKILL
                kills += 1;
            }
            child.wait().unwrap();
        }
        assert!(
            kills >= 2,
            "{format}: the run was too quick to be killed ({kills} kills)"
        );
        assert_success(&command().output().unwrap());
        assert_eq!(
            output_files(&out, format),
            reference,
            "{format}: resumed output differs"
        );
        assert!(!suffixed(&out, ".partial").exists() && !suffixed(&out, ".fr.partial").exists());
        // Nothing duplicated in the store: one row per distinct sentence.
        let distinct = text
            .iter()
            .filter(|l| !l.is_empty())
            .collect::<std::collections::HashSet<_>>()
            .len();
        let stored = rusqlite::Connection::open(&cache)
            .unwrap()
            .query_row("SELECT count(*) FROM translations", [], |r| {
                r.get::<_, i64>(0)
            })
            .unwrap();
        assert_eq!(stored as usize, distinct, "{format}");
    }
}

#[test]
fn shards_merge_into_the_bytes_of_one_run() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    write_lines(&input, &lines(203));
    for format in ["tsv", "jsonl", "moses"] {
        let reference = reference_output(dir.path(), &input, format);
        let shards: Vec<PathBuf> = (0..3)
            .map(|i| dir.path().join(format!("{format}-{i}")))
            .collect();
        for (i, shard) in shards.iter().enumerate() {
            // Shard 1 from the environment, as a Slurm array task would get it.
            let mut cmd = corpus();
            cmd.args([
                path(&input),
                "-f",
                format,
                "-o",
                path(shard),
                "--window",
                "30",
            ]);
            if i == 1 {
                cmd.args(["--shards", "3"]).env("SLURM_ARRAY_TASK_ID", "1");
            } else if i == 2 {
                cmd.args(["--shards", "3"]).env("JOB_COMPLETION_INDEX", "2");
            } else {
                cmd.args(["--shard", "0/3"]);
            }
            ok(&mut cmd);
        }
        let merged = dir.path().join(format!("{format}-merged"));
        let mut cmd = traduire();
        cmd.args(["corpus", "merge", "-o", path(&merged)])
            .args(shards.iter().rev().map(|s| path(s)));
        ok(&mut cmd);
        assert_eq!(output_files(&merged, format), reference, "{format}");
        // The merged manifest is the one-shard run's, but for the file names.
        let manifest = |p: &Path| {
            let mut m: Value = serde_json::from_str(
                &std::fs::read_to_string(suffixed(p, ".manifest.json")).unwrap(),
            )
            .unwrap();
            for file in m["files"].as_array_mut().unwrap() {
                file.as_object_mut().unwrap().remove("name");
            }
            m
        };
        assert_eq!(manifest(&merged), manifest(&dir.path().join("reference")));
        assert_eq!(manifest(&merged)["shard"], serde_json::json!([0, 1]));

        // Incomplete, duplicated or foreign shards are refused.
        let merge = |shards: &[&PathBuf]| {
            let mut cmd = traduire();
            cmd.args(["corpus", "merge", "-o", path(&dir.path().join("bad"))])
                .args(shards.iter().map(|s| path(s)));
            run(&mut cmd, b"")
        };
        let err = assert_failure(&merge(&[&shards[0], &shards[2]]));
        assert!(err.contains("incomplete: missing 1/3"), "{err}");
        let err = assert_failure(&merge(&[&shards[0], &shards[0], &shards[2]]));
        assert!(err.contains("are both shard 0/3"), "{err}");
        let other = dir.path().join(format!("{format}-other"));
        ok(corpus().args([
            path(&input),
            "-f",
            format,
            "-o",
            path(&other),
            "--shard",
            "1/3",
            "--beams",
            "2",
        ]));
        let err = assert_failure(&merge(&[&shards[0], &other, &shards[2]]));
        assert!(err.contains("models or options differ"), "{err}");
    }
    // --shards needs the index from the environment.
    let err = assert_failure(&run(
        corpus().args([
            path(&input),
            "-o",
            path(&dir.path().join("x")),
            "--shards",
            "4",
        ]),
        b"",
    ));
    assert!(
        err.contains("neither SLURM_ARRAY_TASK_ID nor JOB_COMPLETION_INDEX is set"),
        "{err}"
    );
    let err = assert_failure(&run(
        corpus()
            .args([
                path(&input),
                "-o",
                path(&dir.path().join("x")),
                "--shards",
                "4",
            ])
            .env("SLURM_ARRAY_TASK_ID", "4"),
        b"",
    ));
    assert!(
        err.contains("shard 4 is out of range for 4 shards"),
        "{err}"
    );
}

/// A small tmpfs mounted for one test and unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (e.g. "192k") at `at`; `None` where mounting is not permitted
    /// (not root).
    fn mount(at: &Path, size: &str) -> Option<Self> {
        std::fs::create_dir_all(at).unwrap();
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size}"),
                "tmpfs",
                path(at),
            ])
            .stderr(Stdio::null())
            .status();
        matches!(status, Ok(s) if s.success()).then(|| Self(at.to_path_buf()))
    }

    fn remount(&self, options: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,{options}"), path(&self.0)])
            .status()
            .unwrap();
        assert!(status.success(), "remount {options}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// A full disk under the output, a full disk under the store, then a read-only store: each
/// is a clear error naming the file, leaves no output, and the store keeps what was committed
/// (the next run reuses it and writes the uninterrupted run's bytes). Needs root for the
/// tmpfs mounts (CI runs as root); elsewhere it says so and checks nothing.
#[test]
fn full_and_read_only_disks_are_clear_errors_and_keep_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    write_lines(&input, &lines(1500));
    let reference = reference_output(dir.path(), &input, "tsv");
    let Some(disk) = Tmpfs::mount(&dir.path().join("disk"), "128k") else {
        eprintln!("full_and_read_only_disks...: not run, mounting a tmpfs needs root");
        return;
    };
    let stats_of = |st: &Path| stats(st);

    // 1. The output's disk fills up: the cache (elsewhere) keeps every translation.
    let cache = dir.path().join("cache.sqlite");
    let out = disk.0.join("out.tsv");
    let err = assert_failure(&run(
        corpus()
            .args([
                path(&input),
                "-f",
                "tsv",
                "-o",
                path(&out),
                "--window",
                "200",
            ])
            .args(["--cache", path(&cache)]),
        b"",
    ));
    assert!(
        err.contains(&format!(
            "{}.partial: cannot write the output (disk full?)",
            out.display()
        )),
        "{err}"
    );
    assert!(
        !out.exists() && !suffixed(&out, ".partial").exists(),
        "no partial output is left"
    );
    let good = dir.path().join("good.tsv");
    let st = dir.path().join("stats.json");
    ok(corpus()
        .args([
            path(&input),
            "-f",
            "tsv",
            "-o",
            path(&good),
            "--window",
            "200",
        ])
        .args(["--cache", path(&cache), "--stats", path(&st)]));
    assert_eq!(output_files(&good, "tsv"), reference);
    assert!(stats_of(&st)["cache_hits"].as_u64().unwrap() > 0);

    // 2. The store's disk fills up: a clear error; after more space, the run resumes.
    let cache = disk.0.join("cache.sqlite");
    let out = dir.path().join("out2.tsv");
    let err = assert_failure(&run(
        corpus()
            .args([
                path(&input),
                "-f",
                "tsv",
                "-o",
                path(&out),
                "--window",
                "200",
            ])
            .args(["--cache", path(&cache)]),
        b"",
    ));
    assert!(err.contains(&format!("cache {}", cache.display())), "{err}");
    assert!(err.contains("disk full"), "{err}");
    assert!(!out.exists() && !suffixed(&out, ".partial").exists());
    disk.remount("size=16m");
    ok(corpus()
        .args([
            path(&input),
            "-f",
            "tsv",
            "-o",
            path(&out),
            "--window",
            "200",
        ])
        .args(["--cache", path(&cache), "--stats", path(&st)]));
    assert_eq!(output_files(&out, "tsv"), reference);
    assert!(
        stats_of(&st)["cache_hits"].as_u64().unwrap() > 0,
        "the committed translations were kept"
    );

    // 3. A read-only store: a clear error, then the same store serves the next run whole.
    disk.remount("ro");
    let out = dir.path().join("out3.tsv");
    let command = || {
        let mut cmd = corpus();
        cmd.args([
            path(&input),
            "-f",
            "tsv",
            "-o",
            path(&out),
            "--cache",
            path(&cache),
        ])
        .args(["--stats", path(&st)]);
        cmd
    };
    let err = assert_failure(&run(&mut command(), b""));
    assert!(
        err.contains(&format!("cache {}", cache.display())) && err.contains("read-only"),
        "{err}"
    );
    assert!(!out.exists());
    disk.remount("rw");
    ok(&mut command());
    assert_eq!(output_files(&out, "tsv"), reference);
    assert_eq!(
        stats_of(&st)["translated"],
        0,
        "every translation came from the store"
    );
}

/// `--alignments` (TSV and JSONL): every row gains Marian's hard alignment; the store keeps
/// it, so a second run is served from the store with the same bytes; a store made without
/// alignments is translated again rather than giving rows without one; shards with
/// alignments merge into the one-shard bytes and cannot be merged with shards without them;
/// moses refuses the option before any work.
#[test]
fn alignments_are_stored_resumed_and_merged() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.txt");
    write_lines(&input, &lines(61));
    let pharaoh = regex::Regex::new(r"^(\d+-\d+( \d+-\d+)*)?$").unwrap();
    let cache = dir.path().join("shared.sqlite");
    let run_to = |out: &Path, format: &str, extra: &[&str]| {
        let mut cmd = corpus();
        cmd.args([
            path(&input),
            "-f",
            format,
            "-o",
            path(out),
            "--window",
            "20",
        ])
        .args(["--cache", path(&cache)])
        .args(extra);
        ok(&mut cmd);
        std::fs::read(out).unwrap()
    };
    // First without alignments (fills the store), then with: the stored rows lack one, so
    // only the repeats within the run itself come from the store, as in the first run.
    let st = dir.path().join("stats.json");
    let plain = run_to(
        &dir.path().join("plain.tsv"),
        "tsv",
        &["--stats", path(&st)],
    );
    let repeats = stats(&st)["cache_hits"].clone();
    let aligned = run_to(
        &dir.path().join("aligned.tsv"),
        "tsv",
        &["--alignments", "--stats", path(&st)],
    );
    assert_eq!(
        stats(&st)["cache_hits"],
        repeats,
        "rows without alignments reused"
    );
    assert_eq!(stats(&st)["translated"], stats_translated_all(&input));
    let again = run_to(
        &dir.path().join("again.tsv"),
        "tsv",
        &["--alignments", "--stats", path(&st)],
    );
    assert_eq!(stats(&st)["translated"], 0, "served from the store");
    assert_eq!(again, aligned, "served from the store, the same bytes");
    let plain = String::from_utf8(plain).unwrap();
    let aligned = String::from_utf8(aligned).unwrap();
    assert_eq!(
        aligned.lines().next(),
        Some("id\tfr\ten\tscore\tflags\talignment")
    );
    for (with, without) in aligned.lines().zip(plain.lines()).skip(1) {
        let (rest, alignment) = with.rsplit_once('\t').unwrap();
        assert_eq!(rest, without, "alignments change the rows");
        assert!(pharaoh.is_match(alignment), "{with}");
    }
    let jsonl = run_to(
        &dir.path().join("aligned.jsonl"),
        "jsonl",
        &["--alignments"],
    );
    for line in String::from_utf8(jsonl).unwrap().lines() {
        let record: Value = serde_json::from_str(line).unwrap();
        assert!(
            pharaoh.is_match(record["alignment"].as_str().unwrap()),
            "{line}"
        );
    }

    // Shards with alignments merge into the one-shard bytes; not with shards without.
    let shard = |i: usize, extra: &[&str]| {
        let out = dir.path().join(format!("shard-{i}{}.tsv", extra.len()));
        let mut cmd = corpus();
        cmd.args([path(&input), "-f", "tsv", "-o", path(&out)])
            .args(["--shard", &format!("{i}/2")])
            .args(extra);
        ok(&mut cmd);
        out
    };
    let shards = [shard(0, &["--alignments"]), shard(1, &["--alignments"])];
    let merged = dir.path().join("merged.tsv");
    let mut cmd = traduire();
    cmd.args(["corpus", "merge", "-o", path(&merged)])
        .args(shards.iter().map(|s| path(s)));
    ok(&mut cmd);
    assert_eq!(std::fs::read_to_string(&merged).unwrap(), aligned);
    let mixed = [shards[0].clone(), shard(1, &[])];
    let mut cmd = traduire();
    cmd.args(["corpus", "merge", "-o", path(&dir.path().join("bad.tsv"))])
        .args(mixed.iter().map(|s| path(s)));
    let err = assert_failure(&run(&mut cmd, b""));
    assert!(err.contains("formats differ"), "{err}");

    let mut cmd = corpus();
    cmd.args([
        path(&input),
        "-o",
        path(&dir.path().join("m")),
        "--alignments",
    ]);
    let err = assert_failure(&run(&mut cmd, b""));
    assert!(err.contains("moses"), "{err}");
}

/// The distinct non-empty lines of `input`: what a run with an empty store translates.
fn stats_translated_all(input: &Path) -> Value {
    let text = std::fs::read_to_string(input).unwrap();
    let distinct: std::collections::HashSet<&str> =
        text.lines().filter(|l| !l.is_empty()).collect();
    Value::from(distinct.len())
}
