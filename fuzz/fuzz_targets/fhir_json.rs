//! Any bytes as the body of a FHIR create, update or transaction: JSON parsing, validation
//! against the R4 definitions, search-index extraction of what validates, and for a Bundle the
//! type and each entry's request as a transaction reads them. Errors are expected; a panic, a
//! hang or a runaway allocation is a finding.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(resource) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let Ok(resource_type) = ehr::validate::validate(&resource, None) else {
        return;
    };
    let _ = ehr::search::extract::extract(resource_type, "fuzz", &resource);
    if resource_type == "Bundle" {
        let _ = ehr::bundle::BundleKind::of(&resource);
        for entry in resource["entry"].as_array().into_iter().flatten() {
            let _ = ehr::bundle::parse_request(entry);
            if let Some(inner) = entry.get("resource") {
                if let Ok(inner_type) = ehr::validate::validate(inner, None) {
                    let _ = ehr::search::extract::extract(inner_type, "fuzz", inner);
                }
            }
        }
    }
});
