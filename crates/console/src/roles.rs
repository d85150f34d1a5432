//! The people who use the console, and what each may open.

use serde::{Deserialize, Serialize};

/// A console user's role.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Reads charts, dictates and signs notes.
    Clinician,
    /// Reviews and validates billing codes.
    Billing,
    /// The hospital's data protection officer: approves plans, watches
    /// privacy budgets and what left the hospital.
    Dpo,
    /// The federation's data scientist: follows plans and rounds.
    DataScientist,
    /// An external auditor: checks the ledger.
    Auditor,
}

impl Role {
    /// Every role, in the order the console lists them.
    pub const ALL: [Role; 5] = [
        Role::Clinician,
        Role::Billing,
        Role::Dpo,
        Role::DataScientist,
        Role::Auditor,
    ];

    /// The name used in the users file and in URLs.
    pub fn name(self) -> &'static str {
        match self {
            Role::Clinician => "clinician",
            Role::Billing => "billing",
            Role::Dpo => "dpo",
            Role::DataScientist => "data-scientist",
            Role::Auditor => "auditor",
        }
    }

    /// The name shown to people.
    pub fn label(self) -> &'static str {
        match self {
            Role::Clinician => "Clinician",
            Role::Billing => "Billing officer",
            Role::Dpo => "Data protection officer",
            Role::DataScientist => "Data scientist",
            Role::Auditor => "Auditor",
        }
    }

    /// The SMART-style scopes of the hospital's FHIR API that the role's
    /// pages use (space-separated, as in a token request).
    pub fn fhir_scopes(self) -> &'static str {
        match self {
            Role::Clinician => {
                "user/Patient.read user/Condition.read user/MedicationRequest.read \
                 user/AllergyIntolerance.read user/Encounter.read user/Observation.read \
                 user/DocumentReference.* user/ImagingStudy.read"
            }
            Role::Billing => {
                "user/Patient.read user/Encounter.read user/Condition.read \
                 user/Procedure.read user/DocumentReference.read user/Claim.*"
            }
            Role::Dpo => "user/Patient.read user/Consent.* user/AuditEvent.read",
            Role::DataScientist => "",
            Role::Auditor => "user/AuditEvent.read",
        }
    }
}

/// Roles that see what left the hospital (the node's disclosures log).
pub const DISCLOSURES: &[Role] = &[Role::Dpo, Role::Auditor];

/// Roles that decide on plans and edit the node's allow-list.
pub const APPROVALS: &[Role] = &[Role::Dpo];

/// Roles that see the federation's plans, rounds and privacy budgets.
pub const FEDERATION: &[Role] = &[Role::Dpo, Role::DataScientist, Role::Auditor];

/// Roles that run the whole-log audit.
pub const AUDIT: &[Role] = &[Role::Auditor, Role::Dpo];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_serde() {
        for role in Role::ALL {
            let text = serde_json::to_string(&role).unwrap();
            assert_eq!(text, format!("\"{}\"", role.name()));
            assert_eq!(serde_json::from_str::<Role>(&text).unwrap(), role);
        }
    }

    #[test]
    fn data_scientists_read_no_patient_data() {
        assert!(Role::DataScientist.fhir_scopes().is_empty());
        assert!(!Role::Auditor.fhir_scopes().contains("Patient"));
    }
}
