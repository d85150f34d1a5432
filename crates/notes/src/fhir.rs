//! The draft as FHIR R4: a `Composition` (one section per note section, LOINC-coded) inside a
//! `DocumentReference` that also carries the plain-text note, both `preliminary` until the
//! clinician signs; signing makes both `final` and records a `Provenance` of the signed version.
//!
//! The Composition travels inside the DocumentReference (an `application/fhir+json`
//! attachment), so that systems that only read DocumentReference get the structured note too;
//! it can also be stored on its own and signed with [`sign_composition`].

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};

use crate::Error;
use crate::draft::Draft;

/// LOINC document type of the note: "Consult note".
const NOTE_TYPE: (&str, &str) = ("11488-4", "Consult note");
const LOINC: &str = "http://loinc.org";

/// Who and what the note is about.
#[derive(Clone, Debug, PartialEq)]
pub struct NoteContext {
    /// The patient, as a FHIR reference (`Patient/123`).
    pub patient: String,
    /// The author of the draft, as a reference (the clinician whose visit it is).
    pub author: String,
    /// When the draft was made (FHIR dateTime).
    pub date: String,
    /// The visit, as a reference (`Encounter/123`), when known: it ties the note to the
    /// visit's transcript (and makes the pair a training example for the section classifier).
    pub encounter: Option<String>,
}

/// The draft as a `preliminary` Composition.
pub fn composition(draft: &Draft, context: &NoteContext) -> Value {
    let sections: Vec<Value> = draft
        .sections
        .iter()
        .map(|s| {
            let (code, display) = s.section.loinc();
            let lines: Vec<String> = s
                .statements
                .iter()
                .map(|t| format!("<p>{}</p>", escape(&t.text)))
                .collect();
            json!({
                "title": s.title,
                "code": {"coding": [{"system": LOINC, "code": code, "display": display}]},
                "text": {
                    "status": "generated",
                    "div": format!("<div xmlns=\"http://www.w3.org/1999/xhtml\">{}</div>", lines.concat()),
                },
            })
        })
        .collect();
    let mut composition = json!({
        "resourceType": "Composition",
        "status": "preliminary",
        "type": note_type(),
        "subject": {"reference": context.patient},
        "date": context.date,
        "author": [{"reference": context.author}],
        "title": "Consultation note (draft)",
        "section": sections,
    });
    if let Some(encounter) = &context.encounter {
        composition["encounter"] = json!({"reference": encounter});
    }
    composition
}

/// Media type of the embedded Composition.
const FHIR_JSON: &str = "application/fhir+json";

/// A `preliminary` DocumentReference holding the note twice: as plain text and as its
/// Composition (FHIR JSON), so that the EHR stores and versions the structured note with it.
pub fn document_reference(draft: &Draft, context: &NoteContext) -> Value {
    let composition = composition(draft, context);
    let mut document = json!({
        "resourceType": "DocumentReference",
        "status": "current",
        "docStatus": "preliminary",
        "type": note_type(),
        "subject": {"reference": context.patient},
        "date": context.date,
        "author": [{"reference": context.author}],
        "content": [
            {"attachment": {
                "contentType": "text/plain; charset=utf-8",
                "data": BASE64.encode(draft.text()),
                "title": "Consultation note",
            }},
            {"attachment": {
                "contentType": FHIR_JSON,
                "data": BASE64.encode(composition.to_string()),
                "title": "Consultation note (Composition)",
            }},
        ],
    });
    if let Some(encounter) = &context.encounter {
        document["context"] = json!({"encounter": [{"reference": encounter}]});
    }
    document
}

/// The Composition a DocumentReference of [`document_reference`] carries.
pub fn embedded_composition(document_reference: &Value) -> Result<Value, Error> {
    let data = document_reference["content"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["attachment"]["contentType"] == FHIR_JSON)
        .and_then(|c| c["attachment"]["data"].as_str())
        .ok_or_else(|| Error::Fhir("the DocumentReference carries no Composition".into()))?;
    let bytes = BASE64
        .decode(data)
        .map_err(|e| Error::Fhir(format!("the embedded Composition is not base64: {e}")))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::Fhir(format!("the embedded Composition is not JSON: {e}")))
}

/// The clinician's signature: the `final` DocumentReference (its Composition `final`, with a
/// legal attester) and the Provenance of the signed version.
#[derive(Clone, Debug, PartialEq)]
pub struct Signed {
    /// The DocumentReference, docStatus `final`.
    pub document_reference: Value,
    /// Who signed which version, when.
    pub provenance: Value,
}

/// Signs a stored draft: `document_reference` as read from the store (with its `id`), `signer` a
/// Practitioner reference, `when` a FHIR instant, `version` the version the signed
/// DocumentReference will be stored as (`DocumentReference/ID/_history/VERSION` in the
/// Provenance).
pub fn sign(
    document_reference: &Value,
    signer: &str,
    when: &str,
    version: i64,
) -> Result<Signed, Error> {
    let id = document_reference
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::Fhir("the DocumentReference to sign has no id".into()))?;
    if document_reference.get("docStatus").and_then(Value::as_str) != Some("preliminary") {
        return Err(Error::Fhir(format!(
            "DocumentReference/{id} is not a preliminary draft"
        )));
    }
    let composition = finalised(&embedded_composition(document_reference)?, signer, when);
    let mut signed = document_reference.clone();
    if let Some(map) = signed.as_object_mut() {
        map.remove("meta");
    }
    signed["docStatus"] = json!("final");
    for content in signed["content"].as_array_mut().into_iter().flatten() {
        if content["attachment"]["contentType"] == FHIR_JSON {
            content["attachment"]["data"] = json!(BASE64.encode(composition.to_string()));
        }
    }
    Ok(Signed {
        document_reference: signed,
        provenance: provenance(
            &format!("DocumentReference/{id}/_history/{version}"),
            signer,
            when,
        ),
    })
}

/// Signs a Composition stored on its own: `composition` as read from the store (with its
/// `id`, status `preliminary`), `signer` a Practitioner reference, `when` a FHIR instant,
/// `version` the version the `final` Composition will be stored as. Returns the `final`
/// Composition (legal attester) and the Provenance of that version.
pub fn sign_composition(
    composition: &Value,
    signer: &str,
    when: &str,
    version: i64,
) -> Result<(Value, Value), Error> {
    let id = composition
        .get("id")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::Fhir("the Composition to sign has no id".into()))?;
    if composition.get("status").and_then(Value::as_str) != Some("preliminary") {
        return Err(Error::Fhir(format!(
            "Composition/{id} is not a preliminary draft"
        )));
    }
    let mut signed = finalised(composition, signer, when);
    if let Some(map) = signed.as_object_mut() {
        map.remove("meta");
    }
    let target = format!("Composition/{id}/_history/{version}");
    Ok((signed, provenance(&target, signer, when)))
}

/// The Composition as signed: `final`, titled without "(draft)", with `signer` as legal
/// attester.
fn finalised(composition: &Value, signer: &str, when: &str) -> Value {
    let mut signed = composition.clone();
    signed["status"] = json!("final");
    signed["title"] = json!("Consultation note");
    signed["attester"] = json!([{"mode": "legal", "time": when, "party": {"reference": signer}}]);
    signed
}

/// The Provenance of `signer` verifying and signing the version `target` at `when`.
fn provenance(target: &str, signer: &str, when: &str) -> Value {
    json!({
        "resourceType": "Provenance",
        "target": [{"reference": target}],
        "recorded": when,
        "activity": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation",
            "code": "UPDATE",
            "display": "revise",
        }]},
        "agent": [{
            "type": {"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
                "code": "verifier",
                "display": "Verifier",
            }]},
            "who": {"reference": signer},
        }],
        "signature": [{
            "type": [{
                "system": "urn:iso-astm:E1762-95:2013",
                "code": "1.2.840.10065.1.12.1.1",
                "display": "Author's Signature",
            }],
            "when": when,
            "who": {"reference": signer},
        }],
    })
}

fn note_type() -> Value {
    json!({"coding": [{"system": LOINC, "code": NOTE_TYPE.0, "display": NOTE_TYPE.1}]})
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::draft::{DraftSection, Statement};
    use crate::section::Section;

    fn draft() -> Draft {
        Draft {
            sections: vec![DraftSection {
                section: Section::ReviewOfSystems,
                title: Section::ReviewOfSystems.heading(),
                statements: vec![Statement {
                    text: "The patient denies chest pain & fever.".into(),
                    sources: vec![0, 1],
                }],
            }],
            flags: vec![],
        }
    }

    fn context() -> NoteContext {
        NoteContext {
            patient: "Patient/p1".into(),
            author: "Practitioner/d1".into(),
            date: "2026-12-06T09:00:00Z".into(),
            encounter: Some("Encounter/visit-1".into()),
        }
    }

    #[test]
    fn sections_carry_loinc_codes_and_escaped_text() {
        let c = composition(&draft(), &context());
        assert_eq!(c["status"], "preliminary");
        assert_eq!(c["encounter"]["reference"], "Encounter/visit-1");
        let d = document_reference(&draft(), &context());
        assert_eq!(
            d["context"]["encounter"][0]["reference"],
            "Encounter/visit-1"
        );
        assert_eq!(c["section"][0]["code"]["coding"][0]["code"], "10187-3");
        assert!(
            c["section"][0]["text"]["div"]
                .as_str()
                .unwrap()
                .contains("&amp;")
        );
    }

    #[test]
    fn signing_finalises_and_records_provenance() {
        let mut d = document_reference(&draft(), &context());
        assert_eq!(
            embedded_composition(&d).unwrap(),
            composition(&draft(), &context())
        );
        d["id"] = json!("n1");
        let signed = sign(&d, "Practitioner/d1", "2026-12-06T10:00:00Z", 2).unwrap();
        assert_eq!(signed.document_reference["docStatus"], "final");
        let c = embedded_composition(&signed.document_reference).unwrap();
        assert_eq!(c["status"], "final");
        assert_eq!(c["attester"][0]["party"]["reference"], "Practitioner/d1");
        assert_eq!(
            signed.provenance["target"][0]["reference"],
            "DocumentReference/n1/_history/2"
        );
        assert!(
            sign(
                &signed.document_reference,
                "Practitioner/d1",
                "2026-12-06T10:00:00Z",
                3
            )
            .is_err()
        );
    }
}
