//! The section classifier's local training for the federation: one hospital's signed notes,
//! de-identified on the node, as the examples of [`LocalSections::train`] (a round's local
//! step from the global weights, optionally with DP-SGD) and [`LocalSections::evaluate`].
//!
//! What leaves the node is an update of the weights, which is computed from the transcripts and
//! notes: every turn of every transcript and every note goes through the text de-identifier
//! ([`deid::text::Deidentifier`], with the record's [`deid::text::Context`]) before its
//! features are hashed, so that names, dates and identifiers never reach a gradient. DP-SGD
//! ([`TrainConfig::dp`]) bounds what the update says about any one utterance.
//!
//! ```
//! use deid::text::{Context, Deidentifier, Lang, Replacement, TextOptions};
//! use notes::federated::{LocalSections, NoteText, SignedNote};
//!
//! let gate = Deidentifier::new(Lang::En, None, TextOptions { replacement: Replacement::Tags })?;
//! let note = SignedNote {
//!     dialogue: "[doctor] any chest pain ?\n[patient] no chest pain .".into(),
//!     note: NoteText::Full("REVIEW OF SYSTEMS\n\nDenies chest pain.".into()),
//!     context: Context::default(),
//! };
//! let mut local = LocalSections::new(&[note.clone()], &[note], &gate, Default::default())?;
//! let global = notes::classifier::initial_weights();
//! let (weights, samples, loss, privacy) = local.train(&global, 7)?;
//! assert_eq!((samples, privacy), (2, None));
//! assert!(local.evaluate(&weights)?.loss < local.evaluate(&global)?.loss);
//! # let _ = loss;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use deid::text::{Context, Deidentifier};
use privacy::accountant::SampledGaussian;

use crate::align::{examples, note_sentences, section_sentences};
use crate::classifier::{Example, Fit, TrainConfig, fit, train_local};
use crate::dialogue::{Dialogue, Turn};
use crate::{Error, Section, Weights};

/// What a transcript became in the signed record.
#[derive(Clone, Debug, PartialEq)]
pub enum NoteText {
    /// A whole visit note, sections under their headings (`HISTORY OF PRESENT ILLNESS`, …).
    Full(String),
    /// One section's text (MTS-Dialog form).
    Section(Section, String),
}

/// One transcript of the hospital with the note the clinician signed for it.
#[derive(Clone, Debug)]
pub struct SignedNote {
    /// The transcript (`[doctor] …` / `[patient] …`, or `Doctor:` lines).
    pub dialogue: String,
    /// The signed note.
    pub note: NoteText,
    /// What the EHR knows of the patient, for the de-identifier.
    pub context: Context,
}

/// What [`LocalSections::evaluate`] measures.
pub type Evaluation = Fit;

/// One hospital's training and evaluation examples for the section classifier, built from
/// de-identified text only.
#[derive(Clone, Debug)]
pub struct LocalSections {
    training: Vec<Example>,
    evaluation: Vec<Example>,
    config: TrainConfig,
    redacted_spans: usize,
}

impl LocalSections {
    /// De-identifies `training` and `evaluation` notes with `gate` and labels their utterances
    /// ([`crate::align`]); `config` drives every [`Self::train`] call. Fails when a transcript
    /// cannot be parsed or either set has no utterance.
    pub fn new(
        training: &[SignedNote],
        evaluation: &[SignedNote],
        gate: &Deidentifier,
        config: TrainConfig,
    ) -> Result<Self, Error> {
        Self::build(training, evaluation, Some(gate), config)
    }

    /// As [`Self::new`] for notes whose texts already came through the EHR's text gate
    /// (`ehr::gate::build_text_dataset`, which de-identifies with the whole record as context):
    /// their texts are used as they are.
    pub fn from_gated(
        training: &[SignedNote],
        evaluation: &[SignedNote],
        config: TrainConfig,
    ) -> Result<Self, Error> {
        Self::build(training, evaluation, None, config)
    }

    fn build(
        training: &[SignedNote],
        evaluation: &[SignedNote],
        gate: Option<&Deidentifier>,
        config: TrainConfig,
    ) -> Result<Self, Error> {
        let mut redacted_spans = 0;
        let mut build = |notes: &[SignedNote], what: &str| -> Result<Vec<Example>, Error> {
            let mut out = Vec::new();
            for note in notes {
                let (dialogue, sentences, spans) = deidentified(note, gate)?;
                redacted_spans += spans;
                out.extend(examples(&dialogue, &sentences));
            }
            if out.is_empty() {
                return Err(Error::Model(format!("no {what} utterances")));
            }
            Ok(out)
        };
        let training = build(training, "training")?;
        let evaluation = build(evaluation, "evaluation")?;
        Ok(Self {
            training,
            evaluation,
            config,
            redacted_spans,
        })
    }

    /// One local step of a federated round: trains from `global` on the training examples
    /// ([`train_local`], deterministic for `seed`; with DP-SGD the seed draws the noise and
    /// must be secret to the node). Returns the new weights, the number of training examples
    /// (the update's weight in the average), the mean training loss of the last epoch, and with
    /// DP-SGD the mechanism that ran, for the node's privacy accountant.
    pub fn train(
        &mut self,
        global: &Weights,
        seed: u64,
    ) -> Result<(Weights, u64, f32, Option<SampledGaussian>), Error> {
        let (weights, report) = train_local(global, &self.training, &self.config, seed)?;
        Ok((weights, report.samples as u64, report.loss, report.privacy))
    }

    /// Loss and accuracy of `weights` on the evaluation examples.
    pub fn evaluate(&self, weights: &Weights) -> Result<Evaluation, Error> {
        fit(weights, &self.evaluation)
    }

    /// Loss and accuracy of `weights` on the training examples.
    pub fn training_fit(&self, weights: &Weights) -> Result<Evaluation, Error> {
        fit(weights, &self.training)
    }

    /// Training examples (labelled utterances).
    pub fn training_samples(&self) -> usize {
        self.training.len()
    }

    /// Spans of protected information the gate replaced, over both sets.
    pub fn redacted_spans(&self) -> usize {
        self.redacted_spans
    }
}

/// A de-identified record: the transcript, the note's sentences, the spans replaced.
type Deidentified = (Dialogue, Vec<(Section, String)>, usize);

/// The note's transcript (each turn de-identified on its own, so that a replacement cannot
/// read as a speaker tag) and its sentences (de-identified), with the number of spans replaced;
/// without a gate, the texts as they are.
fn deidentified(note: &SignedNote, gate: Option<&Deidentifier>) -> Result<Deidentified, Error> {
    let mut spans = 0;
    let mut redact = |text: &str| match gate {
        Some(gate) => {
            let out = gate.redact(text, &note.context);
            spans += out.spans.len();
            out.text
        }
        None => text.to_string(),
    };
    let turns = Dialogue::parse(&note.dialogue)?
        .turns
        .into_iter()
        .map(|t| Turn {
            speaker: t.speaker,
            text: redact(&t.text),
        })
        .collect();
    let sentences = match &note.note {
        NoteText::Full(text) => note_sentences(&redact(text)),
        NoteText::Section(section, text) => section_sentences(*section, &redact(text)),
    };
    Ok((Dialogue::from_turns(turns)?, sentences, spans))
}

#[cfg(test)]
mod tests {
    use deid::text::{Lang, Replacement, TextOptions};
    use learn::DpSgd;

    use super::*;
    use crate::classifier::initial_weights;

    const VISIT: &str = "[doctor] good morning mr NAME . you're here for your right knee .\n\
        [patient] yes , my right knee has been hurting for two weeks .\n\
        [doctor] any fever or chills ?\n[patient] no .\n\
        [doctor] on exam there is tenderness of the right knee .\n\
        [doctor] let's start ibuprofen six hundred milligrams three times a day .\n\
        [patient] thank you , doctor NAME .";
    const NOTE: &str = "CHIEF COMPLAINT\n\nRight knee pain.\n\n\
        HISTORY OF PRESENT ILLNESS\n\nMr. NAME reports right knee pain for two weeks.\n\n\
        REVIEW OF SYSTEMS\n\nDenies fever or chills.\n\n\
        PHYSICAL EXAMINATION\n\nTenderness of the right knee.\n\n\
        ASSESSMENT AND PLAN\n\nStart ibuprofen 600 mg three times a day.";

    fn note(name: &str) -> SignedNote {
        SignedNote {
            dialogue: VISIT.replace("NAME", name),
            note: NoteText::Full(NOTE.replace("NAME", name)),
            context: Context {
                names: vec![format!("Robert {name}")],
                ..Context::default()
            },
        }
    }

    fn gate() -> Deidentifier {
        let tags = TextOptions {
            replacement: Replacement::Tags,
        };
        Deidentifier::new(Lang::En, None, tags).unwrap()
    }

    fn local(name: &str, config: TrainConfig) -> LocalSections {
        let section = SignedNote {
            dialogue: "Doctor: Any allergies?\nPatient: I am allergic to penicillin.".into(),
            note: NoteText::Section(
                Section::HistoryOfPresentIllness,
                "Allergic to penicillin.".into(),
            ),
            context: Context::default(),
        };
        LocalSections::new(&[note(name), section], &[note(name)], &gate(), config).unwrap()
    }

    #[test]
    fn names_never_reach_the_update() {
        let (a, b) = (
            local("jones", TrainConfig::default()),
            local("okafor", TrainConfig::default()),
        );
        assert!(a.redacted_spans() >= 4, "{}", a.redacted_spans());
        assert_eq!(a.training_samples(), b.training_samples());
        let (mut a, mut b) = (a, b);
        assert_eq!(
            a.train(&initial_weights(), 5).unwrap(),
            b.train(&initial_weights(), 5).unwrap()
        );
    }

    #[test]
    fn training_is_deterministic_and_learns() {
        let mut sections = local("jones", TrainConfig::default());
        let global = initial_weights();
        let first = sections.train(&global, 1).unwrap();
        assert_eq!(first, sections.train(&global, 1).unwrap());
        assert_ne!(first.0, sections.train(&global, 2).unwrap().0);
        let (weights, samples, loss, privacy) = first;
        assert_eq!(samples, sections.training_samples() as u64);
        assert!(loss.is_finite() && privacy.is_none());
        let (before, after) = (
            sections.evaluate(&global).unwrap(),
            sections.evaluate(&weights).unwrap(),
        );
        assert!(after.loss < before.loss, "{before:?} {after:?}");
        assert!(after.accuracy > before.accuracy, "{before:?} {after:?}");
    }

    #[test]
    fn dp_sgd_returns_the_mechanism_for_the_accountant() {
        let config = TrainConfig {
            epochs: 2,
            batch_size: 4,
            dp: Some(DpSgd {
                clip_norm: 1.0,
                noise_multiplier: 1.1,
            }),
            ..TrainConfig::default()
        };
        let mut sections = local("jones", config);
        let n = sections.training_samples();
        let (weights, samples, _, privacy) = sections.train(&initial_weights(), 3).unwrap();
        let event = privacy.expect("DP-SGD ran");
        assert_eq!(samples, n as u64);
        assert_eq!(event.sample_rate, 4.0 / n as f64);
        assert_eq!(event.noise_multiplier, f64::from(1.1f32));
        assert_eq!(event.steps, 2 * (n as f64 / 4.0).round() as u64);
        let mut accountant = privacy::accountant::RdpAccountant::new();
        accountant.compose(&event).unwrap();
        assert!(accountant.epsilon(1e-5).unwrap().epsilon.is_finite());
        assert_eq!(
            sections.train(&initial_weights(), 3).unwrap().0,
            weights,
            "the seed fixes the noise"
        );
    }

    #[test]
    fn unusable_records_are_refused() {
        let bad = SignedNote {
            dialogue: "no speaker tags here".into(),
            ..note("jones")
        };
        let cfg = TrainConfig::default;
        assert!(LocalSections::new(&[bad], &[note("jones")], &gate(), cfg()).is_err());
        assert!(LocalSections::new(&[note("jones")], &[], &gate(), cfg()).is_err());
        let mut sections = local("jones", cfg());
        let other = Weights::new(vec![("w".into(), vec![2])], vec![0.0; 2]).unwrap();
        assert!(sections.train(&other, 0).is_err());
        assert!(sections.evaluate(&other).is_err());
    }
}
