//! Building inclusion and consistency proofs (RFC 9162 §2.1.3.1 and §2.1.4.1)
//! from the hashes of perfect subtrees, which is all that a tiled log stores.

use crate::hash::{Hash, node_hash};
use crate::tiles::StoreError;

/// Source of the hashes of perfect (complete) subtrees of the log's tree.
pub trait NodeReader {
    /// The root of the perfect subtree of `2^level` leaves whose first leaf is
    /// `index << level`.
    fn node(&self, level: u8, index: u64) -> Result<Hash, StoreError>;
}

/// The largest power of two strictly smaller than `n` (`n >= 2`).
fn split_point(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// `MTH(D[start:end])` for a range that RFC 9162's recursion produces: `start`
/// is a multiple of a power of two at least as large as `end - start`. The
/// range is cut into perfect subtrees (largest first) which are folded from
/// the right.
pub fn range_root(reader: &dyn NodeReader, start: u64, end: u64) -> Result<Hash, StoreError> {
    if end <= start {
        return Ok(Hash::empty_root());
    }
    let mut parts = Vec::new();
    let mut cursor = start;
    let width = end - start;
    for level in (0..64u8).rev() {
        if width & (1 << level) != 0 {
            parts.push(reader.node(level, cursor >> level)?);
            cursor += 1 << level;
        }
    }
    let mut acc = parts.pop().unwrap_or_else(Hash::empty_root);
    while let Some(left) = parts.pop() {
        acc = node_hash(&left.0, &acc.0);
    }
    Ok(acc)
}

/// The audit path of leaf `index` in the tree of `size` leaves, ordered from
/// the leaf's sibling up to the root's child.
pub fn inclusion_proof(
    reader: &dyn NodeReader,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, StoreError> {
    if index >= size {
        return Err(StoreError::OutOfRange { index, size });
    }
    let (mut lo, mut hi) = (0, size);
    let mut top_down = Vec::new();
    while hi - lo > 1 {
        let k = split_point(hi - lo);
        if index < lo + k {
            top_down.push(range_root(reader, lo + k, hi)?);
            hi = lo + k;
        } else {
            top_down.push(range_root(reader, lo, lo + k)?);
            lo += k;
        }
    }
    top_down.reverse();
    Ok(top_down)
}

/// The consistency proof from the tree of `old_size` leaves to the tree of
/// `new_size` leaves (`PROOF(m, D_n)`); empty when the sizes are equal.
pub fn consistency_proof(
    reader: &dyn NodeReader,
    old_size: u64,
    new_size: u64,
) -> Result<Vec<Hash>, StoreError> {
    if old_size == 0 || old_size > new_size {
        return Err(StoreError::OutOfRange {
            index: old_size,
            size: new_size,
        });
    }
    let (mut lo, mut hi) = (0, new_size);
    let mut m = old_size;
    let mut complete = true;
    let mut top_down = Vec::new();
    while m != hi - lo {
        let k = split_point(hi - lo);
        if m <= k {
            top_down.push(range_root(reader, lo + k, hi)?);
            hi = lo + k;
        } else {
            top_down.push(range_root(reader, lo, lo + k)?);
            lo += k;
            m -= k;
            complete = false;
        }
    }
    if !complete {
        top_down.push(range_root(reader, lo, hi)?);
    }
    top_down.reverse();
    Ok(top_down)
}
