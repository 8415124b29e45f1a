//! The `arbor` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "arbor",
    version,
    about = "A coordination service that speaks the Apache ZooKeeper protocol",
    long_about = "A coordination service that speaks the Apache ZooKeeper client protocol, so \
                  ZooKeeper clients (zkCli, kazoo, Curator, zookeeper-client) use it unchanged. \
                  Configuration uses ZooKeeper's zoo.cfg format; see README.md for the keys."
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run one server. <ID> picks this server's `server.N` line in <CONFIG> (any id works for
    /// a standalone config with no server lines); the node serves clients until killed.
    Node {
        /// This server's id (ZooKeeper's myid).
        id: u64,
        /// A zoo.cfg-format file, e.g. config/standalone.cfg.
        config: PathBuf,
    },
    /// Run every server of <CONFIG> as child processes on this machine, wait until they are up,
    /// print the connect string and each server's mode; Ctrl-C stops them all (by PID), and
    /// if one dies the others are stopped too. Each server logs to `arbor.log` in its dataDir.
    Local {
        /// A zoo.cfg-format file listing the servers.
        #[arg(default_value = "config/local-3.cfg")]
        config: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Node { id, config } => match arbor::node::run(arbor::proto::ServerId(id), &config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("arbor: {e}");
                ExitCode::FAILURE
            }
        },
        Cmd::Local { config } => match arbor::local::run(&config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("arbor local: {e}");
                ExitCode::FAILURE
            }
        },
    }
}
