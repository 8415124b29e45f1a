//! What a bench session sends: the workloads of `--workload`, the op kinds results are
//! grouped by, and a tiny per-session random generator (xorshift: deterministic per session,
//! no global state, a few ns per draw).

use std::fmt;

/// `--workload` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Workload {
    /// create of fresh znodes (one per request).
    Create,
    /// setData on random keys.
    Set,
    /// getData on random keys.
    Get,
    /// `read_pct` % getData, the rest setData — or creates of fresh znodes with `:create`
    /// (the demo uses that to read every acknowledged create back afterwards).
    Mixed { read_pct: u8, writes: WriteKind },
    /// delete of znodes created during setup (`--keys` of them; a session stops when its
    /// share is used up).
    Delete,
    /// multi of `ops` setData on random keys.
    Multi { ops: usize },
    /// `watchers` sessions watch one znode that one writer sets again as soon as every
    /// watcher has re-armed; measures the delay of each notification, counted from the
    /// write's send: ZooKeeper sends a notification before the reply to the write that fired
    /// it, so counted from the reply the delay would be negative on the writer's server.
    Watch { watchers: usize },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteKind {
    Set,
    Create,
}

impl Workload {
    pub fn parse(s: &str) -> Result<Workload, String> {
        let mut parts = s.split(':');
        let name = parts.next().unwrap_or("");
        let arg = parts.next();
        let extra = parts.next();
        let num = |what: &str| -> Result<usize, String> {
            arg.ok_or_else(|| format!("{name} needs :{what}"))?.parse::<usize>().map_err(|e| format!("{name}:{what}: {e}"))
        };
        let w = match name {
            "create" => Workload::Create,
            "set" => Workload::Set,
            "get" => Workload::Get,
            "delete" => Workload::Delete,
            "mixed" => {
                let r = num("R")?;
                if r > 100 {
                    return Err(format!("mixed:{r}: R is a percentage of reads (0-100)"));
                }
                let writes = match extra {
                    None | Some("set") => WriteKind::Set,
                    Some("create") => WriteKind::Create,
                    Some(o) => return Err(format!("mixed:{r}:{o}: writes are set or create")),
                };
                return Ok(Workload::Mixed { read_pct: r as u8, writes });
            }
            "multi" => Workload::Multi { ops: num("K")?.clamp(1, 1000) },
            "watch" => Workload::Watch { watchers: num("W")?.clamp(1, 10_000) },
            _ => return Err(format!("unknown workload {s:?} (create, set, get, mixed:R, delete, multi:K, watch:W)")),
        };
        if extra.is_some() || (arg.is_some() && !matches!(w, Workload::Multi { .. } | Workload::Watch { .. })) {
            return Err(format!("workload {s:?}: unexpected argument"));
        }
        Ok(w)
    }

    /// Whether setup must create the `--keys` znodes that reads and sets use.
    pub fn needs_keys(self) -> bool {
        matches!(self, Workload::Set | Workload::Get | Workload::Mixed { .. } | Workload::Multi { .. })
    }
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Workload::Create => write!(f, "create"),
            Workload::Set => write!(f, "set"),
            Workload::Get => write!(f, "get"),
            Workload::Mixed { read_pct, writes: WriteKind::Set } => write!(f, "mixed:{read_pct}"),
            Workload::Mixed { read_pct, writes: WriteKind::Create } => write!(f, "mixed:{read_pct}:create"),
            Workload::Delete => write!(f, "delete"),
            Workload::Multi { ops } => write!(f, "multi:{ops}"),
            Workload::Watch { watchers } => write!(f, "watch:{watchers}"),
        }
    }
}

/// The kinds results are reported by (one HDR histogram each).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum OpKind {
    Get,
    Set,
    Create,
    Delete,
    Multi,
    /// A watch notification (latency: from the write's send to the notification).
    Watch,
    /// closeSession and anything else not measured.
    Other,
}

impl OpKind {
    pub const ALL: [OpKind; 7] =
        [OpKind::Get, OpKind::Set, OpKind::Create, OpKind::Delete, OpKind::Multi, OpKind::Watch, OpKind::Other];

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        match self {
            OpKind::Get => "get",
            OpKind::Set => "set",
            OpKind::Create => "create",
            OpKind::Delete => "delete",
            OpKind::Multi => "multi",
            OpKind::Watch => "watch",
            OpKind::Other => "other",
        }
    }

    /// The kind of a reply, from the opcode of its request.
    pub fn of_request(req: &crate::jute::Request) -> OpKind {
        use crate::jute::Request as R;
        match req {
            R::GetData { .. } | R::Exists { .. } => OpKind::Get,
            R::SetData { .. } => OpKind::Set,
            R::Create(_) => OpKind::Create,
            R::Delete { .. } => OpKind::Delete,
            R::Multi(_) => OpKind::Multi,
            _ => OpKind::Other,
        }
    }
}

/// xorshift64*: enough randomness to spread keys, seeded per session.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-enough in 0..n (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (((self.next() >> 32) * n as u64) >> 32) as usize
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_workload_and_rejects_junk() {
        assert_eq!(Workload::parse("get"), Ok(Workload::Get));
        assert_eq!(Workload::parse("mixed:90"), Ok(Workload::Mixed { read_pct: 90, writes: WriteKind::Set }));
        assert_eq!(Workload::parse("mixed:50:create"), Ok(Workload::Mixed { read_pct: 50, writes: WriteKind::Create }));
        assert_eq!(Workload::parse("multi:4"), Ok(Workload::Multi { ops: 4 }));
        assert_eq!(Workload::parse("watch:8"), Ok(Workload::Watch { watchers: 8 }));
        for bad in ["", "mixed", "mixed:101", "mixed:x", "get:3", "multi", "nope", "mixed:5:foo"] {
            assert!(Workload::parse(bad).is_err(), "{bad}");
        }
        for s in ["create", "set", "get", "delete", "mixed:90", "mixed:50:create", "multi:3", "watch:2"] {
            assert_eq!(Workload::parse(s).map(|w| w.to_string()), Ok(s.to_string()));
        }
    }

    #[test]
    fn below_stays_in_range() {
        let mut r = Rng::new(7);
        let mut seen = [0u32; 10];
        for _ in 0..10_000 {
            seen[r.below(10)] += 1;
        }
        assert!(seen.iter().all(|&c| c > 800), "{seen:?}");
    }
}
