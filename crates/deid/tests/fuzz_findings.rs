//! Inputs the fuzzer found (`fuzz/`, `cargo +nightly fuzz run deid_dicom`), kept as regression
//! tests: each must get an answer — a result or an error — without a panic and without
//! allocating what a lying length declares. This test binary counts its allocations, so an
//! allocation of gigabytes fails the test even where the machine could have served it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

mod common;

use deid::{Deidentifier, Options, ProfileOption};

/// The system allocator, keeping the largest single request made.
struct Largest;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Largest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Largest = Largest;

/// The findings, by file name.
fn findings() -> Vec<(String, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fuzz");
    let mut found: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .expect("tests/data/fuzz")
        .map(|e| {
            let path = e.expect("entry").path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).expect("readable"))
        })
        .collect();
    found.sort();
    found
}

#[test]
fn fuzz_findings_get_an_answer_without_a_large_allocation() {
    let found = findings();
    assert!(!found.is_empty());
    let deidentifiers = [
        Deidentifier::new(common::key(), Options::training()).unwrap(),
        Deidentifier::new(
            common::key(),
            Options::training().without(ProfileOption::CleanPixelData),
        )
        .unwrap(),
    ];
    for (name, bytes) in found {
        for deid in &deidentifiers {
            LARGEST.store(0, Ordering::Relaxed);
            let _ = deid.deidentify(&bytes);
            let largest = LARGEST.load(Ordering::Relaxed);
            // A few times the file (output buffers, decoded frames), never a declared length.
            assert!(
                largest <= 64 * bytes.len() + (1 << 20),
                "{name}: an allocation of {largest} bytes for a {} byte file",
                bytes.len()
            );
        }
    }
}
