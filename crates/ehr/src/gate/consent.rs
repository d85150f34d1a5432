//! Which patients refused research use of their data: an active FHIR Consent whose provision
//! denies a research purpose (or, with scope `research`, denies everything).

use serde_json::Value;

use crate::datetime;

/// A purpose of use, `(system, code)`.
pub type Purpose = (String, String);

const ACT_REASON: &str = "http://terminology.hl7.org/CodeSystem/v3-ActReason";

/// The purposes that training a model is: research of several kinds and ML training
/// (HL7 v3 ActReason).
pub fn default_research_purposes() -> Vec<Purpose> {
    [
        "HRESCH",
        "BIORCH",
        "CLINTRL",
        "DSRCH",
        "PATRCH",
        "MLTRAINING",
    ]
    .iter()
    .map(|c| (ACT_REASON.to_string(), c.to_string()))
    .collect()
}

/// The id of the patient whose `consent` denies any of `purposes` at `now`, if it does.
///
/// Counts: `status` active; the consent's period (if any) holds `now`; and either the base
/// provision is `deny` and its purposes (if listed) include one of `purposes`, with scope
/// `research` when none are listed, or a nested provision of type `deny` lists one of them.
pub fn denying_patient(consent: &Value, purposes: &[Purpose], now: i64) -> Option<String> {
    if consent.get("status").and_then(Value::as_str) != Some("active") {
        return None;
    }
    let patient = consent
        .get("patient")
        .and_then(|p| p.get("reference"))
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("Patient/"))?;
    let provision = consent.get("provision")?;
    if !in_period(provision, now) {
        return None;
    }
    let research_scope = consent
        .get("scope")
        .and_then(|s| s.get("coding"))
        .and_then(Value::as_array)
        .is_some_and(|codings| {
            codings
                .iter()
                .any(|c| c.get("code").and_then(Value::as_str) == Some("research"))
        });
    let denies = |p: &Value, base: bool| -> bool {
        if p.get("type").and_then(Value::as_str) != Some("deny") || !in_period(p, now) {
            return false;
        }
        match p.get("purpose").and_then(Value::as_array) {
            Some(listed) => listed.iter().any(|c| matches_purpose(c, purposes)),
            None => base && research_scope,
        }
    };
    let nested = provision
        .get("provision")
        .and_then(Value::as_array)
        .is_some_and(|ps| ps.iter().any(|p| denies(p, false)));
    (denies(provision, true) || nested).then(|| patient.to_string())
}

fn matches_purpose(coding: &Value, purposes: &[Purpose]) -> bool {
    let field = |k: &str| coding.get(k).and_then(Value::as_str).unwrap_or_default();
    purposes
        .iter()
        .any(|(s, c)| field("system") == s && field("code") == c)
}

fn in_period(provision: &Value, now: i64) -> bool {
    let Some(period) = provision.get("period") else {
        return true;
    };
    let bound = |k: &str| {
        period
            .get(k)
            .and_then(Value::as_str)
            .and_then(|t| datetime::parse_range(t).ok())
    };
    bound("start").is_none_or(|s| s.start <= now) && bound("end").is_none_or(|e| now < e.end)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn consent(status: &str, provision: Value) -> Value {
        json!({"resourceType": "Consent", "status": status,
            "scope": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "research"}]},
            "category": [{"coding": [{"system": "http://loinc.org", "code": "57016-8"}]}],
            "patient": {"reference": "Patient/p1"}, "provision": provision})
    }

    fn ml() -> Value {
        json!({"system": ACT_REASON, "code": "MLTRAINING"})
    }

    #[test]
    fn active_research_denial_excludes_the_patient() {
        let purposes = default_research_purposes();
        let now = datetime::parse_range("2026-01-01").unwrap().start;
        assert_eq!(
            denying_patient(&consent("active", json!({"type": "deny"})), &purposes, now).as_deref(),
            Some("p1")
        );
        assert_eq!(
            denying_patient(
                &consent("active", json!({"type": "deny", "purpose": [ml()]})),
                &purposes,
                now
            )
            .as_deref(),
            Some("p1")
        );
        let nested = json!({"type": "permit", "provision": [{"type": "deny", "purpose": [ml()]}]});
        assert_eq!(
            denying_patient(&consent("active", nested), &purposes, now).as_deref(),
            Some("p1")
        );
    }

    #[test]
    fn inactive_permitting_expired_or_unrelated_consents_do_not_exclude() {
        let purposes = default_research_purposes();
        let now = datetime::parse_range("2026-01-01").unwrap().start;
        assert_eq!(
            denying_patient(
                &consent("inactive", json!({"type": "deny"})),
                &purposes,
                now
            ),
            None
        );
        assert_eq!(
            denying_patient(
                &consent("active", json!({"type": "permit"})),
                &purposes,
                now
            ),
            None
        );
        let expired = json!({"type": "deny", "period": {"end": "2025-06-01"}});
        assert_eq!(
            denying_patient(&consent("active", expired), &purposes, now),
            None
        );
        let other = json!({"type": "deny", "purpose": [{"system": ACT_REASON, "code": "HMARKT"}]});
        assert_eq!(
            denying_patient(&consent("active", other), &purposes, now),
            None
        );
    }
}
