//! Verification of inclusion and consistency proofs (RFC 9162 §2.1.3.2 and
//! §2.1.4.2), with the edge-case policy of `transparency-dev/merkle/proof`.
//!
//! Hashes are taken as byte slices of any length: the algorithms hash what
//! they are given, and only the leaf hash must be exactly 32 bytes. The
//! policy, in the order it is applied:
//!
//! * inclusion: `leaf_index >= tree_size`, a leaf hash that is not 32 bytes,
//!   or a proof longer or shorter than the algorithm consumes are errors;
//!   otherwise the recomputed root must equal `root` byte for byte;
//! * consistency: `size2 < size1` is an error; any proof from size 0 is an
//!   error (even 0 → 0); `size1 == size2` succeeds only with an empty proof and
//!   byte-equal roots (of any length); `size1 < size2` with an empty proof is
//!   an error; otherwise both reconstructed roots must match and the proof
//!   must be consumed exactly.

use crate::hash::{HASH_SIZE, node_hash};

/// Why a Merkle proof was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The leaf index is not below the tree size.
    #[error("leaf index {index} is not below tree size {size}")]
    IndexOutOfRange {
        /// The claimed leaf index.
        index: u64,
        /// The claimed tree size.
        size: u64,
    },
    /// The leaf hash is not 32 bytes long.
    #[error("leaf hash is {0} bytes, not 32")]
    LeafHashLength(usize),
    /// The proof has more or fewer hashes than the tree shape needs.
    #[error("proof has the wrong number of hashes")]
    WrongProofSize,
    /// The second tree is smaller than the first.
    #[error("second tree size {size2} is smaller than first tree size {size1}")]
    SizesReversed {
        /// First (older) size.
        size1: u64,
        /// Second (newer) size.
        size2: u64,
    },
    /// Consistency with the empty tree proves nothing.
    #[error("a consistency proof from the empty tree is meaningless")]
    FromEmptyTree,
    /// Equal sizes need an empty proof.
    #[error("sizes are equal but the proof is not empty")]
    NonEmptyProofForEqualSizes,
    /// Different sizes need a non-empty proof.
    #[error("sizes differ but the proof is empty")]
    EmptyProof,
    /// The proof does not rebuild the expected root.
    #[error("the proof does not rebuild the expected root")]
    RootMismatch,
    /// A subtree interval `[start, end)` is not aligned as the draft requires.
    #[error("[{start}, {end}) is not a valid subtree")]
    InvalidSubtree {
        /// First leaf of the subtree.
        start: u64,
        /// One past the last leaf.
        end: u64,
    },
    /// The leaf is outside the subtree.
    #[error("leaf index {index} is outside the subtree [{start}, {end})")]
    LeafOutsideSubtree {
        /// The claimed leaf index.
        index: u64,
        /// First leaf of the subtree.
        start: u64,
        /// One past the last leaf.
        end: u64,
    },
    /// The subtree ends after the tree.
    #[error("subtree end {end} is beyond tree size {size}")]
    SubtreeBeyondTree {
        /// One past the last leaf of the subtree.
        end: u64,
        /// The tree size.
        size: u64,
    },
    /// An empty subtree must have the empty hash as its root.
    #[error("an empty subtree must hash to SHA-256(\"\") with an empty proof")]
    EmptySubtree,
}

/// Recompute the root from an inclusion proof (RFC 9162 §2.1.3.2 steps 1-6),
/// without comparing it to anything.
pub(crate) fn root_from_inclusion_proof<P: AsRef<[u8]>>(
    leaf_index: u64,
    tree_size: u64,
    leaf_hash: &[u8],
    proof: &[P],
) -> Result<Vec<u8>, ProofError> {
    if leaf_index >= tree_size {
        return Err(ProofError::IndexOutOfRange {
            index: leaf_index,
            size: tree_size,
        });
    }
    if leaf_hash.len() != HASH_SIZE {
        return Err(ProofError::LeafHashLength(leaf_hash.len()));
    }
    let mut fn_ = leaf_index;
    let mut sn = tree_size - 1;
    let mut r = leaf_hash.to_vec();
    for p in proof {
        if sn == 0 {
            return Err(ProofError::WrongProofSize);
        }
        let p = p.as_ref();
        if fn_ & 1 == 1 || fn_ == sn {
            r = node_hash(p, &r).0.to_vec();
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            r = node_hash(&r, p).0.to_vec();
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::WrongProofSize);
    }
    Ok(r)
}

/// Verify that `leaf_hash` is the leaf at `leaf_index` of the tree of
/// `tree_size` leaves whose root is `root`.
pub fn verify_inclusion<P: AsRef<[u8]>>(
    leaf_index: u64,
    tree_size: u64,
    leaf_hash: &[u8],
    proof: &[P],
    root: &[u8],
) -> Result<(), ProofError> {
    let computed = root_from_inclusion_proof(leaf_index, tree_size, leaf_hash, proof)?;
    if computed == root {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

/// Verify that the tree of `size1` leaves with root `root1` is a prefix of
/// the tree of `size2` leaves with root `root2`.
pub fn verify_consistency<P: AsRef<[u8]>>(
    size1: u64,
    size2: u64,
    proof: &[P],
    root1: &[u8],
    root2: &[u8],
) -> Result<(), ProofError> {
    if size2 < size1 {
        return Err(ProofError::SizesReversed { size1, size2 });
    }
    if size1 == 0 {
        return Err(ProofError::FromEmptyTree);
    }
    if size1 == size2 {
        if !proof.is_empty() {
            return Err(ProofError::NonEmptyProofForEqualSizes);
        }
        return if root1 == root2 {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        };
    }
    if proof.is_empty() {
        return Err(ProofError::EmptyProof);
    }
    // RFC 9162 §2.1.4.2: when size1 is a power of two, root1 is the first node.
    let mut path: Vec<&[u8]> = Vec::with_capacity(proof.len() + 1);
    if size1.is_power_of_two() {
        path.push(root1);
    }
    path.extend(proof.iter().map(AsRef::as_ref));

    let mut fn_ = size1 - 1;
    let mut sn = size2 - 1;
    while fn_ & 1 == 1 {
        fn_ >>= 1;
        sn >>= 1;
    }
    let mut fr = path[0].to_vec();
    let mut sr = path[0].to_vec();
    for c in &path[1..] {
        if sn == 0 {
            return Err(ProofError::WrongProofSize);
        }
        if fn_ & 1 == 1 || fn_ == sn {
            fr = node_hash(c, &fr).0.to_vec();
            sr = node_hash(c, &sr).0.to_vec();
            while fn_ & 1 == 0 && fn_ != 0 {
                fn_ >>= 1;
                sn >>= 1;
            }
        } else {
            sr = node_hash(&sr, c).0.to_vec();
        }
        fn_ >>= 1;
        sn >>= 1;
    }
    if sn != 0 {
        return Err(ProofError::WrongProofSize);
    }
    if fr == root1 && sr == root2 {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}
