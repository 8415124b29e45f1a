//! Small durable-file helpers shared by the txn log, snapshots and epoch files.
//!
//! Durability on Linux needs three things: the file's data on disk (`fsync`/`fdatasync`),
//! the directory entry on disk (`fsync` of the directory after a create or rename), and an
//! atomic switch from old to new contents (write a temp file, then `rename`).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::io::AsRawFd;
use std::path::Path;

use super::StorageError;

/// fsync a directory so that creates, renames and unlinks inside it survive a crash.
pub fn sync_dir(dir: &Path) -> Result<(), StorageError> {
    let d = File::open(dir).map_err(|e| StorageError::io(dir, e))?;
    d.sync_all().map_err(|e| StorageError::io(dir, e))
}

/// Replace `path` with `bytes` atomically: temp file, fsync, rename, directory fsync.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StorageError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp).map_err(|e| StorageError::io(&tmp, e))?;
    f.write_all(bytes).map_err(|e| StorageError::io(&tmp, e))?;
    f.sync_all().map_err(|e| StorageError::io(&tmp, e))?;
    drop(f);
    fs::rename(&tmp, path).map_err(|e| StorageError::io(path, e))?;
    sync_dir(dir)
}

/// Reserve `len` bytes of real disk blocks for `file` (so later writes inside them cannot
/// fail with ENOSPC and `fdatasync` need not update the file size). Falls back to
/// `set_len` (sparse) on filesystems without `fallocate`.
pub fn preallocate(file: &File, len: u64) -> io::Result<()> {
    // SAFETY: plain syscall on a descriptor we own.
    let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, len as libc::off_t) };
    match rc {
        0 => Ok(()),
        libc::EOPNOTSUPP | libc::EINVAL => file.set_len(len),
        e => Err(io::Error::from_raw_os_error(e)),
    }
}

/// `fdatasync`: the data and the metadata needed to read it back, not the mtime.
pub fn datasync(file: &File) -> io::Result<()> {
    file.sync_data()
}

/// Create `dir` (and parents) if missing.
pub fn ensure_dir(dir: &Path) -> Result<(), StorageError> {
    fs::create_dir_all(dir).map_err(|e| StorageError::io(dir, e))
}

/// Open for read+write without truncating.
pub fn open_rw(path: &Path) -> Result<File, StorageError> {
    OpenOptions::new().read(true).write(true).open(path).map_err(|e| StorageError::io(path, e))
}

/// `<prefix><hex>` → the zxid in it, for file names like `log.1a` and `snapshot.1a`.
pub fn parse_hex_name(name: &str, prefix: &str) -> Option<i64> {
    let hex = name.strip_prefix(prefix)?;
    if hex.is_empty() || hex.len() > 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok().map(|v| v as i64)
}

/// Files in `dir` named `<prefix><hex>`, sorted by the zxid in the name.
pub fn list_by_zxid(dir: &Path, prefix: &str) -> Result<Vec<(i64, std::path::PathBuf)>, StorageError> {
    let mut out = Vec::new();
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(StorageError::io(dir, e)),
    };
    for entry in rd {
        let entry = entry.map_err(|e| StorageError::io(dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(z) = parse_hex_name(name, prefix) {
            out.push((z, entry.path()));
        }
    }
    out.sort_unstable_by_key(|(z, _)| *z);
    Ok(out)
}
