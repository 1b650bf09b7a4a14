//! How a command fails: bad input (exit 2) or a runtime failure (exit 1).

use std::process::ExitCode;

/// A command's failure, printed as one line.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Bad usage or bad input: the operator must change something.
    #[error("{0}")]
    Usage(String),
    /// Something failed while doing the work.
    #[error("{0:#}")]
    Runtime(anyhow::Error),
}

impl Failure {
    /// Exit status for the contract: 2 for usage, 1 for runtime.
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Failure::Usage(_) => ExitCode::from(2),
            Failure::Runtime(_) => ExitCode::from(1),
        }
    }

    /// Shorthand for a usage failure.
    pub fn usage(message: impl Into<String>) -> Failure {
        Failure::Usage(message.into())
    }
}

impl From<anyhow::Error> for Failure {
    fn from(error: anyhow::Error) -> Failure {
        Failure::Runtime(error)
    }
}

impl From<rhip_server::StartError> for Failure {
    fn from(error: rhip_server::StartError) -> Failure {
        match error {
            rhip_server::StartError::Config(message) => Failure::Usage(message),
            rhip_server::StartError::Runtime(error) => Failure::Runtime(error),
        }
    }
}

impl From<rhip_server::ConfigError> for Failure {
    fn from(error: rhip_server::ConfigError) -> Failure {
        Failure::Usage(error.0)
    }
}
