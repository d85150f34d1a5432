//! Keyed pseudonyms and per-patient date shifts. The key is generated once per node and kept in
//! the node's own store (table `secrets`); without it, pseudonyms cannot be linked back to
//! patients, nor shifted dates to real ones.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use sqlx::Row;

use crate::error::{Error, Result};
use crate::store::Store;

const KEY_NAME: &str = "gate-hmac-key";
/// Dates move by up to this many days either way.
pub const MAX_SHIFT_DAYS: i64 = 365;

/// The node's pseudonymisation key (32 bytes). Its `Debug` output hides it.
#[derive(Clone)]
pub struct PseudonymKey([u8; 32]);

impl std::fmt::Debug for PseudonymKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PseudonymKey(…)")
    }
}

impl PseudonymKey {
    /// A key from its bytes (tests; keys kept elsewhere).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        PseudonymKey(bytes)
    }

    /// The store's key, created on first use.
    pub async fn load_or_create(store: &Store) -> Result<Self> {
        let fresh: [u8; 32] = rand::random();
        sqlx::query(
            "INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
        )
        .bind(KEY_NAME)
        .bind(hex::encode(fresh))
        .execute(store.pool())
        .await?;
        let row = sqlx::query("SELECT value FROM secrets WHERE name = $1")
            .bind(KEY_NAME)
            .fetch_one(store.pool())
            .await?;
        let text: String = row.try_get("value")?;
        let bytes = hex::decode(text)
            .ok()
            .and_then(|b| <[u8; 32]>::try_from(b).ok())
            .ok_or_else(|| {
                Error::Corrupt("the pseudonymisation key in table secrets is malformed".into())
            })?;
        Ok(PseudonymKey(bytes))
    }

    fn mac(&self, purpose: &str, patient_id: &str) -> [u8; 32] {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(&self.0).expect("HMAC takes keys of any length");
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(patient_id.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The patient's pseudonym: HMAC-SHA256 of the id, 128 bits in hex.
    pub fn pseudonym(&self, patient_id: &str) -> String {
        hex::encode(&self.mac("pseudonym", patient_id)[..16])
    }

    /// The patient's date shift in days, in `-MAX_SHIFT_DAYS..=MAX_SHIFT_DAYS`, never 0.
    pub fn date_shift_days(&self, patient_id: &str) -> i64 {
        let bytes = self.mac("date-shift", patient_id);
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap_or_default());
        let span = u64::try_from(2 * MAX_SHIFT_DAYS).unwrap_or(730);
        let magnitude = i64::try_from(n % span / 2).unwrap_or(0) + 1;
        if n & 1 == 0 { magnitude } else { -magnitude }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pseudonyms_depend_on_the_key_and_hide_the_id() {
        let a = PseudonymKey::from_bytes([1; 32]);
        let b = PseudonymKey::from_bytes([2; 32]);
        assert_eq!(a.pseudonym("p1"), a.pseudonym("p1"));
        assert_ne!(a.pseudonym("p1"), a.pseudonym("p2"));
        assert_ne!(a.pseudonym("p1"), b.pseudonym("p1"));
        assert_eq!(a.pseudonym("p1").len(), 32);
        assert!(!format!("{a:?}").contains("01"));
    }

    #[test]
    fn date_shifts_are_bounded_nonzero_and_vary() {
        let key = PseudonymKey::from_bytes([7; 32]);
        let shifts: Vec<i64> = (0..200)
            .map(|i| key.date_shift_days(&format!("p{i}")))
            .collect();
        assert!(shifts.iter().all(|s| *s != 0 && s.abs() <= MAX_SHIFT_DAYS));
        assert!(shifts.iter().any(|s| *s > 0) && shifts.iter().any(|s| *s < 0));
    }
}
