//! What the text-task federation tests share: the plan's protections and the
//! search for a planted name in what a party keeps.

use std::path::Path;

use fed::plan::{PrivacyBudget, SecureAggregation, TrainingPlan};
use learn::{DpSgd, Optimizer};

/// `plan` with AdamW, DP-SGD (noise 0.8, clip 1) under a budget that does not bind, and
/// secure aggregation; checked.
pub fn private_and_secure(mut plan: TrainingPlan) -> TrainingPlan {
    plan.standardize = false;
    plan.training.optimizer = Optimizer::Adam;
    plan.training.dp = Some(DpSgd {
        clip_norm: 1.0,
        noise_multiplier: 0.8,
    });
    plan.privacy_budget = Some(PrivacyBudget {
        epsilon: 1000.0,
        delta: 1e-4,
    });
    plan.secure_aggregation = Some(SecureAggregation {
        range: fed::secure_round::weighted_mean_range(1000, 1.0).unwrap(),
        num_shares: None,
    });
    plan.validate().unwrap();
    plan
}

/// Every file under `dir` whose bytes contain `needle`.
pub fn files_containing(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(path) = stack.pop() {
        if path.is_dir() {
            stack.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        } else if let Ok(bytes) = std::fs::read(&path)
            && bytes.windows(needle.len()).any(|w| w == needle)
        {
            found.push(path.display().to_string());
        }
    }
    found
}
