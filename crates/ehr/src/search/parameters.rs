//! The search parameters of every supported resource type (a subset of FHIR R4's, with the
//! same names and meanings), as element paths the indexer follows, loaded from the embedded
//! `definitions/search-parameters.csv` (`resource,name,type,paths,targets`; `#` lines are
//! comments).
//!
//! A path is a chain of element names separated by `.`; arrays are walked transparently, choice
//! elements are spelled out (`effectiveDateTime|effectivePeriod`). A reference parameter with
//! target types only indexes references to those types.

use std::collections::HashMap;
use std::sync::OnceLock;

/// The parameter table as shipped with this crate.
const PARAMETERS_CSV: &str = include_str!("../../definitions/search-parameters.csv");

/// The type of a search parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Case- and accent-insensitive prefix match on text.
    String,
    /// A code, optionally with its system (`system|code`).
    Token,
    /// A reference to another resource.
    Reference,
    /// A date, dateTime, instant or Period.
    Date,
    /// A plain number.
    Number,
    /// A Quantity: number with system and unit.
    Quantity,
    /// A URI, matched exactly.
    Uri,
}

impl Kind {
    /// The FHIR name of the type, as the CapabilityStatement lists it.
    pub fn fhir_name(self) -> &'static str {
        match self {
            Kind::String => "string",
            Kind::Token => "token",
            Kind::Reference => "reference",
            Kind::Date => "date",
            Kind::Number => "number",
            Kind::Quantity => "quantity",
            Kind::Uri => "uri",
        }
    }

    /// The kind named `name` by FHIR (`string`, `token`...).
    pub fn from_fhir_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.fhir_name() == name)
    }

    const ALL: [Kind; 7] = [
        Kind::String,
        Kind::Token,
        Kind::Reference,
        Kind::Date,
        Kind::Number,
        Kind::Quantity,
        Kind::Uri,
    ];
}

/// One search parameter of one resource type (`*` = every type).
#[derive(Debug)]
pub struct Param {
    /// The resource type, or `*` for the parameters every type has.
    pub resource: &'static str,
    /// The parameter's name in URLs.
    pub name: &'static str,
    /// Its type.
    pub kind: Kind,
    /// Element paths, `|`-separated.
    pub paths: &'static str,
    /// For references: the target types (`|`-separated), empty for any.
    pub targets: &'static str,
    /// For a reference parameter that is another one of the same type narrowed to some target
    /// types (`Observation.patient` is `Observation.subject` to a Patient): that parameter's
    /// name. Its references are stored once, under that parameter, and found by target type.
    pub narrows: Option<&'static str>,
}

impl Param {
    /// The element paths, each split into its steps.
    pub fn paths(&self) -> impl Iterator<Item = std::str::Split<'static, char>> {
        self.paths.split('|').map(|p| p.split('.'))
    }

    /// The allowed target types of a reference parameter (none = any).
    pub fn targets(&self) -> impl Iterator<Item = &'static str> {
        self.targets.split('|').filter(|t| !t.is_empty())
    }

    /// True when a reference to `target_type` is indexed by this parameter.
    pub fn accepts_target(&self, target_type: &str) -> bool {
        self.targets.is_empty() || self.targets().any(|t| t == target_type)
    }

    /// The parameter name its index rows are stored under (see [`Param::narrows`]).
    pub fn stored_as(&self) -> &'static str {
        self.narrows.unwrap_or(self.name)
    }
}

/// Every search parameter (besides `_id` and `_lastUpdated`, which every type has), in the
/// order of the table: those of every type first.
pub fn all() -> &'static [Param] {
    static TABLE: OnceLock<Vec<Param>> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut table = parse(PARAMETERS_CSV)
            .expect("the embedded search parameter table is well-formed (tested)");
        find_narrowings(&mut table);
        table
    })
}

/// Finds the parameter `name` of `resource` (one every type has, or its own), through an index
/// of the table: the indexer and the search translation ask for parameters by name on every
/// write and search.
pub fn find(resource: &str, name: &str) -> Option<&'static Param> {
    static BY_NAME: OnceLock<HashMap<(&'static str, &'static str), &'static Param>> =
        OnceLock::new();
    let index = BY_NAME.get_or_init(|| all().iter().map(|p| ((p.resource, p.name), p)).collect());
    index
        .get(&("*", name))
        .or_else(|| index.get(&(resource, name)))
        .copied()
}

/// The parameters of `resource`, the common ones included.
pub fn of_type(resource: &str) -> impl Iterator<Item = &'static Param> {
    all()
        .iter()
        .filter(move |p| p.resource == resource || p.resource == "*")
}

/// Reads the table: a header line, then one parameter a line; blank and `#` lines skipped.
fn parse(csv: &'static str) -> Result<Vec<Param>, String> {
    let mut lines = csv
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.starts_with('#'));
    match lines.next() {
        Some((_, "resource,name,type,paths,targets")) => {}
        other => return Err(format!("unexpected header {other:?}")),
    }
    lines
        .map(|(i, line)| {
            let fields: Vec<&'static str> = line.split(',').collect();
            let [resource, name, kind, paths, targets] = fields[..] else {
                return Err(format!("line {}: {} fields, not 5", i + 1, fields.len()));
            };
            let kind = Kind::from_fhir_name(kind)
                .ok_or_else(|| format!("line {}: unknown type {kind:?}", i + 1))?;
            if resource.is_empty() || name.is_empty() || paths.is_empty() {
                return Err(format!("line {}: empty resource, name or paths", i + 1));
            }
            if !targets.is_empty() && kind != Kind::Reference {
                return Err(format!(
                    "line {}: targets on a {} parameter",
                    i + 1,
                    kind.fhir_name()
                ));
            }
            Ok(Param {
                resource,
                name,
                kind,
                paths,
                targets,
                narrows: None,
            })
        })
        .collect()
}

/// Sets [`Param::narrows`]: a reference parameter with target types narrows another of the
/// same resource type with the same paths and any target.
fn find_narrowings(table: &mut [Param]) {
    let broad: Vec<(&'static str, &'static str, &'static str)> = table
        .iter()
        .filter(|p| p.kind == Kind::Reference && p.targets.is_empty())
        .map(|p| (p.resource, p.paths, p.name))
        .collect();
    for param in table
        .iter_mut()
        .filter(|p| p.kind == Kind::Reference && !p.targets.is_empty())
    {
        param.narrows = broad
            .iter()
            .find(|(resource, paths, _)| *resource == param.resource && *paths == param.paths)
            .map(|(_, _, name)| *name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{PATIENT_COMPARTMENT, resource_type};

    #[test]
    fn every_parameter_belongs_to_a_supported_type_once() {
        let mut seen = std::collections::HashSet::new();
        for param in all() {
            assert!(
                param.resource == "*" || resource_type(param.resource).is_ok(),
                "{param:?}"
            );
            assert!(
                seen.insert((param.resource, param.name)),
                "twice: {param:?}"
            );
            assert!(
                !param.paths.is_empty() && !param.paths.contains(".."),
                "{param:?}"
            );
        }
    }

    #[test]
    fn compartment_parameters_are_references() {
        for (t, params) in PATIENT_COMPARTMENT {
            for name in *params {
                let param = find(t, name).unwrap_or_else(|| panic!("{t}.{name} missing"));
                assert_eq!(param.kind, Kind::Reference, "{t}.{name}");
            }
        }
    }

    #[test]
    fn patient_parameter_only_accepts_patients() {
        let param = find("Observation", "patient").unwrap();
        assert!(param.accepts_target("Patient"));
        assert!(!param.accepts_target("Group"));
        assert!(
            find("Observation", "subject")
                .unwrap()
                .accepts_target("Group")
        );
        assert!(find("Observation", "_tag").is_some());
    }

    #[test]
    fn a_parameter_narrowed_to_patients_is_stored_under_the_broad_one() {
        let patient = find("Observation", "patient").unwrap();
        assert_eq!(patient.narrows, Some("subject"));
        assert_eq!(patient.stored_as(), "subject");
        assert_eq!(
            find("Observation", "subject").unwrap().stored_as(),
            "subject"
        );
        // same paths but no broad parameter of its own type: stored under its own name
        for param in all().iter().filter(|p| p.narrows.is_some()) {
            let broad = find(param.resource, param.stored_as()).unwrap();
            assert_eq!((broad.paths, broad.targets), (param.paths, ""), "{param:?}");
        }
    }

    #[test]
    fn every_row_of_the_table_parses() {
        let rows = PARAMETERS_CSV
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .count();
        assert_eq!(parse(PARAMETERS_CSV).unwrap().len(), rows - 1);
        assert_eq!(all().len(), rows - 1);
    }

    #[test]
    fn malformed_rows_are_refused_with_their_line() {
        let header = "resource,name,type,paths,targets\n";
        for (row, why) in [
            ("Patient,name,string,name", "4 fields"),
            ("Patient,name,text,name,", "unknown type"),
            ("Patient,,string,name,", "empty"),
            ("Patient,name,string,name,Patient", "targets on a string"),
        ] {
            let csv: &'static str = format!("{header}{row}\n").leak();
            let error = parse(csv).unwrap_err();
            assert!(error.contains("line 2") && error.contains(why), "{error}");
        }
        assert!(parse("name,resource\n").unwrap_err().contains("header"));
    }
}
