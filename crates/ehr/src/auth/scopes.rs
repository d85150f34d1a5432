//! SMART on FHIR scopes (v1 `.read`/`.write`/`.*` and v2 `.cruds`) and the decision they give.

use crate::error::{Error, Result};
use crate::types;

/// Whose data a scope reaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Context {
    /// One patient's compartment (the token's patient).
    Patient,
    /// What the user may see: everything on this server.
    User,
    /// A backend service: everything on this server.
    System,
}

/// An interaction to authorize.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interaction {
    /// Create.
    Create,
    /// Read, vread, instance history.
    Read,
    /// Update.
    Update,
    /// Delete.
    Delete,
    /// Search (and type or system history).
    Search,
}

impl Interaction {
    fn letter(self) -> char {
        match self {
            Interaction::Create => 'c',
            Interaction::Read => 'r',
            Interaction::Update => 'u',
            Interaction::Delete => 'd',
            Interaction::Search => 's',
        }
    }
}

/// One resource scope.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope {
    /// Its context.
    pub context: Context,
    /// The resource type, `None` for `*`.
    pub resource: Option<String>,
    /// The interactions it grants, as SMART v2 letters (`cruds`).
    pub grants: String,
}

impl Scope {
    /// Parses one resource scope; `Ok(None)` for scopes that are not about resources (`openid`,
    /// `launch`, `offline_access`, …).
    pub fn parse(text: &str) -> Result<Option<Scope>> {
        let Some((context, rest)) = text.split_once('/') else {
            return Ok(None);
        };
        let context = match context {
            "patient" => Context::Patient,
            "user" => Context::User,
            "system" => Context::System,
            _ => return Ok(None),
        };
        let bad = || Error::invalid(format!("scope {text:?} is not context/Type.permissions"));
        let (resource, permissions) = rest.split_once('.').ok_or_else(bad)?;
        let permissions = permissions.split('?').next().unwrap_or_default();
        let resource = match resource {
            "*" => None,
            t => Some(types::resource_type(t).map_err(|_| bad())?.to_string()),
        };
        let grants = match permissions {
            "read" => "rs".to_string(),
            "write" => "cud".to_string(),
            "*" => "cruds".to_string(),
            letters if !letters.is_empty() && is_ordered_subset(letters) => letters.to_string(),
            _ => return Err(bad()),
        };
        Ok(Some(Scope {
            context,
            resource,
            grants,
        }))
    }

    fn covers(&self, resource_type: &str, interaction: Interaction) -> bool {
        self.resource.as_deref().is_none_or(|r| r == resource_type)
            && self.grants.contains(interaction.letter())
    }
}

/// `cruds` letters in that order, none repeated.
fn is_ordered_subset(letters: &str) -> bool {
    let mut rest = "cruds".chars();
    letters.chars().all(|c| rest.by_ref().any(|r| r == c))
}

/// Parses a space-separated scope string.
pub fn parse_scopes(text: &str) -> Result<Vec<Scope>> {
    let mut scopes = Vec::new();
    for item in text.split_whitespace() {
        scopes.extend(Scope::parse(item)?);
    }
    Ok(scopes)
}

/// The authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The token's name (who: a person, an app or a system).
    pub name: String,
    /// Its resource scopes.
    pub scopes: Vec<Scope>,
    /// The patient its `patient/` scopes are about.
    pub patient: Option<String>,
}

/// What a principal may reach for one interaction on one type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Access {
    /// Every resource of the type.
    All,
    /// Only resources in this patient's compartment.
    Compartment(String),
}

impl Principal {
    /// Decides `interaction` on `resource_type`, or says which scope is missing.
    pub fn access(&self, resource_type: &str, interaction: Interaction) -> Result<Access> {
        let granted = |context: Context| {
            self.scopes
                .iter()
                .any(|s| s.context == context && s.covers(resource_type, interaction))
        };
        if granted(Context::System) || granted(Context::User) {
            return Ok(Access::All);
        }
        if granted(Context::Patient) {
            if resource_type == "AuditEvent" {
                // One event can name several patients: the access log is not any one
                // patient's record.
                return Err(Error::Forbidden(
                    "AuditEvents record accesses to every patient's data; patient/ scopes do not reach them (a user/ or system/ scope does)".into(),
                ));
            }
            return match (&self.patient, types::is_patient_data(resource_type)) {
                (Some(patient), true) => Ok(Access::Compartment(patient.clone())),
                (None, _) => Err(Error::Forbidden(format!(
                    "token {:?} has patient/ scopes but names no patient",
                    self.name
                ))),
                (Some(_), false) => Err(Error::Forbidden(format!(
                    "{resource_type} is not patient data, so patient/ scopes do not reach it"
                ))),
            };
        }
        Err(Error::Forbidden(format!(
            "token {:?} lacks a scope for {} on {resource_type} (e.g. user/{resource_type}.{})",
            self.name,
            match interaction {
                Interaction::Create => "create",
                Interaction::Read => "read",
                Interaction::Update => "update",
                Interaction::Delete => "delete",
                Interaction::Search => "search",
            },
            if matches!(interaction, Interaction::Read | Interaction::Search) {
                "read"
            } else {
                "write"
            }
        )))
    }

    /// Like [`Principal::access`], but only [`Access::All`] will do (history across patients,
    /// transactions, bulk export with `system_only`).
    pub fn require_all(
        &self,
        resource_type: &str,
        interaction: Interaction,
        system_only: bool,
    ) -> Result<()> {
        if system_only {
            let ok = self
                .scopes
                .iter()
                .any(|s| s.context == Context::System && s.covers(resource_type, interaction));
            return if ok {
                Ok(())
            } else {
                Err(Error::Forbidden(format!(
                    "bulk export needs a system/ scope that reads {resource_type} (e.g. system/*.read)"
                )))
            };
        }
        match self.access(resource_type, interaction)? {
            Access::All => Ok(()),
            Access::Compartment(_) => Err(Error::Forbidden(format!(
                "this interaction on {resource_type} spans patients; patient/ scopes do not allow it"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(scopes: &str, patient: Option<&str>) -> Principal {
        Principal {
            name: "t".into(),
            scopes: parse_scopes(scopes).unwrap(),
            patient: patient.map(str::to_string),
        }
    }

    #[test]
    fn v1_and_v2_scopes_grant_the_same_interactions() {
        let v1 = principal("openid user/*.read", None);
        let v2 = principal("user/*.rs", None);
        for p in [&v1, &v2] {
            assert_eq!(
                p.access("Observation", Interaction::Search).unwrap(),
                Access::All
            );
            assert!(p.access("Observation", Interaction::Create).is_err());
        }
        let writer = principal("user/Observation.write", None);
        assert!(writer.access("Observation", Interaction::Update).is_ok());
        assert!(writer.access("Patient", Interaction::Update).is_err());
    }

    #[test]
    fn patient_scopes_reach_only_the_patients_compartment() {
        let p = principal("patient/*.read", Some("p1"));
        assert_eq!(
            p.access("Observation", Interaction::Read).unwrap(),
            Access::Compartment("p1".into())
        );
        assert!(p.access("Practitioner", Interaction::Read).is_err());
        assert!(
            p.require_all("Observation", Interaction::Search, false)
                .is_err()
        );
        assert!(
            principal("patient/*.read", None)
                .access("Observation", Interaction::Read)
                .is_err()
        );
    }

    #[test]
    fn malformed_scopes_are_refused() {
        for bad in [
            "user/Foo.read",
            "user/*.rw",
            "user/*.sc",
            "user/*",
            "system/*.cc",
        ] {
            assert!(parse_scopes(bad).is_err(), "{bad}");
        }
        assert!(parse_scopes("launch openid fhirUser").unwrap().is_empty());
    }

    #[test]
    fn only_system_scopes_export() {
        assert!(
            principal("user/*.read", None)
                .require_all("Patient", Interaction::Read, true)
                .is_err()
        );
        assert!(
            principal("system/*.read", None)
                .require_all("Patient", Interaction::Read, true)
                .is_ok()
        );
    }
}
