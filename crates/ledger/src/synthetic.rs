//! A deterministic synthetic federation (keys derived from names), to drive
//! benchmarks, tests and demonstrations of the log without a real network.
//! Its keys are public knowledge: never use them outside tests.

use std::path::Path;

use ed25519_dalek::SigningKey;

use crate::checkpoint::SignedCheckpoint;
use crate::entry::{
    Consumed, Contribution, DatasetPrepared, Delta, DpBudget, Epsilon, Genesis, LogOrigin, Metric,
    MetricKind, Metrics, ModelReleased, Number, PartyId, PartyKey, PartySet, PlanApproved,
    PlanRegistered, Role, RoundAggregated, RoundOpened, SampleBucket, SignedEntry, Statement,
    Strategy, ValueError, Weight, WitnessKey, WitnessPolicy,
};
use crate::hash::Hash;
use crate::policy::{Policy, PolicyError};
use crate::witness::{Witness, WitnessError};
use crate::writer::{LogError, LogWriter};

/// Why the synthetic federation could not act.
#[derive(Debug, thiserror::Error)]
pub enum SyntheticError {
    /// A value was refused by the schema.
    #[error(transparent)]
    Value(#[from] ValueError),
    /// The sequencer refused.
    #[error(transparent)]
    Log(#[from] LogError),
    /// A witness refused.
    #[error(transparent)]
    Witness(#[from] WitnessError),
    /// The policy is incomplete.
    #[error(transparent)]
    Policy(#[from] PolicyError),
}

/// A key derived from a label (deterministic, therefore public).
pub fn derived_key(label: &str) -> SigningKey {
    SigningKey::from_bytes(&Hash::of_bytes(format!("cohort-synthetic-key/{label}").as_bytes()).0)
}

/// A federation: a coordinator, hospitals each running a witness, a log key.
pub struct Federation {
    /// The log's origin.
    pub origin: LogOrigin,
    /// The log's checkpoint key.
    pub log_key: SigningKey,
    /// The coordinator's id and key.
    pub coordinator: (PartyId, SigningKey),
    /// Each hospital's id and entry-signing key.
    pub hospitals: Vec<(PartyId, SigningKey)>,
    /// Each hospital's witness cosigning key (same order).
    pub witness_keys: Vec<SigningKey>,
    /// Cosignatures a checkpoint needs.
    pub quorum: u16,
    /// The sample count of each hospital (same order).
    pub samples: Vec<u64>,
}

impl Federation {
    /// A federation of `hospitals` hospitals (`hospital-1`, ...) needing
    /// `quorum` cosignatures.
    pub fn new(hospitals: usize, quorum: u16) -> Result<Self, SyntheticError> {
        let party = |name: String| -> Result<(PartyId, SigningKey), ValueError> {
            Ok((PartyId::new(&name)?, derived_key(&name)))
        };
        let hospitals: Vec<(PartyId, SigningKey)> = (1..=hospitals)
            .map(|i| party(format!("hospital-{i}")))
            .collect::<Result<_, _>>()?;
        let witness_keys = hospitals
            .iter()
            .map(|(id, _)| derived_key(&format!("witness/{id}")))
            .collect();
        let samples = (0..hospitals.len() as u64).map(|i| 30 + 57 * i).collect();
        Ok(Self {
            origin: LogOrigin::new("cohort.example/synthetic-ledger")?,
            log_key: derived_key("log"),
            coordinator: party("coordinator".into())?,
            hospitals,
            witness_keys,
            quorum,
            samples,
        })
    }

    /// The policy an auditor of this federation uses.
    pub fn policy(&self) -> Result<Policy, SyntheticError> {
        let mut parties = vec![PartyKey {
            party: self.coordinator.0.clone(),
            role: Role::Coordinator,
            key: self.coordinator.1.verifying_key().into(),
        }];
        parties.extend(self.hospitals.iter().map(|(id, key)| PartyKey {
            party: id.clone(),
            role: Role::Hospital,
            key: key.verifying_key().into(),
        }));
        let witnesses = self
            .hospitals
            .iter()
            .zip(&self.witness_keys)
            .map(|((id, _), key)| WitnessKey {
                party: id.clone(),
                key: key.verifying_key().into(),
            })
            .collect();
        let genesis = Genesis::new(parties, WitnessPolicy::new(witnesses, self.quorum)?)?;
        Ok(Policy::new(
            self.origin.clone(),
            self.log_key.verifying_key().into(),
            genesis,
        )?)
    }

    /// A statement signed by the coordinator.
    pub fn by_coordinator(&self, statement: Statement) -> Result<SignedEntry, ValueError> {
        let (id, key) = &self.coordinator;
        SignedEntry::sign(&self.origin, id.clone(), statement, key)
    }

    /// A statement signed by hospital `i` (0-based).
    pub fn by_hospital(&self, i: usize, statement: Statement) -> Result<SignedEntry, ValueError> {
        let (id, key) = &self.hospitals[i];
        SignedEntry::sign(&self.origin, id.clone(), statement, key)
    }

    /// The genesis entry.
    pub fn genesis(&self) -> Result<SignedEntry, SyntheticError> {
        let genesis = self.policy()?.genesis;
        Ok(self.by_coordinator(Statement::Genesis(genesis))?)
    }

    /// Start the log in `dir` with its genesis.
    pub fn create_log(&self, dir: &Path) -> Result<LogWriter, SyntheticError> {
        Ok(LogWriter::create(
            dir,
            self.origin.clone(),
            self.log_key.clone(),
            &self.genesis()?,
        )?)
    }

    /// Every hospital's witness, with its state under `root/<party>`.
    pub fn witnesses(&self, root: &Path) -> Result<Vec<Witness>, SyntheticError> {
        self.hospitals
            .iter()
            .zip(&self.witness_keys)
            .map(|((id, _), key)| {
                Ok(Witness::open(
                    root.join(id.as_str()),
                    id.clone(),
                    key.clone(),
                    self.origin.clone(),
                    self.log_key.verifying_key().into(),
                )?)
            })
            .collect()
    }

    /// A plan for every hospital, with `rounds` rounds and a budget of
    /// `budget` epsilon.
    pub fn plan(
        &self,
        name: &str,
        rounds: u32,
        budget: Epsilon,
    ) -> Result<PlanRegistered, ValueError> {
        Ok(PlanRegistered {
            plan: Hash::of_bytes(format!("plan/{name}").as_bytes()),
            code_hash: Hash::of_bytes(b"cohort-0.1 logistic-regression sgd"),
            hyperparameters_hash: Hash::of_bytes(format!("hyper/{name}").as_bytes()),
            strategy: Strategy::FedAvg,
            rounds,
            dp_budget: DpBudget {
                epsilon: budget,
                delta: Delta::new(1e-5)?,
            },
            eligible: PartySet::new(self.hospitals.iter().map(|(id, _)| id.clone()).collect())?,
        })
    }

    /// Registration of `plan` and every hospital's approval.
    pub fn plan_entries(&self, plan: &PlanRegistered) -> Result<Vec<SignedEntry>, ValueError> {
        let registration = self.by_coordinator(Statement::PlanRegistered(plan.clone()))?;
        let mut out = vec![registration.clone()];
        for i in 0..self.hospitals.len() {
            out.push(self.by_hospital(
                i,
                Statement::PlanApproved(PlanApproved {
                    plan: plan.plan,
                    registration: registration.entry_hash(),
                }),
            )?);
        }
        Ok(out)
    }

    /// Hospital `i`'s statement of its training table for `plan`, whose
    /// `PlanRegistered` entry has entry hash `registration`: `records` rows
    /// (bucketed), `excluded` patients left out for their consent, `incomplete`
    /// for missing data.
    pub fn dataset_prepared(
        &self,
        plan: &PlanRegistered,
        registration: Hash,
        i: usize,
        records: u64,
        excluded: u32,
        incomplete: u32,
    ) -> Result<SignedEntry, ValueError> {
        self.by_hospital(
            i,
            Statement::DatasetPrepared(DatasetPrepared {
                plan: plan.plan,
                registration,
                records: SampleBucket::of(records)?,
                excluded_by_consent: excluded,
                incomplete,
            }),
        )
    }

    /// Hospital `i`'s contribution to `round`, each round spending
    /// `epsilon_round`.
    pub fn contribution(
        &self,
        plan: &PlanRegistered,
        round: u32,
        i: usize,
        epsilon_round: Epsilon,
    ) -> Result<SignedEntry, ValueError> {
        let id = &self.hospitals[i].0;
        let total = Epsilon::from_micro(epsilon_round.micro() * u64::from(round));
        self.by_hospital(
            i,
            Statement::Contribution(Contribution {
                plan: plan.plan,
                round,
                update_hash: Hash::of_bytes(format!("update/{id}/{round}").as_bytes()),
                samples: SampleBucket::of(self.samples[i])?,
                metrics: Metrics::new(vec![
                    Metric {
                        kind: MetricKind::Loss,
                        value: Number::new(0.7 / f64::from(round))?,
                    },
                    Metric {
                        kind: MetricKind::Accuracy,
                        value: Number::new(0.5 + 0.3 * (1.0 - 1.0 / f64::from(round)))?,
                    },
                ])?,
                epsilon_round,
                epsilon_total: total,
                code_hash: plan.code_hash,
            }),
        )
    }

    /// The model output by `round` (deterministic).
    pub fn model_after(plan: &PlanRegistered, round: u32) -> Hash {
        Hash::of_bytes(format!("model/{}/{round}", plan.plan).as_bytes())
    }

    /// The aggregate of `round` over the given contributions (in order).
    pub fn aggregate(
        &self,
        plan: &PlanRegistered,
        round: u32,
        contributions: &[SignedEntry],
    ) -> Result<SignedEntry, ValueError> {
        let buckets: Vec<SampleBucket> = contributions
            .iter()
            .filter_map(|c| match c.statement() {
                Statement::Contribution(c) => Some(c.samples),
                _ => None,
            })
            .collect();
        let weights = Weight::for_buckets(plan.strategy, &buckets);
        self.by_coordinator(Statement::RoundAggregated(RoundAggregated {
            plan: plan.plan,
            round,
            consumed: contributions
                .iter()
                .zip(weights)
                .map(|(c, weight)| Consumed {
                    contribution: c.entry_hash(),
                    weight,
                })
                .collect(),
            output_model: Self::model_after(plan, round),
        }))
    }

    /// A whole round: opened, one contribution per hospital, aggregated.
    pub fn round_entries(
        &self,
        plan: &PlanRegistered,
        round: u32,
        epsilon_round: Epsilon,
    ) -> Result<Vec<SignedEntry>, ValueError> {
        let mut out = vec![self.by_coordinator(Statement::RoundOpened(RoundOpened {
            plan: plan.plan,
            round,
            input_model: Self::model_after(plan, round - 1),
        }))?];
        let contributions = (0..self.hospitals.len())
            .map(|i| self.contribution(plan, round, i, epsilon_round))
            .collect::<Result<Vec<_>, _>>()?;
        let aggregate = self.aggregate(plan, round, &contributions)?;
        out.extend(contributions);
        out.push(aggregate);
        Ok(out)
    }

    /// The release of the last round's model.
    pub fn release(&self, plan: &PlanRegistered, round: u32) -> Result<SignedEntry, ValueError> {
        self.by_coordinator(Statement::ModelReleased(ModelReleased {
            plan: plan.plan,
            model: Self::model_after(plan, round),
        }))
    }

    /// Checkpoint the log, have every witness cosign it, and publish it.
    pub fn publish(
        &self,
        writer: &mut LogWriter,
        witnesses: &mut [Witness],
        timestamp: u64,
    ) -> Result<SignedCheckpoint, SyntheticError> {
        writer.checkpoint()?;
        for witness in witnesses.iter_mut() {
            let request = writer.add_checkpoint_request(witness.size())?;
            let cosignature = witness.cosign(&request, writer.dir(), timestamp)?;
            writer.add_cosignature(cosignature)?;
        }
        Ok(writer.publish()?)
    }
}
