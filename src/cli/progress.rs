//! Progress bars on stderr, drawn only when stderr is a terminal.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use traduire::source::DownloadProgress;

/// A bar for model downloads, fed by the library's [`DownloadProgress`] callbacks.
pub struct DownloadBar {
    enabled: bool,
    bar: ProgressBar,
}

impl DownloadBar {
    /// A bar that draws when `enabled` (and stderr is a terminal).
    pub fn new(enabled: bool) -> Self {
        Self {
            enabled,
            bar: ProgressBar::hidden(),
        }
    }
}

impl DownloadProgress for DownloadBar {
    fn start(&mut self, file: &str, bytes: u64) {
        // Called again on retries: start a fresh bar each time.
        self.bar.finish_and_clear();
        if !self.enabled {
            return;
        }
        let style = ProgressStyle::with_template(
            "{msg:24} [{elapsed_precise}] [{wide_bar}] {bytes}/{total_bytes} {bytes_per_sec} ({eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar());
        self.bar = ProgressBar::with_draw_target(Some(bytes), ProgressDrawTarget::stderr())
            .with_style(style)
            .with_message(file.to_string());
    }

    fn advance(&mut self, bytes: u64) {
        self.bar.inc(bytes);
    }

    fn finish(&mut self) {
        self.bar.finish();
    }
}

/// A sentence counter: done of total, rate and ETA; hidden when `enabled` is false.
pub fn sentence_bar(enabled: bool) -> ProgressBar {
    if !enabled {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} {pos}/{len} sentences [{elapsed_precise}] {per_sec} ETA {eta} {msg}",
    ) {
        bar.set_style(style);
    }
    bar
}
