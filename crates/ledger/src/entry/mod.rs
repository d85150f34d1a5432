//! Entries: versioned statements, canonically encoded and signed by their
//! author.

mod codec;
mod error;
mod ids;
mod public_key;
mod signed;
mod statement;
mod statement_codec;
mod values;

pub use error::{DecodeError, ValueError};
pub use ids::{LogOrigin, PartyId};
pub use public_key::PublicKey;
pub use signed::SignedEntry;
pub use statement::{
    Consumed, Contribution, DatasetPrepared, DpBudget, Genesis, KeyEnrolled, KeyRevoked,
    KeyRotated, MAX_LIST_LEN, Metric, Metrics, ModelReleased, Objection, PartyKey, PartySet,
    PlanApproved, PlanRegistered, PolicyUpdate, RoundAggregated, RoundOpened, Statement, TextCount,
    TextDatasetPrepared, TextPrepared, WitnessKey, WitnessPolicy,
};
pub use values::{
    Delta, Epsilon, MetricKind, Number, ObjectionReason, PhiCategory, RevocationReason, Role,
    SampleBucket, Strategy, TextKind, Weight,
};
