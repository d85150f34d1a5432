//! The note-sections task: `notes`' turn-to-section classifier trained on the
//! node's transcripts and the notes its clinicians signed for them (through
//! the text gate), for plans whose `text_task` is `note-sections`.

use fed::client::{ClientError, LocalUpdate};
use fed::plan::{TextTask, TrainingPlan};
use fed::task::LocalTask;
use learn::{Metrics, ModelSpec, Weights};
use notes::classifier::{Fit, TrainConfig};
use notes::federated::LocalSections;

use crate::source::SignedNotes;

/// A note-sections plan's task over one node's signed notes.
pub struct Sections {
    local: LocalSections,
}

impl Sections {
    /// The task of `plan` over `notes`.
    ///
    /// # Errors
    /// Why the plan or the notes cannot make a task (the model is not the
    /// classifier's layout, the optimiser, no utterance to learn from).
    pub fn new(plan: &TrainingPlan, notes: &SignedNotes) -> Result<Self, String> {
        if !matches!(plan.text_task, Some(TextTask::NoteSections { .. })) {
            return Err("the plan has no note-sections task".into());
        }
        let expected = notes::classifier::layout();
        if plan.model
            != (ModelSpec::ZeroInit {
                tensors: expected.clone(),
            })
        {
            return Err(format!(
                "the plan's model {} is not the section classifier {expected:?}",
                plan.model.describe()
            ));
        }
        let t = super::AdamW::of(plan)?;
        let config = TrainConfig {
            epochs: t.epochs,
            batch_size: t.batch_size,
            learning_rate: t.learning_rate,
            weight_decay: t.weight_decay,
            dp: t.dp,
        };
        let local = LocalSections::from_gated(&notes.train, &notes.test, config)
            .map_err(|e| e.to_string())?;
        Ok(Sections { local })
    }
}

fn task_error(e: notes::Error) -> ClientError {
    ClientError::Task(e.to_string())
}

/// Mean cross-entropy and accuracy per utterance.
fn to_metrics(fit: &Fit) -> Metrics {
    Metrics {
        loss: f64::from(fit.loss),
        accuracy: fit.accuracy,
        samples: fit.samples as u64,
    }
}

impl LocalTask for Sections {
    fn train(&mut self, global: &Weights, seed: u64) -> Result<LocalUpdate, ClientError> {
        let global_test = self.evaluate(global)?;
        let (weights, num_samples, _, privacy) =
            self.local.train(global, seed).map_err(task_error)?;
        let train = to_metrics(&self.local.training_fit(&weights).map_err(task_error)?);
        Ok(LocalUpdate {
            weights,
            num_samples,
            train,
            global_test,
            privacy,
        })
    }

    fn evaluate(&self, model: &Weights) -> Result<Metrics, ClientError> {
        Ok(to_metrics(&self.local.evaluate(model).map_err(task_error)?))
    }
}
