//! A minimal ZooKeeper client on arbor's own jute codec, shared by `arbor bench`, `arbor cli`,
//! `arbor demo` and the tests. It speaks only the public client protocol, so it works against
//! Apache ZooKeeper as well as arbor.
//!
//! Layout:
//! - `session`: the sans-IO core of one session (handshake, xids, reply matching, pipelining,
//!   pings, notifications, failing pending requests when a connection ends).
//! - `conn`: the mio driver of one session (non-blocking connect, reads, writes, redial to the
//!   next endpoint with the same session). Many can share one `Poll`.
//! - `blocking`: `Client`, one session driven call by call with bounded waits.
//! - `error`: `ClientError`, named as ZooKeeper names its errors.

mod blocking;
mod conn;
mod error;
mod session;
#[cfg(test)]
mod tests;

pub use blocking::{create_request, parse_endpoints, Client, ClientOptions};
pub use conn::Connection;
pub use error::{code_name, ClientError};
pub use session::{Directive, Event, Input, Reply, Session};
