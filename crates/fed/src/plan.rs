//! Training plans: what a federation trains, how, and under which rules.

use learn::{ModelSpec, Optimizer, TrainConfig};
use serde::{Deserialize, Serialize};

use crate::client_dp::ClientDp;
use crate::strategy::StrategyConfig;

/// A training plan as the coordinator registers it and nodes review it.
///
/// Its identity ([`TrainingPlan::plan_id`]) is the SHA-256 of its canonical
/// JSON, so any change of a hyper-parameter is a different plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainingPlan {
    /// Human-readable name.
    pub name: String,
    /// The dataset every node must provide (e.g. `heart-disease`).
    pub dataset: String,
    /// Model architecture.
    pub model: ModelSpec,
    /// Local training hyper-parameters.
    pub training: TrainConfig,
    /// Aggregation rule.
    pub strategy: StrategyConfig,
    /// Number of training rounds.
    pub rounds: u32,
    /// Fewest hospitals whose updates make a round (and whose approval starts the plan).
    pub min_hospitals: usize,
    /// Seconds each phase (review, statistics, each round, evaluation) stays open.
    pub round_deadline_secs: u64,
    /// How many times a round that missed its quorum is reopened before the plan fails.
    pub round_attempts: u32,
    /// Party names of the eligible hospitals.
    pub hospitals: Vec<String>,
    /// Seed of initial weights and of every node's local shuffling.
    pub seed: u64,
    /// Standardise features with federated means and variances before training.
    pub standardize: bool,
    /// Each hospital's (epsilon, delta) budget for this plan when training uses DP-SGD
    /// (`training.dp`); enforced by the nodes themselves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privacy_budget: Option<PrivacyBudget>,
    /// Secure aggregation (SecAgg+): the coordinator sees only masked updates
    /// and their sum. FedAvg-family strategies only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secure_aggregation: Option<SecureAggregation>,
    /// Client-level DP-FedAvg: each hospital's update clipped and noised before
    /// it is masked (needs secure aggregation and a privacy budget).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_dp: Option<ClientDp>,
    /// What a node feeds a model that reads clinical text (`model` an embedding bag); absent
    /// for tabular plans.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_task: Option<TextTask>,
}

/// A task whose model reads the node's de-identified clinical text.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum TextTask {
    /// Clinical coding: each coded document (a note the hospital's coders coded in a Claim)
    /// teaches the model its codes; one model output per label, in order.
    Coding {
        /// Language of the notes (`en`, `es`, `fr`): how words are normalised, which
        /// de-identification rules run.
        lang: String,
        /// Longest word n-gram hashed into the model's buckets.
        max_n: usize,
        /// The label space, `D|code` (diagnosis, ICD-10-CM) or `P|code` (procedure,
        /// ICD-10-PCS), sorted: a public code list, so that no hospital's code counts are
        /// revealed by agreeing it.
        labels: Vec<String>,
    },
    /// Consultation notes: each transcript of an encounter whose note the clinician signed
    /// teaches the turn-to-section classifier which note section each utterance went to.
    NoteSections {
        /// Language of the transcripts and notes (`en`).
        lang: String,
    },
    /// De-identification: every note, transcript and Composition section, with the patient's
    /// record as context, teaches the PHI tagger (`deid::text::tagger`) which words are
    /// identifiers; the text never leaves, only the tagger's update does.
    PhiTagger {
        /// Language of the texts (`en`, `fr`): which rules label them.
        lang: String,
    },
}

impl TextTask {
    /// What the task reads, in words (`coded notes`, `signed notes with their transcripts`).
    pub fn data_name(&self) -> &'static str {
        match self {
            TextTask::Coding { .. } => "coded notes",
            TextTask::NoteSections { .. } => "signed notes with their transcripts",
            TextTask::PhiTagger { .. } => "notes with their patients' records",
        }
    }

    /// Checks the task against the plan's model.
    fn validate(&self, model: &ModelSpec) -> Result<(), String> {
        match self {
            TextTask::Coding {
                lang,
                max_n,
                labels,
            } => {
                let ModelSpec::EmbeddingBag { outputs, .. } = model else {
                    return Err("a coding task needs an embedding_bag model".into());
                };
                if *outputs != labels.len() {
                    return Err(format!(
                        "the model has {outputs} outputs for {} labels",
                        labels.len()
                    ));
                }
                if !["en", "es", "fr"].contains(&lang.as_str()) {
                    return Err(format!("language {lang:?} is not en, es or fr"));
                }
                if *max_n == 0 {
                    return Err("max_n must be at least 1".into());
                }
                if labels.windows(2).any(|w| w[0] >= w[1]) {
                    return Err("labels must be sorted and distinct".into());
                }
                if let Some(bad) = labels
                    .iter()
                    .find(|l| !(l.starts_with("D|") || l.starts_with("P|")) || l.len() < 3)
                {
                    return Err(format!("label {bad:?} is not D|code or P|code"));
                }
                Ok(())
            }
            TextTask::NoteSections { lang } => {
                if !matches!(model, ModelSpec::ZeroInit { .. }) {
                    return Err("a note-sections task needs a zero_init model".into());
                }
                if lang != "en" {
                    return Err(format!("language {lang:?} is not en"));
                }
                Ok(())
            }
            TextTask::PhiTagger { lang } => {
                if !matches!(model, ModelSpec::ZeroInit { .. }) {
                    return Err("a phi-tagger task needs a zero_init model".into());
                }
                if !["en", "fr"].contains(&lang.as_str()) {
                    return Err(format!("language {lang:?} is not en or fr"));
                }
                Ok(())
            }
        }
    }
}

/// Secure-aggregation settings of a plan.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecureAggregation {
    /// Quantisation range R: every coordinate a node masks (sample count times
    /// the change of a weight, and the sample count itself) must lie in [-R, R].
    pub range: f64,
    /// SecAgg+'s sparse graph: each node's secrets are held by this many
    /// parties (itself and its nearest neighbours on a ring drawn each round),
    /// and it masks only against those. Odd, at least 3; absent (or at least
    /// the number of participants): the complete graph.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_shares: Option<usize>,
}

/// A per-hospital differential-privacy budget.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrivacyBudget {
    /// The most epsilon a hospital may spend on the plan.
    pub epsilon: f64,
    /// The delta at which epsilon is measured.
    pub delta: f64,
}

impl PrivacyBudget {
    /// The accountant's form of this budget.
    pub fn accountant_budget(&self) -> privacy::accountant::PrivacyBudget {
        privacy::accountant::PrivacyBudget {
            epsilon_limit: self.epsilon,
            delta: self.delta,
        }
    }
}

/// Why a plan was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PlanError {
    /// A field has an unusable value.
    #[error("invalid training plan: {0}")]
    Invalid(String),
    /// The JSON could not be read.
    #[error("training plan JSON is malformed: {0}")]
    Json(String),
}

impl TrainingPlan {
    /// The Fed-Heart-Disease plan `cohort demo` runs by default.
    pub fn heart_disease_default() -> Self {
        TrainingPlan {
            name: "fed-heart-disease logistic regression".into(),
            dataset: "heart-disease".into(),
            model: ModelSpec::LogisticRegression { inputs: 13 },
            training: TrainConfig {
                epochs: 1,
                batch_size: 8,
                learning_rate: 0.005,
                optimizer: Optimizer::Sgd,
                weight_decay: 0.0,
                proximal_mu: 0.0,
                max_steps: None,
                dp: None,
            },
            strategy: StrategyConfig::default(),
            rounds: 100,
            min_hospitals: 3,
            round_deadline_secs: 60,
            round_attempts: 3,
            hospitals: learn::heart::CENTRES
                .iter()
                .map(|c| c.to_string())
                .collect(),
            seed: 42,
            standardize: true,
            privacy_budget: None,
            secure_aggregation: None,
            client_dp: None,
            text_task: None,
        }
    }

    /// Check every field; the error says which one is wrong.
    pub fn validate(&self) -> Result<(), PlanError> {
        let fail = |m: String| Err(PlanError::Invalid(m));
        if self.rounds == 0 {
            return fail("rounds must be at least 1".into());
        }
        if self.hospitals.is_empty() {
            return fail("no eligible hospitals".into());
        }
        let mut names = self.hospitals.clone();
        names.sort();
        names.dedup();
        if names.len() != self.hospitals.len() {
            return fail("a hospital is listed twice".into());
        }
        if self.min_hospitals == 0 || self.min_hospitals > self.hospitals.len() {
            return fail(format!(
                "min_hospitals must be between 1 and the {} eligible hospitals, got {}",
                self.hospitals.len(),
                self.min_hospitals
            ));
        }
        if self.round_deadline_secs == 0 {
            return fail("round_deadline_secs must be positive".into());
        }
        if self.round_attempts == 0 {
            return fail("round_attempts must be at least 1".into());
        }
        if self.model.inputs() == 0 {
            return fail("the model needs at least one input".into());
        }
        match (&self.text_task, &self.model) {
            (Some(task), model) => task
                .validate(model)
                .map_err(|e| PlanError::Invalid(format!("text_task: {e}")))?,
            (None, ModelSpec::EmbeddingBag { .. } | ModelSpec::ZeroInit { .. }) => {
                return fail(format!("{} needs a text_task", self.model.describe()));
            }
            (None, _) => {}
        }
        if self.text_task.is_some() && self.standardize {
            return fail("a text task has no features to standardise (standardize = false)".into());
        }
        let t = &self.training;
        if t.epochs == 0 && t.max_steps.is_none() {
            return fail("training.epochs must be at least 1".into());
        }
        if !(t.learning_rate.is_finite() && t.learning_rate > 0.0) {
            return fail("training.learning_rate must be a positive number".into());
        }
        if self.strategy.proximal_mu() != t.proximal_mu {
            return fail(format!(
                "training.proximal_mu ({}) must equal the strategy's mu ({})",
                t.proximal_mu,
                self.strategy.proximal_mu()
            ));
        }
        self.strategy
            .build()
            .map_err(|e| PlanError::Invalid(format!("strategy: {e}")))?;
        let private = t.dp.is_some() || self.client_dp.is_some();
        match (private, &self.privacy_budget) {
            (true, None) => {
                return fail("training.dp and client_dp need a privacy_budget".into());
            }
            (false, Some(_)) => {
                return fail("privacy_budget is set but neither training.dp nor client_dp".into());
            }
            (true, Some(b)) => {
                b.accountant_budget()
                    .validate()
                    .map_err(|e| PlanError::Invalid(format!("privacy_budget: {e}")))?;
            }
            (false, None) => {}
        }
        if let Some(dp) = &self.client_dp {
            if self.secure_aggregation.is_none() {
                return fail(
                    "client_dp needs secure_aggregation (no party may see an un-noised sum)".into(),
                );
            }
            dp.validate(self.min_hospitals)
                .map_err(|e| PlanError::Invalid(format!("client_dp: {e}")))?;
        }
        if let Some(secure) = &self.secure_aggregation {
            if !crate::secure_round::supports_secure_aggregation(&self.strategy) {
                return fail(format!(
                    "{} needs individual updates and cannot run under secure aggregation",
                    self.strategy.name()
                ));
            }
            if !(secure.range.is_finite() && secure.range > 0.0) {
                return fail("secure_aggregation.range must be a positive number".into());
            }
            if let Some(k) = secure.num_shares {
                if k < 3 || k % 2 == 0 {
                    return fail(format!(
                        "secure_aggregation.num_shares is {k}: it must be odd and at least 3"
                    ));
                }
                if self.client_dp.is_some() {
                    return fail(
                        "client_dp needs the complete graph (no secure_aggregation.num_shares): \
                         its noise must be in every unmasked sum of at least min_hospitals"
                            .into(),
                    );
                }
            }
        }
        if self.min_hospitals < self.strategy.min_updates() {
            return fail(format!(
                "{} needs at least {} updates per round but min_hospitals is {}",
                self.strategy.name(),
                self.strategy.min_updates(),
                self.min_hospitals
            ));
        }
        Ok(())
    }

    /// Canonical JSON (field order fixed by the struct).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a plan always serialises")
    }

    /// Parse and validate a plan received as JSON.
    pub fn from_json(json: &str) -> Result<Self, PlanError> {
        let plan: TrainingPlan =
            serde_json::from_str(json).map_err(|e| PlanError::Json(e.to_string()))?;
        plan.validate()?;
        Ok(plan)
    }

    /// Lower-case hex SHA-256 of the canonical JSON.
    pub fn plan_id(&self) -> String {
        crate::sha256_hex(self.to_json().as_bytes())
    }

    /// Identifies the code a node runs for this plan: the cohort release, the
    /// model architecture and the local optimiser. Operators allow-list it.
    pub fn code_hash(&self) -> String {
        code_hash(&self.model, self.training.optimizer)
    }

    /// Seed of a node's local training in a round (derived, so rounds and
    /// nodes never share a shuffle).
    pub fn local_seed(&self, round: u32, node: &str) -> u64 {
        let digest = crate::sha256_hex(format!("{}/{round}/{node}", self.seed).as_bytes());
        u64::from_str_radix(&digest[..16], 16).expect("hex digest")
    }
}

/// The code hash of a model trained with an optimiser by this release of cohort.
pub fn code_hash(model: &ModelSpec, optimizer: Optimizer) -> String {
    crate::sha256_hex(
        format!(
            "cohort {}\nmodel {}\noptimizer {:?}\n",
            env!("CARGO_PKG_VERSION"),
            model.describe(),
            optimizer
        )
        .as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::strategy::Param;

    fn coding_plan() -> TrainingPlan {
        let mut plan = TrainingPlan::heart_disease_default();
        plan.model = ModelSpec::EmbeddingBag {
            buckets: 64,
            dim: 4,
            outputs: 2,
        };
        plan.standardize = false;
        plan.text_task = Some(TextTask::Coding {
            lang: "en".into(),
            max_n: 2,
            labels: vec!["D|I10".into(), "P|0DB".into()],
        });
        plan
    }

    #[test]
    fn a_coding_plan_is_checked_against_its_model() {
        coding_plan().validate().unwrap();
        let refused = |plan: TrainingPlan| plan.validate().unwrap_err().to_string();
        let mut plan = coding_plan();
        plan.model = ModelSpec::EmbeddingBag {
            buckets: 64,
            dim: 4,
            outputs: 3,
        };
        assert!(refused(plan).contains("3 outputs for 2 labels"));
        let mut plan = coding_plan();
        plan.standardize = true;
        assert!(refused(plan).contains("standardise"));
        let mut plan = coding_plan();
        plan.text_task = None;
        assert!(refused(plan).contains("needs a text_task"));
        let mut plan = coding_plan();
        plan.text_task = Some(TextTask::NoteSections { lang: "en".into() });
        assert!(refused(plan).contains("zero_init"));
        let mut plan = coding_plan();
        plan.text_task = Some(TextTask::Coding {
            lang: "en".into(),
            max_n: 2,
            labels: vec!["P|0DB".into(), "D|I10".into()],
        });
        assert!(refused(plan).contains("sorted"));
        let json = coding_plan().to_json();
        assert_eq!(TrainingPlan::from_json(&json).unwrap(), coding_plan());
        assert!(
            !TrainingPlan::heart_disease_default()
                .to_json()
                .contains("text_task")
        );
    }

    #[test]
    fn default_plan_is_valid() {
        TrainingPlan::heart_disease_default().validate().unwrap();
    }

    #[test]
    fn plan_id_changes_with_any_hyper_parameter() {
        let a = TrainingPlan::heart_disease_default();
        let mut b = a.clone();
        b.training.learning_rate = 0.051;
        assert_ne!(a.plan_id(), b.plan_id());
        assert_eq!(a.code_hash(), b.code_hash());
    }

    #[test]
    fn json_round_trip_keeps_the_plan_id() {
        let a = TrainingPlan::heart_disease_default();
        let b = TrainingPlan::from_json(&a.to_json()).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.plan_id(), b.plan_id());
    }

    #[test]
    fn unknown_fields_are_refused() {
        let json =
            TrainingPlan::heart_disease_default()
                .to_json()
                .replacen('{', "{\"extra\":1,", 1);
        assert!(matches!(
            TrainingPlan::from_json(&json),
            Err(PlanError::Json(_))
        ));
    }

    #[test]
    fn quorum_larger_than_federation_is_refused() {
        let mut p = TrainingPlan::heart_disease_default();
        p.min_hospitals = 5;
        assert!(
            p.validate()
                .unwrap_err()
                .to_string()
                .contains("min_hospitals")
        );
    }

    #[test]
    fn fedprox_mu_must_reach_the_clients() {
        let mut p = TrainingPlan::heart_disease_default();
        p.strategy = StrategyConfig::from_name("fedprox")
            .unwrap()
            .with("mu", Param::Real(0.1))
            .unwrap();
        assert!(p.validate().is_err());
        p.training.proximal_mu = 0.1;
        p.validate().unwrap();
    }

    #[test]
    fn privacy_settings_are_checked_together() {
        let mut p = TrainingPlan::heart_disease_default();
        let dp = crate::client_dp::ClientDp {
            clip_norm: 1.0,
            noise_multiplier: 1.0,
            adaptive: None,
        };
        p.client_dp = Some(dp);
        let err = p.validate().unwrap_err().to_string();
        assert!(err.contains("need a privacy_budget"), "{err}");
        p.privacy_budget = Some(PrivacyBudget {
            epsilon: 8.0,
            delta: 1e-5,
        });
        let err = p.validate().unwrap_err().to_string();
        assert!(err.contains("needs secure_aggregation"), "{err}");
        p.secure_aggregation = Some(SecureAggregation {
            range: 100.0,
            num_shares: Some(3),
        });
        let err = p.validate().unwrap_err().to_string();
        assert!(err.contains("complete graph"), "{err}");
        p.secure_aggregation = Some(SecureAggregation {
            range: 100.0,
            num_shares: None,
        });
        p.validate().unwrap();
        p.client_dp = None;
        p.privacy_budget = None;
        p.secure_aggregation = Some(SecureAggregation {
            range: 100.0,
            num_shares: Some(4),
        });
        let err = p.validate().unwrap_err().to_string();
        assert!(err.contains("odd"), "{err}");
    }

    #[test]
    fn krum_needs_enough_hospitals_per_round() {
        let mut p = TrainingPlan::heart_disease_default();
        p.strategy = StrategyConfig::from_name("krum").unwrap();
        assert!(p.validate().unwrap_err().to_string().contains("at least 5"));
        p.strategy = p
            .strategy
            .clone()
            .with("byzantine", Param::Count(0))
            .unwrap();
        p.validate().unwrap();
    }

    #[test]
    fn local_seeds_differ_per_node_and_round() {
        let p = TrainingPlan::heart_disease_default();
        assert_ne!(p.local_seed(1, "a"), p.local_seed(1, "b"));
        assert_ne!(p.local_seed(1, "a"), p.local_seed(2, "a"));
        assert_eq!(p.local_seed(3, "a"), p.local_seed(3, "a"));
    }
}
