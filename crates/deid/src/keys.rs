//! Keyed derivations: replacement UIDs, per-patient date offsets and
//! pseudonyms, all HMAC-SHA256 under the hospital's secret.
//!
//! The same secret gives the same outputs across files, runs and days;
//! without it, an output cannot be linked back to its original.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::{DeidError, Result};

type HmacSha256 = Hmac<Sha256>;

/// Fewest days a patient's dates move back.
pub const MIN_SHIFT_DAYS: i64 = 365;
/// Most days a patient's dates move back.
pub const MAX_SHIFT_DAYS: i64 = 3652;

/// The hospital's de-identification secret (never leaves the hospital).
#[derive(Clone)]
pub struct DeidKey {
    uid: [u8; 32],
    date: [u8; 32],
    pseudonym: [u8; 32],
}

impl std::fmt::Debug for DeidKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeidKey(..)")
    }
}

impl DeidKey {
    /// Shortest secret accepted, in bytes.
    pub const MIN_LEN: usize = 16;

    /// Derive the key from a secret of at least [`Self::MIN_LEN`] bytes.
    pub fn new(secret: &[u8]) -> Result<Self> {
        if secret.len() < Self::MIN_LEN {
            return Err(DeidError::KeyTooShort {
                min: Self::MIN_LEN,
                got: secret.len(),
            });
        }
        Ok(Self {
            uid: mac(secret, b"cohort-deid/v1/uid"),
            date: mac(secret, b"cohort-deid/v1/date-offset"),
            pseudonym: mac(secret, b"cohort-deid/v1/pseudonym"),
        })
    }

    /// The replacement of a UID: `2.25.` followed by a 128-bit integer laid
    /// out as a version-8 UUID (RFC 9562), so the result is a valid UID of at
    /// most 44 characters.
    pub fn uid(&self, original: &str) -> String {
        let digest = mac(&self.uid, trim_uid(original).as_bytes());
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        bytes[6] = (bytes[6] & 0x0F) | 0x80;
        bytes[8] = (bytes[8] & 0x3F) | 0x80;
        format!("2.25.{}", u128::from_be_bytes(bytes))
    }

    /// Days (negative) by which every date of this patient moves, between
    /// [`MIN_SHIFT_DAYS`] and [`MAX_SHIFT_DAYS`] back.
    pub fn date_offset_days(&self, patient: &str) -> i64 {
        let digest = mac(&self.date, patient.as_bytes());
        let mut head = [0u8; 8];
        head.copy_from_slice(&digest[..8]);
        let span = (MAX_SHIFT_DAYS - MIN_SHIFT_DAYS + 1) as u64;
        -(MIN_SHIFT_DAYS + (u64::from_be_bytes(head) % span) as i64)
    }

    /// A pseudonym of `value` within `domain` (e.g. `PatientID`): upper-case
    /// hex, `len` characters (at most 64).
    pub fn pseudonym(&self, domain: &str, value: &str, len: usize) -> String {
        let mut input = Vec::with_capacity(domain.len() + value.len() + 1);
        input.extend_from_slice(domain.as_bytes());
        input.push(0);
        input.extend_from_slice(value.as_bytes());
        let digest = mac(&self.pseudonym, &input);
        let mut text: String = digest.iter().map(|b| format!("{b:02X}")).collect();
        text.truncate(len);
        text
    }
}

/// A UID as stored may carry a trailing NUL or space pad.
pub fn trim_uid(uid: &str) -> &str {
    uid.trim_end_matches(['\0', ' ']).trim_start()
}

fn mac(key: &[u8], message: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(secret: &[u8]) -> DeidKey {
        DeidKey::new(secret).expect("long enough")
    }

    #[test]
    fn same_uid_and_key_give_the_same_replacement() {
        let a = key(b"0123456789abcdef0123");
        let b = key(b"0123456789abcdef0123");
        assert_eq!(a.uid("1.2.3.4"), b.uid("1.2.3.4\0"));
        assert_ne!(a.uid("1.2.3.4"), a.uid("1.2.3.5"));
    }

    #[test]
    fn another_key_gives_another_uid() {
        let a = key(b"0123456789abcdef0123");
        let b = key(b"0123456789abcdef0124");
        assert_ne!(a.uid("1.2.3.4"), b.uid("1.2.3.4"));
    }

    #[test]
    fn replacement_uids_are_valid_2_25_uids() {
        let k = key(b"0123456789abcdef0123");
        for n in 0..200 {
            let uid = k.uid(&format!("1.2.840.99999.{n}"));
            assert!(uid.starts_with("2.25."), "{uid}");
            assert!(uid.len() <= 64, "{uid}");
            let number = &uid[5..];
            assert!(number.chars().all(|c| c.is_ascii_digit()));
            assert!(!number.starts_with('0'), "{uid}");
        }
    }

    #[test]
    fn date_offsets_stay_within_bounds_and_depend_on_the_patient() {
        let k = key(b"0123456789abcdef0123");
        let offsets: Vec<i64> = (0..100)
            .map(|n| k.date_offset_days(&format!("patient-{n}")))
            .collect();
        assert!(
            offsets
                .iter()
                .all(|d| (-MAX_SHIFT_DAYS..=-MIN_SHIFT_DAYS).contains(d))
        );
        assert!(offsets.iter().any(|d| *d != offsets[0]));
        assert_eq!(k.date_offset_days("p"), k.date_offset_days("p"));
    }

    #[test]
    fn short_secrets_are_refused() {
        assert!(DeidKey::new(b"short").is_err());
    }

    #[test]
    fn pseudonyms_are_hex_of_the_requested_length() {
        let k = key(b"0123456789abcdef0123");
        let p = k.pseudonym("PatientID", "12345", 16);
        assert_eq!(p.len(), 16);
        assert!(p.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(p, k.pseudonym("AccessionNumber", "12345", 16));
    }
}
