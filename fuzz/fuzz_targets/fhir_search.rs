//! Any bytes as a FHIR search: the first byte picks the resource type searched, the rest is the
//! query string (`GET [base]/Type?...`), parsed into pairs and then into a search request
//! (parameters, modifiers, prefixes, chains, `_include`, `_sort`, `_count`). Errors are expected;
//! a panic is a finding.
#![no_main]

use libfuzzer_sys::fuzz_target;

const TYPES: [&str; 8] = [
    "Patient",
    "Observation",
    "Encounter",
    "Condition",
    "MedicationRequest",
    "DocumentReference",
    "ImagingStudy",
    "Bundle",
];

fuzz_target!(|data: &[u8]| {
    let Some((&pick, query)) = data.split_first() else {
        return;
    };
    let Ok(query) = std::str::from_utf8(query) else {
        return;
    };
    let Ok(pairs) = ehr::bundle::parse_query(query) else {
        return;
    };
    let _ = ehr::search::SearchRequest::parse(TYPES[usize::from(pick) % TYPES.len()], &pairs);
});
