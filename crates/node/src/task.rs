//! Which [`LocalTask`] a node trains for a plan: the one place that maps a
//! plan to the code that learns from the node's data.
//!
//! Registering a new kind of task (as [`Coding`], the code model of
//! `billing`, whose parameters are a `learn::Weights`): implement
//! [`fed::task::LocalTask`] for it (in its own crate or here), let the plan
//! name it (`text_task`), and add the arm that builds it below. The round logic (client
//! loop, privacy charging, secure aggregation, the coordinator's plan run)
//! does not change.

mod coding;
mod phi_tagger;
mod sections;

use fed::plan::{TextTask, TrainingPlan};
use fed::task::{LocalTask, Tabular};

pub use coding::Coding;
pub use phi_tagger::PhiTagger;
pub use sections::Sections;

use crate::source::SourceData;

/// The local task of `plan` over the node's data, checked against the plan.
///
/// # Errors
/// Why the node's data cannot serve the plan (feature count, no rows, a text
/// task over a table or the other way round).
pub fn for_plan(plan: &TrainingPlan, data: SourceData) -> Result<Box<dyn LocalTask>, String> {
    match (&plan.text_task, data) {
        (None, SourceData::Table(data)) => Tabular::new(plan, data)
            .map(|task| Box::new(task) as Box<dyn LocalTask>)
            .map_err(|e| e.to_string()),
        (Some(TextTask::Coding { .. }), SourceData::CodedNotes(notes)) => {
            Coding::new(plan, &notes).map(|task| Box::new(task) as Box<dyn LocalTask>)
        }
        (Some(TextTask::NoteSections { .. }), SourceData::SignedNotes(notes)) => {
            Sections::new(plan, &notes).map(|task| Box::new(task) as Box<dyn LocalTask>)
        }
        (Some(TextTask::PhiTagger { .. }), SourceData::TaggerRows(rows)) => {
            PhiTagger::new(plan, rows).map(|task| Box::new(task) as Box<dyn LocalTask>)
        }
        (task, data) => Err(format!(
            "the plan trains on {}, this node serves {}",
            task.as_ref().map_or("a table", |t| t.data_name()),
            data.name()
        )),
    }
}

/// Where a node keeps the final code models of the coding plans it took part in (the
/// console codes visits with the newest).
pub fn coding_models(data_dir: &std::path::Path) -> std::path::PathBuf {
    data_dir.join("models").join("coding")
}

/// Keep `model`, the final model of `plan` when `plan` is a coding plan, under `dir` as a
/// `billing::Coder` folder named by the time and the plan (the newest sorts last); `None`
/// for other plans.
///
/// # Errors
/// The plan's model spec, or writing the folder.
pub fn keep_coding_model(
    plan: &TrainingPlan,
    model: &learn::Weights,
    dir: &std::path::Path,
) -> Result<Option<std::path::PathBuf>, String> {
    if !matches!(plan.text_task, Some(TextTask::Coding { .. })) {
        return Ok(None);
    }
    let coder =
        billing::Coder::new(coding::spec(plan)?, model.clone()).map_err(|e| e.to_string())?;
    let folder = dir.join(format!(
        "{:013}-{}",
        ehr::datetime::now_millis(),
        &plan.plan_id()[..16]
    ));
    coder.save(&folder).map_err(|e| e.to_string())?;
    Ok(Some(folder))
}

/// Where a node keeps the final PHI taggers of the phi-tagger plans it took part in.
pub fn tagger_models(data_dir: &std::path::Path) -> std::path::PathBuf {
    data_dir.join("models").join("phi-tagger")
}

/// Keep `model`, the final model of `plan` when `plan` is a phi-tagger plan, under `dir` as
/// `{time}-{plan}-{lang}.safetensors` (the newest sorts last; `cohort deid text --tagger FILE`
/// and `ehr::gate::build_text_dataset_with` take it); `None` for other plans.
///
/// # Errors
/// The plan's language, weights that are not a tagger's, or writing the file.
pub fn keep_tagger_model(
    plan: &TrainingPlan,
    model: &learn::Weights,
    dir: &std::path::Path,
) -> Result<Option<std::path::PathBuf>, String> {
    if !matches!(plan.text_task, Some(TextTask::PhiTagger { .. })) {
        return Ok(None);
    }
    let lang = phi_tagger::lang(plan)?;
    deid::text::tagger::Tagger::new(lang, model).map_err(|e| e.to_string())?;
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let file = dir.join(format!(
        "{:013}-{}-{}.safetensors",
        ehr::datetime::now_millis(),
        &plan.plan_id()[..16],
        lang.code()
    ));
    std::fs::write(&file, model.to_safetensors()).map_err(|e| e.to_string())?;
    Ok(Some(file))
}

/// The text tasks' local optimiser settings from a plan: AdamW at the plan's
/// learning rate and weight decay, its epochs, batch size and DP-SGD.
struct AdamW {
    epochs: usize,
    batch_size: usize,
    learning_rate: f64,
    weight_decay: f64,
    dp: Option<learn::DpSgd>,
}

impl AdamW {
    fn of(plan: &TrainingPlan) -> Result<Self, String> {
        let t = &plan.training;
        if t.optimizer != learn::Optimizer::Adam {
            return Err("a text task trains with AdamW: training.optimizer must be adam".into());
        }
        if t.proximal_mu != 0.0 || t.max_steps.is_some() {
            return Err("a text task has no proximal term and no step cap".into());
        }
        Ok(AdamW {
            epochs: t.epochs,
            batch_size: t.batch_size.max(1),
            learning_rate: f64::from(t.learning_rate),
            weight_decay: f64::from(t.weight_decay),
            dp: t.dp.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use fed::client::LocalData;
    use learn::{Dataset, ModelSpec, Weights};

    use super::*;

    fn table(rows: usize, features: usize) -> Dataset {
        let x: Vec<f32> = (0..rows * features).map(|i| (i % 7) as f32 / 7.0).collect();
        let y: Vec<f32> = (0..rows).map(|i| (i % 2) as f32).collect();
        Dataset::new(features, x, y).unwrap()
    }

    fn plan() -> TrainingPlan {
        let mut plan = TrainingPlan::heart_disease_default();
        plan.model = ModelSpec::LogisticRegression { inputs: 3 };
        plan
    }

    #[test]
    fn a_tabular_plan_trains_through_the_task_as_train_round_does() {
        let plan = plan();
        let data = LocalData {
            train: table(20, 3),
            test: table(6, 3),
        };
        let global: Weights = plan.model.init(plan.seed);
        let mut task = for_plan(&plan, SourceData::Table(data.clone())).unwrap();
        let seed = fed::client::round_seed(&plan, "alpha", 1, None);
        let update = task.train(&global, seed).unwrap();
        let expected = fed::client::train_round(&plan, "alpha", 1, &global, &data, None).unwrap();
        assert_eq!(update.weights, expected.weights);
        assert_eq!(update.num_samples, 20);
        assert_eq!(task.evaluate(&update.weights).unwrap().samples, 6);
    }

    #[test]
    fn data_that_does_not_fit_the_plan_is_refused_with_a_reason() {
        let data = LocalData {
            train: table(20, 4),
            test: table(6, 4),
        };
        let err = for_plan(&plan(), SourceData::Table(data)).err().unwrap();
        assert!(err.contains("4 features"), "{err}");
    }
}
