//! Where a node's training data comes from. Each source turns the hospital's
//! own records into a [`LocalData`] table or, for text tasks, de-identified
//! coded notes; nothing of them leaves the node but what training sends.

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use fed::client::LocalData;
use serde::Deserialize;

/// The future a [`DatasetSource`] returns.
pub type LoadFuture<'a> =
    Pin<Box<dyn Future<Output = Result<SourceTable, SourceError>> + Send + 'a>>;

/// A node's training data and what the source left out (counts, never who).
#[derive(Clone, Debug)]
pub struct SourceTable {
    /// Training and test data.
    pub data: SourceData,
    /// Patients excluded because their consent denies research use.
    pub excluded_by_consent: u32,
    /// Patients left out for missing data.
    pub incomplete: u32,
}

/// What a source yields: a table, or notes for a text task.
#[derive(Clone, Debug)]
pub enum SourceData {
    /// Training and test rows.
    Table(LocalData),
    /// De-identified notes with the hospital's codes (a coding plan).
    CodedNotes(CodedNotes),
    /// De-identified transcripts with the notes signed for them (a note-sections plan).
    SignedNotes(SignedNotes),
    /// The PHI tagger's rows from the node's texts and records (a phi-tagger plan).
    TaggerRows(TaggerRows),
}

/// A node's PHI tagger rows, split by patient, and the gate's counts.
#[derive(Clone, Debug)]
pub struct TaggerRows {
    /// Language of the texts.
    pub lang: deid::text::Lang,
    /// Training rows.
    pub train: Vec<learn::sparse::Example>,
    /// Held-out rows (one patient's rows all on one side).
    pub test: Vec<learn::sparse::Example>,
    /// Documents read, spans the rules labelled.
    pub counts: ehr::gate::TextCounts,
}

/// A node's transcripts with their signed notes, split by patient, and what
/// the text gate removed.
#[derive(Clone, Debug)]
pub struct SignedNotes {
    /// Training pairs.
    pub train: Vec<notes::federated::SignedNote>,
    /// Held-out pairs.
    pub test: Vec<notes::federated::SignedNote>,
    /// The gate's counts.
    pub counts: ehr::gate::TextCounts,
}

/// A node's coded notes, split by patient, and what the text gate removed.
#[derive(Clone, Debug)]
pub struct CodedNotes {
    /// Training notes.
    pub train: Vec<billing::coded::CodedNote>,
    /// Held-out notes (one patient's notes all on one side).
    pub test: Vec<billing::coded::CodedNote>,
    /// The gate's counts (documents, spans removed per category).
    pub counts: ehr::gate::TextCounts,
}

impl SourceData {
    /// The table, for sources that yield one.
    ///
    /// # Errors
    /// [`SourceError::Invalid`] for coded notes.
    pub fn into_table(self) -> Result<LocalData, SourceError> {
        match self {
            SourceData::Table(data) => Ok(data),
            other => Err(SourceError::Invalid(format!(
                "{} are not a table",
                other.name()
            ))),
        }
    }

    /// What the data is, in words.
    pub fn name(&self) -> &'static str {
        match self {
            SourceData::Table(_) => "a table",
            SourceData::CodedNotes(_) => "coded notes",
            SourceData::SignedNotes(_) => "signed notes with their transcripts",
            SourceData::TaggerRows(_) => "notes with their patients' records",
        }
    }

    /// The text gate's counts, for text data.
    pub fn text_counts(&self) -> Option<&ehr::gate::TextCounts> {
        match self {
            SourceData::Table(_) => None,
            SourceData::CodedNotes(notes) => Some(&notes.counts),
            SourceData::SignedNotes(notes) => Some(&notes.counts),
            SourceData::TaggerRows(rows) => Some(&rows.counts),
        }
    }

    /// Training records (rows or notes).
    pub fn training_records(&self) -> usize {
        match self {
            SourceData::Table(data) => data.train.len(),
            SourceData::CodedNotes(notes) => notes.train.len(),
            SourceData::SignedNotes(notes) => notes.train.len(),
            SourceData::TaggerRows(rows) => rows.train.len(),
        }
    }
}

/// Failures reading a source.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The content is invalid.
    #[error("{0}")]
    Invalid(String),
}

/// A source of a training table.
pub trait DatasetSource: Send + Sync {
    /// The dataset name plans refer to.
    fn dataset(&self) -> &str;
    /// Build the node's training and test tables.
    fn load(&self) -> LoadFuture<'_>;
}

/// The `[dataset]` table of node.toml.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum SourceConfig {
    /// One centre of the UCI Heart Disease files with the FLamby split.
    HeartDisease {
        /// Directory holding `processed.*.data` and `flamby-split.csv`.
        dir: PathBuf,
        /// Centre name: cleveland, hungarian, switzerland or va.
        centre: String,
    },
    /// The Fed-Heart-Disease table built from the node's own EHR through the
    /// training gate (consent, pseudonyms, date shifts).
    EhrHeartDisease,
    /// The notes of the node's EHR that its coders coded (active Claims),
    /// through the text gate: for coding plans.
    EhrCodedNotes {
        /// Language of the notes, which de-identification rules run: `en` (the
        /// default) or `fr`.
        #[serde(default = "default_lang")]
        lang: String,
    },
    /// The transcripts of the node's EHR with the notes clinicians signed for
    /// them, through the text gate: for note-sections plans.
    EhrSignedNotes,
    /// Every text of the node's EHR with its patient's record, labelled by the
    /// de-identification rules (the text stays on the node): for phi-tagger plans.
    EhrTaggerNotes {
        /// Language of the texts: `en` (the default) or `fr`.
        #[serde(default = "default_lang")]
        lang: String,
    },
}

fn default_lang() -> String {
    "en".into()
}

/// The node's EHR, which dataset `kind` reads.
fn needs_ehr<'a>(ehr: Option<&'a ehr::Store>, kind: &str) -> Result<&'a ehr::Store, SourceError> {
    ehr.ok_or_else(|| {
        SourceError::Invalid(format!(
            "dataset kind {kind} needs the node's EHR (ehr_db in node.toml)"
        ))
    })
}

/// The language a source's `lang` names.
fn text_lang(lang: &str) -> Result<deid::text::Lang, SourceError> {
    lang.parse()
        .map_err(|e: deid::text::TextError| SourceError::Invalid(e.to_string()))
}

impl SourceConfig {
    /// Build the source (relative paths from `base`; `ehr` is the node's FHIR store).
    pub fn build(
        &self,
        base: &std::path::Path,
        ehr: Option<&ehr::Store>,
        data_dir: &std::path::Path,
    ) -> Result<Box<dyn DatasetSource>, SourceError> {
        match self {
            SourceConfig::HeartDisease { dir, centre } => {
                Ok(Box::new(HeartDiseaseFiles::new(base.join(dir), centre)?))
            }
            SourceConfig::EhrHeartDisease => {
                let store = needs_ehr(ehr, "ehr-heart-disease")?;
                Ok(Box::new(EhrHeartDisease::new(store.clone())))
            }
            SourceConfig::EhrCodedNotes { lang } => {
                let store = needs_ehr(ehr, "ehr-coded-notes")?;
                Ok(Box::new(
                    EhrCodedNotes::new(store.clone(), text_lang(lang)?)
                        .with_taggers(crate::task::tagger_models(data_dir)),
                ))
            }
            SourceConfig::EhrSignedNotes => {
                let store = needs_ehr(ehr, "ehr-signed-notes")?;
                Ok(Box::new(
                    EhrSignedNotes::new(store.clone())
                        .with_taggers(crate::task::tagger_models(data_dir)),
                ))
            }
            SourceConfig::EhrTaggerNotes { lang } => {
                let store = needs_ehr(ehr, "ehr-tagger-notes")?;
                Ok(Box::new(EhrTaggerNotes::new(
                    store.clone(),
                    text_lang(lang)?,
                )))
            }
        }
    }
}

/// The Fed-Heart-Disease table read from the node's EHR through the gate:
/// patients whose consent denies research use are left out (only their number
/// is logged), identifiers never enter the table.
pub struct EhrHeartDisease {
    store: ehr::Store,
}

impl EhrHeartDisease {
    /// Read from `store`.
    pub fn new(store: ehr::Store) -> Self {
        EhrHeartDisease { store }
    }
}

impl DatasetSource for EhrHeartDisease {
    fn dataset(&self) -> &str {
        "heart-disease"
    }

    fn load(&self) -> LoadFuture<'_> {
        Box::pin(async move {
            let gated = ehr::heart::heart_dataset(&self.store)
                .await
                .map_err(|e| SourceError::Invalid(format!("EHR training gate: {e}")))?;
            tracing::info!(
                train = gated.train.len(),
                test = gated.test.len(),
                excluded_by_consent = gated.excluded,
                incomplete = gated.incomplete,
                "training table built through the gate"
            );
            Ok(SourceTable {
                data: SourceData::Table(LocalData {
                    train: gated.train,
                    test: gated.test,
                }),
                excluded_by_consent: u32::try_from(gated.excluded).unwrap_or(u32::MAX),
                incomplete: u32::try_from(gated.incomplete).unwrap_or(u32::MAX),
            })
        })
    }
}

/// The dataset name of coded notes, as coding plans name it.
pub const CODED_NOTES: &str = "coded-notes";

/// Coded notes read from the node's EHR through the text gate: every current
/// note of a consenting patient whose encounter an active Claim codes (the
/// coders' own decisions are the labels), de-identified in the notes' language
/// with the patient's record as context. One patient in five (by keyed
/// pseudonym) is held out for evaluation.
pub struct EhrCodedNotes {
    store: ehr::Store,
    lang: deid::text::Lang,
    taggers: Option<PathBuf>,
}

impl EhrCodedNotes {
    /// Read from `store`, notes in `lang`.
    pub fn new(store: ehr::Store, lang: deid::text::Lang) -> Self {
        EhrCodedNotes {
            store,
            lang,
            taggers: None,
        }
    }

    /// De-identify with the newest PHI tagger a federation left in `dir` (see
    /// [`crate::task::tagger_models`]) rather than the shipped one.
    pub fn with_taggers(mut self, dir: PathBuf) -> Self {
        self.taggers = Some(dir);
        self
    }
}

/// Whether a patient's notes are held out: one keyed pseudonym in five.
fn held_out(pseudonym: &str) -> bool {
    use sha2::Digest as _;
    sha2::Sha256::digest(pseudonym.as_bytes())[0] % 5 == 0
}

/// The de-identified texts of every consenting patient of `store` (the rules of `lang`, the
/// node's own pseudonym key and the default research purposes), with the newest PHI tagger of
/// `lang` in `taggers` or, without one, the shipped tagger.
async fn gated_texts(
    store: &ehr::Store,
    lang: deid::text::Lang,
    taggers: Option<&std::path::Path>,
) -> Result<ehr::gate::TextDataset, SourceError> {
    let key = ehr::gate::PseudonymKey::load_or_create(store)
        .await
        .map_err(text_gate)?;
    let tagger = match taggers.and_then(|dir| newest_tagger(dir, lang)) {
        Some(tagger) => tagger,
        None => deid::text::tagger::Tagger::shipped(lang),
    };
    ehr::gate::build_text_dataset_with(
        store,
        &key,
        tagger,
        &ehr::gate::default_research_purposes(),
        ehr::datetime::now_micros(),
    )
    .await
    .map_err(text_gate)
}

/// The newest tagger for `lang` kept in `dir` that reads (a file that does not is skipped).
fn newest_tagger(
    dir: &std::path::Path,
    lang: deid::text::Lang,
) -> Option<deid::text::tagger::Tagger> {
    let suffix = format!("-{}.safetensors", lang.code());
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| Some(e.ok()?.path()))
        .filter(|p| p.to_string_lossy().ends_with(&suffix))
        .collect();
    files.sort();
    files.into_iter().rev().find_map(|file| {
        let weights = learn::Weights::from_safetensors(&std::fs::read(&file).ok()?).ok()?;
        let tagger = deid::text::tagger::Tagger::new(lang, &weights).ok()?;
        tracing::info!(file = %file.display(), "the text gate uses the federation's PHI tagger");
        Some(tagger)
    })
}

fn text_gate(e: impl std::fmt::Display) -> SourceError {
    SourceError::Invalid(format!("EHR text gate: {e}"))
}

/// Split `items` by patient: one keyed pseudonym in five held out; when that
/// leaves no held-out item, the last one is.
fn split_by_patient<T>(items: Vec<T>, pseudonym: impl Fn(&T) -> &str) -> (Vec<T>, Vec<T>) {
    let (mut test, mut train): (Vec<T>, Vec<T>) = items
        .into_iter()
        .partition(|item| held_out(pseudonym(item)));
    if test.is_empty() && train.len() > 1 {
        test.extend(train.pop());
    }
    (train, test)
}

/// A source's table of text data and its counts.
fn text_table(data: SourceData, left_out: usize) -> SourceTable {
    let counts = data.text_counts().cloned().unwrap_or_default();
    tracing::info!(
        training = data.training_records(),
        left_out,
        excluded_by_consent = counts.excluded_by_consent,
        removed = counts.total_removed(),
        "{} built through the text gate",
        data.name()
    );
    SourceTable {
        excluded_by_consent: u32::try_from(counts.excluded_by_consent).unwrap_or(u32::MAX),
        incomplete: u32::try_from(left_out).unwrap_or(u32::MAX),
        data,
    }
}

impl DatasetSource for EhrCodedNotes {
    fn dataset(&self) -> &str {
        CODED_NOTES
    }

    fn load(&self) -> LoadFuture<'_> {
        Box::pin(async move {
            let texts = gated_texts(&self.store, self.lang, self.taggers.as_deref()).await?;
            let notes = billing::coded::coded_notes(&self.store, &texts)
                .await
                .map_err(text_gate)?;
            let uncoded = texts.documents.len() - notes.len();
            let (train, test) = split_by_patient(notes, |n| &n.pseudonym);
            let data = SourceData::CodedNotes(CodedNotes {
                train,
                test,
                counts: texts.counts,
            });
            Ok(text_table(data, uncoded))
        })
    }
}

/// The dataset name of signed notes, as note-sections plans name it.
pub const SIGNED_NOTES: &str = "signed-notes";

/// Transcripts with the notes clinicians signed for them, read from the
/// node's EHR through the text gate: a transcript (a DocumentReference the
/// gate reads as one) and a `final` note of the same encounter make a pair.
/// One patient in five is held out for evaluation.
pub struct EhrSignedNotes {
    store: ehr::Store,
    taggers: Option<PathBuf>,
}

impl EhrSignedNotes {
    /// Read from `store`.
    pub fn new(store: ehr::Store) -> Self {
        EhrSignedNotes {
            store,
            taggers: None,
        }
    }

    /// De-identify with the newest PHI tagger a federation left in `dir` (see
    /// [`crate::task::tagger_models`]) rather than the shipped one.
    pub fn with_taggers(mut self, dir: PathBuf) -> Self {
        self.taggers = Some(dir);
        self
    }
}

/// The pairs of `texts`: each signed note with its encounter's transcript.
fn signed_pairs(texts: &ehr::gate::TextDataset) -> Vec<(String, notes::federated::SignedNote)> {
    let transcripts: std::collections::BTreeMap<&str, &str> = texts
        .documents
        .iter()
        .filter(|d| d.kind == ehr::gate::TextKind::Transcript)
        .filter_map(|d| Some((d.encounter.as_deref()?, d.text.as_str())))
        .collect();
    texts
        .documents
        .iter()
        .filter(|d| d.kind == ehr::gate::TextKind::Note && d.signed)
        .filter_map(|d| {
            let dialogue = transcripts.get(d.encounter.as_deref()?)?;
            Some((
                d.pseudonym.clone(),
                notes::federated::SignedNote {
                    dialogue: dialogue.to_string(),
                    note: notes::federated::NoteText::Full(d.text.clone()),
                    context: Default::default(),
                },
            ))
        })
        .collect()
}

impl DatasetSource for EhrSignedNotes {
    fn dataset(&self) -> &str {
        SIGNED_NOTES
    }

    fn load(&self) -> LoadFuture<'_> {
        Box::pin(async move {
            let texts =
                gated_texts(&self.store, deid::text::Lang::En, self.taggers.as_deref()).await?;
            let pairs = signed_pairs(&texts);
            let unpaired = texts.documents.len().saturating_sub(2 * pairs.len());
            let (train, test) = split_by_patient(pairs, |(p, _)| p);
            let strip = |v: Vec<(String, notes::federated::SignedNote)>| {
                v.into_iter().map(|(_, n)| n).collect()
            };
            let data = SourceData::SignedNotes(SignedNotes {
                train: strip(train),
                test: strip(test),
                counts: texts.counts,
            });
            Ok(text_table(data, unpaired))
        })
    }
}

/// The dataset name of the PHI tagger's rows, as phi-tagger plans name it.
pub const TAGGER_NOTES: &str = "tagger-notes";

/// The PHI tagger's rows from every text of the node's EHR, labelled by the
/// rules with the patient's record as context (`ehr::gate::build_tagger_rows`).
/// One patient in five is held out for evaluation.
pub struct EhrTaggerNotes {
    store: ehr::Store,
    lang: deid::text::Lang,
}

impl EhrTaggerNotes {
    /// Read from `store`, texts in `lang`.
    pub fn new(store: ehr::Store, lang: deid::text::Lang) -> Self {
        EhrTaggerNotes { store, lang }
    }
}

impl DatasetSource for EhrTaggerNotes {
    fn dataset(&self) -> &str {
        TAGGER_NOTES
    }

    fn load(&self) -> LoadFuture<'_> {
        Box::pin(async move {
            let key = ehr::gate::PseudonymKey::load_or_create(&self.store)
                .await
                .map_err(text_gate)?;
            let rows = ehr::gate::build_tagger_rows(
                &self.store,
                &key,
                self.lang,
                &ehr::gate::default_research_purposes(),
                ehr::datetime::now_micros(),
            )
            .await
            .map_err(text_gate)?;
            let (train, test) = split_by_patient(rows.patients, |(p, _)| p);
            let flatten = |v: Vec<(String, Vec<learn::sparse::Example>)>| {
                v.into_iter().flat_map(|(_, rows)| rows).collect()
            };
            let data = SourceData::TaggerRows(TaggerRows {
                lang: self.lang,
                train: flatten(train),
                test: flatten(test),
                counts: rows.counts,
            });
            Ok(text_table(data, 0))
        })
    }
}

/// Synthetic logistic-regression rows (Flower's benchmark generator, see
/// [`learn::synthetic::logistic`]), for load and protocol benchmarks.
pub struct Synthetic {
    /// Training rows.
    pub rows: usize,
    /// Features per row.
    pub features: usize,
    /// Seed of the rows (the test rows use `seed + 1`).
    pub seed: u64,
}

impl DatasetSource for Synthetic {
    fn dataset(&self) -> &str {
        "synthetic"
    }

    fn load(&self) -> LoadFuture<'_> {
        Box::pin(async move {
            Ok(SourceTable {
                data: SourceData::Table(LocalData {
                    train: learn::synthetic::logistic(self.seed, self.rows, self.features),
                    test: learn::synthetic::logistic(self.seed + 1, 8, self.features),
                }),
                excluded_by_consent: 0,
                incomplete: 0,
            })
        })
    }
}

/// One centre of the UCI Heart Disease data, split as FLamby does.
pub struct HeartDiseaseFiles {
    dir: PathBuf,
    centre: usize,
}

impl HeartDiseaseFiles {
    /// A centre by name.
    pub fn new(dir: PathBuf, centre: &str) -> Result<Self, SourceError> {
        let index = learn::heart::CENTRES
            .iter()
            .position(|c| *c == centre)
            .ok_or_else(|| {
                SourceError::Invalid(format!(
                    "unknown heart-disease centre {centre:?}; expected one of {:?}",
                    learn::heart::CENTRES
                ))
            })?;
        Ok(HeartDiseaseFiles { dir, centre: index })
    }

    fn read(&self, name: &str) -> Result<String, SourceError> {
        let path = self.dir.join(name);
        std::fs::read_to_string(&path).map_err(|source| SourceError::Read {
            path: path.display().to_string(),
            source,
        })
    }
}

impl DatasetSource for HeartDiseaseFiles {
    fn dataset(&self) -> &str {
        "heart-disease"
    }

    fn load(&self) -> LoadFuture<'_> {
        Box::pin(async move {
            let name = learn::heart::CENTRES[self.centre];
            let data = self.read(&format!("processed.{name}.data"))?;
            let split = self.read("flamby-split.csv")?;
            let centre = learn::heart::load_centre(self.centre, &data, &split)
                .map_err(|e| SourceError::Invalid(format!("heart-disease centre {name}: {e}")))?;
            Ok(SourceTable {
                data: SourceData::Table(LocalData {
                    train: centre.train,
                    test: centre.test,
                }),
                excluded_by_consent: 0,
                incomplete: 0,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gate_takes_the_newest_readable_tagger_of_its_language() {
        let dir = tempfile::tempdir().unwrap();
        let lang = deid::text::Lang::En;
        assert!(newest_tagger(dir.path(), lang).is_none());
        let model = deid::text::tagger::model(lang);
        let mut weights = model.initial_weights();
        weights.values_mut()[0] = 0.5;
        let write =
            |name: &str, bytes: &[u8]| std::fs::write(dir.path().join(name), bytes).unwrap();
        write(
            "0000000000001-aa-en.safetensors",
            &model.initial_weights().to_safetensors(),
        );
        write("0000000000002-bb-en.safetensors", &weights.to_safetensors());
        write(
            "0000000000003-cc-fr.safetensors",
            &model.initial_weights().to_safetensors(),
        );
        write("0000000000004-dd-en.safetensors", b"not weights");
        let newest = newest_tagger(dir.path(), lang).expect("a tagger");
        let expected = deid::text::tagger::Tagger::new(lang, &weights).unwrap();
        assert_eq!(format!("{newest:?}"), format!("{expected:?}"));
    }
}
