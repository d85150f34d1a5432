//! Any bytes given to the DICOM de-identifier (what `cohort deid dicom`, the C-STORE receiver and
//! STOW-RS hand it): a result or an error, never a panic, a hang or a runaway allocation.
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

/// The training profile (burned-in pixels cleaned) and the headers-only profile.
fn deidentifiers() -> &'static [deid::Deidentifier; 2] {
    static D: OnceLock<[deid::Deidentifier; 2]> = OnceLock::new();
    D.get_or_init(|| {
        let make = |options| {
            let key = deid::DeidKey::new(&[7u8; 32]).expect("a 32-byte key");
            deid::Deidentifier::new(key, options).expect("the profile's options")
        };
        let training = deid::Options::training();
        let headers = training
            .clone()
            .without(deid::ProfileOption::CleanPixelData);
        [make(training), make(headers)]
    })
}

fuzz_target!(|data: &[u8]| {
    for d in deidentifiers() {
        let _ = d.deidentify(data);
    }
});
