//! `--log-file` rotation by size, as ZooKeeper 3.8's logback setup does it
//! (`zookeeper.log.maxfilesize` 256MB, `zookeeper.log.maxbackupindex` 20, a fixed window):
//! when the next line would take the file past the limit, `FILE.(n-1)` becomes `FILE.n`
//! (the oldest, `FILE.<backups>`, is dropped), `FILE` becomes `FILE.1`, and a new `FILE`
//! starts.
//!
//! A line is never split: the formatter hands each event over in one `write`, and rotation
//! happens only between writes. A failed rotation (a full disk, a read-only directory) is
//! reported once on stderr and the current file goes on growing: losing the log is worse
//! than a large file.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The log file and its backups.
#[derive(Debug)]
pub struct RollingFile {
    path: PathBuf,
    file: File,
    /// Bytes in `file`.
    written: u64,
    max_bytes: u64,
    backups: u32,
    rotation_failed: bool,
}

/// Limits for `RollingFile`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Rolling {
    /// Rotate before a line would take the file past this (0: never).
    pub max_bytes: u64,
    /// Old files kept: `FILE.1` (newest) … `FILE.<backups>` (0: none, the file is restarted).
    pub backups: u32,
}

impl Default for Rolling {
    /// ZooKeeper 3.8's defaults.
    fn default() -> Self {
        Rolling { max_bytes: 256 << 20, backups: 20 }
    }
}

/// A size such as `256M`, `10MB`, `64k`, `4096` (bytes); binary units.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let upper = t.to_ascii_uppercase();
    let digits = upper.trim_end_matches('B');
    let (num, shift) = match digits.chars().last() {
        Some('K') => (&digits[..digits.len() - 1], 10),
        Some('M') => (&digits[..digits.len() - 1], 20),
        Some('G') => (&digits[..digits.len() - 1], 30),
        _ => (digits, 0),
    };
    let n: u64 = num.trim().parse().map_err(|_| format!("{text:?} is not a size (e.g. 256M, 64k, 4096)"))?;
    n.checked_mul(1u64 << shift).ok_or_else(|| format!("{text:?} is too large"))
}

impl RollingFile {
    /// Open `path` for append (created if missing).
    pub fn open(path: &Path, limits: Rolling) -> io::Result<RollingFile> {
        let file = File::options().create(true).append(true).open(path)?;
        let written = file.metadata()?.len();
        Ok(RollingFile {
            path: path.to_path_buf(),
            file,
            written,
            max_bytes: limits.max_bytes,
            backups: limits.backups,
            rotation_failed: false,
        })
    }

    fn backup(&self, n: u32) -> PathBuf {
        let mut name = self.path.as_os_str().to_owned();
        name.push(format!(".{n}"));
        PathBuf::from(name)
    }

    fn rotate(&mut self) -> io::Result<()> {
        if self.backups == 0 {
            // No backups: start the file again.
            self.file = File::create(&self.path)?;
            self.written = 0;
            return Ok(());
        }
        // The oldest goes; each moves up one; the live file becomes .1.
        let oldest = self.backup(self.backups);
        if oldest.exists() {
            fs::remove_file(&oldest)?;
        }
        for n in (1..self.backups).rev() {
            let from = self.backup(n);
            if from.exists() {
                fs::rename(&from, self.backup(n + 1))?;
            }
        }
        fs::rename(&self.path, self.backup(1))?;
        self.file = File::options().create(true).append(true).open(&self.path)?;
        self.written = 0;
        Ok(())
    }
}

impl Write for RollingFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let past = self.written > 0 && self.written + buf.len() as u64 > self.max_bytes;
        if self.max_bytes > 0 && past && !self.rotation_failed {
            if let Err(e) = self.rotate() {
                self.rotation_failed = true;
                // The logger itself cannot log this; stderr is what is left.
                eprintln!("arbor: cannot rotate the log file {}: {e}; it keeps growing", self.path.display());
            }
        }
        // One `write_all`, so a line is never split by a short write.
        self.file.write_all(buf)?;
        self.written += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines_in(path: &Path) -> Vec<String> {
        fs::read_to_string(path).map(|t| t.lines().map(str::to_string).collect()).unwrap_or_default()
    }

    #[test]
    fn rotates_by_size_keeps_the_window_and_never_splits_a_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("arbor.log");
        let mut f = RollingFile::open(&path, Rolling { max_bytes: 100, backups: 3 }).expect("open");
        for i in 0..40 {
            f.write_all(format!("line {i:03} padding\n").as_bytes()).expect("write");
        }
        // 40 lines of 18 bytes, 5 per file: the live file and 3 backups hold the last 20.
        let mut kept = Vec::new();
        for n in (1..=3).rev() {
            let b = dir.path().join(format!("arbor.log.{n}"));
            let l = lines_in(&b);
            assert_eq!(l.len(), 5, "{} holds 5 whole lines: {l:?}", b.display());
            kept.extend(l);
        }
        kept.extend(lines_in(&path));
        assert!(!dir.path().join("arbor.log.4").exists(), "no more than 3 backups");
        let want: Vec<String> = (20..40).map(|i| format!("line {i:03} padding")).collect();
        assert_eq!(kept, want, "the newest lines, in order, none split");
        for p in [path.clone(), dir.path().join("arbor.log.1")] {
            assert!(fs::metadata(&p).expect("meta").len() <= 100);
        }
    }

    #[test]
    fn an_existing_file_counts_and_a_long_line_still_goes_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("x.log");
        fs::write(&path, "old\n").expect("seed");
        let mut f = RollingFile::open(&path, Rolling { max_bytes: 10, backups: 1 }).expect("open");
        let long = "a line longer than the limit\n";
        f.write_all(long.as_bytes()).expect("write");
        assert_eq!(fs::read_to_string(dir.path().join("x.log.1")).expect("backup"), "old\n");
        assert_eq!(fs::read_to_string(&path).expect("live"), long, "an oversized line is written whole");
    }

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("256M"), Ok(256 << 20));
        assert_eq!(parse_size("10MB"), Ok(10 << 20));
        assert_eq!(parse_size("64k"), Ok(64 << 10));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("99999999999G").is_err());
    }
}
