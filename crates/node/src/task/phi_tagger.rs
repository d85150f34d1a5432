//! The PHI-tagger task: `deid`'s statistical tagger trained on the node's own texts, each
//! word labelled by the de-identification rules with the patient's whole record as context,
//! for plans whose `text_task` is `phi-tagger`. The texts never leave the node; the update is
//! DP-SGD's and goes through secure aggregation like any other.

use fed::client::{ClientError, LocalUpdate};
use fed::plan::{TextTask, TrainingPlan};
use fed::task::LocalTask;
use learn::sparse::{Config, Example, Fit, Softmax};
use learn::{Metrics, ModelSpec, Weights};

use crate::source::TaggerRows;

/// A phi-tagger plan's task over one node's rows.
pub struct PhiTagger {
    model: Softmax,
    config: Config,
    train: Vec<Example>,
    test: Vec<Example>,
}

/// The language a phi-tagger plan names.
///
/// # Errors
/// Not a phi-tagger plan, or a language other than `en` and `fr`.
pub fn lang(plan: &TrainingPlan) -> Result<deid::text::Lang, String> {
    let Some(TextTask::PhiTagger { lang }) = &plan.text_task else {
        return Err("the plan has no phi-tagger task".into());
    };
    lang.parse()
        .map_err(|e: deid::text::TextError| e.to_string())
}

impl PhiTagger {
    /// The task of `plan` over `rows`.
    ///
    /// # Errors
    /// Why the plan or the rows cannot make a task (another language, the model is not the
    /// tagger's layout, the optimiser, no row to learn from).
    pub fn new(plan: &TrainingPlan, rows: TaggerRows) -> Result<Self, String> {
        if lang(plan)? != rows.lang {
            return Err("the plan's language is not the node's texts'".into());
        }
        let model = deid::text::tagger::model(rows.lang);
        let expected = ModelSpec::ZeroInit {
            tensors: model.layout(),
        };
        if plan.model != expected {
            return Err(format!(
                "the plan's model {} is not the PHI tagger {:?}",
                plan.model.describe(),
                model.layout()
            ));
        }
        if rows.train.is_empty() || rows.test.is_empty() {
            return Err("the node's texts give no training or no held-out words".into());
        }
        let t = super::AdamW::of(plan)?;
        Ok(Self {
            model,
            config: Config {
                epochs: t.epochs,
                batch_size: t.batch_size,
                learning_rate: t.learning_rate,
                weight_decay: t.weight_decay,
                dp: t.dp,
            },
            train: rows.train,
            test: rows.test,
        })
    }

    fn fit(&self, model: &Weights, rows: &[Example]) -> Result<Metrics, ClientError> {
        let fit: Fit = self
            .model
            .fit(model, rows)
            .map_err(|e| ClientError::Task(e.to_string()))?;
        Ok(Metrics {
            loss: f64::from(fit.loss),
            accuracy: fit.accuracy,
            samples: fit.samples as u64,
        })
    }
}

impl LocalTask for PhiTagger {
    fn train(&mut self, global: &Weights, seed: u64) -> Result<LocalUpdate, ClientError> {
        let global_test = self.evaluate(global)?;
        let (weights, report) = self
            .model
            .train(global, &self.train, &self.config, seed)
            .map_err(|e| ClientError::Task(e.to_string()))?;
        let train = self.fit(&weights, &self.train)?;
        Ok(LocalUpdate {
            weights,
            num_samples: report.samples as u64,
            train,
            global_test,
            privacy: report.privacy,
        })
    }

    fn evaluate(&self, model: &Weights) -> Result<Metrics, ClientError> {
        self.fit(model, &self.test)
    }
}
