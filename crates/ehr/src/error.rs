//! The errors of the EHR, each with the HTTP status and OperationOutcome issue code it maps to.

use serde_json::{Value, json};

/// What went wrong, precisely enough to tell the client what to fix.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request or the resource is malformed or breaks a FHIR rule.
    #[error("{message}")]
    Invalid {
        /// What is wrong.
        message: String,
        /// FHIRPath of the offending element, when known.
        expression: Option<String>,
    },
    /// The resource type is not one this server knows.
    #[error("resource type {0:?} is not supported by this server")]
    UnknownType(String),
    /// No such resource (or version).
    #[error("{0} does not exist")]
    NotFound(String),
    /// The resource existed but was deleted.
    #[error("{0} has been deleted")]
    Gone(String),
    /// The request conflicts with the stored state (e.g. deleting a referenced resource).
    #[error("{0}")]
    Conflict(String),
    /// A precondition (If-Match, a conditional operation's match count) does not hold.
    #[error("{0}")]
    PreconditionFailed(String),
    /// No valid credentials.
    #[error("{0}")]
    Unauthorized(String),
    /// Valid credentials without the scope for this interaction.
    #[error("{0}")]
    Forbidden(String),
    /// The interaction is not allowed on this resource type.
    #[error("{0}")]
    NotAllowed(String),
    /// The client asks for a format this server does not produce.
    #[error("{0}")]
    NotAcceptable(String),
    /// The request body has a media type this server does not read.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// One entry of a transaction failed; nothing of the transaction was kept.
    #[error("transaction entry {index} ({request}) failed: {source}")]
    Entry {
        /// 0-based index of the entry in the Bundle.
        index: usize,
        /// The entry's request line, e.g. `POST Patient`.
        request: String,
        /// Why it failed.
        source: Box<Error>,
    },
    /// The database failed.
    #[error("database error: {0}")]
    Database(sqlx::Error),
    /// A stored resource could not be decoded (corrupt store).
    #[error("stored resource is corrupt: {0}")]
    Corrupt(String),
    /// Reading or writing a local file failed.
    #[error("cannot access {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// An internal failure (e.g. a background job).
    #[error("{0}")]
    Internal(String),
    /// Building a training table failed.
    #[error("dataset: {0}")]
    Dataset(String),
}

impl From<sqlx::Error> for Error {
    /// A value the database cannot store as text (a NUL character, which PostgreSQL refuses)
    /// is the client's error: any path that lets one through gets a 400, not a 500.
    fn from(error: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &error
            && matches!(db.code().as_deref(), Some("22021" | "22P05"))
        {
            return Error::invalid(
                "a value contains a NUL character (U+0000) or another character the database cannot store as text",
            );
        }
        Error::Database(error)
    }
}

/// Result with the EHR's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An [`Error::Invalid`] without an element path.
    pub fn invalid(message: impl Into<String>) -> Self {
        Error::Invalid {
            message: message.into(),
            expression: None,
        }
    }

    /// An [`Error::Invalid`] about the element at `expression`.
    pub fn invalid_at(expression: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Invalid {
            message: message.into(),
            expression: Some(expression.into()),
        }
    }

    /// The HTTP status code this error is answered with.
    pub fn status(&self) -> u16 {
        match self {
            Error::Invalid { .. } | Error::Dataset(_) => 400,
            Error::UnknownType(_) | Error::NotFound(_) => 404,
            Error::Gone(_) => 410,
            Error::Conflict(_) => 409,
            Error::PreconditionFailed(_) => 412,
            Error::Unauthorized(_) => 401,
            Error::Forbidden(_) => 403,
            Error::NotAllowed(_) => 405,
            Error::NotAcceptable(_) => 406,
            Error::UnsupportedMediaType(_) => 415,
            Error::Entry { source, .. } => source.status(),
            Error::Database(_) | Error::Corrupt(_) | Error::Io { .. } | Error::Internal(_) => 500,
        }
    }

    /// The FHIR `IssueType` code.
    fn issue_code(&self) -> &'static str {
        match self {
            Error::Invalid { .. } | Error::Dataset(_) => "invalid",
            Error::UnknownType(_) | Error::NotAllowed(_) => "not-supported",
            Error::NotFound(_) => "not-found",
            Error::Gone(_) => "deleted",
            Error::Conflict(_) | Error::PreconditionFailed(_) => "conflict",
            Error::Unauthorized(_) => "login",
            Error::Forbidden(_) => "forbidden",
            Error::NotAcceptable(_) | Error::UnsupportedMediaType(_) => "not-supported",
            Error::Entry { source, .. } => source.issue_code(),
            Error::Database(_) | Error::Corrupt(_) | Error::Io { .. } | Error::Internal(_) => {
                "exception"
            }
        }
    }

    fn expression(&self) -> Option<String> {
        match self {
            Error::Invalid { expression, .. } => expression.clone(),
            Error::Entry { index, source, .. } => Some(match source.expression() {
                Some(inner) => format!("Bundle.entry[{index}].resource.{inner}"),
                None => format!("Bundle.entry[{index}]"),
            }),
            _ => None,
        }
    }

    /// This error as an OperationOutcome resource, for a client. A server-side failure (5xx)
    /// is logged here and answered with a generic message: database errors and file paths are
    /// not for clients.
    pub fn to_outcome(&self) -> Value {
        let diagnostics = if self.status() >= 500 {
            tracing::error!(error = %self, "FHIR request failed");
            "the server failed to process the request; its log has the details".to_string()
        } else {
            self.to_string()
        };
        let mut issue = json!({
            "severity": "error",
            "code": self.issue_code(),
            "diagnostics": diagnostics,
        });
        if let Some(expression) = self.expression() {
            issue["expression"] = json!([expression]);
        }
        json!({ "resourceType": "OperationOutcome", "issue": [issue] })
    }
}

/// An OperationOutcome that reports success, with a message.
pub fn information_outcome(message: &str) -> Value {
    json!({
        "resourceType": "OperationOutcome",
        "issue": [{ "severity": "information", "code": "informational", "diagnostics": message }],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_failures_are_not_echoed_to_clients() {
        let err = Error::Entry {
            index: 0,
            request: "POST Patient".into(),
            source: Box::new(Error::Database(sqlx::Error::Protocol(
                "relation \"resources\" does not exist".into(),
            ))),
        };
        let outcome = err.to_outcome();
        assert_eq!(outcome["issue"][0]["code"], "exception");
        let diagnostics = outcome["issue"][0]["diagnostics"].as_str().unwrap();
        assert!(!diagnostics.contains("relation"), "{diagnostics}");
    }

    #[test]
    fn entry_error_points_at_the_entry_and_element() {
        let inner = Error::invalid_at("Observation.status", "status is required");
        let err = Error::Entry {
            index: 3,
            request: "POST Observation".into(),
            source: Box::new(inner),
        };
        assert_eq!(err.status(), 400);
        let outcome = err.to_outcome();
        assert_eq!(
            outcome["issue"][0]["expression"][0],
            "Bundle.entry[3].resource.Observation.status"
        );
        assert!(
            outcome["issue"][0]["diagnostics"]
                .as_str()
                .is_some_and(|d| d.contains("entry 3 (POST Observation)"))
        );
    }
}
