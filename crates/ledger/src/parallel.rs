//! Spreading independent work (signing, signature verification) over the
//! cores.

use std::thread;

/// The number of cores to spread work over.
pub(crate) fn cores() -> usize {
    thread::available_parallelism().map_or(1, |p| p.get())
}

/// `f(i)` for every `i` in `0..n`, on all available cores, in order (the
/// indices are split into one contiguous run per core).
pub(crate) fn map_indices<T, F>(n: usize, f: F) -> Vec<T>
where
    T: Send,
    F: Fn(usize) -> T + Sync,
{
    let threads = cores();
    if threads < 2 || n < 2 {
        return (0..n).map(f).collect();
    }
    let chunk = n.div_ceil(threads);
    let f = &f;
    thread::scope(|scope| {
        let handles: Vec<_> = (0..n)
            .step_by(chunk)
            .map(|start| {
                scope.spawn(move || (start..(start + chunk).min(n)).map(f).collect::<Vec<_>>())
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect()
    })
}
