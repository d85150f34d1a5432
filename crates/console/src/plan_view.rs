//! A training plan as both consoles show it: what it trains, on what, how,
//! and with which privacy protections.

use fed::plan::TrainingPlan;
use maud::{Markup, html};

fn yes_no(on: bool) -> &'static str {
    if on { "yes" } else { "no" }
}

/// The plan's facts (code hash, dataset, model, strategy, rounds) and its
/// privacy settings.
pub fn facts(plan: &TrainingPlan) -> Markup {
    html! {
        dl.facts {
            dt { "Code hash" } dd.hash #code-hash { (plan.code_hash()) }
            dt { "Dataset" } dd { (plan.dataset) }
            dt { "Model" } dd { (plan.model.describe()) }
            dt { "Strategy" } dd { (plan.strategy.name()) }
            dt { "Rounds" } dd { (plan.rounds) }
            dt { "Fewest hospitals per round" } dd { (plan.min_hospitals) }
            dt { "Round deadline" } dd { (plan.round_deadline_secs) " s" }
            dt { "Federated standardisation" } dd { (yes_no(plan.standardize)) }
            dt { "Hospitals" } dd { (plan.hospitals.join(", ")) }
        }
        h3 { "Privacy settings" }
        dl.facts {
            dt { "Secure aggregation (SecAgg+)" }
            dd { @match &plan.secure_aggregation {
                Some(sa) => { "yes, range " (sa.range)
                    @if let Some(k) = sa.num_shares { ", " (k) " shares per node" } }
                None => "no",
            } }
            dt { "DP-SGD" }
            dd { @match &plan.training.dp {
                Some(dp) => { "noise multiplier " (dp.noise_multiplier) ", clip norm " (dp.clip_norm) }
                None => "no",
            } }
            dt { "Client-level DP-FedAvg" }
            dd { @match &plan.client_dp {
                Some(c) => { "noise multiplier " (c.noise_multiplier) ", clip norm " (c.clip_norm)
                    @if c.adaptive.is_some() { ", adaptive clipping" } }
                None => "no",
            } }
            dt { "Budget per hospital" }
            dd { @match &plan.privacy_budget {
                Some(b) => { "epsilon " (b.epsilon) " at delta " (b.delta) }
                None => "none",
            } }
        }
    }
}

/// What a hospital taking part sends out of the building, message by message.
pub fn disclosed(plan: &TrainingPlan) -> Markup {
    let update = match (&plan.secure_aggregation, &plan.client_dp) {
        (Some(_), _) => {
            "masked by secure aggregation: the coordinator sees only the sum over hospitals"
        }
        (None, Some(_)) => "clipped and noised (client-level differential privacy)",
        (None, None) => "in the clear to the coordinator",
    };
    html! {
        ul {
            @if plan.standardize {
                li { "Once: per-feature sums and counts of the local training rows (federated standardisation)." }
            }
            li { "Each of " (plan.rounds) " rounds: the locally trained parameters of "
                (plan.model.describe()) ", " (update) "; the number of training rows; "
                "training loss and accuracy"
                @if plan.training.dp.is_some() { "; the epsilon spent (DP-SGD)" } "." }
            li { "At the end: test accuracy and loss of the final model on the local test rows." }
        }
    }
}
