//! Any text given to the clinical-text de-identifier, French and English, with and without a
//! patient context (its first line read as the record's name, birth date, identifier, address
//! and phone): ordered spans inside the text, never a panic.
#![no_main]

use deid::text::{Context, Deidentifier, Lang, TextOptions};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn deidentifiers() -> &'static [Deidentifier; 2] {
    static D: OnceLock<[Deidentifier; 2]> = OnceLock::new();
    D.get_or_init(|| {
        let make = |lang| {
            let key = deid::DeidKey::new(&[7u8; 32]).expect("a 32-byte key");
            Deidentifier::new(lang, Some(key), TextOptions::default()).expect("surrogates")
        };
        [make(Lang::En), make(Lang::Fr)]
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let first = text.lines().next().unwrap_or_default().to_string();
    let record = Context {
        patient_id: Some("p1".into()),
        names: vec![first.clone()],
        birth_date: Some(first.clone()),
        identifiers: vec![first.clone()],
        addresses: vec![first.clone()],
        telecom: vec![first],
        date_shift_days: None,
    };
    let chars = text.chars().count();
    for d in deidentifiers() {
        for context in [Context::default(), record.clone()] {
            let redaction = d.redact(text, &context);
            let mut last_end = 0;
            for span in &redaction.spans {
                assert!(
                    span.start < span.end && span.end <= chars,
                    "{span:?} in {chars} chars"
                );
                assert!(
                    span.start >= last_end,
                    "spans overlap or go back: {:?}",
                    redaction.spans
                );
                last_end = span.end;
            }
        }
    }
});
