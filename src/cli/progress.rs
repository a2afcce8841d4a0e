//! Progress on stderr for long runs (`convert`, `simulate`, `sweep`, `store verify`): an indicatif
//! bar on a terminal, nothing at all when stderr is not a terminal (a pipe, a file, CI) or when
//! the user asked for quiet, so redirected output and logs never carry bar redraws.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A progress bar that hides itself off a terminal. `Sync`: worker threads advance it through a
/// shared reference. Dropped (an error on the way), it clears itself.
pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    /// A bar headed `prefix` counting `unit` (e.g. "chunks", "minutes"); its length can be set
    /// later with [`set_total`](Self::set_total). Hidden when stderr is not a terminal or `quiet`.
    pub fn new(prefix: &str, unit: &str, quiet: bool) -> Self {
        let shown = !quiet && std::io::stderr().is_terminal();
        Self::with_target(prefix, unit, shown)
    }

    fn with_target(prefix: &str, unit: &str, shown: bool) -> Self {
        let target = if shown { ProgressDrawTarget::stderr() } else { ProgressDrawTarget::hidden() };
        let bar = ProgressBar::with_draw_target(None, target);
        let template =
            format!("{{prefix}} [{{bar:30}}] {{pos}}/{{len}} {unit}, {{elapsed}} elapsed, ~{{eta}} left");
        bar.set_style(
            ProgressStyle::with_template(&template).expect("a valid template").progress_chars("=> "),
        );
        bar.set_prefix(prefix.to_string());
        if shown {
            bar.enable_steady_tick(Duration::from_millis(200));
        }
        Progress { bar }
    }

    pub fn set_total(&self, total: u64) {
        self.bar.set_length(total);
    }

    pub fn inc(&self, n: u64) {
        self.bar.inc(n);
    }

    /// For runs that report where they are rather than steps done (simulated minutes).
    #[allow(dead_code, reason = "for simulate's progress, wired with the fleet engine's rewrite")]
    pub fn set_position(&self, pos: u64) {
        self.bar.set_position(pos);
    }

    /// Removes the bar (call before printing the result).
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        // Leave no half-drawn bar above an error message.
        if !self.bar.is_finished() {
            self.bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_bars_count_silently() {
        let p = Progress::with_target("convert", "chunks", false);
        assert!(p.bar.is_hidden());
        p.set_total(10);
        p.inc(3);
        p.set_position(7);
        p.finish();
    }
}
