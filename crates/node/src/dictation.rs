//! Dictation on the node: a recording about a patient (and a visit) is transcribed on this
//! machine by the installed Whisper model, with the patient's record as vocabulary (their
//! medications, problems, allergies and the names in the record) and the hospital's formulary
//! (the drugs its store holds and prescribes, and a configured list), and the transcript is filed
//! in the EHR as a preliminary `DocumentReference` (the recording dropped, inline or in a
//! `Binary`, per configuration). Audio and text never leave the node: there is no network code
//! here, and the node's text gate de-identifies transcripts like any other note before training.
//!
//! Used by the node API's `POST /speech/transcripts` and by the console's visit page.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;
use speech::record::{Audio, AudioStorage, RecordConfig};

/// The `[dictation]` table of node.toml.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DictationConfig {
    /// Installed model (`cohort models install NAME`): `whisper-tiny.en` or `whisper-base`.
    #[serde(default = "default_model")]
    pub model: String,
    /// The model cache (default: `$COHORT_MODELS`, else `~/.cache/cohort/models`).
    pub models_dir: Option<PathBuf>,
    /// Language of dictations unless a request names one (`en`, `fr`).
    #[serde(default = "default_language")]
    pub language: String,
    /// What happens to the recording: `discard`, `attachment` (inline in the
    /// DocumentReference) or `binary` (a linked `Binary`).
    #[serde(default)]
    pub audio: AudioKept,
    /// Largest recording accepted, in MiB.
    #[serde(default = "default_max_mib")]
    pub max_mib: usize,
    /// The hospital's formulary, beyond the drugs its store holds and prescribes: a text file,
    /// one medication per line (a name such as `metformine`, or a display such as
    /// `amLODIPine 2.5 MG Oral Tablet`), `#` comments.
    pub formulary: Option<PathBuf>,
}

fn default_model() -> String {
    "whisper-tiny.en".into()
}

fn default_language() -> String {
    "en".into()
}

fn default_max_mib() -> usize {
    64
}

/// `audio` in `[dictation]`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AudioKept {
    /// Keep only the transcript.
    #[default]
    Discard,
    /// Inline in the DocumentReference.
    Attachment,
    /// In a linked `Binary`.
    Binary,
}

impl From<AudioKept> for AudioStorage {
    fn from(kept: AudioKept) -> Self {
        match kept {
            AudioKept::Discard => AudioStorage::Discard,
            AudioKept::Attachment => AudioStorage::Attachment,
            AudioKept::Binary => AudioStorage::Binary,
        }
    }
}

/// Dictation settings, resolved: the model is installed.
#[derive(Clone, Debug)]
pub struct DictationSettings {
    /// The installed model's directory.
    pub model_dir: PathBuf,
    /// Its name, recorded in each transcript.
    pub model: String,
    /// Default language.
    pub language: String,
    /// What happens to the recording.
    pub audio: AudioStorage,
    /// Largest recording accepted, in bytes.
    pub max_bytes: usize,
    /// The configured formulary's names (the store's are added at each refresh).
    pub formulary: Vec<String>,
}

impl DictationConfig {
    /// Resolve: the formulary file must be readable and the model installed (the error says how
    /// to install it).
    pub fn resolve(&self) -> Result<DictationSettings, String> {
        let cache = self
            .models_dir
            .clone()
            .unwrap_or_else(speech::models::cache_dir);
        let formulary = match &self.formulary {
            Some(path) => {
                speech::vocab::formulary_from_text(&std::fs::read_to_string(path).map_err(|e| {
                    format!("[dictation] formulary: reading {}: {e}", path.display())
                })?)
            }
            None => Vec::new(),
        };
        let model_dir = speech::models::installed(&self.model, &cache)
            .map_err(|e| format!("[dictation]: {e}"))?;
        Ok(DictationSettings {
            model_dir,
            model: speech::models::spec(&self.model)
                .map_err(|e| e.to_string())?
                .name
                .to_string(),
            language: self.language.clone(),
            audio: self.audio.into(),
            max_bytes: self.max_mib.saturating_mul(1 << 20),
            formulary,
        })
    }
}

/// A recording to file.
pub struct Recording {
    /// `Patient` id.
    pub patient: String,
    /// `Encounter` id, when the dictation is about a visit.
    pub encounter: Option<String>,
    /// The file's bytes (WAV, FLAC, MP3, Ogg, AIFF).
    pub audio: Vec<u8>,
    /// Its media type.
    pub content_type: String,
    /// Its language, when not the configured one.
    pub language: Option<String>,
}

/// What was filed.
#[derive(Debug, Clone)]
pub struct Filed {
    /// The stored `DocumentReference`, with its id.
    pub document: Value,
    /// The `Binary` holding the recording, when kept so.
    pub binary: Option<String>,
    /// Seconds of audio.
    pub seconds: f32,
}

impl Filed {
    /// The DocumentReference's id.
    pub fn id(&self) -> &str {
        self.document["id"].as_str().unwrap_or_default()
    }
}

/// Why a recording was not filed.
#[derive(Debug, thiserror::Error)]
pub enum DictationError {
    /// The request or the recording is unusable (corrupt or unsupported audio, unknown
    /// language, a visit of another patient, too large).
    #[error("{0}")]
    Invalid(String),
    /// The recording holds no speech: nothing is filed.
    #[error("no speech was found in the recording (silence or noise only): nothing was filed")]
    NoSpeech,
    /// The patient or the visit is not in this hospital's record.
    #[error("{0}")]
    NotFound(String),
    /// The speech model could not be loaded.
    #[error("the speech model is unavailable: {0}")]
    Unavailable(String),
    /// The EHR failed.
    #[error("EHR: {0}")]
    Ehr(ehr::Error),
}

impl DictationError {
    /// The HTTP status that answers it.
    pub fn status(&self) -> u16 {
        match self {
            DictationError::Invalid(_) => 400,
            DictationError::NoSpeech => 422,
            DictationError::NotFound(_) => 404,
            DictationError::Unavailable(_) => 503,
            DictationError::Ehr(e) => e.status(),
        }
    }
}

impl From<ehr::Error> for DictationError {
    fn from(e: ehr::Error) -> Self {
        match e {
            ehr::Error::NotFound(what) => DictationError::NotFound(what),
            other => DictationError::Ehr(other),
        }
    }
}

/// Resource types whose names and codes make a dictation's vocabulary.
const VOCABULARY_TYPES: [&str; 7] = [
    "Patient",
    "MedicationRequest",
    "MedicationStatement",
    "Condition",
    "AllergyIntolerance",
    "RelatedPerson",
    "Practitioner",
];

/// How long the formulary read from the store is used before it is read again.
const FORMULARY_REFRESH: Duration = Duration::from_secs(600);

/// Speech-to-text into the record: the model is loaded on first use and kept; one recording
/// is transcribed at a time (it takes the node's cores).
pub struct Dictation {
    ehr: ehr::Store,
    settings: DictationSettings,
    transcriber: tokio::sync::OnceCell<Arc<speech::Transcriber>>,
    one_at_a_time: tokio::sync::Semaphore,
    formulary: tokio::sync::Mutex<Option<(Instant, Arc<Vec<String>>)>>,
}

impl Dictation {
    /// Dictation into `ehr` with `settings`.
    pub fn new(ehr: ehr::Store, settings: DictationSettings) -> Dictation {
        Dictation {
            ehr,
            settings,
            transcriber: tokio::sync::OnceCell::new(),
            one_at_a_time: tokio::sync::Semaphore::new(1),
            formulary: tokio::sync::Mutex::new(None),
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> &DictationSettings {
        &self.settings
    }

    async fn transcriber(&self) -> Result<Arc<speech::Transcriber>, DictationError> {
        let dir = self.settings.model_dir.clone();
        self.transcriber
            .get_or_try_init(|| async move {
                tokio::task::spawn_blocking(move || {
                    speech::Transcriber::load(&dir, &candle_core::Device::Cpu).map(Arc::new)
                })
                .await
                .map_err(|e| DictationError::Unavailable(e.to_string()))?
                .map_err(|e| DictationError::Unavailable(e.to_string()))
            })
            .await
            .cloned()
    }

    /// The hospital's formulary: the configured names and the drugs the store holds
    /// (`Medication`) and prescribes (every MedicationRequest), read again after
    /// [`FORMULARY_REFRESH`].
    pub async fn formulary(&self) -> Result<Arc<Vec<String>>, DictationError> {
        let mut cached = self.formulary.lock().await;
        if let Some((read, names)) = cached.as_ref()
            && read.elapsed() < FORMULARY_REFRESH
        {
            return Ok(names.clone());
        }
        let mut resources = Vec::new();
        for kind in ["Medication", "MedicationRequest"] {
            resources.extend(ehr::gate::all_resources(&self.ehr, kind).await?);
        }
        let mut names = self.settings.formulary.clone();
        names.extend(speech::vocab::formulary_names(&resources));
        names.sort();
        names.dedup();
        let names = Arc::new(names);
        *cached = Some((Instant::now(), names.clone()));
        Ok(names)
    }

    /// The vocabulary of the patient's record; checks that the visit is the patient's.
    async fn vocabulary(&self, recording: &Recording) -> Result<Vec<String>, DictationError> {
        let types: Vec<String> = VOCABULARY_TYPES.iter().map(|t| t.to_string()).collect();
        let record = self
            .ehr
            .everything(&recording.patient, Some(&types), None)
            .await
            .map_err(|e| match e {
                ehr::Error::NotFound(_) | ehr::Error::Gone(_) => DictationError::NotFound(format!(
                    "Patient/{} is not in this hospital's record",
                    recording.patient
                )),
                other => other.into(),
            })?;
        if let Some(encounter) = &recording.encounter {
            let visit = self
                .ehr
                .read("Encounter", encounter)
                .await
                .map_err(|e| match e {
                    ehr::Error::NotFound(_) | ehr::Error::Gone(_) => DictationError::NotFound(
                        format!("Encounter/{encounter} is not in this hospital's record"),
                    ),
                    other => other.into(),
                })?;
            let visit: Value = parse(visit.content.as_deref())?;
            let subject = format!("Patient/{}", recording.patient);
            if visit["subject"]["reference"].as_str() != Some(subject.as_str()) {
                return Err(DictationError::Invalid(format!(
                    "Encounter/{encounter} is not a visit of {subject}"
                )));
            }
        }
        let resources = record
            .iter()
            .map(|v| parse(v.content.as_deref()))
            .collect::<Result<Vec<Value>, _>>()?;
        Ok(speech::vocab::record_terms(&resources))
    }

    /// Transcribe `recording` and file the transcript in the patient's record.
    pub async fn file(&self, recording: Recording) -> Result<Filed, DictationError> {
        if recording.audio.len() > self.settings.max_bytes {
            return Err(DictationError::Invalid(format!(
                "the recording is {} bytes; this node accepts at most {} ({} MiB, [dictation] max_mib)",
                recording.audio.len(),
                self.settings.max_bytes,
                self.settings.max_bytes >> 20
            )));
        }
        if !ehr::types::is_valid_id(&recording.patient)
            || recording
                .encounter
                .as_deref()
                .is_some_and(|e| !ehr::types::is_valid_id(e))
        {
            return Err(DictationError::Invalid(
                "patient and encounter must be FHIR resource ids".into(),
            ));
        }
        let terms = self.vocabulary(&recording).await?;
        let formulary = self.formulary().await?;
        let language = recording
            .language
            .clone()
            .unwrap_or_else(|| self.settings.language.clone());
        let transcriber = self.transcriber().await?;
        let _turn = self
            .one_at_a_time
            .acquire()
            .await
            .map_err(|e| DictationError::Unavailable(e.to_string()))?;
        let options =
            speech::TranscribeOptions::with_vocabulary(&language, terms, speech::VocabUse::Full)
                .with_formulary(formulary.to_vec());
        let (audio, transcribed) = tokio::task::spawn_blocking(move || {
            let samples = speech::audio::decode_16k(&recording.audio);
            let transcript = samples
                .as_ref()
                .map_err(|e| DictationError::Invalid(e.to_string()))
                .and_then(|samples| {
                    transcriber
                        .transcribe(samples, &options)
                        .map(|t| (t, samples.len()))
                        .map_err(|e| match e {
                            speech::Error::Invalid(m) | speech::Error::Audio(m) => {
                                DictationError::Invalid(m)
                            }
                            other => DictationError::Unavailable(other.to_string()),
                        })
                });
            (recording, transcript)
        })
        .await
        .map_err(|e| DictationError::Unavailable(e.to_string()))?;
        let (transcript, samples) = transcribed?;
        if transcript.text.trim().is_empty() {
            return Err(DictationError::NoSpeech);
        }
        let mut tx = self.ehr.begin().await?;
        let config = RecordConfig {
            audio: self.settings.audio,
            language,
            model: self.settings.model.clone(),
            date: ehr::datetime::format_instant(tx.now()),
        };
        let mut bundle = speech::record::transcript_bundle(
            &audio.patient,
            audio.encounter.as_deref(),
            &transcript,
            Some(&Audio {
                bytes: &audio.audio,
                content_type: &audio.content_type,
            }),
            &config,
        );
        let outcomes = ehr::bundle::transaction(&mut tx, &mut bundle).await?;
        tx.commit().await?;
        let written = |kind: &str| {
            outcomes.iter().find_map(|o| match o {
                ehr::bundle::EntryOutcome::Written(w) if w.resource_type == kind => Some(w),
                _ => None,
            })
        };
        let document = written("DocumentReference")
            .and_then(|w| w.resource.clone())
            .ok_or_else(|| {
                DictationError::Ehr(ehr::Error::Internal(
                    "the transcript was not written".into(),
                ))
            })?;
        Ok(Filed {
            document,
            binary: written("Binary").map(|w| w.id.clone()),
            seconds: samples as f32 / speech::SAMPLE_RATE as f32,
        })
    }
}

fn parse(content: Option<&str>) -> Result<Value, DictationError> {
    content
        .and_then(|c| serde_json::from_str(c).ok())
        .ok_or_else(|| DictationError::Ehr(ehr::Error::Corrupt("unreadable resource".into())))
}
