//! `arbor cli`: the one-shot client. Connects to the first listed server that answers (the
//! next one if it fails), optionally authenticates, sends one command's requests, prints the
//! reply (human text, or JSON with `--json`), closes the session and exits. On failure it
//! exits 1 with ZooKeeper's error name first on stderr (`NoNode: /a`), so scripts can match it.

mod acl_text;

use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::json;

use crate::client::{parse_endpoints, Client, ClientError, ClientOptions};
use crate::jute::{CreateKind, CreateRequest, Request, Response};
use crate::proto::{Acl, Stat};
pub use acl_text::{parse_acls, perms_text};

#[derive(Args, Debug)]
pub struct CliArgs {
    /// host:port[,host:port...]: the servers to try, in order.
    #[arg(short = 's', long = "server", default_value = "127.0.0.1:2181")]
    pub servers: String,
    /// Print results as JSON.
    #[arg(long, global = true)]
    pub json: bool,
    /// Authenticate first, e.g. digest:user:password.
    #[arg(long)]
    pub auth: Option<String>,
    /// Seconds to wait for connecting and for each reply.
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,
    #[command(subcommand)]
    pub cmd: CliCmd,
}

#[derive(Subcommand, Debug)]
pub enum CliCmd {
    /// Create PATH with DATA (`-` reads stdin, `@file` reads a file).
    Create {
        #[arg(short = 'e')]
        ephemeral: bool,
        #[arg(short = 's')]
        sequential: bool,
        #[arg(short = 'c')]
        container: bool,
        /// TTL in ms (a persistent node with a TTL).
        #[arg(short = 't')]
        ttl: Option<i64>,
        path: String,
        data: Option<String>,
    },
    /// Print PATH's data (-s: and its Stat).
    Get {
        #[arg(short = 's')]
        stat: bool,
        path: String,
    },
    /// Set PATH's data; -v VERSION makes it conditional.
    Set {
        #[arg(short = 'v', default_value_t = -1, allow_negative_numbers = true)]
        version: i32,
        path: String,
        data: String,
    },
    /// Print PATH's Stat.
    Stat { path: String },
    /// List PATH's children (-R: the whole subtree, -s: with PATH's Stat).
    Ls {
        #[arg(short = 'R')]
        recursive: bool,
        #[arg(short = 's')]
        stat: bool,
        path: String,
    },
    /// Delete PATH (which must have no children); -v VERSION makes it conditional.
    Delete {
        #[arg(short = 'v', default_value_t = -1, allow_negative_numbers = true)]
        version: i32,
        path: String,
    },
    /// Delete PATH and everything under it.
    Deleteall { path: String },
    /// Wait until the connected server has every write the leader had committed.
    Sync { path: String },
    /// Print PATH's ACL.
    Getacl { path: String },
    /// Set PATH's ACL, e.g. world:anyone:r,digest:user:HASH:cdrwa.
    Setacl {
        #[arg(short = 'v', default_value_t = -1, allow_negative_numbers = true)]
        version: i32,
        path: String,
        acl: String,
    },
    /// Wait for one watch event on PATH (data, existence or children).
    Watch {
        path: String,
        /// Seconds to wait for the event.
        #[arg(long = "timeout", id = "watch_timeout", default_value_t = 60.0)]
        wait: f64,
    },
    /// The `srvr` four-letter word of the first server that answers.
    Srvr,
    /// The `mntr` four-letter word of the first server that answers.
    Mntr,
}

/// Why a command failed: a ZooKeeper error (named), or a local problem.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error("{}", zk_text(err, what))]
    Zk { err: ClientError, what: String },
    #[error("BadArguments: {0}")]
    Usage(String),
}

/// "NoNode: /a" for a server's answer; local failures add their detail.
fn zk_text(err: &ClientError, what: &str) -> String {
    match err {
        ClientError::Server(_) | ClientError::SessionExpired => format!("{}: {what}", err.name()),
        _ => format!("{}: {what} ({err})", err.name()),
    }
}

fn zk(path: &str) -> impl Fn(ClientError) -> CliError + '_ {
    move |err| CliError::Zk { err, what: path.to_string() }
}

/// Runs one command; the text to print on success.
pub fn run(a: &CliArgs) -> Result<String, CliError> {
    let endpoints = parse_endpoints(&a.servers).map_err(|e| CliError::Usage(e.to_string()))?;
    match &a.cmd {
        CliCmd::Srvr => return four_letter(&endpoints, "srvr", a.json),
        CliCmd::Mntr => return four_letter(&endpoints, "mntr", a.json),
        _ => {}
    }
    let timeout = Duration::try_from_secs_f64(a.timeout).map_err(|_| CliError::Usage("--timeout".into()))?;
    let opts = ClientOptions { session_timeout_ms: 10_000, op_timeout: timeout };
    let mut c = Client::connect(&endpoints, opts).map_err(zk(&a.servers))?;
    if let Some(auth) = &a.auth {
        let (scheme, cred) = auth.split_once(':').ok_or_else(|| CliError::Usage("--auth scheme:credentials".into()))?;
        c.call(Request::Auth { scheme: scheme.into(), auth: cred.as_bytes().to_vec() }).map_err(zk("auth"))?;
    }
    let out = command(&mut c, &a.cmd, a.json);
    let _ = c.close();
    out
}

fn command(c: &mut Client, cmd: &CliCmd, json: bool) -> Result<String, CliError> {
    match cmd {
        CliCmd::Create { ephemeral, sequential, container, ttl, path, data } => {
            let data = match data {
                Some(d) => read_data(d)?,
                None => Vec::new(),
            };
            let (kind, flags) = create_mode(*ephemeral, *sequential, *container, ttl.is_some())?;
            let req = CreateRequest {
                kind,
                path: path.clone(),
                data: Some(data),
                acl: Acl::open_unsafe(),
                flags,
                ttl_ms: ttl.unwrap_or(-1),
            };
            let created = match c.call(Request::Create(req)).map_err(zk(path))? {
                Response::Create { path } | Response::Create2 { path, .. } => path,
                r => return Err(unexpected(path, r)),
            };
            Ok(if json { json!({ "path": created }).to_string() } else { format!("Created {created}") })
        }
        CliCmd::Get { stat, path } => {
            let (data, st) = c.get_data(path, false).map_err(zk(path))?;
            let text = data.as_deref().map(String::from_utf8_lossy).map(|s| s.into_owned());
            Ok(if json {
                json!({ "path": path, "data": text, "stat": stat_json(&st) }).to_string()
            } else {
                let mut s = text.unwrap_or_else(|| "null".into());
                if *stat {
                    s.push('\n');
                    s.push_str(&stat_text(&st));
                }
                s
            })
        }
        CliCmd::Set { version, path, data } => {
            let st = c.set_data(path, &read_data(data)?, *version).map_err(zk(path))?;
            Ok(if json { json!({ "path": path, "stat": stat_json(&st) }).to_string() } else { stat_text(&st) })
        }
        CliCmd::Stat { path } => {
            let st = c.exists(path, false).map_err(zk(path))?;
            Ok(if json { json!({ "path": path, "stat": stat_json(&st) }).to_string() } else { stat_text(&st) })
        }
        CliCmd::Ls { recursive, stat, path } => ls(c, path, *recursive, *stat, json),
        CliCmd::Delete { version, path } => {
            c.delete(path, *version).map_err(zk(path))?;
            Ok(if json { json!({ "deleted": [path] }).to_string() } else { String::new() })
        }
        CliCmd::Deleteall { path } => {
            let mut all = subtree(c, path)?;
            // Children before parents: the subtree is in breadth-first order.
            all.reverse();
            for p in &all {
                match c.delete(p, -1) {
                    Ok(()) | Err(ClientError::Server(-101)) => {}
                    Err(e) => return Err(CliError::Zk { err: e, what: p.clone() }),
                }
            }
            Ok(if json { json!({ "deleted": all }).to_string() } else { String::new() })
        }
        CliCmd::Sync { path } => {
            c.call(Request::Sync { path: path.clone() }).map_err(zk(path))?;
            Ok(if json { json!({ "synced": path }).to_string() } else { format!("Sync is OK for {path}") })
        }
        CliCmd::Getacl { path } => {
            let (acl, st) = match c.call(Request::GetAcl { path: path.clone() }).map_err(zk(path))? {
                Response::GetAcl { acl, stat } => (acl, stat),
                r => return Err(unexpected(path, r)),
            };
            Ok(if json {
                let list: Vec<_> = acl
                    .iter()
                    .map(|a| json!({ "scheme": a.id.scheme, "id": a.id.id, "perms": perms_text(a.perms) }))
                    .collect();
                json!({ "path": path, "acl": list, "stat": stat_json(&st) }).to_string()
            } else {
                acl.iter().map(|a| format!("'{},'{}\n: {}", a.id.scheme, a.id.id, perms_text(a.perms))).collect::<Vec<_>>().join("\n")
            })
        }
        CliCmd::Setacl { version, path, acl } => {
            let acl = parse_acls(acl).map_err(CliError::Usage)?;
            let st = match c.call(Request::SetAcl { path: path.clone(), acl, version: *version }).map_err(zk(path))? {
                Response::Stat(s) => s,
                r => return Err(unexpected(path, r)),
            };
            Ok(if json { json!({ "path": path, "stat": stat_json(&st) }).to_string() } else { stat_text(&st) })
        }
        CliCmd::Watch { path, wait } => watch(c, path, *wait, json),
        CliCmd::Srvr | CliCmd::Mntr => Err(CliError::Usage("four-letter words are handled before connecting".into())),
    }
}

fn create_mode(ephemeral: bool, sequential: bool, container: bool, ttl: bool) -> Result<(CreateKind, i32), CliError> {
    // CreateMode numbers (`CreateMode.java`).
    Ok(match (ephemeral, sequential, container, ttl) {
        (false, false, false, false) => (CreateKind::Create2, 0),
        (true, false, false, false) => (CreateKind::Create2, 1),
        (false, true, false, false) => (CreateKind::Create2, 2),
        (true, true, false, false) => (CreateKind::Create2, 3),
        (false, false, true, false) => (CreateKind::CreateContainer, 4),
        (false, false, false, true) => (CreateKind::CreateTtl, 5),
        (false, true, false, true) => (CreateKind::CreateTtl, 6),
        _ => return Err(CliError::Usage("-c and -t go alone (-t may add -s); -e cannot combine with them".into())),
    })
}

/// DATA as given, `-` for stdin, `@file` for a file's bytes.
fn read_data(d: &str) -> Result<Vec<u8>, CliError> {
    if d == "-" {
        let mut v = Vec::new();
        std::io::stdin().read_to_end(&mut v).map_err(|e| CliError::Usage(format!("stdin: {e}")))?;
        return Ok(v);
    }
    if let Some(f) = d.strip_prefix('@') {
        return std::fs::read(PathBuf::from(f)).map_err(|e| CliError::Usage(format!("{f}: {e}")));
    }
    Ok(d.as_bytes().to_vec())
}

/// Most znodes one `ls -R` or `deleteall` walks: a bound, not a tree-size limit of the server.
const SUBTREE_LIMIT: usize = 1_000_000;

/// PATH and every descendant, breadth first (no recursion; bounded).
fn subtree(c: &mut Client, path: &str) -> Result<Vec<String>, CliError> {
    let mut out = vec![path.to_string()];
    let mut i = 0;
    while i < out.len() {
        if out.len() > SUBTREE_LIMIT {
            return Err(CliError::Usage(format!("more than {SUBTREE_LIMIT} znodes under {path}")));
        }
        let p = out[i].clone();
        let (mut kids, _) = match c.get_children(&p) {
            Ok(x) => x,
            // Deleted meanwhile: nothing below it any more.
            Err(ClientError::Server(-101)) if i > 0 => (Vec::new(), Stat::default()),
            Err(e) => return Err(CliError::Zk { err: e, what: p }),
        };
        kids.sort();
        for k in kids {
            out.push(if p == "/" { format!("/{k}") } else { format!("{p}/{k}") });
        }
        i += 1;
    }
    Ok(out)
}

fn ls(c: &mut Client, path: &str, recursive: bool, stat: bool, json: bool) -> Result<String, CliError> {
    if recursive {
        let all = subtree(c, path)?;
        return Ok(if json { json!({ "path": path, "subtree": all }).to_string() } else { all.join("\n") });
    }
    let (mut kids, st) = c.get_children(path).map_err(zk(path))?;
    kids.sort();
    Ok(if json {
        json!({ "path": path, "children": kids, "stat": stat_json(&st) }).to_string()
    } else {
        let mut s = format!("[{}]", kids.join(", "));
        if stat {
            s.push('\n');
            s.push_str(&stat_text(&st));
        }
        s
    })
}

fn watch(c: &mut Client, path: &str, wait_s: f64, json: bool) -> Result<String, CliError> {
    let wait = Duration::try_from_secs_f64(wait_s).map_err(|_| CliError::Usage("--timeout".into()))?;
    // exists sets a watch whether or not the node is there; a child watch only if it is.
    match c.exists(path, true) {
        Ok(_) => {
            c.call(Request::GetChildren { path: path.into(), watch: true }).map_err(zk(path))?;
        }
        Err(ClientError::Server(-101)) => {}
        Err(e) => return Err(CliError::Zk { err: e, what: path.into() }),
    }
    match c.next_watch(wait).map_err(zk(path))? {
        Some(ev) => {
            let name = event_name(ev.event_type);
            Ok(if json {
                json!({ "event": name, "type": ev.event_type, "state": ev.state, "path": ev.path }).to_string()
            } else {
                format!("{name} {}", ev.path)
            })
        }
        None => Err(CliError::Zk { err: ClientError::Timeout((wait_s * 1000.0) as u64), what: path.into() }),
    }
}

/// `Watcher.Event.EventType` names.
fn event_name(t: i32) -> &'static str {
    match t {
        -1 => "None",
        1 => "NodeCreated",
        2 => "NodeDeleted",
        3 => "NodeDataChanged",
        4 => "NodeChildrenChanged",
        5 => "DataWatchRemoved",
        6 => "ChildWatchRemoved",
        7 => "PersistentWatchRemoved",
        _ => "Unknown",
    }
}

fn four_letter(endpoints: &[SocketAddr], word: &str, json: bool) -> Result<String, CliError> {
    for e in endpoints {
        let text = crate::local::four_letter(*e, word);
        if !text.is_empty() {
            return Ok(if json { json!({ "server": e.to_string(), word: text }).to_string() } else { text.trim_end().to_string() });
        }
    }
    Err(CliError::Zk { err: ClientError::ConnectionLoss(format!("no server answered {word}")), what: format!("{endpoints:?}") })
}

fn stat_text(s: &Stat) -> String {
    format!(
        "cZxid = 0x{:x}\nctime = {}\nmZxid = 0x{:x}\nmtime = {}\npZxid = 0x{:x}\ncversion = {}\ndataVersion = {}\naclVersion = {}\nephemeralOwner = 0x{:x}\ndataLength = {}\nnumChildren = {}",
        s.czxid, s.ctime, s.mzxid, s.mtime, s.pzxid, s.cversion, s.version, s.aversion, s.ephemeral_owner, s.data_length, s.num_children
    )
}

fn stat_json(s: &Stat) -> serde_json::Value {
    json!({
        "czxid": s.czxid, "mzxid": s.mzxid, "ctime": s.ctime, "mtime": s.mtime, "version": s.version,
        "cversion": s.cversion, "aversion": s.aversion, "ephemeralOwner": s.ephemeral_owner,
        "dataLength": s.data_length, "numChildren": s.num_children, "pzxid": s.pzxid,
    })
}

fn unexpected(path: &str, r: Response) -> CliError {
    CliError::Zk { err: ClientError::ConnectionLoss(format!("unexpected reply {r:?}")), what: path.into() }
}
