//! The coordinator's side of the ledger: it sequences the log (genesis naming
//! the coordinator and the hospitals, whose witnesses must cosign), appends
//! what the plan state says happened, asks the hospitals' witnesses to cosign
//! checkpoints and publishes a checkpoint once a quorum has.
//!
//! The plan state is the source of truth: [`FederationLedger::sync`] appends
//! whatever [`fed::record::expected_entries`] lists beyond the log's size, so a
//! coordinator restarted after a crash completes its log identically.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use fed::plan_run::PlanState;
use ledger::entry::{
    Genesis, LogOrigin, PartyId, PartyKey, PublicKey, Role, WitnessKey, WitnessPolicy,
};
use ledger::note::NoteSignature;
use ledger::policy::Policy;
use ledger::tiles::LogSource;
use ledger::writer::LogWriter;

/// Ledger failures.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// A value or entry could not be built.
    #[error("ledger: {0}")]
    Build(String),
    /// The log refused an operation.
    #[error("ledger log: {0}")]
    Log(#[from] ledger::writer::LogError),
    /// The log holds entries the plan state does not explain.
    #[error("the ledger holds {log} plan entries but the plan state explains only {state}")]
    AheadOfState {
        /// Entries in the log after genesis.
        log: usize,
        /// Entries the state explains.
        state: usize,
    },
    /// A file could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
}

fn build<E: std::fmt::Display>(e: E) -> LedgerError {
    LedgerError::Build(e.to_string())
}

/// A hospital as the ledger knows it.
pub struct LedgerParty {
    /// Party name.
    pub name: String,
    /// The Ed25519 key of its certificate (signs its entries and cosignatures).
    pub key: pki::PublicKey,
}

/// The log, its policy and the witnessing in progress.
pub struct FederationLedger {
    writer: LogWriter,
    origin: LogOrigin,
    coordinator: PartyId,
    key: SigningKey,
    policy: Policy,
    dir: PathBuf,
    witnesses: BTreeSet<String>,
    witness_sizes: BTreeMap<String, u64>,
    cosigned: BTreeSet<String>,
    approvals_checkpointed: bool,
    /// What the state looked like at the last sync (phase, reviews, rounds):
    /// the log's content depends on nothing else, so an unchanged key means
    /// nothing to append.
    synced: Option<(String, usize, usize)>,
}

fn ledger_key(key: &pki::PublicKey) -> Result<PublicKey, LedgerError> {
    PublicKey::from_bytes(&key.0).map_err(build)
}

impl FederationLedger {
    /// Open the log in `dir/log` (creating it with its genesis), and write the
    /// auditor's policy to `dir/policy.toml`. The log key is the coordinator's
    /// identity key.
    pub fn open(
        dir: &Path,
        federation: &str,
        key: SigningKey,
        hospitals: &[LedgerParty],
        quorum: u16,
    ) -> Result<Self, LedgerError> {
        let origin = LogOrigin::new(&format!("cohort.federation/{federation}")).map_err(build)?;
        let coordinator = PartyId::new("coordinator").map_err(build)?;
        let mut parties = vec![PartyKey {
            party: coordinator.clone(),
            role: Role::Coordinator,
            key: key.verifying_key().into(),
        }];
        let mut witness_keys = Vec::new();
        for h in hospitals {
            let party = PartyId::new(&h.name).map_err(build)?;
            let public = ledger_key(&h.key)?;
            parties.push(PartyKey {
                party: party.clone(),
                role: Role::Hospital,
                key: public,
            });
            witness_keys.push(WitnessKey { party, key: public });
        }
        let genesis = Genesis::new(
            parties,
            WitnessPolicy::new(witness_keys, quorum).map_err(build)?,
        )
        .map_err(build)?;
        let policy = Policy::new(origin.clone(), key.verifying_key().into(), genesis.clone())
            .map_err(build)?;
        let log_dir = dir.join("log");
        let writer =
            if log_dir.join("checkpoint").exists() || log_dir.join("staged-checkpoint").exists() {
                LogWriter::open(&log_dir, origin.clone(), key.clone())?
            } else {
                let entry = ledger::entry::SignedEntry::sign(
                    &origin,
                    coordinator.clone(),
                    ledger::entry::Statement::Genesis(genesis),
                    &key,
                )
                .map_err(build)?;
                let mut writer = LogWriter::create(&log_dir, origin.clone(), key.clone(), &entry)?;
                writer.checkpoint()?;
                writer
            };
        std::fs::create_dir_all(dir).map_err(|source| LedgerError::Write {
            path: dir.display().to_string(),
            source,
        })?;
        let policy_path = dir.join("policy.toml");
        std::fs::write(&policy_path, policy.to_toml()).map_err(|source| LedgerError::Write {
            path: policy_path.display().to_string(),
            source,
        })?;
        Ok(FederationLedger {
            writer,
            origin,
            coordinator,
            key,
            policy,
            dir: log_dir,
            witnesses: hospitals.iter().map(|h| h.name.clone()).collect(),
            witness_sizes: BTreeMap::new(),
            cosigned: BTreeSet::new(),
            approvals_checkpointed: false,
            synced: None,
        })
    }

    /// The log's origin line.
    pub fn origin(&self) -> &LogOrigin {
        &self.origin
    }

    /// The log's checkpoint key (hex).
    pub fn log_key_hex(&self) -> String {
        hex::encode(self.key.verifying_key().to_bytes())
    }

    /// The auditor's policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// Directory of the log (tiles, bundles, checkpoint).
    pub fn log_dir(&self) -> &Path {
        &self.dir
    }

    /// Entries in the log, genesis included.
    pub fn size(&self) -> u64 {
        self.writer.size()
    }

    /// The published checkpoint (signed note with cosignatures), if any.
    pub fn published_note(&self) -> Option<String> {
        self.writer
            .published()
            .map(|c| String::from_utf8_lossy(&c.to_bytes()).into_owned())
    }

    /// Size covered by the published checkpoint (0 before the first).
    pub fn published_size(&self) -> u64 {
        self.writer.published().map_or(0, |c| c.checkpoint().size)
    }

    /// The coordinator-signed registration of the state's plan.
    pub fn registration(
        &self,
        state: &PlanState,
    ) -> Result<ledger::entry::SignedEntry, LedgerError> {
        let statement = fed::record::registration(&state.plan).map_err(build)?;
        ledger::entry::SignedEntry::sign(
            &self.origin,
            self.coordinator.clone(),
            ledger::entry::Statement::PlanRegistered(statement),
            &self.key,
        )
        .map_err(build)
    }

    /// Append what the state says happened and is not yet in the log; stage a
    /// checkpoint for the witnesses once the plan's approvals are in, and
    /// again when the plan is over. Returns whether anything changed.
    pub fn sync(&mut self, state: &PlanState, finished: bool) -> Result<bool, LedgerError> {
        let key = (
            format!("{:?}", state.phase),
            state.reviews.len(),
            state.history.len(),
        );
        if self.synced.as_ref() == Some(&key) {
            return Ok(false);
        }
        let have = self.writer.size().saturating_sub(1) as usize;
        let expected =
            fed::record::expected_entries(state, &self.origin, &self.coordinator, &self.key, have)
                .map_err(build)?;
        if have > expected.total {
            return Err(LedgerError::AheadOfState {
                log: have,
                state: expected.total,
            });
        }
        let mut changed = false;
        if !expected.entries.is_empty() {
            self.writer.append_batch(&expected.entries)?;
            tracing::debug!(
                appended = expected.entries.len(),
                size = self.writer.size(),
                "ledger entries appended"
            );
            changed = true;
        }
        let approvals_in = state.phase != fed::plan_run::Phase::Review;
        let staged_size = self.writer.staged().map(|c| c.checkpoint().size);
        let milestone = (approvals_in && !self.approvals_checkpointed)
            || (finished
                && staged_size != Some(self.writer.size())
                && self.published_size() != self.writer.size());
        if milestone {
            self.writer.checkpoint()?;
            self.approvals_checkpointed = approvals_in;
            self.cosigned.clear();
            changed = true;
        }
        self.synced = Some(key);
        Ok(changed)
    }

    /// The add-checkpoint request for `node`'s witness, while the staged
    /// checkpoint lacks its cosignature.
    pub fn cosign_request(&self, node: &str) -> Option<Vec<u8>> {
        if !self.witnesses.contains(node) || self.cosigned.contains(node) {
            return None;
        }
        let staged = self.writer.staged()?;
        if staged.checkpoint().size <= self.published_size() {
            return None;
        }
        let old = self.witness_sizes.get(node).copied().unwrap_or(0);
        self.writer
            .add_checkpoint_request(old)
            .ok()
            .map(|r| r.to_bytes())
    }

    /// A witness answered: record its cosignature (publishing once a quorum
    /// has cosigned) or its refusal.
    pub fn on_cosignature(
        &mut self,
        node: &str,
        line: &str,
        witness_size: u64,
        error: &str,
    ) -> Result<(), LedgerError> {
        if !error.is_empty() {
            let known = self.witness_sizes.get(node).copied().unwrap_or(0);
            if witness_size != known {
                tracing::info!(%node, witness_size, "witness is at another size; asking again");
                self.witness_sizes.insert(node.to_string(), witness_size);
            } else {
                tracing::warn!(%node, %error, "witness refused to cosign");
                self.cosigned.insert(node.to_string());
            }
            return Ok(());
        }
        if self.writer.staged().is_none() {
            // Published already with the others' cosignatures: the witness is
            // at the published size all the same.
            self.witness_sizes
                .insert(node.to_string(), self.published_size());
            self.cosigned.insert(node.to_string());
            return Ok(());
        }
        let signature = NoteSignature::parse_line(line).map_err(build)?;
        self.writer.add_cosignature(signature)?;
        let size = self.writer.staged().map_or(0, |c| c.checkpoint().size);
        self.witness_sizes.insert(node.to_string(), size);
        self.cosigned.insert(node.to_string());
        if self.writer.publish().is_ok() {
            tracing::info!(size, "ledger checkpoint published with a witness quorum");
        }
        Ok(())
    }

    /// A file of the log for a mirroring witness: `checkpoint` or a tile path.
    pub fn read(&self, path: &str) -> Result<Vec<u8>, String> {
        let safe = path == "checkpoint"
            || (path.starts_with("tile/")
                && path
                    .split('/')
                    .all(|part| !part.is_empty() && part != ".." && part != "."));
        if !safe {
            return Err(format!("{path:?} is not a log file"));
        }
        let dir = ledger::tiles::LogDir::new(&self.dir);
        if path == "checkpoint" {
            return dir.read_checkpoint().map_err(|e| e.to_string());
        }
        dir.read_file(path).map_err(|e| e.to_string())
    }
}
