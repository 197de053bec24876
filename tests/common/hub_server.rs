//! A tiny Hugging Face Hub imitation for tests: serves one model repo at one revision from a
//! local folder, over plain HTTP on a loopback port.
//!
//! It speaks just enough of the Hub protocol for hf-hub 0.4's sync client:
//! - `GET /api/models/{repo}/revision/{rev}` → `{"id", "sha", "siblings": [{"rfilename"}]}`
//! - `GET /{repo}/resolve/{rev-or-sha}/{file}` → the file, with `x-repo-commit` and `etag`;
//!   weights (`*.safetensors`, `*.bin`) are answered like LFS files on the real Hub: a `302` to
//!   an absolute "CDN" URL with `x-linked-etag` / `x-linked-size`, and the CDN serves the bytes.
//! - `Range: bytes=a-b` requests get `206` with `Content-Range` (hf-hub reads the file size
//!   from it).
//! - Unknown repo / revision / file: `404` with the Hub's `X-Error-Code` header.
//!
//! The server stops when the returned [`HubServer`] is dropped. Its listening socket is bound to
//! port 0 and kept for the server's whole life, so no other process can take the port.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// A running fake Hub; stops on drop.
pub struct HubServer {
    /// Base URL to use as the Hub endpoint, e.g. `http://127.0.0.1:41234`.
    pub endpoint: String,
    /// The commit sha the served revision resolves to.
    pub sha: String,
    /// Request lines received so far (`GET /path`), for assertions.
    pub requests: Arc<Mutex<Vec<String>>>,
    /// `Authorization` header values received so far.
    pub auth_headers: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for HubServer {
    fn drop(&mut self) {
        // The accept loop polls this flag (its listener is non-blocking).
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Accepts connections on a non-blocking `listener` until `stop` is set, handing each to
/// `serve` on a thread of its own.
fn accept_until_stopped(
    listener: TcpListener,
    stop: Arc<AtomicBool>,
    serve: impl Fn(TcpStream) + Send + Sync + 'static,
) -> JoinHandle<()> {
    listener
        .set_nonblocking(true)
        .expect("non-blocking listener");
    let serve = Arc::new(serve);
    std::thread::spawn(move || {
        while !stop.load(Ordering::SeqCst) {
            match listener.accept() {
                Ok((stream, _)) => {
                    let _ = stream.set_nonblocking(false);
                    let serve = serve.clone();
                    // One thread per connection: hf-hub may hold a connection while opening
                    // another.
                    std::thread::spawn(move || serve(stream));
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    })
}

/// An endpoint that is bound but answers nothing: every connection is closed at once, so a
/// client sees a transport error, as with an unreachable Hub. Stops on drop.
pub struct ClosedEndpoint {
    /// The base URL, e.g. `http://127.0.0.1:41234`.
    pub endpoint: String,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for ClosedEndpoint {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Starts a [`ClosedEndpoint`] on a loopback port.
pub fn closed_endpoint() -> ClosedEndpoint {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let endpoint = format!("http://{}", listener.local_addr().expect("local addr"));
    let stop = Arc::new(AtomicBool::new(false));
    let thread = accept_until_stopped(listener, stop.clone(), |stream| {
        let _ = stream.shutdown(std::net::Shutdown::Both);
    });
    ClosedEndpoint {
        endpoint,
        stop,
        thread: Some(thread),
    }
}

struct Repo {
    repo: String,
    revision: String,
    sha: String,
    /// file name → contents
    files: BTreeMap<String, Vec<u8>>,
}

/// Serves every regular file directly inside `dir` as repo `repo` at `revision`.
/// Returns the endpoint URL and the server handle (keep it alive while downloading).
pub fn serve_dir(repo: &str, revision: &str, dir: &Path) -> (String, HubServer) {
    let mut files = BTreeMap::new();
    for entry in std::fs::read_dir(dir).expect("fixture dir readable") {
        let entry = entry.expect("fixture dir entry");
        if entry.file_type().expect("file type").is_file() {
            let name = entry.file_name().to_string_lossy().into_owned();
            files.insert(
                name,
                std::fs::read(entry.path()).expect("fixture file readable"),
            );
        }
    }
    let server = serve_files(repo, revision, files);
    (server.endpoint.clone(), server)
}

/// Serves the given in-memory files as repo `repo` at `revision`.
pub fn serve_files(repo: &str, revision: &str, files: BTreeMap<String, Vec<u8>>) -> HubServer {
    let sha = fake_sha(repo, revision, &files);
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let addr = listener.local_addr().expect("local addr");
    let endpoint = format!("http://{addr}");
    let repo = Arc::new(Repo {
        repo: repo.to_string(),
        revision: revision.to_string(),
        sha: sha.clone(),
        files,
    });
    let stop = Arc::new(AtomicBool::new(false));
    let requests = Arc::new(Mutex::new(Vec::new()));
    let auth_headers = Arc::new(Mutex::new(Vec::new()));
    let thread = {
        let (requests, auth_headers, endpoint) =
            (requests.clone(), auth_headers.clone(), endpoint.clone());
        accept_until_stopped(listener, stop.clone(), move |stream| {
            let _ = handle(stream, &repo, &endpoint, &requests, &auth_headers);
        })
    };
    HubServer {
        endpoint,
        sha,
        requests,
        auth_headers,
        stop,
        thread: Some(thread),
    }
}

/// A deterministic 40-hex-digit "commit sha" (FNV-1a based; only needs to be stable and
/// different for different contents).
fn fake_sha(repo: &str, revision: &str, files: &BTreeMap<String, Vec<u8>>) -> String {
    let mut out = String::new();
    for seed in 0u64..3 {
        let mut h = 0xcbf2_9ce4_8422_2325u64 ^ seed;
        let mut eat = |bytes: &[u8]| {
            for b in bytes {
                h ^= u64::from(*b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        };
        eat(repo.as_bytes());
        eat(revision.as_bytes());
        for (name, data) in files {
            eat(name.as_bytes());
            eat(data);
        }
        out.push_str(&format!("{h:016x}"));
    }
    out.truncate(40);
    out
}

/// Content hash used as etag: 64 hex digits for LFS-like files (like the Hub's sha256),
/// 40 for the others (like a git blob sha1).
fn fake_etag(data: &[u8], len: usize) -> String {
    let mut files = BTreeMap::new();
    files.insert(String::new(), data.to_vec());
    let mut s = fake_sha("", "", &files);
    s.push_str(&fake_sha("etag", "", &files));
    s.truncate(len);
    s
}

fn is_lfs(name: &str) -> bool {
    name.ends_with(".safetensors") || name.ends_with(".bin")
}

struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

fn not_found(code: &str, message: &str) -> Response {
    Response {
        status: 404,
        headers: vec![
            ("X-Error-Code".into(), code.into()),
            ("X-Error-Message".into(), message.into()),
            ("Content-Type".into(), "application/json".into()),
        ],
        body: format!("{{\"error\":\"{message}\"}}").into_bytes(),
    }
}

fn handle(
    stream: TcpStream,
    repo: &Repo,
    endpoint: &str,
    requests: &Mutex<Vec<String>>,
    auth_headers: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let mut parts = request_line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let mut range = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            let (name, value) = (name.trim().to_ascii_lowercase(), value.trim().to_string());
            match name.as_str() {
                "range" => range = Some(value),
                "authorization" => auth_headers.lock().unwrap().push(value),
                _ => {}
            }
        }
    }
    if method.is_empty() {
        return Ok(());
    }
    requests.lock().unwrap().push(format!("{method} {target}"));
    let response = route(target, range.as_deref(), repo, endpoint);
    write_response(stream, method == "HEAD", response)
}

fn route(target: &str, range: Option<&str>, repo: &Repo, endpoint: &str) -> Response {
    let path = target.split('?').next().unwrap_or("");
    let known_rev = |rev: &str| {
        let rev = rev.replace("%2F", "/").replace("%2f", "/");
        rev == repo.revision || rev == repo.sha
    };
    if let Some(rest) = path.strip_prefix("/api/models/") {
        let Some((name, rev)) = rest.split_once("/revision/") else {
            return not_found("RepoNotFound", "Repository not found");
        };
        if name != repo.repo {
            return not_found("RepoNotFound", "Repository not found");
        }
        if !known_rev(rev) {
            return not_found("RevisionNotFound", "Invalid rev id");
        }
        let siblings: Vec<String> = repo
            .files
            .keys()
            .map(|f| format!("{{\"rfilename\":\"{f}\"}}"))
            .collect();
        let body = format!(
            "{{\"id\":\"{}\",\"modelId\":\"{}\",\"sha\":\"{}\",\"siblings\":[{}]}}",
            repo.repo,
            repo.repo,
            repo.sha,
            siblings.join(",")
        );
        return Response {
            status: 200,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.into_bytes(),
        };
    }
    if let Some(etag) = path.strip_prefix("/cdn/") {
        // The "CDN": serves LFS blobs by content hash, without Hub headers (like S3/CloudFront).
        return match repo.files.values().find(|d| fake_etag(d, 64) == etag) {
            Some(data) => ranged(data, range, Vec::new()),
            None => not_found("EntryNotFound", "blob not found"),
        };
    }
    let Some((name, rest)) = path.trim_start_matches('/').split_once("/resolve/") else {
        return not_found("RepoNotFound", "Repository not found");
    };
    if name != repo.repo {
        return not_found("RepoNotFound", "Repository not found");
    }
    let Some((rev, file)) = rest.split_once('/') else {
        return not_found("EntryNotFound", "Entry not found");
    };
    if !known_rev(rev) {
        return not_found("RevisionNotFound", "Invalid rev id");
    }
    let Some(data) = repo.files.get(file) else {
        return not_found("EntryNotFound", "Entry not found");
    };
    let commit = ("X-Repo-Commit".to_string(), repo.sha.clone());
    if is_lfs(file) {
        let oid = fake_etag(data, 64);
        Response {
            status: 302,
            headers: vec![
                commit,
                ("X-Linked-Etag".into(), format!("\"{oid}\"")),
                ("X-Linked-Size".into(), data.len().to_string()),
                (
                    "ETag".into(),
                    format!("\"{}\"", fake_etag(oid.as_bytes(), 40)),
                ),
                ("Location".into(), format!("{endpoint}/cdn/{oid}")),
            ],
            body: Vec::new(),
        }
    } else {
        let etag = ("ETag".to_string(), format!("\"{}\"", fake_etag(data, 40)));
        ranged(data, range, vec![commit, etag])
    }
}

/// 200 with the whole body, or 206 with the requested `bytes=a-b` / `bytes=a-` slice.
fn ranged(data: &[u8], range: Option<&str>, mut headers: Vec<(String, String)>) -> Response {
    let len = data.len();
    let parsed = range.and_then(|r| r.strip_prefix("bytes=")).and_then(|r| {
        let (a, b) = r.split_once('-')?;
        let start: usize = a.parse().ok()?;
        let end: usize = if b.is_empty() {
            len.checked_sub(1)?
        } else {
            b.parse().ok()?
        };
        Some((start, end.min(len.checked_sub(1)?)))
    });
    headers.push(("Accept-Ranges".into(), "bytes".into()));
    match parsed {
        Some((start, end)) if start <= end => {
            headers.push(("Content-Range".into(), format!("bytes {start}-{end}/{len}")));
            Response {
                status: 206,
                headers,
                body: data[start..=end].to_vec(),
            }
        }
        Some(_) => {
            headers.push(("Content-Range".into(), format!("bytes */{len}")));
            Response {
                status: 416,
                headers,
                body: Vec::new(),
            }
        }
        None => Response {
            status: 200,
            headers,
            body: data.to_vec(),
        },
    }
}

fn write_response(mut stream: TcpStream, head: bool, r: Response) -> std::io::Result<()> {
    let reason = match r.status {
        200 => "OK",
        206 => "Partial Content",
        302 => "Found",
        404 => "Not Found",
        416 => "Range Not Satisfiable",
        _ => "Unknown",
    };
    let mut out = format!("HTTP/1.1 {} {reason}\r\n", r.status);
    for (name, value) in &r.headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        r.body.len()
    ));
    stream.write_all(out.as_bytes())?;
    if !head {
        stream.write_all(&r.body)?;
    }
    stream.flush()
}
