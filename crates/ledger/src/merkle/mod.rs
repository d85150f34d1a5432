//! RFC 9162 Merkle tree proofs: building them from node hashes and checking
//! them (including the subtree proofs of the Merkle Tree Certificates draft).

mod prove;
mod subtree;
mod verify;

pub use prove::{NodeReader, consistency_proof, inclusion_proof, range_root};
pub use subtree::{is_valid_subtree, verify_subtree_consistency, verify_subtree_inclusion};
pub use verify::{ProofError, verify_consistency, verify_inclusion};
