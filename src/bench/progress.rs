//! The live progress line of `arbor bench` (indicatif): last second's ops/s, p50 and p99 of
//! the measured window so far, errors. indicatif draws nothing when stderr is not a terminal,
//! so scripts and tests see only the report.

use indicatif::{ProgressBar, ProgressStyle};

use super::report::fmt_us;
use super::{Observer, Second, SoFar};

pub struct Progress {
    bar: ProgressBar,
}

impl Progress {
    pub fn new(total_seconds: u64) -> Progress {
        let bar = ProgressBar::new(total_seconds.max(1));
        let style = ProgressStyle::with_template("{elapsed:>4} [{bar:24}] {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        bar.set_style(style);
        Progress { bar }
    }
}

impl Observer for Progress {
    fn on_second(&mut self, s: &Second, so_far: &SoFar) {
        self.bar.set_position(u64::from(s.second) + 1);
        let msg = if so_far.ops == 0 {
            format!("{} {} ops/s", if s.warmup { "warm-up" } else { "no replies yet," }, s.ops)
        } else {
            format!(
                "{} ops/s | so far p50 {} p99 {} | errors {}",
                s.ops,
                fmt_us(so_far.p50_us),
                fmt_us(so_far.p99_us),
                so_far.errors
            )
        };
        self.bar.set_message(msg);
    }

    fn on_finish(&mut self) {
        self.bar.finish_and_clear();
    }
}
