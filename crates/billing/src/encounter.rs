//! The claim workflow on a node's EHR: read an encounter's note, suggest codes with their
//! evidence, apply the coder's decisions, and write the `Claim`, its `ChargeItem`s and one
//! `Provenance` per decision into the FHIR store (through `ehr`'s public store API only).

use serde_json::Value;

use crate::claim::{
    Decision, Encounter, FeeSchedule, ReviewedCode, charge_items, claim, decision_provenance,
};
use crate::corpus::CodeSystem;
use crate::{Coder, Error, Suggestion};

/// An encounter's references and its coded note, as read from the store.
#[derive(Clone, Debug, PartialEq)]
pub struct EncounterNote {
    /// `Encounter/<id>`.
    pub encounter: String,
    /// The encounter's subject (`Patient/<id>`).
    pub patient: String,
    /// The encounter's service provider (`Organization/<id>`), when it names one.
    pub provider: Option<String>,
    /// The note coded: `DocumentReference/<id>`.
    pub document: String,
    /// The note's text (evidence spans count characters of it).
    pub text: String,
}

fn reference(value: &Value) -> Option<String> {
    value["reference"].as_str().map(str::to_string)
}

/// The text of a `DocumentReference` ([`ehr::types::document_text`]).
pub fn note_text(document: &Value) -> Option<String> {
    ehr::types::document_text(document)
}

async fn search(
    store: &ehr::Store,
    kind: &str,
    param: &str,
    value: &str,
) -> Result<Vec<Value>, Error> {
    let request = ehr::search::SearchRequest::parse(kind, &[(param.into(), value.into())])?;
    let found = store.search(&request, None).await?;
    found
        .matches
        .iter()
        .filter_map(|v| v.content.as_deref())
        .map(|c| serde_json::from_str(c).map_err(Error::from))
        .collect()
}

/// Reads `Encounter/<id>` and its latest note: the `DocumentReference` whose
/// `context.encounter` is the encounter and that has text (see [`note_text`]), the latest by
/// `date` (then by id).
pub async fn read_encounter_note(store: &ehr::Store, id: &str) -> Result<EncounterNote, Error> {
    let encounter = store.read("Encounter", id).await?;
    let encounter: Value = serde_json::from_str(
        encounter
            .content
            .as_deref()
            .ok_or_else(|| Error::Model(format!("Encounter/{id} is deleted")))?,
    )?;
    let patient = reference(&encounter["subject"])
        .ok_or_else(|| Error::Model(format!("Encounter/{id} has no subject")))?;
    let mut notes: Vec<(String, String, String)> = search(
        store,
        "DocumentReference",
        "encounter",
        &format!("Encounter/{id}"),
    )
    .await?
    .iter()
    .filter_map(|d| {
        let text = note_text(d)?;
        let date = d["date"].as_str().unwrap_or_default().to_string();
        Some((date, d["id"].as_str()?.to_string(), text))
    })
    .collect();
    notes.sort();
    let (_, document, text) = notes.pop().ok_or_else(|| {
        Error::Model(format!(
            "Encounter/{id} has no DocumentReference with a text attachment"
        ))
    })?;
    Ok(EncounterNote {
        encounter: format!("Encounter/{id}"),
        patient,
        provider: reference(&encounter["serviceProvider"]),
        document: format!("DocumentReference/{document}"),
        text,
    })
}

/// The first `Coverage` whose beneficiary is `patient` (`Patient/<id>`), as a reference.
pub async fn find_coverage(store: &ehr::Store, patient: &str) -> Result<Option<String>, Error> {
    Ok(search(store, "Coverage", "beneficiary", patient)
        .await?
        .first()
        .and_then(|c| c["id"].as_str())
        .map(|id| format!("Coverage/{id}")))
}

/// The coder's decision on one code, as a decisions file lists it: a suggested code (its
/// system is then the suggestion's), or a code the coder adds, with its system.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CodeDecision {
    /// The code.
    pub code: String,
    /// Accepted or rejected.
    pub decision: Decision,
    /// Its system; needed only for a code that was not suggested.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<CodeSystem>,
}

/// The reviewed codes, in the order of `decisions` (the first accepted diagnosis is the
/// principal one): a decided code takes its system and evidence from its suggestion; a code
/// the coder adds needs a system and has no evidence. Suggestions without a decision are left
/// out. Errors on a code decided twice, or added without a system.
pub fn review(
    suggestions: &[Suggestion],
    decisions: &[CodeDecision],
) -> Result<Vec<ReviewedCode>, Error> {
    let mut reviewed: Vec<ReviewedCode> = Vec::with_capacity(decisions.len());
    for d in decisions {
        let code = d.code.trim().to_uppercase();
        if reviewed.iter().any(|r| r.code == code) {
            return Err(Error::Model(format!("{code} is decided twice")));
        }
        let suggested = suggestions
            .iter()
            .find(|s| s.code == code && d.system.is_none_or(|sys| s.system == Some(sys)));
        let (system, evidence) = match (suggested, d.system) {
            (Some(s), _) => (s.system.or(d.system), s.evidence.clone()),
            (None, system) => (system, Vec::new()),
        };
        let system = system.ok_or_else(|| {
            Error::Model(format!(
                "{code} was not suggested: give its system (diagnosis or procedure)"
            ))
        })?;
        reviewed.push(ReviewedCode {
            system,
            code,
            display: None,
            evidence,
            decision: d.decision,
        });
    }
    Ok(reviewed)
}

/// Suggests the `top` codes of each system for the note.
pub fn suggest_note(
    coder: &Coder,
    note: &EncounterNote,
    top: usize,
) -> Result<Vec<Suggestion>, Error> {
    let doc = coder.encode(&note.text);
    Ok(coder.suggest(&[&doc], top)?.pop().unwrap_or_default())
}

/// Ids of what [`write_claim`] stored.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct WrittenClaim {
    /// `Claim/<id>`.
    pub claim: String,
    /// `ChargeItem/<id>`, one per accepted procedure.
    pub charge_items: Vec<String>,
    /// `Provenance/<id>`, one per decision.
    pub provenances: Vec<String>,
}

/// The resources of a reviewed encounter: its `Claim`, `ChargeItem`s and decision
/// `Provenance`s (see [`crate::claim`]). Errors when no code was accepted.
pub fn claim_resources(
    encounter: &Encounter,
    reviewed: &[ReviewedCode],
    fees: &FeeSchedule,
) -> Result<(Value, Vec<Value>, Vec<Value>), Error> {
    if !reviewed.iter().any(|r| r.decision == Decision::Accepted) {
        return Err(Error::Model(
            "no code was accepted: nothing to claim".into(),
        ));
    }
    Ok((
        claim(encounter, reviewed, fees),
        charge_items(encounter, reviewed, fees),
        reviewed
            .iter()
            .map(|r| decision_provenance(encounter, r))
            .collect(),
    ))
}

/// Writes the resources of [`claim_resources`] into the store in one transaction.
pub async fn write_claim(
    store: &ehr::Store,
    encounter: &Encounter,
    reviewed: &[ReviewedCode],
    fees: &FeeSchedule,
) -> Result<WrittenClaim, Error> {
    let (claim, charges, provenances) = claim_resources(encounter, reviewed, fees)?;
    let mut tx = store.begin().await?;
    let claim = format!("Claim/{}", tx.create(claim).await?.id);
    let mut written = WrittenClaim {
        claim,
        charge_items: Vec::new(),
        provenances: Vec::new(),
    };
    for c in charges {
        written
            .charge_items
            .push(format!("ChargeItem/{}", tx.create(c).await?.id));
    }
    for p in provenances {
        written
            .provenances
            .push(format!("Provenance/{}", tx.create(p).await?.id));
    }
    tx.commit().await?;
    Ok(written)
}
