//! Running the real `traduire` binary.

use std::io::Write;
use std::process::{Command, Output, Stdio};

/// The binary with stdin, stdout and stderr piped and the Hub environment neutralised, so that
/// no test can ever reach the network or a real cache.
pub fn traduire() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_traduire"));
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("HF_HUB_OFFLINE", "1")
        .env("HF_ENDPOINT", "http://127.0.0.1:9")
        .env_remove("HF_TOKEN")
        .env_remove("HF_HUB_CACHE")
        .env_remove("SLURM_ARRAY_TASK_ID")
        .env_remove("JOB_COMPLETION_INDEX");
    cmd
}

/// Runs `cmd` with `stdin` as its standard input.
pub fn run(cmd: &mut Command, stdin: &[u8]) -> Output {
    let mut child = cmd.spawn().expect("run traduire");
    let mut pipe = child.stdin.take().expect("stdin");
    // A run that fails before reading stdin closes the pipe: not an error here.
    let _ = pipe.write_all(stdin);
    drop(pipe);
    child.wait_with_output().expect("wait for traduire")
}

/// Standard output as UTF-8.
pub fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("UTF-8 output")
}

/// Standard error, lossily decoded.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Asserts a successful run, showing stderr otherwise.
#[track_caller]
pub fn assert_success(out: &Output) {
    assert!(
        out.status.success(),
        "traduire failed ({}):\n{}",
        out.status,
        stderr(out)
    );
}

/// Asserts a failure with a message (no panic, no backtrace) and returns stderr.
#[track_caller]
pub fn assert_failure(out: &Output) -> String {
    let err = stderr(out);
    assert!(
        !out.status.success(),
        "traduire should have failed; stderr:\n{err}"
    );
    assert!(
        matches!(out.status.code(), Some(1 | 2)),
        "exit code; stderr:\n{err}"
    );
    assert!(err.contains("error:"), "no error message:\n{err}");
    assert!(!err.contains("panicked"), "traduire panicked:\n{err}");
    err
}
