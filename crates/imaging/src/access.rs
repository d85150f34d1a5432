//! Who may use DICOMweb, and the record of what they did. Every request
//! carries a bearer token; an [`AccessControl`] (the node connects the EHR's
//! tokens and AuditEvents) says what the token reaches, and records each read
//! and write of images. There is no anonymous access.

use futures::future::BoxFuture;

use crate::error::Result;

/// What a request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// QIDO-RS search.
    Search,
    /// WADO-RS retrieve (instances, metadata, rendered frames).
    Read,
    /// STOW-RS store.
    Store,
    /// Read or retry the reconciliation queue.
    Reconcile,
}

/// Whose images a grant reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reach {
    /// Every study.
    All,
    /// Only studies linked to this FHIR Patient id.
    Patient(String),
}

/// An authenticated caller allowed to do one operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// Who (the token's name).
    pub name: String,
    /// Whose images.
    pub reach: Reach,
}

/// One access to record (an AuditEvent in the EHR).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessRecord {
    /// What was done.
    pub operation: Operation,
    /// The DICOMweb interaction, e.g. `WADO-RS retrieve study`.
    pub interaction: String,
    /// The studies touched (Study Instance UIDs, the ImagingStudy ids).
    pub studies: Vec<String>,
    /// The FHIR Patient ids whose images were touched.
    pub patients: Vec<String>,
    /// The query string, for searches.
    pub query: Option<String>,
    /// Whether it succeeded.
    pub success: bool,
    /// What happened, in a few words.
    pub description: Option<String>,
}

/// Authenticates DICOMweb requests and records what they did.
pub trait AccessControl: Send + Sync {
    /// The grant of the bearer `token` for `operation`:
    /// [`ImagingError::Unauthorized`](crate::ImagingError::Unauthorized)
    /// without a token or with one that is not valid,
    /// [`ImagingError::Forbidden`](crate::ImagingError::Forbidden) when it
    /// lacks the scope.
    fn authorize<'a>(
        &'a self,
        token: Option<&'a str>,
        operation: Operation,
    ) -> BoxFuture<'a, Result<Grant>>;

    /// Record an access by `grant` from `address`; a read is not answered
    /// when this fails.
    fn record<'a>(
        &'a self,
        grant: &'a Grant,
        address: Option<&'a str>,
        access: &'a AccessRecord,
    ) -> BoxFuture<'a, Result<()>>;
}
