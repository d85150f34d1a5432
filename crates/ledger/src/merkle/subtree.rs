//! Subtree proofs of the Merkle Tree Certificates draft
//! (`draft-ietf-plants-merkle-tree-certs`, "Subtrees"): a subtree `[start, end)`
//! is the Merkle tree over the leaves `start..end`, and is valid when
//! `start <= end` and `start` is a multiple of `BIT_CEIL(end - start)`.

use super::verify::{ProofError, root_from_inclusion_proof};
use crate::hash::{Hash, node_hash};

/// Whether `[start, end)` is a valid subtree (computed without overflow).
pub fn is_valid_subtree(start: u64, end: u64) -> bool {
    if start > end {
        return false;
    }
    if start == 0 || start == end {
        return true;
    }
    let width = u128::from(end - start).next_power_of_two();
    u128::from(start) % width == 0
}

/// Verify that `leaf_hash` is leaf `leaf_index` of the subtree `[start, end)`
/// whose root is `subtree_root`: an ordinary inclusion proof of index
/// `leaf_index - start` in a tree of `end - start` leaves.
pub fn verify_subtree_inclusion<P: AsRef<[u8]>>(
    leaf_index: u64,
    start: u64,
    end: u64,
    leaf_hash: &[u8],
    proof: &[P],
    subtree_root: &[u8],
) -> Result<(), ProofError> {
    if !is_valid_subtree(start, end) {
        return Err(ProofError::InvalidSubtree { start, end });
    }
    if leaf_index < start || leaf_index >= end {
        return Err(ProofError::LeafOutsideSubtree {
            index: leaf_index,
            start,
            end,
        });
    }
    let computed = root_from_inclusion_proof(leaf_index - start, end - start, leaf_hash, proof)?;
    if computed == subtree_root {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

/// Verify that the subtree `[start, end)` with root `subtree_root` is part of
/// the tree of `tree_size` leaves with root `tree_root` (the draft's
/// "Verifying a Subtree Consistency Proof").
pub fn verify_subtree_consistency<P: AsRef<[u8]>>(
    start: u64,
    end: u64,
    tree_size: u64,
    proof: &[P],
    subtree_root: &[u8],
    tree_root: &[u8],
) -> Result<(), ProofError> {
    if !is_valid_subtree(start, end) {
        return Err(ProofError::InvalidSubtree { start, end });
    }
    if end > tree_size {
        return Err(ProofError::SubtreeBeyondTree {
            end,
            size: tree_size,
        });
    }
    if start == end {
        return if proof.is_empty() && subtree_root == Hash::empty_root().as_ref() {
            Ok(())
        } else {
            Err(ProofError::EmptySubtree)
        };
    }
    let mut fn_ = start;
    let mut sn = end - 1;
    let mut tn = tree_size - 1;
    if sn == tn {
        while fn_ != sn {
            fn_ >>= 1;
            sn >>= 1;
            tn >>= 1;
        }
    } else {
        while fn_ != sn && sn & 1 == 1 {
            fn_ >>= 1;
            sn >>= 1;
            tn >>= 1;
        }
    }
    let mut rest = proof.iter().map(AsRef::as_ref);
    let (mut fr, mut sr) = if fn_ == sn {
        (subtree_root.to_vec(), subtree_root.to_vec())
    } else {
        let first = rest.next().ok_or(ProofError::EmptyProof)?;
        (first.to_vec(), first.to_vec())
    };
    for c in rest {
        if tn == 0 {
            return Err(ProofError::WrongProofSize);
        }
        if sn & 1 == 1 || sn == tn {
            if fn_ < sn {
                fr = node_hash(c, &fr).0.to_vec();
            }
            sr = node_hash(c, &sr).0.to_vec();
            while sn & 1 == 0 && sn != 0 {
                fn_ >>= 1;
                sn >>= 1;
                tn >>= 1;
            }
        } else {
            sr = node_hash(&sr, c).0.to_vec();
        }
        fn_ >>= 1;
        sn >>= 1;
        tn >>= 1;
    }
    if tn != 0 {
        return Err(ProofError::WrongProofSize);
    }
    if fr == subtree_root && sr == tree_root {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}
