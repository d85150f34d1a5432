//! What a hospital states about one update it sends, in one shape shared by
//! the node (which builds and signs it), the protocol (which carries it) and
//! the coordinator's plan state (which checks and records it).

use learn::Metrics;
use ledger::entry::SignedEntry;
use serde::{Deserialize, Serialize};

/// The facts of one update: everything its signed Contribution ledger entry
/// states (all but `global_test`), whether the weights travel with it or are
/// masked under secure aggregation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Contribution {
    /// The round the update was trained for (from 1).
    pub round: u32,
    /// SHA-256 (hex) of the update's safetensors bytes; under secure
    /// aggregation a commitment to weights the coordinator never sees.
    pub update_sha256: String,
    /// Training records behind the update.
    pub num_samples: u64,
    /// The trained weights on the node's training rows.
    pub train: Metrics,
    /// The round's incoming global model on the node's test rows.
    pub global_test: Metrics,
    /// The code hash the node ran.
    pub code_hash: String,
    /// Epsilon (millionths) the node spent on this update (0 without DP).
    pub epsilon_round_micro: u64,
    /// Epsilon (millionths) the node has spent on the plan so far.
    pub epsilon_total_micro: u64,
}

/// A [`Contribution`] with the node-signed ledger entry that states it (the
/// transport checks the signature, [`crate::record::check_contribution`] that
/// the entry says exactly these facts).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SignedContribution {
    /// The facts.
    #[serde(flatten)]
    pub contribution: Contribution,
    /// The author's Contribution ledger entry, kept as evidence (hex in the
    /// serialised state).
    #[serde(with = "entry_hex")]
    pub entry: SignedEntry,
}

/// Serde form of a [`SignedEntry`]: the hex of its canonical bytes.
pub mod entry_hex {
    use ledger::entry::SignedEntry;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    /// Serialise an entry as hex.
    pub fn serialize<S: Serializer>(entry: &SignedEntry, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(entry.bytes()))
    }

    /// Deserialise an entry from hex, decoding it.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<SignedEntry, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let bytes = hex::decode(text.as_bytes()).map_err(D::Error::custom)?;
        SignedEntry::from_bytes(&bytes).map_err(|e| D::Error::custom(e.to_string()))
    }

    /// The same for an optional entry (absent or `null` when there is none).
    pub mod option {
        use ledger::entry::SignedEntry;
        use serde::{Deserialize, Deserializer, Serializer};

        /// Serialise an optional entry as hex or `null`.
        pub fn serialize<S: Serializer>(
            entry: &Option<SignedEntry>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match entry {
                Some(e) => super::serialize(e, s),
                None => s.serialize_none(),
            }
        }

        /// Deserialise an optional entry.
        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<SignedEntry>, D::Error> {
            #[derive(Deserialize)]
            struct Hex(#[serde(with = "super")] SignedEntry);
            Ok(Option::<Hex>::deserialize(d)?.map(|Hex(e)| e))
        }
    }
}
