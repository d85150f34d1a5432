//! A search request: the filter criteria plus the result parameters (`_count`, `_offset`,
//! `_sort`, `_include`, `_revinclude`, `_total`, `_summary`, `_elements`).

use crate::error::{Error, Result};
use crate::search::parameters::{self, Kind};
use crate::types;

/// Default page size.
pub const DEFAULT_COUNT: usize = 50;
/// Largest page size a client may ask for.
pub const MAX_COUNT: usize = 1000;

/// Whether and how to count all matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Total {
    /// Count exactly.
    Accurate,
    /// Do not count (cheapest); the total is still given when the first page holds everything.
    None,
}

/// One `_include` or `_revinclude`: `Source:param[:Target]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Include {
    /// The type that holds the reference.
    pub source: &'static str,
    /// The reference parameter.
    pub param: &'static str,
    /// Only targets of this type, if given.
    pub target: Option<&'static str>,
}

/// A parsed search.
#[derive(Clone, Debug, PartialEq)]
pub struct SearchRequest {
    /// The type searched.
    pub resource_type: &'static str,
    /// Filter criteria `(name[:modifier], value)`, all of which must hold.
    pub criteria: Vec<(String, String)>,
    /// Sort keys, `(parameter, descending)`.
    pub sort: Vec<(String, bool)>,
    /// Page size (0: only count).
    pub count: usize,
    /// Matches to skip.
    pub offset: usize,
    /// `_include`s.
    pub include: Vec<Include>,
    /// `_revinclude`s.
    pub revinclude: Vec<Include>,
    /// Whether to count all matches.
    pub total: Total,
    /// `_elements`: top-level elements to return (the rest are left out, and the result is
    /// marked SUBSETTED).
    pub elements: Option<Vec<String>>,
    /// Only resources in this patient's compartment.
    pub compartment: Option<String>,
}

/// Parameters that are neither criteria nor understood result parameters, but harmless.
const IGNORED: &[&str] = &["_format", "_pretty"];

impl SearchRequest {
    /// Parses the query pairs of a search on `resource_type`.
    pub fn parse(resource_type: &str, pairs: &[(String, String)]) -> Result<SearchRequest> {
        let resource_type = types::resource_type(resource_type)?;
        let mut request = SearchRequest {
            resource_type,
            criteria: Vec::new(),
            sort: Vec::new(),
            count: DEFAULT_COUNT,
            offset: 0,
            include: Vec::new(),
            revinclude: Vec::new(),
            total: Total::Accurate,
            elements: None,
            compartment: None,
        };
        for (key, value) in pairs {
            match key.as_str() {
                "_count" => request.count = number(key, value)?.min(MAX_COUNT),
                "_offset" => request.offset = number(key, value)?,
                "_sort" => {
                    for item in value.split(',').filter(|s| !s.is_empty()) {
                        let (name, descending) = match item.strip_prefix('-') {
                            Some(n) => (n, true),
                            None => (item, false),
                        };
                        check_sortable(resource_type, name)?;
                        request.sort.push((name.to_string(), descending));
                    }
                }
                "_include" => request.include.push(include(value, Some(resource_type))?),
                "_revinclude" => request.revinclude.push(include(value, None)?),
                // `_totalMethod` is the spelling some clients (fhirpy) use.
                "_total" | "_totalMethod" => {
                    request.total = match value.as_str() {
                        "accurate" | "estimate" | "count" => Total::Accurate,
                        "none" => Total::None,
                        other => {
                            return Err(Error::invalid(format!(
                                "_total={other} is not none, estimate or accurate"
                            )));
                        }
                    }
                }
                "_summary" => match value.as_str() {
                    "count" => request.count = 0,
                    "false" => {}
                    other => {
                        return Err(Error::invalid(format!(
                            "_summary={other} is not supported (count and false are)"
                        )));
                    }
                },
                "_elements" => {
                    request.elements =
                        Some(value.split(',').map(|e| e.trim().to_string()).collect())
                }
                k if IGNORED.contains(&k) => {}
                k if k.starts_with('_')
                    && !matches!(
                        k.split([':', '.']).next(),
                        Some(
                            "_id"
                                | "_lastUpdated"
                                | "_has"
                                | "_tag"
                                | "_profile"
                                | "_security"
                                | "_source"
                        )
                    ) =>
                {
                    return Err(Error::invalid(format!(
                        "search result parameter {k} is not supported"
                    )));
                }
                _ => request.criteria.push((key.clone(), value.clone())),
            }
        }
        Ok(request)
    }
}

fn number(key: &str, value: &str) -> Result<usize> {
    value
        .parse()
        .map_err(|_| Error::invalid(format!("{key}={value} is not a non-negative integer")))
}

fn check_sortable(resource_type: &str, name: &str) -> Result<()> {
    if matches!(name, "_id" | "_lastUpdated") {
        return Ok(());
    }
    match parameters::find(resource_type, name) {
        Some(p) if p.kind != Kind::Uri => Ok(()),
        _ => Err(Error::invalid(format!(
            "cannot sort {resource_type} by {name:?}: no such parameter"
        ))),
    }
}

/// Parses `Source:param[:Target]`; for `_include` the source must be the searched type.
fn include(value: &str, searched: Option<&'static str>) -> Result<Include> {
    let parts: Vec<&str> = value.split(':').collect();
    let (source, name, target) = match parts.as_slice() {
        [s, p] => (*s, *p, None),
        [s, p, t] if *t != "iterate" => (*s, *p, Some(*t)),
        _ => {
            return Err(Error::invalid(format!(
                "{value:?} must be Type:parameter[:TargetType] (wildcards and :iterate are not supported)"
            )));
        }
    };
    let source = types::resource_type(source)?;
    if let Some(searched) = searched
        && source != searched
    {
        return Err(Error::invalid(format!(
            "_include={value} must start with the searched type {searched}"
        )));
    }
    let param = parameters::find(source, name)
        .filter(|p| p.kind == Kind::Reference)
        .ok_or_else(|| {
            Error::invalid(format!("{name} is not a reference parameter of {source}"))
        })?;
    let target = target.map(types::resource_type).transpose()?;
    Ok(Include {
        source,
        param: param.name,
        target,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn result_parameters_are_separated_from_criteria() {
        let r = SearchRequest::parse(
            "Observation",
            &pairs(&[
                ("code", "8480-6"),
                ("_count", "5000"),
                ("_sort", "-date,_id"),
                ("_include", "Observation:subject:Patient"),
                ("_revinclude", "Provenance:target"),
                ("_format", "json"),
            ]),
        )
        .unwrap();
        assert_eq!(r.criteria, pairs(&[("code", "8480-6")]));
        assert_eq!(r.count, MAX_COUNT);
        assert_eq!(
            r.sort,
            vec![("date".to_string(), true), ("_id".to_string(), false)]
        );
        assert_eq!(r.include[0].target, Some("Patient"));
        assert_eq!(r.revinclude[0].source, "Provenance");
    }

    #[test]
    fn bad_result_parameters_are_refused() {
        for (k, v) in [
            ("_count", "-1"),
            ("_sort", "nonsense"),
            ("_include", "Patient:subject"),
            ("_include", "*"),
            ("_summary", "text"),
            ("_contained", "true"),
        ] {
            assert!(
                SearchRequest::parse("Observation", &pairs(&[(k, v)])).is_err(),
                "{k}={v}"
            );
        }
    }
}
