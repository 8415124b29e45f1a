//! The committed membership on disk, as ZooKeeper 3.5+ keeps it (`QuorumPeer.setQuorumVerifier`
//! with `writeToDisk`): when a reconfig commits, its membership goes to
//! `<config file>.dynamic.<hex version>` and the config file is rewritten to name it
//! (`dynamicConfigFile=`), without its own server lines (`QuorumPeerConfig.editStaticConfig`).
//! A restart then starts from the last committed membership, whatever the log replays after
//! it (`reconfig::Recovered`): this file is the record of the commit, so it is written
//! durably (temp file, fsync, rename, directory fsync) before the loop goes on.
//!
//! Differences from ZooKeeper, on purpose:
//! - the config file keeps its comments and the order of its lines (ZooKeeper rewrites it
//!   from a `Properties`, in hash order, without comments); the first rewrite keeps the
//!   original as `<config file>.bak`, as ZooKeeper's `backupOldConfig` does at start;
//! - several servers may share one config file (`arbor local`, the tests): they write the
//!   same bytes, each through its own temp file, and a server never points the file back at
//!   an older version than the one it names;
//! - at start the newest `<config file>.dynamic.<hex>` present counts, even if the config
//!   file names an older one (a crash between the two renames, or a sharer's lagging
//!   rewrite): every such file is a committed membership.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::proto::ServerId;
use crate::reconfig::Membership;

/// Keys ZooKeeper drops from the config file when it points it at a dynamic file: the
/// membership lives there now.
fn membership_key(key: &str) -> bool {
    key.starts_with("server.")
        || key.starts_with("group.")
        || key.starts_with("weight.")
        || key == "dynamicConfigFile"
        || key == "peerType"
}

/// `<config>.dynamic.<hex version>`.
pub fn file_for(config: &Path, version: i64) -> PathBuf {
    PathBuf::from(format!("{}.dynamic.{:x}", config.display(), version))
}

/// Record `m` (just committed) as the committed membership of the ensemble `config` starts.
/// `me`: this server (its temp files are its own). `erase_client`: the member lines carry
/// client addresses, so `clientPort`/`clientPortAddress` go too (ZooKeeper's
/// `needEraseClientInfoFromStaticConfig`). Returns the dynamic file's path.
pub fn write_committed(config: &Path, m: &Membership, me: ServerId) -> io::Result<PathBuf> {
    let path = file_for(config, m.version);
    if !path.exists() {
        write_atomic(&path, m.dynamic_file_text().as_bytes(), me)?;
    }
    let erase_client = m.members.get(&me).is_some_and(|x| x.client.is_some());
    point_config_at(config, &path, m.version, erase_client, me)?;
    Ok(path)
}

/// Rewrite `config` to name `dynamic` unless it already names a dynamic file of this
/// version or a later one.
fn point_config_at(config: &Path, dynamic: &Path, version: i64, erase_client: bool, me: ServerId) -> io::Result<()> {
    let text = fs::read_to_string(config)?;
    let named = text.lines().filter_map(property).filter(|(k, _)| k == "dynamicConfigFile").next_back();
    if let Some((_, v)) = named {
        if crate::config::dynamic_file_version(&v).is_some_and(|named| named >= version) {
            return Ok(());
        }
    }
    let backup = PathBuf::from(format!("{}.bak", config.display()));
    if !backup.exists() {
        write_atomic(&backup, text.as_bytes(), me)?;
    }
    let abs = fs::canonicalize(dynamic)?;
    let mut out = String::with_capacity(text.len());
    let mut dropping = false;
    for line in text.lines() {
        // A dropped line's continuation lines (ending in `\`) go with it.
        let continued = dropping;
        dropping = false;
        let drop = continued
            || property(line).is_some_and(|(k, _)| {
                membership_key(&k) || (erase_client && (k == "clientPort" || k == "clientPortAddress"))
            });
        if drop {
            dropping = line.trim_end().ends_with('\\');
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out.push_str(&format!("dynamicConfigFile={}\n", abs.display()));
    write_atomic(config, out.as_bytes(), me)
}

/// A properties line's key and value (`None` for blanks and comments).
fn property(line: &str) -> Option<(String, String)> {
    let l = line.trim_start();
    if l.is_empty() || l.starts_with('#') || l.starts_with('!') {
        return None;
    }
    let cut = l.find(['=', ':', ' ', '\t']).unwrap_or(l.len());
    let key = l[..cut].to_string();
    let value = l[cut..].trim_start_matches([' ', '\t']).trim_start_matches(['=', ':']).trim().to_string();
    Some((key, value))
}

/// The newest committed membership recorded beside `config` (`<config>.dynamic.<hex>`
/// files; ZooKeeper's `.dynamic.next`, a proposed one, is not hex and does not count).
/// Unreadable or unparsable files are skipped with a warning: the config file's own
/// membership still stands.
pub fn newest_committed(config: &Path) -> Option<Membership> {
    let dir = match config.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let prefix = format!("{}.dynamic.", config.file_name()?.to_str()?);
    let mut best: Option<Membership> = None;
    for entry in fs::read_dir(&dir).ok()?.flatten() {
        let name = entry.file_name();
        let Some(hex) = name.to_str().and_then(|n| n.strip_prefix(&prefix)) else { continue };
        let Ok(version) = i64::from_str_radix(hex, 16) else { continue };
        if best.as_ref().is_some_and(|b| b.version >= version) {
            continue;
        }
        let parsed = fs::read_to_string(entry.path()).map_err(|e| e.to_string()).and_then(|t| Membership::parse(&t).map_err(|e| e.to_string()));
        match parsed {
            Ok(mut m) if !m.members.is_empty() => {
                m.version = version;
                best = Some(m);
            }
            Ok(_) => tracing::warn!(file = %entry.path().display(), "dynamic config file without server lines; ignored"),
            Err(e) => tracing::warn!(file = %entry.path().display(), error = %e, "dynamic config file not usable; ignored"),
        }
    }
    best
}

/// Temp file (this server's own), fsync, rename over `path`, directory fsync.
fn write_atomic(path: &Path, bytes: &[u8], me: ServerId) -> io::Result<()> {
    let tmp = PathBuf::from(format!("{}.{}.tmp", path.display(), me));
    let r = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        File::open(dir)?.sync_all()
    })();
    if r.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    const THREE: &str = "server.1=127.0.0.1:2888:3888:participant;127.0.0.1:2181\n\
                         server.2=127.0.0.1:2889:3889:participant;127.0.0.1:2182\n\
                         server.3=127.0.0.1:2890:3890:participant;127.0.0.1:2183\n";

    fn members(text: &str, version: i64) -> Membership {
        let mut m = Membership::parse(text).expect("members");
        m.version = version;
        m
    }

    #[test]
    fn commit_rewrites_the_config_once_per_newer_version() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = dir.path().join("zoo.cfg");
        let original = format!("# my ensemble\ntickTime=2000\ndataDir=/d\nclientPort=2181\n{THREE}reconfigEnabled=true\n");
        fs::write(&cfg, &original).expect("write");
        let m = members(THREE, 0x1_0000_0003);
        let dynamic = write_committed(&cfg, &m, ServerId(1)).expect("write_committed");
        assert_eq!(dynamic, dir.path().join("zoo.cfg.dynamic.100000003"));
        let text = fs::read_to_string(&cfg).expect("read");
        assert!(text.starts_with("# my ensemble\ntickTime=2000\ndataDir=/d\nreconfigEnabled=true\n"), "{text}");
        assert!(!text.contains("server.") && !text.contains("clientPort"), "{text}");
        assert!(text.ends_with(&format!("dynamicConfigFile={}\n", fs::canonicalize(&dynamic).expect("abs").display())), "{text}");
        assert_eq!(fs::read_to_string(dir.path().join("zoo.cfg.bak")).expect("bak"), original);
        // What a restart reads: the committed membership with its version.
        let (c, _) = crate::config::load(&cfg, Some(ServerId(1))).expect("load");
        assert_eq!((c.servers.len(), c.config_version), (3, 0x1_0000_0003));
        assert_eq!(newest_committed(&cfg).map(|m| m.version), Some(0x1_0000_0003));
        // An older commit (a sharer lagging behind) never points the file back.
        write_committed(&cfg, &members(THREE, 0x1_0000_0001), ServerId(2)).expect("older");
        assert_eq!(fs::read_to_string(&cfg).expect("read"), text);
        assert_eq!(newest_committed(&cfg).map(|m| m.version), Some(0x1_0000_0003));
        // A newer one does; the backup stays the original.
        let two = "server.1=127.0.0.1:2888:3888:participant;127.0.0.1:2181\nserver.2=127.0.0.1:2889:3889:participant;127.0.0.1:2182\n";
        write_committed(&cfg, &members(two, 0x2_0000_0001), ServerId(1)).expect("newer");
        let (c, _) = crate::config::load(&cfg, Some(ServerId(1))).expect("load");
        assert_eq!((c.servers.len(), c.config_version), (2, 0x2_0000_0001));
        assert_eq!(fs::read_to_string(dir.path().join("zoo.cfg.bak")).expect("bak"), original);
        let leftovers: Vec<_> = fs::read_dir(dir.path()).expect("ls").flatten().filter(|e| e.file_name().to_string_lossy().ends_with(".tmp")).collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn newest_committed_skips_what_is_not_a_committed_membership() {
        let dir = tempfile::tempdir().expect("tempdir");
        let cfg = dir.path().join("zoo.cfg");
        fs::write(&cfg, "tickTime=2000\n").expect("write");
        assert_eq!(newest_committed(&cfg), None);
        fs::write(dir.path().join("zoo.cfg.dynamic.next"), THREE).expect("write");
        fs::write(dir.path().join("zoo.cfg.dynamic.200000000"), "garbage line\n").expect("write");
        fs::write(dir.path().join("zoo.cfg.dynamic.300000000"), "").expect("write");
        fs::write(dir.path().join("zoo.cfg.dynamic.100000000"), THREE).expect("write");
        fs::write(dir.path().join("other.cfg.dynamic.900000000"), THREE).expect("write");
        let m = newest_committed(&cfg).expect("one usable file");
        assert_eq!((m.version, m.members.len()), (0x1_0000_0000, 3));
    }
}
