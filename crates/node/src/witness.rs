//! The hospital's part in the ledger: it signs the entries it authors (its
//! approval of a plan, each contribution) and runs a witness that cosigns the
//! coordinator's checkpoints only after checking them against its own mirror
//! of the log, fetched tile by tile through the protocol's `ReadLog`.

use std::path::PathBuf;

use ed25519_dalek::SigningKey;
use fed::contribution::Contribution;
use fed::plan::TrainingPlan;
use ledger::entry::{LogOrigin, PartyId, PublicKey, SignedEntry, Statement};
use ledger::tiles::{LogSource, StoreError, TilePath};
use ledger::witness::{AddCheckpoint, Witness, WitnessError};
use protocol::v1::{self, coordinator_client::CoordinatorClient};
use tonic::transport::Channel;

/// The node's view of the federation's ledger.
pub struct NodeLedger {
    origin: LogOrigin,
    log_key: PublicKey,
    party: PartyId,
    key: SigningKey,
    witness_dir: PathBuf,
    witness: Option<Witness>,
}

/// What the witness answers to a cosign request.
pub enum CosignOutcome {
    /// The cosignature line.
    Cosigned(String),
    /// A refusal, with the witness's latest cosigned size.
    Refused {
        /// Why.
        error: String,
        /// Latest size the witness cosigned.
        witness_size: u64,
    },
}

impl NodeLedger {
    /// The ledger named by the coordinator at join (origin and log key, hex),
    /// signing as `party` with `key`, keeping the witness state in `witness_dir`.
    pub fn new(
        origin: &str,
        log_key_hex: &str,
        party: &str,
        key: SigningKey,
        witness_dir: PathBuf,
    ) -> Result<Self, String> {
        let bytes: [u8; 32] = hex::decode(log_key_hex)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| format!("the ledger key {log_key_hex:?} is not 32 bytes of hex"))?;
        Ok(NodeLedger {
            origin: LogOrigin::new(origin).map_err(|e| e.to_string())?,
            log_key: PublicKey::from_bytes(&bytes).map_err(|e| e.to_string())?,
            party: PartyId::new(party).map_err(|e| e.to_string())?,
            key,
            witness_dir,
            witness: None,
        })
    }

    /// Whether this is the ledger the coordinator names now.
    pub fn is(&self, origin: &str, log_key_hex: &str) -> bool {
        self.origin.as_str() == origin && hex::encode(self.log_key.to_bytes()) == log_key_hex
    }

    fn sign(&self, statement: Statement) -> Result<Vec<u8>, String> {
        SignedEntry::sign(&self.origin, self.party.clone(), statement, &self.key)
            .map(|e| e.bytes().to_vec())
            .map_err(|e| e.to_string())
    }

    /// Check the coordinator's registration of `plan` and sign our approval of it.
    pub fn approve(&self, plan: &TrainingPlan, registration: &[u8]) -> Result<Vec<u8>, String> {
        let entry = SignedEntry::from_bytes(registration)
            .map_err(|e| format!("the plan's registration entry does not decode: {e}"))?;
        if !entry.verify(&self.origin, &self.log_key) {
            return Err("the plan's registration entry is not signed by the ledger's key".into());
        }
        let expected = fed::record::registration(plan).map_err(|e| e.to_string())?;
        match entry.statement() {
            Statement::PlanRegistered(r) if *r == expected => {}
            _ => return Err("the registration entry does not register this plan".into()),
        }
        let approval = fed::record::approval(&plan.plan_id(), &entry).map_err(|e| e.to_string())?;
        self.sign(Statement::PlanApproved(approval))
    }

    /// Sign the DatasetPrepared entry of the data this node built for a plan:
    /// how many records, how many patients consent excluded and how many were
    /// incomplete (counts, never who); for text data, the TextDatasetPrepared
    /// entry, which adds the text gate's counts (documents per kind, spans
    /// removed per category).
    pub fn dataset_prepared(
        &self,
        plan: &TrainingPlan,
        registration: &[u8],
        table: &crate::source::SourceTable,
    ) -> Result<Vec<u8>, String> {
        let entry = SignedEntry::from_bytes(registration)
            .map_err(|e| format!("the plan's registration entry does not decode: {e}"))?;
        let statement = ledger::entry::DatasetPrepared {
            plan: fed::record::hash_from_hex(&plan.plan_id()).map_err(|e| e.to_string())?,
            registration: entry.entry_hash(),
            records: ledger::entry::SampleBucket::of(table.data.training_records() as u64)
                .map_err(|e| e.to_string())?,
            excluded_by_consent: table.excluded_by_consent,
            incomplete: table.incomplete,
        };
        match table.data.text_counts() {
            None => self.sign(Statement::DatasetPrepared(statement)),
            Some(counts) => self.sign(Statement::TextDatasetPrepared(
                ledger::entry::TextDatasetPrepared {
                    dataset: statement,
                    text: text_prepared(counts)?,
                },
            )),
        }
    }

    /// Sign the Contribution entry of an update.
    pub fn contribution(
        &self,
        plan: &TrainingPlan,
        update: &Contribution,
    ) -> Result<SignedEntry, String> {
        fed::record::sign_contribution(plan, update, &self.origin, self.party.clone(), &self.key)
            .map_err(|e| e.to_string())
    }

    /// Handle an add-checkpoint request, reading the log through `log`.
    pub fn cosign(&mut self, request: &[u8], log: &dyn LogSource, now: u64) -> CosignOutcome {
        let refuse = |error: String, witness_size: u64| CosignOutcome::Refused {
            error,
            witness_size,
        };
        let request = match AddCheckpoint::parse(request) {
            Ok(r) => r,
            Err(e) => return refuse(format!("malformed add-checkpoint request: {e}"), 0),
        };
        if self.witness.is_none() {
            match Witness::open(
                self.witness_dir.clone(),
                self.party.clone(),
                self.key.clone(),
                self.origin.clone(),
                self.log_key,
            ) {
                Ok(w) => self.witness = Some(w),
                Err(e) => return refuse(format!("cannot open the witness: {e}"), 0),
            }
        }
        let witness = self.witness.as_mut().expect("just opened");
        match witness.cosign(&request, log, now) {
            Ok(signature) => CosignOutcome::Cosigned(signature.to_line()),
            Err(WitnessError::Conflict { latest }) => {
                refuse("the witness is at another size".into(), latest)
            }
            Err(e) => {
                tracing::error!(error = %e, "witness refused the coordinator's checkpoint");
                refuse(e.to_string(), witness.size())
            }
        }
    }
}

/// The coordinator's log read over the protocol, from a blocking thread.
pub struct RemoteLog {
    client: CoordinatorClient<Channel>,
    runtime: tokio::runtime::Handle,
}

impl RemoteLog {
    /// Read through `client`; must be used from a thread outside the runtime
    /// (e.g. `spawn_blocking`).
    pub fn new(client: CoordinatorClient<Channel>, runtime: tokio::runtime::Handle) -> Self {
        RemoteLog { client, runtime }
    }

    fn read(&self, path: String) -> Result<Vec<u8>, StoreError> {
        let mut client = self.client.clone();
        self.runtime
            .block_on(client.read_log(v1::LogRead { path: path.clone() }))
            .map(|r| r.into_inner().data)
            .map_err(|status| {
                tracing::warn!(%path, error = %status.message(), "cannot read the ledger");
                StoreError::Missing(path)
            })
    }
}

impl LogSource for RemoteLog {
    fn read_tile(&self, tile: &TilePath) -> Result<Vec<u8>, StoreError> {
        self.read(tile.to_string())
    }

    fn read_checkpoint(&self) -> Result<Vec<u8>, StoreError> {
        self.read(ledger::tiles::CHECKPOINT_FILE.to_string())
    }
}

/// The ledger's form of the text gate's counts.
fn text_prepared(counts: &ehr::gate::TextCounts) -> Result<ledger::entry::TextPrepared, String> {
    use ledger::entry::{PhiCategory, TextCount, TextKind};
    let count = |n: usize| u32::try_from(n).map_err(|_| format!("{n} does not fit a count"));
    let documents = counts
        .documents
        .iter()
        .map(|(kind, n)| {
            let kind = TextKind::from_name(kind.name())
                .ok_or_else(|| format!("text kind {} has no ledger code", kind.name()))?;
            Ok(TextCount {
                kind,
                count: count(*n)?,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let removed = counts
        .removed
        .iter()
        .map(|(label, n)| {
            let name = label.as_str().to_lowercase();
            let kind = PhiCategory::from_name(&name)
                .ok_or_else(|| format!("PHI category {name} has no ledger code"))?;
            Ok(TextCount {
                kind,
                count: count(*n)?,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    ledger::entry::TextPrepared::new(documents, removed).map_err(|e| e.to_string())
}
