//! Operator data tools: `arbor log dump`, `arbor snapshot dump`, `arbor data check`.
//!
//! They read the files a server leaves in its dataDir / dataLogDir with the storage layer's
//! own readers (`txnlog::scan_segment`, `snapshot::load`, the recovery rules), so what they
//! report is what recovery would see. They never write: files are opened read-only, nothing
//! is repaired, temp files are only reported.
//!
//! - `log`: every txn of a segment or a directory of segments (zkTxnLogToolkit's role).
//! - `snap`: a snapshot's znodes, sessions and ZooKeeper's digest of the tree (zkSnapShotToolkit's).
//! - `check`: every CRC and zxid order, and the verdict recovery would reach.

mod check;
mod log;
mod snap;

use std::io::{self, Write};

pub use check::{data_check, Verdict};
pub use log::log_dump;
pub use snap::snapshot_dump;

use crate::storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("{0}")]
    Storage(#[from] StorageError),
    #[error("{path}: {source}")]
    Io { path: String, source: io::Error },
    #[error("{0}")]
    Usage(String),
    /// stdout was closed (`| head`): stop quietly.
    #[error("output closed")]
    Pipe,
}

fn out_err(e: io::Error) -> ToolError {
    if e.kind() == io::ErrorKind::BrokenPipe {
        ToolError::Pipe
    } else {
        ToolError::Io { path: "stdout".into(), source: e }
    }
}

/// Buffered stdout whose write errors become `ToolError`s.
struct Out(io::BufWriter<io::StdoutLock<'static>>);

impl Out {
    fn new() -> Out {
        Out(io::BufWriter::with_capacity(1 << 16, io::stdout().lock()))
    }
    fn line(&mut self, s: &str) -> Result<(), ToolError> {
        self.0.write_all(s.as_bytes()).and_then(|()| self.0.write_all(b"\n")).map_err(out_err)
    }
    fn raw(&mut self, s: &str) -> Result<(), ToolError> {
        self.0.write_all(s.as_bytes()).map_err(out_err)
    }
    fn finish(mut self) -> Result<(), ToolError> {
        self.0.flush().map_err(out_err)
    }
}

/// `ms` since the Unix epoch as `2025-06-01T12:00:00.123Z` (proleptic Gregorian, UTC).
pub fn utc_time(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let (days, sod) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60,
        ms.rem_euclid(1000)
    )
}

/// Data for people: `"text"` when it is printable UTF-8, else hex; cut at `max` bytes.
pub fn show_data(data: &[u8], max: usize) -> String {
    let cut = &data[..data.len().min(max)];
    let more = if data.len() > max { "…" } else { "" };
    match std::str::from_utf8(cut) {
        Ok(s) if !s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') => format!("{s:?}{more}"),
        _ => format!("0x{}{more}", hex(cut)),
    }
}

pub fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Data for JSON: `{"text": …}` when valid UTF-8, else `{"hex": …}`; `null` for null data.
fn json_data(data: Option<&[u8]>) -> serde_json::Value {
    match data {
        None => serde_json::Value::Null,
        Some(d) => match std::str::from_utf8(d) {
            Ok(s) => serde_json::json!({ "text": s }),
            Err(_) => serde_json::json!({ "hex": hex(d) }),
        },
    }
}

fn acl_text(acl: &[crate::proto::Acl]) -> String {
    acl.iter().map(|a| format!("{}:{}:{}", a.id.scheme, a.id.id, perms_text(a.perms))).collect::<Vec<_>>().join(",")
}

/// `cdrwa`, as zkCli prints permissions.
fn perms_text(p: i32) -> String {
    use crate::proto::perms::*;
    [(CREATE, 'c'), (DELETE, 'd'), (READ, 'r'), (WRITE, 'w'), (ADMIN, 'a')]
        .iter()
        .filter(|(bit, _)| p & bit != 0)
        .map(|(_, c)| *c)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_time_matches_known_instants() {
        assert_eq!(utc_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(utc_time(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(utc_time(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(utc_time(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn data_is_text_or_hex() {
        assert_eq!(show_data(b"hello", 64), "\"hello\"");
        assert_eq!(show_data(&[0, 1, 0xff], 64), "0x0001ff");
        assert_eq!(show_data(b"abcdef", 3), "\"abc\"…");
        assert_eq!(perms_text(31), "cdrwa");
    }
}
