//! The rule for entry signatures: Ed25519 checked with the cofactored
//! equation `[8][s]B = [8]R + [8][k]A` (ed25519-dalek's batch verification,
//! as in ZIP 215), whether one entry is checked or a million in batches, so
//! that both accept exactly the same signatures. Canonical `s` is required and
//! keys are admitted only if they are not of small order. Signatures that the
//! stricter cofactorless check would reject can only be made by the key's
//! holder, never forged by someone else.
//!
//! Checkpoints and cosignatures (C2SP notes) use the strict single check
//! instead, as other C2SP implementations do.

use ed25519_dalek::{Signature, verify_batch};

use crate::entry::PublicKey;
use crate::parallel::{cores, map_indices};

/// Most signatures checked together (batches gain little beyond).
const MAX_BATCH: usize = 1024;

/// Whether `key` signed `message`.
pub(crate) fn verify_one(key: &PublicKey, message: &[u8], signature: &[u8; 64]) -> bool {
    verify_batch(
        &[message],
        &[Signature::from_bytes(signature)],
        &[*key.verifying_key()],
    )
    .is_ok()
}

/// `item(i)` gives the key, message and signature of check `i`; returns
/// whether each holds, checking batches on all cores (a failed batch is
/// checked one by one to find the culprits).
pub(crate) fn verify_many<F>(n: usize, item: F) -> Vec<bool>
where
    F: Fn(usize) -> (PublicKey, Vec<u8>, [u8; 64]) + Sync,
{
    // A multiple of the core count, so that every core gets as many batches.
    let cores = cores();
    let batches = cores * n.div_ceil(cores * MAX_BATCH);
    let size = n.div_ceil(batches.max(1)).max(1);
    map_indices(n.div_ceil(size), |b| {
        let items: Vec<_> = (b * size..((b + 1) * size).min(n)).map(&item).collect();
        let messages: Vec<&[u8]> = items.iter().map(|(_, m, _)| m.as_slice()).collect();
        let signatures: Vec<Signature> = items
            .iter()
            .map(|(_, _, s)| Signature::from_bytes(s))
            .collect();
        let keys: Vec<_> = items.iter().map(|(k, _, _)| *k.verifying_key()).collect();
        if verify_batch(&messages, &signatures, &keys).is_ok() {
            vec![true; items.len()]
        } else {
            items.iter().map(|(k, m, s)| verify_one(k, m, s)).collect()
        }
    })
    .into_iter()
    .flatten()
    .collect()
}
