//! Command-line options that shape a training plan (shared by demo and bench).

use clap::{Args, ValueEnum};
use fed::plan::TrainingPlan;
use fed::strategy::{Param, StrategyConfig};
use learn::{ModelSpec, Optimizer};

/// Model families the demo offers.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ModelChoice {
    /// Logistic regression.
    Logreg,
    /// Multi-layer perceptron with one hidden layer of 16 units.
    Mlp,
}

/// Local optimisers.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum OptimizerChoice {
    /// Plain stochastic gradient descent.
    Sgd,
    /// Adam.
    Adam,
}

/// Plan options.
#[derive(Args, Clone, Debug)]
pub struct PlanOptions {
    /// Aggregation rule: fedavg, fedprox, fedadam, fedyogi, fedadagrad, fedmedian, trimmed-mean, krum.
    #[arg(long, default_value = "fedavg")]
    pub strategy: String,
    /// Training rounds.
    #[arg(long, default_value_t = 100)]
    pub rounds: u32,
    /// Model family.
    #[arg(long, value_enum, default_value = "logreg")]
    pub model: ModelChoice,
    /// Seed of the initial model and of local shuffling.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Local epochs per round.
    #[arg(long, default_value_t = 1)]
    pub local_epochs: usize,
    /// Local learning rate.
    #[arg(long)]
    pub lr: Option<f32>,
    /// Local batch size (0 = full batch).
    #[arg(long, default_value_t = 8)]
    pub batch_size: usize,
    /// Local optimiser.
    #[arg(long, value_enum, default_value = "sgd")]
    pub optimizer: OptimizerChoice,
    /// L2 penalty on weights during local training.
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f32,
    /// Server learning rate of fedadam, fedyogi and fedadagrad.
    #[arg(long)]
    pub server_lr: Option<f32>,
    /// Train with record-level DP-SGD at this noise multiplier (each hospital
    /// protects its own patients; needs a budget, see --epsilon-budget).
    #[arg(long)]
    pub dp_noise: Option<f32>,
    /// DP-SGD per-example clip norm.
    #[arg(long, default_value_t = 1.0)]
    pub dp_clip: f32,
    /// Client-level DP-FedAvg at this noise multiplier: each hospital's whole
    /// update is clipped and noised before it is masked (needs --secure true).
    #[arg(long)]
    pub client_dp_noise: Option<f64>,
    /// Clip norm of each hospital's update under client-level DP (the starting
    /// value with --adaptive-clip-quantile).
    #[arg(long, default_value_t = 0.5)]
    pub client_clip: f64,
    /// Adapt the client-level clip norm each round towards this quantile of
    /// the update norms (Andrew et al. 2021).
    #[arg(long)]
    pub adaptive_clip_quantile: Option<f64>,
    /// Each hospital's epsilon budget for the plan (with DP); a node
    /// withdraws rather than exceed it.
    #[arg(long, default_value_t = 8.0)]
    pub epsilon_budget: f64,
    /// Delta at which epsilon is measured.
    #[arg(long, default_value_t = 1e-5)]
    pub delta: f64,
    /// Secure aggregation (SecAgg+): the coordinator sees only masked updates and
    /// their sum (`--secure false` sends plain updates; robust rules need that).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub secure: bool,
    /// SecAgg+ share holders per hospital (odd, at least 3): each masks against
    /// its nearest neighbours only; default: every other hospital.
    #[arg(long)]
    pub secure_shares: Option<usize>,
    /// Quantisation range of secure aggregation (bound on sample count times weight change).
    #[arg(long, default_value_t = 1000.0)]
    pub secure_range: f64,
    /// Fewest hospitals that make a round.
    #[arg(long, default_value_t = 3)]
    pub min_hospitals: usize,
    /// Seconds each round stays open.
    #[arg(long, default_value_t = 60)]
    pub round_deadline: u64,
}

impl PlanOptions {
    /// The training plan these options describe.
    pub fn plan(&self) -> anyhow::Result<TrainingPlan> {
        let mut plan = TrainingPlan::heart_disease_default();
        let mut strategy = StrategyConfig::from_name(&self.strategy)?;
        if strategy.get("byzantine").is_some() {
            // Tolerate as many Byzantine hospitals as the quorum allows (2f + 3 <= quorum).
            let byzantine = self.min_hospitals.saturating_sub(3) / 2;
            strategy = strategy.with("byzantine", Param::Count(byzantine))?;
        }
        if let (Some(lr), Some(_)) = (self.server_lr, strategy.get("eta")) {
            strategy = strategy.with("eta", Param::Real(lr))?;
        }
        plan.strategy = strategy;
        plan.rounds = self.rounds;
        plan.seed = self.seed;
        plan.min_hospitals = self.min_hospitals;
        plan.round_deadline_secs = self.round_deadline;
        plan.model = match self.model {
            ModelChoice::Logreg => ModelSpec::LogisticRegression { inputs: 13 },
            ModelChoice::Mlp => ModelSpec::Mlp {
                inputs: 13,
                hidden: vec![16],
            },
        };
        plan.name = format!("fed-heart-disease {:?} {}", self.model, self.strategy).to_lowercase();
        let t = &mut plan.training;
        t.epochs = self.local_epochs;
        t.batch_size = self.batch_size;
        t.weight_decay = self.weight_decay;
        t.optimizer = match self.optimizer {
            OptimizerChoice::Sgd => Optimizer::Sgd,
            OptimizerChoice::Adam => Optimizer::Adam,
        };
        if let Some(lr) = self.lr {
            t.learning_rate = lr;
        }
        t.proximal_mu = plan.strategy.proximal_mu();
        if self.secure && fed::secure_round::supports_secure_aggregation(&plan.strategy) {
            plan.secure_aggregation = Some(fed::plan::SecureAggregation {
                range: self.secure_range,
                num_shares: self.secure_shares,
            });
        }
        if let Some(noise_multiplier) = self.dp_noise {
            t.dp = Some(learn::DpSgd {
                clip_norm: self.dp_clip,
                noise_multiplier,
            });
        }
        if let Some(noise_multiplier) = self.client_dp_noise {
            plan.client_dp = Some(fed::client_dp::ClientDp {
                clip_norm: self.client_clip,
                noise_multiplier,
                adaptive: self.adaptive_clip_quantile.map(|target_quantile| {
                    fed::client_dp::AdaptiveClip {
                        target_quantile,
                        learning_rate: 0.2,
                        // The count gets as much noise as the whole round: it then
                        // takes a quarter of the round's privacy cost.
                        count_noise_std: noise_multiplier,
                    }
                }),
            });
        }
        if plan.training.dp.is_some() || plan.client_dp.is_some() {
            plan.privacy_budget = Some(fed::plan::PrivacyBudget {
                epsilon: self.epsilon_budget,
                delta: self.delta,
            });
        }
        plan.validate()?;
        Ok(plan)
    }
}
