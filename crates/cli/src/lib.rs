//! The commands of the `cohort` binary, as a library so that integration
//! tests can start the same in-process federation as `cohort demo`.

pub mod baselines;
pub mod bench;
pub mod billing_cmd;
pub mod ca;
pub mod coding_demo;
pub mod deid_cmd;
pub mod deid_text_cmd;
pub mod demo;
pub mod dp_cmd;
pub mod ehr_cmd;
pub mod imaging_cmd;
pub mod ledger_cmd;
pub mod models_cmd;
pub mod notes_cmd;
pub mod notes_demo;
pub mod plan_options;
pub mod report;
pub mod results;
pub mod speech_cmd;
