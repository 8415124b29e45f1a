//! The server's log: `tracing` events written one per line as
//!
//! ```text
//! 2025-06-01T12:00:00.123456Z  INFO [myid:1] election over round=3 votes=2 leader=1 took_ms=214
//! ```
//!
//! a UTC timestamp, the level, the server id (ZooKeeper's `[myid:N]`), the message and the
//! event's fields as `key=value`. Every line of a process carries its id, whichever thread
//! logged it (the sync thread, a snapshot helper), because the formatter adds it, not a span.
//!
//! Filter: `--log-level` when given, else `RUST_LOG`, else `info`. Both take `tracing`'s
//! directives (`debug`, `arbor::server=debug,info`). Output: stderr, or `--log-file` (opened
//! for append, created if missing, rotated by size: `rolling`); with a file, errors are also
//! copied to stderr, so an operator who started the node by hand sees why it stopped.
//!
//! Why `tracing` and not a hand-rolled logger: levels, per-module filters (`RUST_LOG`), and
//! structured fields come with it, the macros cost a branch when a level is off, and the
//! operator-facing format is one `FormatEvent` here.

pub mod rolling;

use std::fmt;
use std::path::Path;
use std::sync::Mutex;

use tracing::{Event, Subscriber};
use tracing_subscriber::filter::{EnvFilter, LevelFilter};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// Why logging could not be set up (before anything is logged, so these go to stderr).
#[derive(Debug, thiserror::Error)]
pub enum LogSetupError {
    #[error("bad log filter {spec:?}: {reason}")]
    Filter { spec: String, reason: String },
    #[error("cannot open the log file {path}: {source}")]
    File { path: String, source: std::io::Error },
    #[error("a logger is already installed")]
    AlreadySet,
}

/// One line per event: `TIME LEVEL [myid:N] message key=value…`.
struct LineFormat {
    server: u64,
}

impl<S, N> FormatEvent<S, N> for LineFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut w: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        SystemTime.format_time(&mut w)?;
        write!(w, " {:>5} [myid:{}] ", event.metadata().level(), self.server)?;
        ctx.field_format().format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}

/// The filter: `level` (from `--log-level`) wins over `RUST_LOG`; `info` when neither.
fn filter(level: Option<&str>) -> Result<EnvFilter, LogSetupError> {
    let spec = match level {
        Some(l) => l.to_string(),
        None => std::env::var("RUST_LOG").ok().filter(|s| !s.trim().is_empty()).unwrap_or_else(|| "info".into()),
    };
    EnvFilter::builder()
        .with_default_directive(LevelFilter::INFO.into())
        .parse(&spec)
        .map_err(|e| LogSetupError::Filter { spec, reason: e.to_string() })
}

fn line_layer<S>(server: u64) -> tracing_subscriber::fmt::Layer<S, tracing_subscriber::fmt::format::DefaultFields, LineFormat>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    tracing_subscriber::fmt::layer().event_format(LineFormat { server }).with_ansi(false)
}

/// Install the process-wide logger for server `server`; a log file rotates by `rolling`.
pub fn init(server: u64, level: Option<&str>, file: Option<&Path>, rolling: rolling::Rolling) -> Result<(), LogSetupError> {
    let filter = filter(level)?;
    let installed = match file {
        None => tracing::subscriber::set_global_default(
            tracing_subscriber::registry().with(line_layer(server).with_writer(std::io::stderr).with_filter(filter)),
        ),
        Some(path) => {
            let f = rolling::RollingFile::open(path, rolling)
                .map_err(|source| LogSetupError::File { path: path.display().to_string(), source })?;
            tracing::subscriber::set_global_default(
                tracing_subscriber::registry()
                    .with(line_layer(server).with_writer(Mutex::new(f)).with_filter(filter))
                    .with(line_layer(server).with_writer(std::io::stderr).with_filter(LevelFilter::ERROR)),
            )
        }
    };
    installed.map_err(|_| LogSetupError::AlreadySet)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_flag_wins_and_bad_directives_are_named() {
        assert!(filter(Some("debug")).is_ok());
        assert!(filter(Some("arbor::server=debug,info")).is_ok());
        let err = filter(Some("arbor=notalevel")).unwrap_err().to_string();
        assert!(err.contains("arbor=notalevel"), "{err}");
    }
}
