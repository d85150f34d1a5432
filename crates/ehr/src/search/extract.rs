//! Extraction of search-index entries from a resource, done once at write time.

use serde_json::Value;

use crate::datetime::{self, Range};
use crate::error::{Error, Result};
use crate::search::parameters::{self, Kind, Param};
use crate::types;

/// The index entries of one resource version.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Entries {
    /// `(param, normalized text, exact text)`.
    pub strings: Vec<(&'static str, String, String)>,
    /// Token entries.
    pub tokens: Vec<TokenEntry>,
    /// `(param, target type, target id)`; for absolute URLs the type is empty and the id the URL.
    pub references: Vec<(&'static str, String, String)>,
    /// `(param, range)`.
    pub dates: Vec<(&'static str, Range)>,
    /// `(param, value)`.
    pub numbers: Vec<(&'static str, f64)>,
    /// Quantity entries.
    pub quantities: Vec<QuantityEntry>,
    /// Ids of the patients whose compartment holds this resource.
    pub compartments: Vec<String>,
    /// Every local reference `(type, id)` anywhere in the resource (for referential integrity;
    /// the store keeps those that no search parameter indexes).
    pub links: Vec<(String, String)>,
}

/// One token: a code with its system, or a text.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenEntry {
    /// The parameter.
    pub param: &'static str,
    /// The code system, if any.
    pub system: Option<String>,
    /// The code (or identifier value), if any.
    pub code: Option<String>,
    /// Display or text, normalized, for `:text`.
    pub text: Option<String>,
}

/// One quantity.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantityEntry {
    /// The parameter.
    pub param: &'static str,
    /// The value.
    pub value: f64,
    /// The unit system, if any.
    pub system: Option<String>,
    /// The coded unit, if any.
    pub code: Option<String>,
    /// The human unit, if any.
    pub unit: Option<String>,
}

/// Extracts the index entries of `resource` (of type `resource_type`, id `id`).
///
/// Fails when an indexed date is malformed, naming the element.
pub fn extract(resource_type: &str, id: &str, resource: &Value) -> Result<Entries> {
    let mut entries = Entries::default();
    for param in parameters::of_type(resource_type) {
        for (path_text, path) in param.paths.split('|').zip(param.paths()) {
            let mut found = Vec::new();
            collect(resource, &path.collect::<Vec<_>>(), &mut found);
            for value in found {
                add(&mut entries, param, value).map_err(|e| match e {
                    Error::Invalid { message, .. } => {
                        Error::invalid_at(format!("{resource_type}.{path_text}"), message)
                    }
                    other => other,
                })?;
            }
        }
    }
    if resource_type == "Patient" {
        entries.compartments.push(id.to_string());
    }
    for name in types::compartment_params(resource_type) {
        let stored = parameters::find(resource_type, name).map_or(*name, Param::stored_as);
        for (param, target_type, target_id) in &entries.references {
            if *param == stored
                && target_type == "Patient"
                && !entries.compartments.contains(target_id)
            {
                entries.compartments.push(target_id.clone());
            }
        }
    }
    links(resource, &mut entries.links);
    entries.links.sort();
    entries.links.dedup();
    Ok(entries)
}

/// The values at `path` below `value`, arrays flattened.
fn collect<'a>(value: &'a Value, path: &[&str], out: &mut Vec<&'a Value>) {
    match value {
        Value::Array(items) => items.iter().for_each(|item| collect(item, path, out)),
        _ => match path.split_first() {
            None => out.push(value),
            Some((step, rest)) => {
                if let Some(child) = value.get(*step) {
                    collect(child, rest, out);
                }
            }
        },
    }
}

fn add(entries: &mut Entries, param: &'static Param, value: &Value) -> Result<()> {
    match param.kind {
        Kind::String => strings(value, &mut |text| {
            entries
                .strings
                .push((param.name, normalize(text), text.to_string()));
        }),
        Kind::Token | Kind::Uri => tokens(param, value, &mut entries.tokens),
        // a narrowed parameter's references are the broad one's rows (see `Param::narrows`)
        Kind::Reference if param.narrows.is_some() => {}
        Kind::Reference => {
            if let Some(reference) = value.get("reference").and_then(Value::as_str)
                && let Some((target_type, target_id)) = parse_reference(reference)
                && param.accepts_target(&target_type)
            {
                entries
                    .references
                    .push((param.name, target_type, target_id));
            }
        }
        Kind::Date => {
            if let Some(range) = date_range(value)? {
                entries.dates.push((param.name, range));
            }
        }
        Kind::Number => {
            if let Some(n) = value.as_f64() {
                entries.numbers.push((param.name, n));
            }
        }
        Kind::Quantity => {
            if let Some(n) = value.get("value").and_then(Value::as_f64) {
                let text = |key: &str| value.get(key).and_then(Value::as_str).map(str::to_string);
                entries.quantities.push(QuantityEntry {
                    param: param.name,
                    value: n,
                    system: text("system"),
                    code: text("code").or_else(|| text("currency")),
                    unit: text("unit"),
                });
            }
        }
    }
    Ok(())
}

/// The searchable texts of a string, HumanName or Address.
fn strings(value: &Value, emit: &mut dyn FnMut(&str)) {
    match value {
        Value::String(s) => emit(s),
        Value::Array(items) => items.iter().for_each(|i| strings(i, emit)),
        Value::Object(map) => {
            for key in [
                "family",
                "given",
                "prefix",
                "suffix",
                "text",
                "line",
                "city",
                "district",
                "state",
                "postalCode",
                "country",
            ] {
                if let Some(v) = map.get(key) {
                    strings(v, emit);
                }
            }
        }
        _ => {}
    }
}

fn tokens(param: &'static Param, value: &Value, out: &mut Vec<TokenEntry>) {
    let entry = |system: Option<&str>, code: Option<&str>, text: Option<&str>| TokenEntry {
        param: param.name,
        system: system.map(str::to_string),
        code: code.map(str::to_string),
        text: text.map(normalize),
    };
    match value {
        Value::String(_) if param.name == "deceased" => {
            out.push(entry(None, Some("true"), None));
        }
        Value::String(s) => out.push(entry(None, Some(s), None)),
        Value::Bool(b) => out.push(entry(None, Some(if *b { "true" } else { "false" }), None)),
        Value::Object(map) => {
            let text = |key: &str| map.get(key).and_then(Value::as_str);
            if let Some(codings) = map.get("coding").and_then(Value::as_array) {
                for coding in codings {
                    let field = |key: &str| coding.get(key).and_then(Value::as_str);
                    out.push(entry(field("system"), field("code"), field("display")));
                }
                if let Some(t) = text("text") {
                    out.push(entry(None, None, Some(t)));
                }
            } else if map.contains_key("coding") || map.contains_key("text") {
                if let Some(t) = text("text") {
                    out.push(entry(None, None, Some(t)));
                }
            } else if let Some(v) = text("value") {
                let contact_system = match param.name {
                    "phone" => Some("phone"),
                    "email" => Some("email"),
                    _ => None,
                };
                let is_contact = matches!(param.name, "telecom" | "phone" | "email");
                if is_contact {
                    if contact_system.is_none_or(|s| text("system") == Some(s)) {
                        out.push(entry(None, Some(v), None));
                    }
                } else {
                    let type_text = map
                        .get("type")
                        .and_then(|t| t.get("text"))
                        .and_then(Value::as_str);
                    out.push(entry(text("system"), Some(v), type_text));
                }
            } else if text("code").is_some() || text("system").is_some() {
                out.push(entry(text("system"), text("code"), text("display")));
            }
        }
        _ => {}
    }
}

fn date_range(value: &Value) -> Result<Option<Range>> {
    match value {
        Value::String(s) => datetime::parse_range(s).map(Some),
        Value::Object(map) if map.contains_key("start") || map.contains_key("end") => {
            let bound = |key: &str| -> Result<Option<Range>> {
                map.get(key)
                    .and_then(Value::as_str)
                    .map(datetime::parse_range)
                    .transpose()
            };
            let start = bound("start")?.map_or(i64::MIN, |r| r.start);
            let end = bound("end")?.map_or(i64::MAX, |r| r.end);
            if start >= end {
                return Err(Error::invalid("Period.start is after Period.end"));
            }
            Ok(Some(Range { start, end }))
        }
        _ => Ok(None),
    }
}

/// Splits a literal reference into `(type, id)`: `Type/id`, `Type/id/_history/v`, or an
/// absolute URL (type empty, id the URL). Contained (`#x`) and `urn:` references give `None`.
pub fn parse_reference(reference: &str) -> Option<(String, String)> {
    if reference.starts_with('#') || reference.starts_with("urn:") {
        return None;
    }
    if reference.contains("://") {
        return Some((String::new(), reference.to_string()));
    }
    let mut parts = reference.split('/');
    let (Some(t), Some(id)) = (parts.next(), parts.next()) else {
        return None;
    };
    let rest: Vec<&str> = parts.collect();
    let versioned = matches!(rest[..], ["_history", v] if !v.is_empty());
    (types::is_valid_id(id)
        && (rest.is_empty() || versioned)
        && t.chars().next().is_some_and(|c| c.is_ascii_uppercase()))
    .then(|| (t.to_string(), id.to_string()))
}

/// Every relative `Type/id` reference anywhere in `value`.
fn links(value: &Value, out: &mut Vec<(String, String)>) {
    match value {
        Value::Array(items) => items.iter().for_each(|i| links(i, out)),
        Value::Object(map) => {
            for (key, v) in map {
                if key == "reference"
                    && let Some((t, id)) = v.as_str().and_then(parse_reference)
                    && !t.is_empty()
                {
                    out.push((t, id));
                } else if key != "contained" {
                    links(v, out);
                }
            }
        }
        _ => {}
    }
}

/// Lower-cases and strips common Latin accents, for string search.
pub fn normalize(text: &str) -> String {
    text.chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' => 'a',
            'ç' | 'č' | 'ć' => 'c',
            'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ě' => 'e',
            'ì' | 'í' | 'î' | 'ï' => 'i',
            'ñ' | 'ń' | 'ň' => 'n',
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ő' => 'o',
            'ù' | 'ú' | 'û' | 'ü' | 'ű' | 'ů' => 'u',
            'ý' | 'ÿ' => 'y',
            'š' | 'ś' => 's',
            'ž' | 'ź' | 'ż' => 'z',
            'ř' => 'r',
            'ł' => 'l',
            other => other,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn observation() -> Value {
        json!({
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "8480-6", "display": "Systolic"}], "text": "BP"},
            "subject": {"reference": "Patient/p1"},
            "performer": [{"reference": "Practitioner/d1"}],
            "effectiveDateTime": "2024-03-01",
            "valueQuantity": {"value": 120.5, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"},
            "meta": {"tag": [{"system": "urn:split", "code": "train"}]}
        })
    }

    #[test]
    fn observation_yields_tokens_references_dates_and_quantities() {
        let e = extract("Observation", "o1", &observation()).unwrap();
        assert!(e.tokens.iter().any(|t| t.param == "code"
            && t.system.as_deref() == Some("http://loinc.org")
            && t.code.as_deref() == Some("8480-6")));
        assert!(
            e.tokens
                .iter()
                .any(|t| t.param == "code" && t.text.as_deref() == Some("bp"))
        );
        assert!(
            e.tokens
                .iter()
                .any(|t| t.param == "_tag" && t.code.as_deref() == Some("train"))
        );
        // `patient` is `subject` narrowed to Patients: one row, under `subject`
        assert!(
            e.references
                .contains(&("subject", "Patient".into(), "p1".into()))
        );
        assert!(!e.references.iter().any(|(param, _, _)| *param == "patient"));
        assert_eq!(e.compartments, vec!["p1".to_string()]);
        assert_eq!(
            e.dates,
            vec![("date", datetime::parse_range("2024-03-01").unwrap())]
        );
        assert_eq!(e.quantities[0].value, 120.5);
        assert_eq!(e.compartments, vec!["p1".to_string()]);
        assert_eq!(
            e.links,
            vec![
                ("Patient".into(), "p1".into()),
                ("Practitioner".into(), "d1".into())
            ]
        );
    }

    #[test]
    fn names_and_addresses_are_searchable_by_part_without_accents() {
        let patient = json!({
            "resourceType": "Patient",
            "name": [{"family": "Müller", "given": ["Zoë", "Ann"]}],
            "address": [{"city": "Zürich", "line": ["Bahnhofstrasse 1"]}],
            "telecom": [{"system": "phone", "value": "555"}, {"system": "email", "value": "a@b"}],
            "deceasedDateTime": "2020-01-01"
        });
        let e = extract("Patient", "p1", &patient).unwrap();
        let names: Vec<&str> = e
            .strings
            .iter()
            .filter(|s| s.0 == "name")
            .map(|s| s.1.as_str())
            .collect();
        assert_eq!(names, vec!["muller", "zoe", "ann"]);
        assert!(
            e.strings
                .iter()
                .any(|s| s.0 == "address-city" && s.1 == "zurich")
        );
        let phone: Vec<_> = e.tokens.iter().filter(|t| t.param == "phone").collect();
        assert_eq!(phone.len(), 1);
        assert!(
            e.tokens
                .iter()
                .any(|t| t.param == "deceased" && t.code.as_deref() == Some("true"))
        );
        assert_eq!(e.compartments, vec!["p1".to_string()]);
    }

    #[test]
    fn malformed_indexed_date_names_the_element() {
        let mut o = observation();
        o["effectiveDateTime"] = json!("2024-13-01");
        let err = extract("Observation", "o1", &o).unwrap_err();
        assert!(
            matches!(err, Error::Invalid { expression: Some(ref x), .. } if x == "Observation.effectiveDateTime"),
            "{err:?}"
        );
    }

    #[test]
    fn references_are_parsed_by_form() {
        assert_eq!(
            parse_reference("Patient/1"),
            Some(("Patient".into(), "1".into()))
        );
        assert_eq!(
            parse_reference("Patient/1/_history/2"),
            Some(("Patient".into(), "1".into()))
        );
        assert_eq!(
            parse_reference("http://x/fhir/Patient/1").map(|r| r.0),
            Some(String::new())
        );
        assert_eq!(parse_reference("#c1"), None);
        assert_eq!(parse_reference("urn:uuid:1"), None);
        assert_eq!(parse_reference("Patient"), None);
        assert_eq!(parse_reference("patient/1"), None);
    }

    #[test]
    fn periods_with_open_ends_cover_everything_beyond() {
        let enc = json!({"resourceType": "Encounter", "status": "finished", "class": {"code": "AMB"}, "period": {"start": "2024-01-01"}});
        let e = extract("Encounter", "e1", &enc).unwrap();
        assert_eq!(e.dates[0].1.end, i64::MAX);
    }
}
