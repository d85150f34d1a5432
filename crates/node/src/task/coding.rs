//! The coding task: `billing`'s code model trained on the node's coded notes
//! (the notes its coders coded, through the text gate), for plans whose
//! `text_task` is `coding`.

use billing::federated::{CodingMetrics, LocalCoding, evaluate, note_examples};
use billing::{CoderSpec, Example, Label};
use fed::client::{ClientError, LocalUpdate};
use fed::plan::{TextTask, TrainingPlan};
use fed::task::LocalTask;
use learn::{Metrics, ModelSpec, Weights};

use crate::source::CodedNotes;

/// A coding plan's task over one node's coded notes.
pub struct Coding {
    local: LocalCoding,
    test: Vec<Example>,
}

/// The code model a coding plan describes.
pub(super) fn spec(plan: &TrainingPlan) -> Result<CoderSpec, String> {
    let Some(TextTask::Coding {
        lang,
        max_n,
        labels,
    }) = &plan.text_task
    else {
        return Err("the plan has no coding task".into());
    };
    let ModelSpec::EmbeddingBag { buckets, dim, .. } = plan.model else {
        return Err("a coding plan's model is an embedding bag".into());
    };
    if lang != "en" {
        return Err(format!(
            "this node de-identifies notes in English only, the plan reads {lang:?}"
        ));
    }
    let buckets = u32::try_from(buckets).map_err(|_| format!("{buckets} buckets is too many"))?;
    let labels = labels
        .iter()
        .map(|key| Label::from_key(key).map_err(|e| e.to_string()))
        .collect::<Result<Vec<_>, _>>()?;
    let spec = CoderSpec {
        lang: billing::corpus::Lang::En,
        featurizer: billing::features::Featurizer {
            buckets,
            max_n: *max_n,
        },
        dim,
        labels,
    };
    spec.check().map_err(|e| e.to_string())?;
    Ok(spec)
}

/// `billing`'s training settings from the plan's.
fn train_config(plan: &TrainingPlan) -> Result<billing::TrainConfig, String> {
    let t = super::AdamW::of(plan)?;
    Ok(billing::TrainConfig {
        epochs: t.epochs,
        batch_size: t.batch_size,
        learning_rate: t.learning_rate,
        weight_decay: t.weight_decay,
        dp: t.dp,
    })
}

impl Coding {
    /// The task of `plan` over `notes`.
    ///
    /// # Errors
    /// Why the plan or the notes cannot make a task (language, optimiser, no
    /// training note carrying a code of the plan's label space).
    pub fn new(plan: &TrainingPlan, notes: &CodedNotes) -> Result<Self, String> {
        let spec = spec(plan)?;
        let train = note_examples(&spec, &notes.train);
        let test = note_examples(&spec, &notes.test);
        let local =
            LocalCoding::new(spec, train, train_config(plan)?).map_err(|e| e.to_string())?;
        Ok(Coding { local, test })
    }

    fn metrics(&self, weights: &Weights, examples: &[Example]) -> Result<Metrics, ClientError> {
        if examples.is_empty() {
            return Ok(Metrics::pooled(&[]));
        }
        let m = evaluate(self.local.spec(), weights, examples).map_err(task_error)?;
        Ok(to_metrics(&m))
    }
}

/// The round's metrics of a coding evaluation: loss per note, precision at 1 as accuracy.
fn to_metrics(m: &CodingMetrics) -> Metrics {
    Metrics {
        loss: m.loss,
        accuracy: m.precision_at_1,
        samples: m.documents as u64,
    }
}

fn task_error(e: billing::Error) -> ClientError {
    ClientError::Task(e.to_string())
}

/// A coding task reports the mean loss per note and, as its accuracy, the
/// precision at 1 (the share of notes whose best-scored code is theirs).
impl LocalTask for Coding {
    fn train(&mut self, global: &Weights, seed: u64) -> Result<LocalUpdate, ClientError> {
        let global_test = self.metrics(global, &self.test)?;
        let (weights, num_samples, _, privacy) =
            self.local.train(global, seed).map_err(task_error)?;
        let train = to_metrics(&self.local.evaluate(&weights).map_err(task_error)?);
        Ok(LocalUpdate {
            weights,
            num_samples,
            train,
            global_test,
            privacy,
        })
    }

    fn evaluate(&self, model: &Weights) -> Result<Metrics, ClientError> {
        self.metrics(model, &self.test)
    }
}
