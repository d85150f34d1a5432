//! Validated names: the only text that entries carry.

use std::fmt;
use std::str::FromStr;

use super::error::ValueError;

/// A party of the federation (the coordinator, a hospital, an auditor).
///
/// The same rule as the PKI's party names (DNS labels): 1 to 63 characters of
/// `a-z`, `0-9` and `-`, not starting or ending with `-`, with at least one
/// letter. It is the only free-form text an entry can hold, and it is too
/// constrained to carry a patient's record.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PartyId(String);

impl PartyId {
    /// Longest identifier.
    pub const MAX_LEN: usize = 63;

    /// Validate a party identifier.
    pub fn new(name: &str) -> Result<Self, ValueError> {
        let ok = !name.is_empty()
            && name.len() <= Self::MAX_LEN
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !name.starts_with('-')
            && !name.ends_with('-')
            && name.bytes().any(|b| b.is_ascii_lowercase());
        if ok {
            Ok(Self(name.to_string()))
        } else {
            Err(ValueError::PartyId(name.to_string()))
        }
    }

    /// The identifier.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for PartyId {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl TryFrom<String> for PartyId {
    type Error = ValueError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(&s)
    }
}

impl From<PartyId> for String {
    fn from(id: PartyId) -> Self {
        id.0
    }
}

impl fmt::Display for PartyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for PartyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// The identity of a log: the first line of its checkpoints and the name of
/// its key (C2SP tlog-checkpoint), e.g. `cohort.example/heart-ledger`.
///
/// 1 to 255 printable ASCII characters without spaces or `+`. Every entry
/// signature covers it, so an entry cannot be replayed into another log.
#[derive(Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct LogOrigin(String);

impl LogOrigin {
    /// Validate an origin.
    pub fn new(origin: &str) -> Result<Self, ValueError> {
        let ok = !origin.is_empty()
            && origin.len() <= 255
            && origin.bytes().all(|b| b.is_ascii_graphic() && b != b'+');
        if ok {
            Ok(Self(origin.to_string()))
        } else {
            Err(ValueError::Origin(origin.to_string()))
        }
    }

    /// The origin line.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The signed-note key name of a party's witness for this log:
    /// `<origin>/witness/<party>`.
    pub fn witness_key_name(&self, party: &PartyId) -> String {
        format!("{}/witness/{}", self.0, party)
    }
}

impl FromStr for LogOrigin {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl TryFrom<String> for LogOrigin {
    type Error = ValueError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(&s)
    }
}

impl From<LogOrigin> for String {
    fn from(o: LogOrigin) -> Self {
        o.0
    }
}

impl fmt::Display for LogOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for LogOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn party_ids_admit_only_dns_labels() {
        for ok in ["cleveland", "long-beach-va", "h1", "a"] {
            assert!(PartyId::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "John Smith",
            "john.smith",
            "JOHN",
            "-x",
            "x-",
            "123",
            "dob:1970-01-01",
            &"a".repeat(64),
        ] {
            assert!(PartyId::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn origins_are_printable_without_spaces_or_plus() {
        assert!(LogOrigin::new("cohort.example/ledger").is_ok());
        for bad in ["", "a b", "a+b", "tab\there", "é"] {
            assert!(LogOrigin::new(bad).is_err(), "{bad}");
        }
    }
}
