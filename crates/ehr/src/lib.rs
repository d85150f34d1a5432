//! The hospital's electronic health record: a FHIR R4 store and REST API, and the consent gate
//! through which federated training reads it.
//!
//! - [`store`]: every version of every resource as the JSON received (plus `id` and `meta`),
//!   with search indexes written in the same transaction; SQLite by default, PostgreSQL (JSONB)
//!   with the same code.
//! - [`search`]: string, token, reference, date, number, quantity and URI parameters, modifiers,
//!   chains one level deep, `_has`, `_include`/`_revinclude`, `_sort`, paging.
//! - [`bundle`]: transaction (all-or-nothing, local references resolved) and batch Bundles.
//! - [`api`]: the REST API as an axum router ([`router`]), with `$everything`, `$export`,
//!   `/metadata`, and an OperationOutcome for every error.
//! - [`auth`] and [`audit`]: bearer tokens with SMART scopes; an AuditEvent for every access to
//!   patient data.
//! - [`gate`] and [`heart`]: dataset definitions turned into training tables behind consent,
//!   with keyed pseudonyms and shifted dates; UCI Heart Disease loaded as FHIR.
//! - [`import`] and [`mod@bench`]: loading files, and the ingest and search benchmarks.
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use ehr::search::SearchRequest;
//! use ehr::Store;
//! use serde_json::json;
//!
//! let store = Store::open("sqlite::memory:").await?;
//! let mut tx = store.begin().await?;
//! let curie = tx.create(json!({"resourceType": "Patient", "name": [{"family": "Curie"}]})).await?;
//! tx.commit().await?;
//!
//! let request = SearchRequest::parse("Patient", &[("name".into(), "cur".into())])?;
//! let found = store.search(&request, None).await?;
//! assert_eq!(found.matches[0].id, curie.id);
//! assert_eq!(found.matches[0].version, 1);
//! # Ok::<(), ehr::Error>(())
//! # }).unwrap();
//! ```
#![warn(missing_docs)]

pub mod api;
pub mod audit;
pub mod auth;
pub mod bench;
pub mod bundle;
pub mod datetime;
pub mod error;
pub mod gate;
pub mod heart;
pub mod import;
pub mod search;
pub mod store;
pub mod types;
pub mod validate;

pub use api::{ApiConfig, EhrState, router, serve};
pub use error::{Error, Result};
pub use store::{Dialect, Store};
