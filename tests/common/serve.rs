//! A `traduire serve` process for tests: started on a free loopback port with the tiny random
//! model (which translates into nonsense: these tests check plumbing, not quality), its log
//! collected, stopped by PID (SIGTERM, then SIGKILL if it lingers) when dropped.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use traduire::marian::ModelOptions;
use traduire::markup::{InputFormat, Markup};
use traduire::segment::SegmentOptions;
use traduire::translator::{Translator, TranslatorOptions};

/// Generated tokens per sentence in every server test (as `tests/cli_translate.rs`).
pub const MAX_NEW_TOKENS: &str = "8";

/// A running server.
pub struct Server {
    child: Option<Child>,
    /// `127.0.0.1:PORT`.
    pub address: String,
    /// Every line it logged so far.
    pub log: Arc<Mutex<Vec<String>>>,
}

/// Starts `traduire serve --model-dir tiny-swish --max-new-tokens 8 --port 0 ARGS...` and
/// waits until `/health` says ready.
pub fn start(args: &[&str]) -> Server {
    let server = spawn(args);
    server.wait_ready();
    server
}

/// Starts the server without waiting for the model.
pub fn spawn(args: &[&str]) -> Server {
    let mut cmd = super::cli::traduire();
    cmd.arg("serve")
        .arg("--model-dir")
        .arg(super::model_dir("tiny-swish"))
        .args([
            "--max-new-tokens",
            MAX_NEW_TOKENS,
            "--port",
            "0",
            "--threads",
            "1",
        ])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .env("RUST_LOG", "info");
    let mut child = cmd.spawn().expect("start traduire serve");
    let stderr = child.stderr.take().expect("stderr");
    let log = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = std::sync::mpsc::channel();
    {
        let log = log.clone();
        // Always drain stderr, or the server would block on a full pipe.
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if !sent {
                    if let Some(rest) = line.split("address=").nth(1) {
                        let address = rest.split_whitespace().next().unwrap_or("").to_string();
                        let _ = tx.send(address);
                        sent = true;
                    }
                }
                log.lock().unwrap().push(line);
            }
        });
    }
    let address = rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| {
            panic!(
                "the server never said where it listens: {:?}",
                log.lock().unwrap()
            )
        });
    Server {
        child: Some(child),
        address,
        log,
    }
}

/// One HTTP answer.
#[derive(Debug, Clone)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Headers, names lowercased.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: String,
}

impl Answer {
    /// The body as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The `error` (LibreTranslate) or `message` (DeepL) of an error answer.
    #[track_caller]
    pub fn error(&self) -> String {
        let json = self.json();
        json.get("error")
            .or_else(|| json.get("message"))
            .and_then(|e| e.as_str())
            .unwrap_or_else(|| panic!("no error message: {}", self.body))
            .to_string()
    }
}

impl Server {
    /// `http://ADDRESS`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Waits until `/health` is 200.
    pub fn wait_ready(&self) {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(60) {
            if self.get("/health").status == 200 {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "the server never became ready: {:?}",
            self.log.lock().unwrap()
        );
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> Answer {
        self.request("GET", path, &[], b"")
    }

    /// `POST path` with a JSON body.
    pub fn post_json(&self, path: &str, body: &serde_json::Value) -> Answer {
        self.request(
            "POST",
            path,
            &[("Content-Type", "application/json")],
            body.to_string().as_bytes(),
        )
    }

    /// Any request, over a fresh connection (`Connection: close`).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Answer {
        request(&self.address, method, path, headers, body)
    }

    /// A metric's value summed over its label sets (0 when absent).
    pub fn metric(&self, name: &str) -> f64 {
        metric(&self.get("/metrics").body, name)
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        signal(self.pid(), "TERM");
        self.wait_exit()
    }

    /// Waits for the process to exit (after a signal sent by the test).
    pub fn wait_exit(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                return status;
            }
            if started.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                panic!("the server did not stop after SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The log so far, one string.
    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            signal(child.id(), "TERM");
            for _ in 0..100 {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Sends a signal to one process, by PID.
pub fn signal(pid: u32, name: &str) {
    let _ = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status();
}

/// A metric's value in a Prometheus text page, summed over its label sets.
pub fn metric(page: &str, name: &str) -> f64 {
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.split(['{', ' ']).next() == Some(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// One HTTP/1.1 request over a fresh connection, read to the end.
pub fn request(
    address: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Answer {
    let mut stream = TcpStream::connect(address).expect("connect to the server");
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).expect("read the answer");
    parse_answer(&raw)
}

/// Parses an HTTP/1.1 answer (Content-Length or chunked body).
pub fn parse_answer(raw: &[u8]) -> Answer {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    if headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"))
    {
        let mut out = Vec::new();
        let mut rest = &body[..];
        while let Some(end) = rest.windows(2).position(|w| w == b"\r\n") {
            let size = usize::from_str_radix(String::from_utf8_lossy(&rest[..end]).trim(), 16)
                .unwrap_or(0);
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[end + 2..end + 2 + size]);
            rest = &rest[end + 2 + size + 2..];
        }
        body = out;
    }
    Answer {
        status,
        headers,
        body: String::from_utf8(body).expect("a UTF-8 body"),
    }
}

/// What the command line gives for `text`: the same model and options as the server's
/// tests, through the same two phases (parse, translate, render).
pub struct Reference {
    translator: Translator,
    options: TranslatorOptions,
}

impl Reference {
    /// The tiny model with the server tests' options.
    pub fn new() -> Self {
        let translator =
            Translator::load(&super::model_dir("tiny-swish"), &ModelOptions::default())
                .expect("load the tiny model");
        let mut decode = translator.default_decode_options();
        decode.max_new_tokens = MAX_NEW_TOKENS.parse().unwrap();
        decode.max_length_ratio = Some(3.0);
        decode.num_return_sequences = 1;
        let options = TranslatorOptions {
            decode,
            batch: Default::default(),
            max_sentence_tokens: 200,
            alignments: false,
        };
        Self {
            translator,
            options,
        }
    }

    /// The English of a plain-text document.
    pub fn text(&self, text: &str) -> String {
        let markup = Markup::parse(
            text.to_string(),
            InputFormat::Text,
            &SegmentOptions::default(),
        )
        .expect("plain text always parses");
        let sentences = markup.sentences();
        let translations = self
            .translator
            .translate(&sentences, &self.options, &mut |_| {})
            .expect("translate");
        markup.render(&translations).expect("render")
    }
}

/// The command line's translation of an HTML fragment with the server tests' options:
/// `traduire translate --input-format html -f same`.
pub fn cli_html(html: &str) -> String {
    let out = super::cli::run(
        super::cli::traduire()
            .arg("translate")
            .arg("--model-dir")
            .arg(super::model_dir("tiny-swish"))
            .args([
                "--max-new-tokens",
                MAX_NEW_TOKENS,
                "--input-format",
                "html",
                "-f",
                "same",
                "--quiet",
            ]),
        html.as_bytes(),
    );
    super::cli::assert_success(&out);
    super::cli::stdout(&out)
}

impl Default for Reference {
    fn default() -> Self {
        Self::new()
    }
}
