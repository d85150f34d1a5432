//! Element types: each element a resource holds must have the JSON form of its FHIR R4 type (a
//! string where a `string` is expected, an object for a complex type, an array exactly where
//! the element repeats), recursively. The types come from `definitions/elements.txt`, generated
//! from the R4 StructureDefinitions by `definitions/elements.py`. Elements the table does not
//! know are left to the other checks.

use std::collections::HashMap;
use std::sync::LazyLock;

use serde_json::{Map, Value};

use super::Path;
use crate::error::{Error, Result};

/// One element: its type (a data type, or the path of a backbone element) and whether it
/// repeats.
struct Element {
    ty: &'static str,
    many: bool,
}

/// Elements by owner (a type, or a backbone element's path) and JSON name; a choice element
/// `value[x]` is listed under each of its names (`valueQuantity`, `valueString`, …).
static ELEMENTS: LazyLock<HashMap<&'static str, HashMap<String, Element>>> = LazyLock::new(|| {
    let mut table: HashMap<&str, HashMap<String, Element>> = HashMap::new();
    let lines = include_str!("../../definitions/elements.txt").lines();
    for line in lines.filter(|l| !l.starts_with('#')) {
        let mut fields = line.split('\t');
        let (Some(path), Some(max), Some(types)) = (fields.next(), fields.next(), fields.next())
        else {
            continue;
        };
        let Some((owner, name)) = path.rsplit_once('.') else {
            continue;
        };
        let many = max == "*";
        let elements = table.entry(owner).or_default();
        match name.strip_suffix("[x]") {
            Some(stem) => {
                for ty in types.split('|') {
                    let mut chars = ty.chars();
                    let capitalised: String = chars
                        .next()
                        .map(|c| c.to_ascii_uppercase())
                        .into_iter()
                        .chain(chars)
                        .collect();
                    elements.insert(format!("{stem}{capitalised}"), Element { ty, many });
                }
            }
            None => {
                elements.insert(name.to_string(), Element { ty: types, many });
            }
        }
    }
    table
});

/// Checks the elements of `map`, an instance of `owner` (a resource or data type, or a backbone
/// element's path), found at `path`.
pub(super) fn check(map: &Map<String, Value>, owner: &str, path: Path<'_>) -> Result<()> {
    let Some(elements) = ELEMENTS.get(owner) else {
        return Ok(());
    };
    for (key, value) in map {
        // `_name` holds the id and extensions of primitive element `name`.
        let (name, primitive_extras) = match key.strip_prefix('_') {
            Some(name) => (name, true),
            None => (key.as_str(), false),
        };
        let Some(element) = elements.get(name) else {
            continue;
        };
        let at = Path::Key(&path, key);
        let items = match (value, element.many) {
            (Value::Array(items), true) => items.as_slice(),
            (single, false) if !single.is_array() => std::slice::from_ref(single),
            (_, true) => {
                return Err(mismatch(at, &format!("an array of {}", element.ty), value));
            }
            (_, false) => {
                return Err(mismatch(at, &format!("a single {}", element.ty), value));
            }
        };
        for (i, item) in items.iter().enumerate() {
            let item_path = if element.many {
                Path::Index(&at, i)
            } else {
                at
            };
            match (item, primitive_extras) {
                // Nulls keep arrays of values and of their extras aligned (checked elsewhere).
                (Value::Null, _) => {}
                (Value::Object(extras), true) => check(extras, "Element", item_path)?,
                (_, true) => {
                    return Err(mismatch(
                        item_path,
                        "an object (the id and extensions of a primitive value)",
                        item,
                    ));
                }
                (_, false) => check_value(item, element.ty, item_path)?,
            }
        }
    }
    Ok(())
}

/// Checks one value of FHIR type `ty`.
fn check_value(value: &Value, ty: &str, path: Path<'_>) -> Result<()> {
    let (ok, expected) = match ty {
        "boolean" => (value.is_boolean(), "true or false"),
        "integer" => (
            value.as_i64().is_some_and(|n| i32::try_from(n).is_ok()),
            "a whole number (32-bit)",
        ),
        "positiveInt" => (
            value
                .as_i64()
                .is_some_and(|n| (1..=i64::from(i32::MAX)).contains(&n)),
            "a whole number above 0",
        ),
        "unsignedInt" => (
            value
                .as_i64()
                .is_some_and(|n| (0..=i64::from(i32::MAX)).contains(&n)),
            "a whole number from 0",
        ),
        "decimal" => (value.is_number(), "a JSON number"),
        "base64Binary" => (
            value.as_str().is_some_and(is_base64),
            "a base64 string (RFC 4648, padded)",
        ),
        "canonical" | "code" | "date" | "dateTime" | "id" | "instant" | "markdown" | "oid"
        | "string" | "time" | "uri" | "url" | "uuid" | "xhtml" => {
            (value.is_string(), "a JSON string")
        }
        // Contained resources are validated as resources of their own.
        "Resource" => return Ok(()),
        complex => match value {
            Value::Object(map) => return check(map, complex, path),
            _ => (false, "a JSON object"),
        },
    };
    if ok {
        Ok(())
    } else {
        let what = if ty.contains('.') {
            format!("a {ty} element ({expected})")
        } else {
            format!("a FHIR {ty} ({expected})")
        };
        Err(mismatch(path, &what, value))
    }
}

/// True for padded standard base64 (RFC 4648 section 4), whitespace between characters allowed
/// as in FHIR's base64Binary.
fn is_base64(text: &str) -> bool {
    let mut count = 0usize;
    let mut padding = 0usize;
    for b in text.bytes().filter(|b| !b.is_ascii_whitespace()) {
        match b {
            b'=' => padding += 1,
            _ if padding > 0 => return false,
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'+' | b'/' => {}
            _ => return false,
        }
        count += 1;
    }
    count.is_multiple_of(4) && padding <= 2
}

fn mismatch(path: Path<'_>, expected: &str, found: &Value) -> Error {
    let found = match found {
        Value::Null => "null".to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => format!("the number {n}"),
        Value::String(_) => "a string".to_string(),
        Value::Array(_) => "an array".to_string(),
        Value::Object(_) => "an object".to_string(),
    };
    Error::invalid_at(
        path.to_string(),
        format!("{path} must be {expected}, not {found}"),
    )
}
