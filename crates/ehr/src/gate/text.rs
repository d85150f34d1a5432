//! Free text through the gate: every text that leaves for training is de-identified by
//! `deid::text` with the patient's own record as context (names, birth date, identifiers,
//! address, telecom, contacts, and the practitioners who wrote or signed the document), dates
//! moved by the gate's per-patient shift; patients whose Consent denies the use are left out.
//!
//! The texts, and only these, leave:
//! - the `text/*` attachments of each current `DocumentReference` (notes, letters; dictation
//!   transcripts), inline (`data`) or in the `Binary` their `url` names;
//! - the narrative of each section of each `Composition`, XHTML reduced to its text.
//!
//! Everything else a document carries (other attachments, titles, descriptions, resource
//! narratives) stays in the EHR. Only pseudonyms, redacted text and counts leave: how many
//! documents of each kind, how many spans of each category removed. The read is audited like
//! every other use of the gate.

mod xhtml;

use std::collections::{BTreeMap, HashMap};

use base64::Engine as _;
use deid::text::tagger::Tagger;
use deid::text::{Context, Deidentifier, Label, Lang, Replacement, TextOptions};
use serde_json::Value as Json;

use super::{PseudonymKey, Purpose, denied_patients, parse, record_read, subject_patient};
use crate::error::{Error, Result};
use crate::store::Store;

/// What kind of text a document is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TextKind {
    /// A `text/*` attachment of a DocumentReference that is not a transcript.
    Note,
    /// A dictation or consultation transcript: a DocumentReference whose type or attachment
    /// title says transcript, transcription or dictation (as speech-to-text writes them).
    Transcript,
    /// The narrative of one section of a Composition.
    CompositionSection,
}

impl TextKind {
    /// The kind's name, as the ledger's `TextKind` names it (`note`, `transcript`,
    /// `composition-section`).
    pub fn name(self) -> &'static str {
        match self {
            TextKind::Note => "note",
            TextKind::Transcript => "transcript",
            TextKind::CompositionSection => "composition-section",
        }
    }
}

/// One de-identified document.
#[derive(Clone, Debug, PartialEq)]
pub struct TextDocument {
    /// The patient's keyed pseudonym.
    pub pseudonym: String,
    /// What kind of text it is.
    pub kind: TextKind,
    /// The resource it comes from (`DocumentReference/ID`, `Composition/ID`), for joining
    /// with the record on the node (e.g. the Claim that codes a note); it never leaves.
    pub resource: String,
    /// The encounter the document belongs to (`Encounter/ID`), when it says.
    pub encounter: Option<String>,
    /// Whether it is signed: a DocumentReference's `docStatus` or a Composition's `status` is
    /// `final`.
    pub signed: bool,
    /// For a Composition section, its code (`system|code`, e.g. a LOINC section code).
    pub section: Option<String>,
    /// The redacted text.
    pub text: String,
}

/// What the gate let out, in numbers only: fit for a signed ledger entry.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TextCounts {
    /// Documents let out, per kind.
    pub documents: BTreeMap<TextKind, usize>,
    /// Patients whose documents were let out.
    pub patients: usize,
    /// Patients left out because their Consent denies the use.
    pub excluded_by_consent: usize,
    /// Spans removed, per category.
    pub removed: BTreeMap<Label, usize>,
}

impl TextCounts {
    /// Documents let out, all kinds.
    pub fn total_documents(&self) -> usize {
        self.documents.values().sum()
    }

    /// Spans removed, all categories.
    pub fn total_removed(&self) -> usize {
        self.removed.values().sum()
    }

    /// Counts one document of `kind` and the labels of its spans.
    fn add(&mut self, kind: TextKind, labels: impl Iterator<Item = Label>) {
        *self.documents.entry(kind).or_insert(0) += 1;
        for label in labels {
            *self.removed.entry(label).or_insert(0) += 1;
        }
    }

    /// The counts in words, for the audit record (`12 documents of 3 patients, 40 spans
    /// removed, 1 patients excluded by consent`); `spans` says what befell the spans.
    fn summary(&self, spans: &str) -> String {
        format!(
            "{} documents of {} patients, {} spans {spans}, {} patients excluded by consent",
            self.total_documents(),
            self.patients,
            self.total_removed(),
            self.excluded_by_consent
        )
    }
}

/// The de-identified texts of a node and what was removed from them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TextDataset {
    /// Documents, patients in registration order.
    pub documents: Vec<TextDocument>,
    /// The counts.
    pub counts: TextCounts,
}

/// A text found in the store, before de-identification.
struct Found {
    kind: TextKind,
    resource: String,
    encounter: Option<String>,
    signed: bool,
    section: Option<String>,
    text: String,
    /// Names of the practitioners and relatives the document names (authors, attesters).
    people: Vec<String>,
}

/// The de-identified free text of every patient of `store` whose Consent allows `purposes`,
/// at time `now`. Surrogates are keyed by `key` (names consistent within a patient, dates moved
/// by [`PseudonymKey::date_shift_days`]); the rules run with the shipped PHI tagger.
pub async fn build_text_dataset(
    store: &Store,
    key: &PseudonymKey,
    lang: Lang,
    purposes: &[Purpose],
    now: i64,
) -> Result<TextDataset> {
    build_text_dataset_with(store, key, Tagger::shipped(lang), purposes, now).await
}

/// [`build_text_dataset`] with another PHI tagger after the rules (e.g. the one the node's
/// federation trained); the tagger's language is the texts'.
pub async fn build_text_dataset_with(
    store: &Store,
    key: &PseudonymKey,
    tagger: Tagger,
    purposes: &[Purpose],
    now: i64,
) -> Result<TextDataset> {
    let secret = deid::DeidKey::new(key.pseudonym("\0cohort-deid-text").as_bytes())
        .map_err(|e| Error::Corrupt(e.to_string()))?;
    let deid = Deidentifier::new(
        tagger.lang(),
        Some(secret),
        TextOptions {
            replacement: Replacement::Surrogates,
        },
    )
    .and_then(|d| d.with_tagger(tagger))
    .map_err(|e| Error::Corrupt(e.to_string()))?;
    let (patients, excluded_by_consent) = consenting_texts(store, key, purposes, now).await?;
    let mut dataset = TextDataset::default();
    dataset.counts.excluded_by_consent = excluded_by_consent;
    let mut used = Vec::new();
    for patient in patients {
        let pseudonym = key.pseudonym(&patient.id);
        used.push(patient.id);
        for (document, context) in patient.texts {
            let redaction = deid.redact(&document.text, &context);
            dataset
                .counts
                .add(document.kind, redaction.spans.iter().map(|s| s.label));
            dataset.documents.push(TextDocument {
                pseudonym: pseudonym.clone(),
                kind: document.kind,
                resource: document.resource,
                encounter: document.encounter,
                signed: document.signed,
                section: document.section,
                text: redaction.text,
            });
        }
    }
    dataset.counts.patients = used.len();
    let description = format!("de-identified text: {}", dataset.counts.summary("removed"));
    record_read(store, used, description, now).await?;
    Ok(dataset)
}

/// Training rows for the PHI tagger from the free text of every patient of `store` whose
/// Consent allows `purposes`: each text's candidate words, labelled by what the rules find
/// with the patient's whole record as context (the record knows names that no cue announces),
/// grouped by patient pseudonym. The text itself never leaves the node; only the model trained
/// on these rows does.
pub async fn build_tagger_rows(
    store: &Store,
    key: &PseudonymKey,
    lang: Lang,
    purposes: &[Purpose],
    now: i64,
) -> Result<TaggerRows> {
    let deid = Deidentifier::new(
        lang,
        None,
        TextOptions {
            replacement: Replacement::Tags,
        },
    )
    .map_err(|e| Error::Corrupt(e.to_string()))?;
    let (patients, excluded_by_consent) = consenting_texts(store, key, purposes, now).await?;
    let mut rows = TaggerRows::default();
    rows.counts.excluded_by_consent = excluded_by_consent;
    let mut used = Vec::new();
    for patient in patients {
        let mut examples = Vec::new();
        for (document, context) in patient.texts {
            let (document_rows, spans) = deid.silver_tagger_examples(&document.text, &context);
            examples.extend(document_rows);
            rows.counts
                .add(document.kind, spans.iter().map(|s| s.label));
        }
        rows.patients.push((key.pseudonym(&patient.id), examples));
        used.push(patient.id);
    }
    rows.counts.patients = used.len();
    let description = format!("PHI tagger rows: {}", rows.counts.summary("labelled"));
    record_read(store, used, description, now).await?;
    Ok(rows)
}

/// The PHI tagger's training rows of a node.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TaggerRows {
    /// Each consenting patient's pseudonym and rows.
    pub patients: Vec<(String, Vec<learn::sparse::Example>)>,
    /// Documents read per kind, spans the rules labelled per category (they are not let out:
    /// the text stays), patients used and left out by consent.
    pub counts: TextCounts,
}

/// One consenting patient's texts, each with the record's facts as context.
struct PatientTexts {
    id: String,
    texts: Vec<(Found, Context)>,
}

/// The texts of every patient of `store` whose Consent allows `purposes`, in registration
/// order, and the number of patients left out by their Consent.
async fn consenting_texts(
    store: &Store,
    key: &PseudonymKey,
    purposes: &[Purpose],
    now: i64,
) -> Result<(Vec<PatientTexts>, usize)> {
    let denied = denied_patients(store, purposes, now).await?;
    let mut texts: HashMap<String, Vec<Found>> = HashMap::new();
    let mut people = People::default();
    for resource_type in ["DocumentReference", "Composition"] {
        for version in super::all_matching(store, resource_type, &[]).await? {
            let resource = parse(&version)?;
            let Some(patient) = subject_patient(&resource) else {
                continue;
            };
            if !is_current(&resource) {
                continue;
            }
            let named = people.named_by(store, &resource).await?;
            for mut found in texts_of(store, &resource).await? {
                found.people.clone_from(&named);
                texts.entry(patient.clone()).or_default().push(found);
            }
        }
    }
    let mut out = Vec::new();
    let mut excluded = 0;
    for patient in store.patients_in_registration_order().await? {
        let Some(found) = texts.remove(&patient.id) else {
            continue;
        };
        if denied.contains(&patient.id) {
            excluded += 1;
            continue;
        }
        let record = context_of(&parse(&patient)?);
        let texts = found
            .into_iter()
            .map(|mut document| {
                let mut context = record.clone();
                context.names.append(&mut document.people);
                context.patient_id = Some(patient.id.clone());
                context.date_shift_days = Some(key.date_shift_days(&patient.id));
                (document, context)
            })
            .collect();
        out.push(PatientTexts {
            id: patient.id.clone(),
            texts,
        });
    }
    Ok((out, excluded))
}

/// False for a document entered in error or superseded by another.
fn is_current(resource: &Json) -> bool {
    let status = |key: &str| resource[key].as_str().unwrap_or("");
    !matches!(status("status"), "entered-in-error" | "superseded")
        && status("docStatus") != "entered-in-error"
}

/// The texts a resource carries: the `text/*` attachments of a DocumentReference, the
/// narrative of each section (nested ones included) of a Composition.
async fn texts_of(store: &Store, resource: &Json) -> Result<Vec<Found>> {
    let mut out = Vec::new();
    let source = format!(
        "{}/{}",
        resource["resourceType"].as_str().unwrap_or_default(),
        resource["id"].as_str().unwrap_or_default()
    );
    let encounter = resource["context"]["encounter"][0]["reference"]
        .as_str()
        .or(resource["encounter"]["reference"].as_str())
        .map(str::to_string);
    let status = match resource["resourceType"].as_str() {
        Some("DocumentReference") => &resource["docStatus"],
        _ => &resource["status"],
    };
    let signed = status.as_str() == Some("final");
    let kind = if is_transcript(resource) {
        TextKind::Transcript
    } else {
        TextKind::Note
    };
    for content in array(&resource["content"]) {
        if let Some(text) = attachment_text(store, &content["attachment"]).await? {
            out.push(Found {
                kind,
                resource: source.clone(),
                encounter: encounter.clone(),
                signed,
                section: None,
                text,
                people: Vec::new(),
            });
        }
    }
    let mut sections: Vec<&Json> = array(&resource["section"]).collect();
    while let Some(section) = sections.pop() {
        if let Some(div) = section["text"]["div"].as_str() {
            out.push(Found {
                kind: TextKind::CompositionSection,
                resource: source.clone(),
                encounter: encounter.clone(),
                signed,
                section: section_code(section),
                text: xhtml::to_text(div),
                people: Vec::new(),
            });
        }
        sections.extend(array(&section["section"]));
    }
    Ok(out)
}

fn array(value: &Json) -> impl Iterator<Item = &Json> {
    value.as_array().into_iter().flatten()
}

/// A DocumentReference whose type or an attachment's title names a transcript.
fn is_transcript(resource: &Json) -> bool {
    let t = &resource["type"];
    let mut labels: Vec<&str> = t["text"].as_str().into_iter().collect();
    labels.extend(array(&t["coding"]).filter_map(|c| c["display"].as_str()));
    labels.extend(array(&resource["content"]).filter_map(|c| c["attachment"]["title"].as_str()));
    labels.iter().any(|label| {
        let label = label.to_lowercase();
        ["transcript", "transcription", "dictation", "dictée"]
            .iter()
            .any(|word| label.contains(word))
    })
}

/// The first coding of a section's code, as `system|code`.
fn section_code(section: &Json) -> Option<String> {
    let coding = array(&section["code"]["coding"]).next()?;
    let code = coding["code"].as_str()?;
    Some(match coding["system"].as_str() {
        Some(system) => format!("{system}|{code}"),
        None => code.to_string(),
    })
}

/// The text of a `text/*` attachment, inline or in the `Binary` its url names; `None` for
/// other media, unknown charsets and missing or undecodable data (they never leave).
async fn attachment_text(store: &Store, attachment: &Json) -> Result<Option<String>> {
    let Some(charset) = attachment["contentType"].as_str().and_then(text_charset) else {
        return Ok(None);
    };
    let data = match (attachment["data"].as_str(), attachment["url"].as_str()) {
        (Some(data), _) => data.to_string(),
        (None, Some(url)) => match binary_data(store, url).await? {
            Some(data) => data,
            None => return Ok(None),
        },
        (None, None) => return Ok(None),
    };
    let compact: String = data.split_ascii_whitespace().collect();
    let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(compact) else {
        return Ok(None);
    };
    Ok(charset.decode(&bytes))
}

/// The base64 data of the Binary `url` names (`Binary/ID`, relative or absolute), if stored.
async fn binary_data(store: &Store, url: &str) -> Result<Option<String>> {
    let Some(id) = url
        .rsplit_once("Binary/")
        .map(|(_, id)| id)
        .filter(|id| crate::types::is_valid_id(id))
    else {
        return Ok(None);
    };
    match store.read("Binary", id).await {
        Ok(version) => Ok(parse(&version)?["data"].as_str().map(str::to_string)),
        Err(Error::NotFound(_) | Error::Gone(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The character sets of text attachments the gate reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Charset {
    Utf8,
    Latin1,
}

impl Charset {
    /// The text of `bytes`; invalid UTF-8 sequences become U+FFFD.
    fn decode(self, bytes: &[u8]) -> Option<String> {
        let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
        Some(match self {
            Charset::Utf8 => String::from_utf8_lossy(bytes).into_owned(),
            Charset::Latin1 => bytes.iter().map(|&b| char::from(b)).collect(),
        })
    }
}

/// The charset of a `text/*` media type (UTF-8 when unsaid), `None` for other media and for
/// charsets the gate does not read.
fn text_charset(content_type: &str) -> Option<Charset> {
    let mut parts = content_type.split(';');
    let media = parts.next()?.trim().to_ascii_lowercase();
    if !media.starts_with("text/") {
        return None;
    }
    let charset = parts
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("charset"))
        .map(|(_, v)| v.trim().trim_matches('"').to_ascii_lowercase());
    match charset.as_deref() {
        None | Some("utf-8" | "utf8" | "us-ascii" | "ascii") => Some(Charset::Utf8),
        Some("iso-8859-1" | "latin1" | "iso-8859-15" | "windows-1252") => Some(Charset::Latin1),
        Some(_) => None,
    }
}

/// Names of the people documents name (authors, attesters), read once each.
#[derive(Default)]
struct People {
    names: HashMap<String, Option<String>>,
}

impl People {
    /// The names of the Practitioners and RelatedPersons that `resource` names as author or
    /// attester.
    async fn named_by(&mut self, store: &Store, resource: &Json) -> Result<Vec<String>> {
        let references = array(&resource["author"])
            .chain(array(&resource["attester"]).map(|a| &a["party"]))
            .chain(array(&resource["authenticator"]))
            .filter_map(|r| r["reference"].as_str());
        let mut out = Vec::new();
        for reference in references {
            let Some((t, id)) = reference.split_once('/') else {
                continue;
            };
            if !matches!(t, "Practitioner" | "RelatedPerson") || !crate::types::is_valid_id(id) {
                continue;
            }
            if !self.names.contains_key(reference) {
                let name = match store.read(t, id).await {
                    Ok(version) => Some(
                        array(&parse(&version)?["name"])
                            .map(human_name)
                            .collect::<Vec<_>>()
                            .join(" "),
                    ),
                    Err(Error::NotFound(_) | Error::Gone(_)) => None,
                    Err(e) => return Err(e),
                };
                self.names.insert(reference.to_string(), name);
            }
            out.extend(self.names[reference].clone().filter(|n| !n.is_empty()));
        }
        Ok(out)
    }
}

fn strings(v: &Json) -> Vec<String> {
    array(v)
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect()
}

fn human_name(name: &Json) -> String {
    let mut parts = strings(&name["given"]);
    parts.extend(name["family"].as_str().map(str::to_string));
    parts.extend(name["text"].as_str().map(str::to_string));
    parts.join(" ")
}

/// What the Patient resource says that notes may repeat.
fn context_of(patient: &Json) -> Context {
    let values = |v: &Json| -> Vec<String> {
        array(v)
            .filter_map(|t| t["value"].as_str().map(str::to_string))
            .collect()
    };
    let mut context = Context {
        birth_date: patient["birthDate"].as_str().map(str::to_string),
        ..Context::default()
    };
    context
        .names
        .extend(array(&patient["name"]).map(human_name));
    for contact in array(&patient["contact"]) {
        context.names.push(human_name(&contact["name"]));
        context.telecom.extend(values(&contact["telecom"]));
    }
    context.identifiers.extend(values(&patient["identifier"]));
    context.telecom.extend(values(&patient["telecom"]));
    for address in array(&patient["address"]) {
        let mut parts = strings(&address["line"]);
        for field in ["city", "postalCode", "district"] {
            parts.extend(address[field].as_str().map(str::to_string));
        }
        context.addresses.push(parts.join(", "));
    }
    context
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_media_types_and_their_charsets() {
        assert_eq!(text_charset("text/plain"), Some(Charset::Utf8));
        assert_eq!(
            text_charset("Text/Plain; charset=\"UTF-8\""),
            Some(Charset::Utf8)
        );
        assert_eq!(
            text_charset("text/plain;charset=ISO-8859-1"),
            Some(Charset::Latin1)
        );
        assert_eq!(text_charset("text/plain; charset=shift_jis"), None);
        assert_eq!(text_charset("audio/wav"), None);
        assert_eq!(text_charset("application/json"), None);
        assert_eq!(
            Charset::Latin1.decode(b"Z\xe9phyrine").as_deref(),
            Some("Zéphyrine")
        );
        assert_eq!(
            Charset::Utf8.decode(b"\xEF\xBB\xBFok\xff").as_deref(),
            Some("ok\u{FFFD}")
        );
    }

    #[test]
    fn transcripts_are_told_from_notes() {
        let speech = json!({"type": {"coding": [{"code": "34109-9", "display": "Note"}], "text": "Dictation transcript"}});
        assert!(is_transcript(&speech));
        let titled =
            json!({"content": [{"attachment": {"title": "Transcription de la consultation"}}]});
        assert!(is_transcript(&titled));
        let letter = json!({"type": {"text": "Discharge summary"}, "content": [{"attachment": {"title": "Letter"}}]});
        assert!(!is_transcript(&letter));
    }

    #[test]
    fn withdrawn_documents_stay_in() {
        assert!(is_current(
            &json!({"status": "current", "docStatus": "final"})
        ));
        assert!(is_current(&json!({"status": "preliminary"})));
        assert!(!is_current(&json!({"status": "entered-in-error"})));
        assert!(!is_current(&json!({"status": "superseded"})));
        assert!(!is_current(
            &json!({"status": "current", "docStatus": "entered-in-error"})
        ));
    }
}
