//! What the fuzz targets' regression tests share: the inputs a target found, kept under a
//! crate's `tests/data/fuzz`, and the system allocator keeping the largest single request made.
//! A test binary that includes this module (it installs the allocator) can assert that no input
//! made it allocate what a lying length declares, even where the machine could have served it.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

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

/// Forget the largest request so far.
pub fn reset() {
    LARGEST.store(0, Ordering::Relaxed);
}

/// The largest request since the last [`reset`], in bytes.
pub fn largest() -> usize {
    LARGEST.load(Ordering::Relaxed)
}

/// The inputs under `crate_dir/tests/data/fuzz` (pass `env!("CARGO_MANIFEST_DIR")`): (file name,
/// bytes), sorted by name.
pub fn findings(crate_dir: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(crate_dir).join("tests/data/fuzz");
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
