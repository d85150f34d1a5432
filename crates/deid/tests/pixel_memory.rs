//! Pixel cleaning holds at most about its memory budget of decoded pixels: an image larger than
//! the budget is cleaned in runs of frames, with the same result as in one run. This test binary
//! counts the bytes it has allocated and not freed, and keeps their peak.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use deid::{Deidentifier, Options};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
/// One measurement at a time: the counters are the whole process's.
static MEASURING: Mutex<()> = Mutex::new(());

fn grew(by: usize) {
    let live = LIVE.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size >= layout.size() {
            grew(new_size - layout.size());
        } else {
            LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// De-identify `bytes` (training profile, pixels cleaned) holding at most `budget` bytes of
/// decoded pixels: the output, and the peak of live heap bytes above what was live before.
fn clean(bytes: &[u8], budget: usize) -> (Vec<u8>, usize) {
    let deid = Deidentifier::new(common::key(), Options::training())
        .expect("options")
        .with_pixel_memory(budget);
    let _alone = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let out = deid.deidentify(bytes).expect("cleaned").bytes;
    (out, PEAK.load(Ordering::Relaxed) - before)
}

const MIB: usize = 1 << 20;

#[test]
fn a_cine_loop_larger_than_the_budget_is_cleaned_in_runs_within_it() {
    // 120 frames of 640 x 480 colour, JPEG Baseline: 6 MB stored, 106 MiB decoded.
    let path = common::fixtures_dir().join("color3d_jpeg_baseline.dcm");
    let bytes = std::fs::read(path).expect("fixture");
    let (whole, whole_peak) = clean(&bytes, deid::pixel::DEFAULT_PIXEL_MEMORY);
    let (runs, runs_peak) = clean(&bytes, 8 * MIB);
    assert!(whole == runs, "runs of frames changed the output");
    // The budget, plus what does not depend on the frame count's decoded size but on the stored
    // one (6 MB here): the parsed file, the decoder's copy of the stored frames while it decodes
    // one, the re-encoded frames and the output file written from them, a little more.
    let ceiling = 8 * MIB + 6 * bytes.len();
    eprintln!(
        "peak live heap: {} MiB in one run, {} MiB in runs of 8 MiB (ceiling {} MiB)",
        whole_peak / MIB,
        runs_peak / MIB,
        ceiling / MIB
    );
    assert!(
        runs_peak < ceiling,
        "{} MiB live at the peak with an 8 MiB budget",
        runs_peak / MIB
    );
    assert!(
        whole_peak > 106 * MIB,
        "the whole loop decoded at once should take its 106 MiB ({} MiB)",
        whole_peak / MIB
    );
}

#[test]
fn every_multiframe_fixture_comes_out_the_same_one_frame_at_a_time() {
    let mut multiframe = 0;
    for (name, bytes) in common::fixtures() {
        let file = deid::parse(&bytes).expect("fixture parses");
        if deid::pixel::image::frame_count(&file) < 2 {
            continue;
        }
        multiframe += 1;
        let (whole, _) = clean(&bytes, deid::pixel::DEFAULT_PIXEL_MEMORY);
        let (one_by_one, _) = clean(&bytes, 1);
        assert!(
            whole == one_by_one,
            "{name}: cleaned differently frame by frame"
        );
    }
    assert!(multiframe >= 4, "{multiframe} multi-frame fixtures");
}
