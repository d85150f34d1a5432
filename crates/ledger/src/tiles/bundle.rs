//! Entry bundles: a sequence of entries, each prefixed by its length as a
//! big-endian `u16` (C2SP tlog-tiles, "Log entries").

use super::store::StoreError;

/// Largest entry a bundle can carry.
pub const MAX_ENTRY_SIZE: usize = u16::MAX as usize;

/// Append one length-prefixed entry to a bundle under construction.
pub fn push_entry(bundle: &mut Vec<u8>, entry: &[u8]) -> Result<(), StoreError> {
    let len = u16::try_from(entry.len()).map_err(|_| StoreError::EntryTooLarge(entry.len()))?;
    bundle.extend_from_slice(&len.to_be_bytes());
    bundle.extend_from_slice(entry);
    Ok(())
}

/// Split a bundle into its entries; `name` labels errors.
pub fn split_entries(bundle: &[u8], name: &str) -> Result<Vec<Vec<u8>>, StoreError> {
    let mut entries = Vec::new();
    let mut rest = bundle;
    while !rest.is_empty() {
        let corrupt = |reason: &str| StoreError::Corrupt {
            path: name.to_string(),
            reason: format!("{reason} after {} entries", entries.len()),
        };
        let (len, tail) = rest
            .split_first_chunk::<2>()
            .ok_or_else(|| corrupt("truncated length prefix"))?;
        let len = usize::from(u16::from_be_bytes(*len));
        if tail.len() < len {
            return Err(corrupt("truncated entry"));
        }
        let (entry, tail) = tail.split_at(len);
        entries.push(entry.to_vec());
        rest = tail;
    }
    Ok(entries)
}
