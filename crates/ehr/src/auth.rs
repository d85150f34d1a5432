//! Who may do what: opaque bearer tokens kept (hashed) in the store, each with SMART-style
//! scopes such as `patient/*.read`, `user/*.write`, `system/*.read` or `user/Observation.rs`.
//!
//! A token is issued once (`cohort ehr token create`), shown once, and stored only as its
//! SHA-256 hash, so a copy of the database does not leak usable tokens. Tokens can expire and be
//! revoked. `patient/` scopes need the token to name its patient and reach only that patient's
//! compartment.

mod scopes;
mod tokens;

pub use scopes::{Access, Context, Interaction, Principal, Scope};
pub use tokens::TokenSummary;
