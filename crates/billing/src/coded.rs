//! The hospital's own coding as training labels: each note its coders coded (the
//! `DocumentReference` of an encounter that an active `Claim` bills) is one training document,
//! the Claim's diagnosis and procedure codes its labels. The notes come through the text gate
//! (de-identified, consent applied); they and their codes stay on the node, only trained
//! weights leave.
//!
//! [`case_bundle`] writes a CodiEsp case into an EHR the same way (patient, encounter, note and
//! the coders' Claim), so simulated hospitals hold their share of the corpus as FHIR.

use std::collections::{BTreeMap, BTreeSet};

use base64::Engine as _;
use serde_json::{Value, json};

use crate::Error;
use crate::claim::{Decision, Encounter, FeeSchedule, ReviewedCode, claim, system_uri};
use crate::corpus::{CodeSystem, Split};

/// A de-identified note and the codes the hospital's coders gave its encounter.
#[derive(Clone, Debug, PartialEq)]
pub struct CodedNote {
    /// The patient's keyed pseudonym.
    pub pseudonym: String,
    /// The de-identified text.
    pub text: String,
    /// Its codes, sorted and distinct.
    pub codes: Vec<Code>,
}

/// A code and its system.
type Code = (CodeSystem, String);

/// The codes of an active Claim, by the encounters its items name.
fn claim_codes(claim: &Value) -> Option<(Vec<String>, Vec<Code>)> {
    if claim["status"].as_str() != Some("active") {
        return None;
    }
    let items = claim["item"].as_array().into_iter().flatten();
    let encounters: BTreeSet<String> = items
        .flat_map(|item| item["encounter"].as_array().into_iter().flatten())
        .filter_map(|e| e["reference"].as_str().map(str::to_string))
        .collect();
    let mut codes = Vec::new();
    for (system, list, concept) in [
        (
            CodeSystem::Diagnosis,
            "diagnosis",
            "diagnosisCodeableConcept",
        ),
        (
            CodeSystem::Procedure,
            "procedure",
            "procedureCodeableConcept",
        ),
    ] {
        let entries = claim[list].as_array().into_iter().flatten();
        for coding in entries.flat_map(|e| e[concept]["coding"].as_array().into_iter().flatten()) {
            if coding["system"].as_str() == Some(system_uri(system))
                && let Some(code) = coding["code"].as_str()
            {
                codes.push((system, code.to_uppercase()));
            }
        }
    }
    Some((encounters.into_iter().collect(), codes))
}

/// The notes of `dataset` (the text gate's output over `store`) whose encounter an active
/// Claim of `store` codes, with that Claim's codes (several Claims of one encounter: all their
/// codes). Notes of uncoded encounters, transcripts and Composition sections are left out.
///
/// # Errors
/// The store's.
pub async fn coded_notes(
    store: &ehr::Store,
    dataset: &ehr::gate::TextDataset,
) -> Result<Vec<CodedNote>, Error> {
    let mut by_encounter: BTreeMap<String, BTreeSet<Code>> = BTreeMap::new();
    for claim in ehr::gate::all_resources(store, "Claim").await? {
        if let Some((encounters, codes)) = claim_codes(&claim) {
            for encounter in encounters {
                by_encounter
                    .entry(encounter)
                    .or_default()
                    .extend(codes.iter().cloned());
            }
        }
    }
    Ok(dataset
        .documents
        .iter()
        .filter(|d| d.kind == ehr::gate::TextKind::Note)
        .filter_map(|d| {
            let codes = by_encounter.get(d.encounter.as_ref()?)?;
            Some(CodedNote {
                pseudonym: d.pseudonym.clone(),
                text: d.text.clone(),
                codes: codes.iter().cloned().collect(),
            })
        })
        .filter(|n| !n.codes.is_empty())
        .collect())
}

/// A FHIR transaction Bundle holding CodiEsp case `index` of `split` as a hospital would: a
/// patient (no name: the case reports carry none), the encounter, the case text as its note
/// and the coders' Claim with the case's gold codes (accepted), so [`coded_notes`] reads them
/// back as labels. Ids are derived from the case id.
///
/// # Errors
/// `index` out of range.
pub fn case_bundle(split: &Split, index: usize, date: &str) -> Result<Value, Error> {
    let case = split.cases.get(index).ok_or_else(|| {
        Error::Model(format!(
            "case {index} of a split of {} cases",
            split.cases.len()
        ))
    })?;
    let id = format!("codiesp-{}", case.id.to_lowercase().replace('_', "-"));
    let reference = |kind: &str| format!("{kind}/{id}");
    let encounter = Encounter {
        patient: reference("Patient"),
        encounter: reference("Encounter"),
        provider: "Organization/coding-hospital".into(),
        coverage: reference("Coverage"),
        document: reference("DocumentReference"),
        coder: "Practitioner/coder".into(),
        date: date.to_string(),
    };
    let codes: Vec<ReviewedCode> = CodeSystem::ALL
        .into_iter()
        .flat_map(|system| {
            let codes = split.codes(system).get(&case.id).cloned();
            codes.into_iter().flatten().map(move |code| ReviewedCode {
                system,
                code: code.to_uppercase(),
                display: None,
                evidence: Vec::new(),
                decision: Decision::Accepted,
            })
        })
        .collect();
    let fees = FeeSchedule {
        currency: "EUR".into(),
        fees: BTreeMap::new(),
        default: 0.0,
    };
    let mut claim = claim(&encounter, &codes, &fees);
    claim["id"] = json!(id);
    let text = base64::engine::general_purpose::STANDARD.encode(case.text.as_bytes());
    let resources = [
        json!({"resourceType": "Patient", "id": id}),
        json!({"resourceType": "Organization", "id": "coding-hospital", "name": "Coding hospital"}),
        json!({"resourceType": "Practitioner", "id": "coder"}),
        json!({
            "resourceType": "Coverage", "id": id, "status": "active",
            "beneficiary": {"reference": encounter.patient},
            "payor": [{"reference": encounter.provider}]
        }),
        json!({
            "resourceType": "Encounter", "id": id, "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
            "subject": {"reference": encounter.patient},
            "period": {"start": date, "end": date}
        }),
        json!({
            "resourceType": "DocumentReference", "id": id, "status": "current",
            "subject": {"reference": encounter.patient}, "date": date,
            "content": [{"attachment": {"contentType": "text/plain; charset=utf-8", "data": text}}],
            "context": {"encounter": [{"reference": encounter.encounter}]}
        }),
        claim,
    ];
    Ok(ehr::bundle::put_transaction(resources))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_claim_gives_its_codes_to_the_encounters_it_bills() {
        let claim = json!({
            "status": "active",
            "item": [{"encounter": [{"reference": "Encounter/e1"}]},
                     {"encounter": [{"reference": "Encounter/e1"}]}],
            "diagnosis": [{"diagnosisCodeableConcept": {"coding": [
                {"system": system_uri(CodeSystem::Diagnosis), "code": "i10"},
                {"system": "http://snomed.info/sct", "code": "38341003"}]}}],
            "procedure": [{"procedureCodeableConcept": {"coding": [
                {"system": system_uri(CodeSystem::Procedure), "code": "0DB"}]}}]
        });
        let (encounters, codes) = claim_codes(&claim).unwrap();
        assert_eq!(encounters, ["Encounter/e1"]);
        assert_eq!(
            codes,
            [
                (CodeSystem::Diagnosis, "I10".to_string()),
                (CodeSystem::Procedure, "0DB".to_string())
            ]
        );
        let mut cancelled = claim.clone();
        cancelled["status"] = json!("cancelled");
        assert!(claim_codes(&cancelled).is_none());
    }
}
