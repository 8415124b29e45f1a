//! The client's error type. Every failure a caller can see has a ZooKeeper error name
//! (`NoNode`, `BadVersion`, `ConnectionLoss`, …), because that is what scripts and people
//! compare against and what the bench counts errors by.

use crate::jute::{DecodeError, FrameError};
use crate::proto::ErrorCode;

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered with a non-zero error code.
    #[error("{}", code_name(*.0))]
    Server(i32),
    /// The connection dropped (or was never made) before the reply arrived; the request may or
    /// may not have been applied.
    #[error("ConnectionLoss: {0}")]
    ConnectionLoss(String),
    /// The server no longer knows the session (it expired, or the password was wrong).
    #[error("SessionExpired")]
    SessionExpired,
    /// A reply or frame the codec could not read.
    #[error("MarshallingError: {0}")]
    Decode(#[from] DecodeError),
    #[error("MarshallingError: {0}")]
    Frame(#[from] FrameError),
    /// No reply within the caller's deadline.
    #[error("OperationTimeout: nothing within {0} ms")]
    Timeout(u64),
    /// The caller asked for something malformed (bad address, bad ACL text, …).
    #[error("BadArguments: {0}")]
    BadArguments(String),
}

impl ClientError {
    /// The ZooKeeper error name (`KeeperException.Code`), e.g. "NoNode".
    pub fn name(&self) -> String {
        match self {
            ClientError::Server(code) => code_name(*code),
            ClientError::ConnectionLoss(_) => "ConnectionLoss".into(),
            ClientError::SessionExpired => "SessionExpired".into(),
            ClientError::Decode(_) | ClientError::Frame(_) => "MarshallingError".into(),
            ClientError::Timeout(_) => "OperationTimeout".into(),
            ClientError::BadArguments(_) => "BadArguments".into(),
        }
    }

    /// The numeric code ZooKeeper uses for this error.
    pub fn code(&self) -> i32 {
        match self {
            ClientError::Server(code) => *code,
            ClientError::ConnectionLoss(_) => ErrorCode::ConnectionLoss.code(),
            ClientError::SessionExpired => ErrorCode::SessionExpired.code(),
            ClientError::Decode(_) | ClientError::Frame(_) => ErrorCode::MarshallingError.code(),
            ClientError::Timeout(_) => ErrorCode::OperationTimeout.code(),
            ClientError::BadArguments(_) => ErrorCode::BadArguments.code(),
        }
    }

    /// An error from a reply header's code (`ConnectionLoss` and `SessionExpired` keep their
    /// own variants so callers can match on them).
    pub fn from_code(code: i32) -> ClientError {
        match ErrorCode::from_i32(code) {
            Some(ErrorCode::ConnectionLoss) => ClientError::ConnectionLoss("connection lost".into()),
            Some(ErrorCode::SessionExpired) => ClientError::SessionExpired,
            _ => ClientError::Server(code),
        }
    }
}

/// "NoNode" for -101; "Error(-999)" for codes ZooKeeper does not define.
pub fn code_name(code: i32) -> String {
    match ErrorCode::from_i32(code) {
        // `KeeperException.Code` spells this one in capitals; the rest match our names.
        Some(ErrorCode::InvalidAcl) => "InvalidACL".into(),
        Some(c) => format!("{c:?}"),
        None => format!("Error({code})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_zookeeper_names() {
        assert_eq!(ClientError::Server(-101).name(), "NoNode");
        assert_eq!(ClientError::Server(-103).to_string(), "BadVersion");
        assert_eq!(ClientError::from_code(-112).name(), "SessionExpired");
        assert_eq!(ClientError::from_code(-4).name(), "ConnectionLoss");
        assert_eq!(code_name(-999), "Error(-999)");
        assert_eq!(code_name(-114), "InvalidACL");
    }
}
