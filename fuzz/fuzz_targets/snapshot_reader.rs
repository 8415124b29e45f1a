//! The snapshot reader on arbitrary bytes: `snapshot::decode`, the path a follower's SNAP
//! and (through the same `parse`) every snapshot file load take.
//!
//! Input: byte 0 holds flags, the rest is the snapshot. Flag bit 0 rewrites the header CRC
//! (when non-zero) and every chunk CRC so mutations reach the body parser and the tree
//! (libFuzzer cannot forge CRC32C).
//!
//! Required: no panic, no unbounded allocation, Ok or a typed error; and what loads
//! re-encodes (`encode`, `to_bytes`) to a snapshot that loads to the same tree and sessions.
#![no_main]

use arbor::proto::{ServerId, SessionId};
use arbor::session::SessionTable;
use arbor::storage::snapshot::{decode, encode, to_bytes};
use arbor::tree::DataTree;
use libfuzzer_sys::fuzz_target;

const HEADER_BYTES: usize = 24;
const CHUNK_BYTES: usize = 1 << 20;

fn fix_crcs(b: &mut [u8]) {
    if b.len() < HEADER_BYTES {
        return;
    }
    if b[12..16] != [0; 4] {
        let mut h = [0u8; HEADER_BYTES];
        h.copy_from_slice(&b[..HEADER_BYTES]);
        h[12..16].fill(0);
        b[12..16].copy_from_slice(&crc32c::crc32c(&h).to_be_bytes());
    }
    let mut off = HEADER_BYTES;
    while off + 8 <= b.len() {
        let len = u32::from_be_bytes([b[off], b[off + 1], b[off + 2], b[off + 3]]) as usize;
        if len == 0 || len > CHUNK_BYTES || off + 8 + len > b.len() {
            return;
        }
        let crc = crc32c::crc32c(&b[off + 8..off + 8 + len]);
        b[off + 4..off + 8].copy_from_slice(&crc.to_be_bytes());
        off += 8 + len;
    }
}

/// The tree as sorted lines (path, data, ACL, stored stat): sibling order in the arena is an
/// implementation detail, so two trees are compared by content.
fn canonical(tree: &DataTree) -> Vec<String> {
    let mut v = Vec::new();
    tree.for_each_preorder(|path, n| v.push(format!("{path} {:?} {:?} {:?}", n.data, n.acl, n.raw)));
    v.sort();
    v
}

fn table(sessions: &[(SessionId, i32)]) -> SessionTable {
    let mut t = SessionTable::new(ServerId(1), 0);
    for (id, timeout) in sessions {
        t.add(*id, *timeout, 0);
    }
    t
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, file)) = data.split_first() else { return };
    let mut bytes = file.to_vec();
    if flags & 1 != 0 {
        fix_crcs(&mut bytes);
    }
    let Ok(loaded) = decode(&bytes, "fuzz") else { return };
    // What loaded is a state a server runs with: it must snapshot and load back unchanged.
    let sessions = table(&loaded.sessions);
    let image = encode(&loaded.tree, &sessions);
    assert_eq!(image.zxid, loaded.zxid);
    let again = decode(&to_bytes(&image), "re-encoded").expect("a re-encoded snapshot loads");
    assert_eq!(again.zxid, loaded.zxid);
    assert_eq!(again.tree.node_count(), loaded.tree.node_count());
    assert!(canonical(&again.tree) == canonical(&loaded.tree), "re-encoded snapshot loads to another tree");
    let listed: Vec<(SessionId, i32)> = sessions.iter_sorted().iter().map(|s| (s.id, s.timeout_ms)).collect();
    assert_eq!(again.sessions, listed, "re-encoded snapshot loads other sessions");
});
