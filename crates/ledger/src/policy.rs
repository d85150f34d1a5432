//! The federation policy an auditor starts from (`policy.toml`): the log's
//! origin and public key, the founding parties with their roles and keys, the
//! witnesses and the quorum. The log's first entry must state the same.
//!
//! ```toml
//! origin = "cohort.example/heart-ledger"
//! log_key = "<64 hex digits>"
//! quorum = 2
//!
//! [[parties]]
//! id = "coordinator"
//! role = "coordinator"
//! key = "<64 hex digits>"
//!
//! [[witnesses]]
//! id = "cleveland"
//! key = "<64 hex digits>"
//! ```

use std::path::Path;

use crate::entry::{
    Genesis, LogOrigin, PartyId, PartyKey, PublicKey, Role, ValueError, WitnessKey, WitnessPolicy,
};

/// Why a policy file is rejected.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file cannot be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Not TOML of the expected shape.
    #[error("malformed policy: {0}")]
    Toml(#[from] toml::de::Error),
    /// A value is not admitted.
    #[error("invalid policy value: {0}")]
    Value(#[from] ValueError),
    /// A role name outside the table.
    #[error("unknown role {0:?} (coordinator, hospital or auditor)")]
    Role(String),
    /// No party has the coordinator role.
    #[error("the policy names no coordinator")]
    NoCoordinator,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    origin: String,
    log_key: String,
    quorum: u16,
    parties: Vec<PartyEntry>,
    witnesses: Vec<WitnessEntry>,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PartyEntry {
    id: String,
    role: String,
    key: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct WitnessEntry {
    id: String,
    key: String,
}

/// A federation's founding policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// The log's origin.
    pub origin: LogOrigin,
    /// The log's checkpoint-signing key.
    pub log_key: PublicKey,
    /// The founding parties and witness policy, as the genesis entry states them.
    pub genesis: Genesis,
}

impl Policy {
    /// A policy; at least one party must be a coordinator.
    pub fn new(
        origin: LogOrigin,
        log_key: PublicKey,
        genesis: Genesis,
    ) -> Result<Self, PolicyError> {
        if !genesis
            .parties()
            .iter()
            .any(|p| p.role == Role::Coordinator)
        {
            return Err(PolicyError::NoCoordinator);
        }
        Ok(Self {
            origin,
            log_key,
            genesis,
        })
    }

    /// Parse `policy.toml` text.
    pub fn from_toml(text: &str) -> Result<Self, PolicyError> {
        let file: PolicyFile = toml::from_str(text)?;
        let parties = file
            .parties
            .iter()
            .map(|p| {
                Ok(PartyKey {
                    party: PartyId::new(&p.id)?,
                    role: Role::from_name(&p.role)
                        .ok_or_else(|| PolicyError::Role(p.role.clone()))?,
                    key: PublicKey::from_hex(&p.key)?,
                })
            })
            .collect::<Result<Vec<_>, PolicyError>>()?;
        let witnesses = file
            .witnesses
            .iter()
            .map(|w| {
                Ok(WitnessKey {
                    party: PartyId::new(&w.id)?,
                    key: PublicKey::from_hex(&w.key)?,
                })
            })
            .collect::<Result<Vec<_>, ValueError>>()?;
        let genesis = Genesis::new(parties, WitnessPolicy::new(witnesses, file.quorum)?)?;
        Self::new(
            LogOrigin::new(&file.origin)?,
            PublicKey::from_hex(&file.log_key)?,
            genesis,
        )
    }

    /// Read and parse a policy file.
    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml(&text)
    }

    /// The policy as `policy.toml` text.
    pub fn to_toml(&self) -> String {
        let file = PolicyFile {
            origin: self.origin.to_string(),
            log_key: self.log_key.to_hex(),
            quorum: self.genesis.witnesses.quorum(),
            parties: self
                .genesis
                .parties()
                .iter()
                .map(|p| PartyEntry {
                    id: p.party.to_string(),
                    role: p.role.name().to_string(),
                    key: p.key.to_hex(),
                })
                .collect(),
            witnesses: self
                .genesis
                .witnesses
                .witnesses()
                .iter()
                .map(|w| WitnessEntry {
                    id: w.party.to_string(),
                    key: w.key.to_hex(),
                })
                .collect(),
        };
        // Serialising plain strings and integers cannot fail.
        toml::to_string(&file).unwrap_or_default()
    }
}
