//! Free text through the gate: every note that leaves for training
//! (DocumentReference attachments, dictation transcripts, Composition
//! sections) is de-identified by `deid::text` with the patient's own record
//! as context (names, birth date, identifiers, address, telecom, contacts),
//! dates moved by the gate's per-patient shift; patients whose Consent
//! denies the use are left out. Only pseudonyms, redacted text and counts
//! leave: how many documents, how many spans of each category removed. The
//! read is audited like every other use of the gate.

use std::collections::{BTreeMap, HashMap};

use base64::Engine as _;
use deid::text::{Context, Deidentifier, Label, Lang, Replacement, TextOptions};
use serde_json::Value as Json;

use super::{
    PseudonymKey, Purpose, all_matching, denying_patient, parse, record_read, subject_patient,
};
use crate::error::{Error, Result};
use crate::store::Store;

/// One de-identified document.
#[derive(Clone, Debug, PartialEq)]
pub struct TextDocument {
    /// The patient's keyed pseudonym.
    pub pseudonym: String,
    /// `DocumentReference` or `Composition`.
    pub resource_type: String,
    /// The redacted text.
    pub text: String,
}

/// The de-identified notes of a node and what was removed from them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TextDataset {
    /// Documents, patients in registration order.
    pub documents: Vec<TextDocument>,
    /// Patients left out because their Consent denies the use.
    pub excluded: usize,
    /// Spans removed, per category.
    pub removed: BTreeMap<Label, usize>,
}

/// The de-identified free text of every patient of `store` whose Consent
/// allows `purposes`, at time `now`. Surrogates are keyed by `key` (names
/// consistent within a patient, dates moved by [`PseudonymKey::date_shift_days`]).
pub async fn build_text_dataset(
    store: &Store,
    key: &PseudonymKey,
    lang: Lang,
    purposes: &[Purpose],
    now: i64,
) -> Result<TextDataset> {
    let secret = deid::DeidKey::new(key.pseudonym("\0cohort-deid-text").as_bytes())
        .map_err(|e| Error::Corrupt(e.to_string()))?;
    let deid = Deidentifier::new(
        lang,
        Some(secret),
        TextOptions {
            replacement: Replacement::Surrogates,
        },
    )
    .map_err(|e| Error::Corrupt(e.to_string()))?;
    let mut denied = std::collections::HashSet::new();
    for consent in all_matching(store, "Consent", &[("status".into(), "active".into())]).await? {
        if let Some(patient) = denying_patient(&parse(&consent)?, purposes, now) {
            denied.insert(patient);
        }
    }
    let mut texts: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for resource_type in ["DocumentReference", "Composition"] {
        let versions = match all_matching(store, resource_type, &[]).await {
            // A store that does not keep this type has none of it.
            Err(Error::UnknownType(_)) => continue,
            other => other?,
        };
        for version in versions {
            let resource = parse(&version)?;
            if let Some(patient) = subject_patient(&resource) {
                for text in texts_of(&resource) {
                    texts
                        .entry(patient.clone())
                        .or_default()
                        .push((resource_type.to_string(), text));
                }
            }
        }
    }
    let mut dataset = TextDataset::default();
    let mut used = Vec::new();
    for patient in store.patients_in_registration_order().await? {
        let Some(notes) = texts.remove(&patient.id) else {
            continue;
        };
        if denied.contains(&patient.id) {
            dataset.excluded += 1;
            continue;
        }
        let mut context = context_of(&parse(&patient)?);
        context.patient_id = Some(patient.id.clone());
        context.date_shift_days = Some(key.date_shift_days(&patient.id));
        let pseudonym = key.pseudonym(&patient.id);
        used.push(patient.id.clone());
        for (resource_type, text) in notes {
            let redaction = deid.redact(&text, &context);
            for (label, n) in redaction.counts() {
                *dataset.removed.entry(label).or_insert(0) += n;
            }
            dataset.documents.push(TextDocument {
                pseudonym: pseudonym.clone(),
                resource_type,
                text: redaction.text,
            });
        }
    }
    let description = format!(
        "de-identified text: {} documents of {} patients, {} spans removed, {} patients excluded by consent",
        dataset.documents.len(),
        used.len(),
        dataset.removed.values().sum::<usize>(),
        dataset.excluded
    );
    record_read(store, used, description, now).await?;
    Ok(dataset)
}

/// The texts a resource carries: `text/*` attachments of a DocumentReference
/// (base64 `data`), the narrative of each Composition section.
fn texts_of(resource: &Json) -> Vec<String> {
    let mut out = Vec::new();
    for content in resource
        .get("content")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        let attachment = &content["attachment"];
        let text_type = attachment["contentType"]
            .as_str()
            .is_some_and(|t| t.starts_with("text/"));
        if let (true, Some(data)) = (text_type, attachment["data"].as_str())
            && let Ok(bytes) = base64::engine::general_purpose::STANDARD.decode(data)
        {
            out.push(String::from_utf8_lossy(&bytes).into_owned());
        }
    }
    let mut sections: Vec<&Json> = resource
        .get("section")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .collect();
    while let Some(section) = sections.pop() {
        if let Some(div) = section["text"]["div"].as_str() {
            out.push(strip_tags(div));
        }
        sections.extend(
            section
                .get("section")
                .and_then(Json::as_array)
                .into_iter()
                .flatten(),
        );
    }
    out
}

/// XHTML narrative as plain text: tags become spaces, the five XML entities decoded.
fn strip_tags(div: &str) -> String {
    let mut out = String::with_capacity(div.len());
    let mut in_tag = false;
    for c in div.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// What the Patient resource says that notes may repeat.
fn context_of(patient: &Json) -> Context {
    let strings = |v: &Json| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s.as_str().map(str::to_string))
            .collect()
    };
    let human_name = |name: &Json| -> String {
        let mut parts = strings(&name["given"]);
        parts.extend(name["family"].as_str().map(str::to_string));
        parts.extend(name["text"].as_str().map(str::to_string));
        parts.join(" ")
    };
    let array = |v: &Json| -> Vec<Json> { v.as_array().cloned().unwrap_or_default() };
    let mut context = Context {
        birth_date: patient["birthDate"].as_str().map(str::to_string),
        ..Context::default()
    };
    context
        .names
        .extend(array(&patient["name"]).iter().map(human_name));
    for contact in array(&patient["contact"]) {
        context.names.push(human_name(&contact["name"]));
        context.telecom.extend(
            array(&contact["telecom"])
                .iter()
                .filter_map(|t| t["value"].as_str().map(str::to_string)),
        );
    }
    context.identifiers.extend(
        array(&patient["identifier"])
            .iter()
            .filter_map(|i| i["value"].as_str().map(str::to_string)),
    );
    context.telecom.extend(
        array(&patient["telecom"])
            .iter()
            .filter_map(|t| t["value"].as_str().map(str::to_string)),
    );
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

    #[test]
    fn narrative_loses_its_tags() {
        assert_eq!(
            strip_tags("<div><p>Mme X &amp; fils</p></div>").trim(),
            "Mme X & fils"
        );
    }
}
