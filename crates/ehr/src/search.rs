//! FHIR search: the parameter definitions, index extraction at write time, the translation of
//! search URLs into SQL, and running it.

pub mod extract;
mod filter;
pub mod parameters;
pub mod request;
mod run;

pub use request::{Include, SearchRequest, Total};
pub use run::SearchResult;
