//! The claim: a FHIR R4 `Claim` for an encounter's accepted codes (diagnosis and procedure
//! sequences, one item per coded act priced from a fee schedule, the evidence as supporting
//! information), a `ChargeItem` per act, and a `Provenance` per coder decision — which also
//! gives back the accepted codes as new training labels.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::corpus::{CodeSystem, Span};

/// FHIR system URI of a code system.
pub fn system_uri(system: CodeSystem) -> &'static str {
    match system {
        CodeSystem::Diagnosis => "http://hl7.org/fhir/sid/icd-10-cm",
        CodeSystem::Procedure => "http://www.cms.gov/Medicare/Coding/ICD10",
    }
}

/// Extension URL carrying an evidence span (`start-end`, characters) on supporting information.
pub const EVIDENCE_SPAN_URL: &str = "https://cohort.dev/fhir/StructureDefinition/evidence-span";

/// Prices per code; codes without a fee are billed at `default`.
#[derive(Clone, Debug, PartialEq)]
pub struct FeeSchedule {
    /// ISO 4217 currency, e.g. `EUR`.
    pub currency: String,
    /// Price per code (upper case, as coded).
    pub fees: BTreeMap<String, f64>,
    /// Price of a code not in `fees`.
    pub default: f64,
}

/// A fee schedule line that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("fee schedule line {line}: {message}")]
pub struct FeeError {
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl FeeSchedule {
    /// Reads `code,amount` lines (blank lines and `#` comments skipped); amounts finite, ≥ 0.
    pub fn parse(currency: &str, default: f64, text: &str) -> Result<Self, FeeError> {
        let mut fees = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let error = |message: String| FeeError {
                line: i + 1,
                message,
            };
            let (code, amount) = line
                .split_once(',')
                .ok_or_else(|| error("expected code,amount".into()))?;
            let amount: f64 = amount
                .trim()
                .parse()
                .map_err(|_| error(format!("{amount:?} is not a number")))?;
            if !amount.is_finite() || amount < 0.0 {
                return Err(error(format!("amount {amount} must be finite and >= 0")));
            }
            fees.insert(code.trim().to_uppercase(), amount);
        }
        Ok(Self {
            currency: currency.into(),
            fees,
            default,
        })
    }

    /// The price of `code`.
    pub fn price(&self, code: &str) -> f64 {
        self.fees
            .get(&code.to_uppercase())
            .copied()
            .unwrap_or(self.default)
    }

    fn money(&self, value: f64) -> Value {
        json!({"value": (value * 100.0).round() / 100.0, "currency": self.currency})
    }
}

/// The coder's decision on one suggested code.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// The code goes on the claim.
    Accepted,
    /// The code was wrong.
    Rejected,
}

/// A suggested code after the coder's review.
#[derive(Clone, Debug, PartialEq)]
pub struct ReviewedCode {
    /// Code system.
    pub system: CodeSystem,
    /// The code, as it goes on the claim.
    pub code: String,
    /// Description, when a code table gave one.
    pub display: Option<String>,
    /// Where the note supports it.
    pub evidence: Vec<Span>,
    /// Accepted or rejected.
    pub decision: Decision,
}

/// Who and what the claim is about: FHIR references (`Patient/1`, ...) and a timestamp.
#[derive(Clone, Debug, PartialEq)]
pub struct Encounter {
    /// The patient.
    pub patient: String,
    /// The encounter.
    pub encounter: String,
    /// The billing organisation.
    pub provider: String,
    /// The patient's coverage.
    pub coverage: String,
    /// The coded note (a DocumentReference) the evidence spans point into.
    pub document: String,
    /// The coder who decided (a Practitioner).
    pub coder: String,
    /// When: FHIR dateTime.
    pub date: String,
}

fn coding(system: CodeSystem, code: &str, display: Option<&str>) -> Value {
    let mut coding = json!({"system": system_uri(system), "code": code});
    if let Some(display) = display {
        coding["display"] = display.into();
    }
    json!({"coding": [coding]})
}

/// The `Claim` for the accepted codes of `codes` (in their order: the first accepted
/// diagnosis is principal), priced from `fees`.
pub fn claim(encounter: &Encounter, codes: &[ReviewedCode], fees: &FeeSchedule) -> Value {
    let accepted: Vec<&ReviewedCode> = codes
        .iter()
        .filter(|c| c.decision == Decision::Accepted)
        .collect();
    let mut diagnoses = Vec::new();
    let mut procedures = Vec::new();
    let mut items = Vec::new();
    let mut supporting = Vec::new();
    let mut total = 0.0;
    for code in &accepted {
        let concept = coding(code.system, &code.code, code.display.as_deref());
        let sequence = match code.system {
            CodeSystem::Diagnosis => {
                let sequence = diagnoses.len() + 1;
                let mut entry = json!({"sequence": sequence, "diagnosisCodeableConcept": concept});
                if sequence == 1 {
                    entry["type"] = json!([{"coding": [{
                        "system": "http://terminology.hl7.org/CodeSystem/ex-diagnosistype",
                        "code": "principal"
                    }]}]);
                }
                diagnoses.push(entry);
                sequence
            }
            CodeSystem::Procedure => {
                let sequence = procedures.len() + 1;
                procedures.push(json!({
                    "sequence": sequence, "date": encounter.date, "procedureCodeableConcept": concept
                }));
                sequence
            }
        };
        let mut evidence_sequences = Vec::new();
        for span in &code.evidence {
            let info = supporting.len() + 1;
            evidence_sequences.push(info);
            supporting.push(json!({
                "sequence": info,
                "category": {"coding": [{
                    "system": "http://terminology.hl7.org/CodeSystem/claiminformationcategory",
                    "code": "attachment"
                }]},
                "code": coding(code.system, &code.code, None),
                "valueReference": {
                    "reference": encounter.document,
                    "extension": [{"url": EVIDENCE_SPAN_URL,
                                   "valueString": format!("{}-{}", span.start, span.end)}]
                }
            }));
        }
        let price = fees.price(&code.code);
        total += price;
        let mut item = json!({
            "sequence": items.len() + 1,
            "productOrService": coding(code.system, &code.code, code.display.as_deref()),
            "servicedDate": encounter.date.split('T').next().unwrap_or_default(),
            "unitPrice": fees.money(price),
            "net": fees.money(price),
            "encounter": [{"reference": encounter.encounter}],
        });
        let link = match code.system {
            CodeSystem::Diagnosis => "diagnosisSequence",
            CodeSystem::Procedure => "procedureSequence",
        };
        item[link] = json!([sequence]);
        if !evidence_sequences.is_empty() {
            item["informationSequence"] = json!(evidence_sequences);
        }
        items.push(item);
    }
    let mut claim = json!({
        "resourceType": "Claim",
        "status": "active",
        "type": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/claim-type", "code": "institutional"
        }]},
        "use": "claim",
        "patient": {"reference": encounter.patient},
        "created": encounter.date,
        "provider": {"reference": encounter.provider},
        "priority": {"coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/processpriority", "code": "normal"
        }]},
        "insurance": [{"sequence": 1, "focal": true,
                       "coverage": {"reference": encounter.coverage}}],
        "total": fees.money(total),
    });
    for (field, list) in [
        ("diagnosis", diagnoses),
        ("procedure", procedures),
        ("supportingInfo", supporting),
        ("item", items),
    ] {
        if !list.is_empty() {
            claim[field] = Value::Array(list);
        }
    }
    claim
}

/// One billable `ChargeItem` per accepted procedure of `codes`.
pub fn charge_items(
    encounter: &Encounter,
    codes: &[ReviewedCode],
    fees: &FeeSchedule,
) -> Vec<Value> {
    codes
        .iter()
        .filter(|c| c.decision == Decision::Accepted && c.system == CodeSystem::Procedure)
        .map(|c| {
            json!({
                "resourceType": "ChargeItem",
                "status": "billable",
                "code": coding(c.system, &c.code, c.display.as_deref()),
                "subject": {"reference": encounter.patient},
                "context": {"reference": encounter.encounter},
                "occurrenceDateTime": encounter.date,
                "quantity": {"value": 1},
                "priceOverride": fees.money(fees.price(&c.code)),
                "supportingInformation": [{"reference": encounter.document}],
            })
        })
        .collect()
}

/// Activity code system of the coder's decisions in [`decision_provenance`].
pub const DECISION_SYSTEM: &str = "https://cohort.dev/fhir/CodeSystem/coding-decision";

/// A `Provenance` recording the coder's decision on one suggested code: target the encounter,
/// agent the coder, entity the note, the code and decision in `activity`.
pub fn decision_provenance(encounter: &Encounter, code: &ReviewedCode) -> Value {
    let decision = match code.decision {
        Decision::Accepted => "accepted",
        Decision::Rejected => "rejected",
    };
    json!({
        "resourceType": "Provenance",
        "target": [{"reference": encounter.encounter}],
        "recorded": encounter.date,
        "activity": {
            "coding": [
                {"system": DECISION_SYSTEM, "code": decision},
                {"system": system_uri(code.system), "code": code.code}
            ]
        },
        "agent": [{"who": {"reference": encounter.coder}}],
        "entity": [{"role": "source", "what": {"reference": encounter.document}}],
    })
}

/// The codes that decision `Provenance`s (from [`decision_provenance`]) accepted, per
/// encounter: new training labels.
pub fn accepted_labels(provenances: &[Value]) -> BTreeMap<String, Vec<(CodeSystem, String)>> {
    let mut labels: BTreeMap<String, Vec<(CodeSystem, String)>> = BTreeMap::new();
    for p in provenances {
        let codings = p["activity"]["coding"].as_array().into_iter().flatten();
        let mut accepted = false;
        let mut code = None;
        for c in codings {
            let system = c["system"].as_str().unwrap_or_default();
            let value = c["code"].as_str().unwrap_or_default();
            if system == DECISION_SYSTEM {
                accepted = value == "accepted";
            }
            for s in CodeSystem::ALL {
                if system == system_uri(s) {
                    code = Some((s, value.to_string()));
                }
            }
        }
        if let (true, Some(code), Some(target)) =
            (accepted, code, p["target"][0]["reference"].as_str())
        {
            labels.entry(target.to_string()).or_default().push(code);
        }
    }
    labels
}
