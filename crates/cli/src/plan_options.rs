//! Command-line options that shape a training plan (shared by demo and bench).

use clap::{Args, ValueEnum};
use fed::plan::TrainingPlan;
use fed::strategy::StrategyConfig;
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
    #[arg(long, default_value_t = 50)]
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
        plan.strategy = StrategyConfig::from_name(&self.strategy)?;
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
        t.optimizer = match self.optimizer {
            OptimizerChoice::Sgd => Optimizer::Sgd,
            OptimizerChoice::Adam => Optimizer::Adam,
        };
        if let Some(lr) = self.lr {
            t.learning_rate = lr;
        }
        t.proximal_mu = plan.strategy.proximal_mu();
        plan.validate()?;
        Ok(plan)
    }
}
