//! Naming rules for parties and federations.

use crate::Error;

/// The longest allowed name (a DNS label).
const MAX_NAME_LEN: usize = 63;

/// Check that `name` is a valid party name.
///
/// A party name becomes the certificate's common name, its DNS subjectAltName
/// and the stem of its file names, so it must be a valid DNS label: 1 to 63
/// characters of `a-z`, `0-9` and `-`, not starting or ending with `-`, with at
/// least one letter (an all-digit label is not a valid TLS server name).
/// `ca` is reserved because `<party>.crt` would collide with `ca.crt`.
pub fn validate_party_name(name: &str) -> Result<(), Error> {
    validate_name("party", name)?;
    if name == "ca" {
        return Err(invalid(
            "party",
            name,
            "reserved (its files would collide with ca.crt)",
        ));
    }
    Ok(())
}

/// Check a federation name: the same rules as a party name, without reserved words.
pub(crate) fn validate_federation_name(name: &str) -> Result<(), Error> {
    validate_name("federation", name)
}

fn validate_name(kind: &'static str, name: &str) -> Result<(), Error> {
    if name.is_empty() {
        return Err(invalid(kind, name, "empty"));
    }
    if name.len() > MAX_NAME_LEN {
        return Err(invalid(kind, name, "longer than 63 characters"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err(invalid(
            kind,
            name,
            "contains a character other than a-z, 0-9 or '-'",
        ));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err(invalid(kind, name, "starts or ends with '-'"));
    }
    if !name.bytes().any(|b| b.is_ascii_lowercase()) {
        return Err(invalid(kind, name, "has no letter"));
    }
    Ok(())
}

fn invalid(kind: &'static str, name: &str, reason: &'static str) -> Error {
    Error::InvalidName {
        kind,
        name: name.to_owned(),
        reason,
    }
}
