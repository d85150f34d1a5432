//! UID checks: a UID names stored objects, so it must be a real UID.

use crate::error::{ImagingError, Result};

/// `uid` trimmed of its padding, if it is a valid UID (digits and dots,
/// 1 to 64 characters, no empty component).
pub fn checked(uid: &str) -> Result<&str> {
    let uid = uid.trim_end_matches(['\0', ' ']).trim();
    let valid = !uid.is_empty()
        && uid.len() <= 64
        && uid
            .split('.')
            .all(|c| !c.is_empty() && c.chars().all(|ch| ch.is_ascii_digit()));
    if valid {
        Ok(uid)
    } else {
        Err(ImagingError::InvalidUid(uid.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_with_path_characters_are_refused() {
        assert_eq!(checked("1.2.3\0").ok(), Some("1.2.3"));
        for bad in ["", "1..2", "../etc", "1.2/3", "1.2.a"] {
            assert!(checked(bad).is_err(), "{bad}");
        }
    }
}
