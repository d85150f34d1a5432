//! The profile options of PS3.15 Annex E that a de-identification claims.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::error::{DeidError, Result};

/// An option of the Basic Application Level Confidentiality Profile, with
/// its CID 7050 code (scheme `DCM`) for `DeidentificationMethodCodeSequence`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProfileOption {
    /// Retain Safe Private Option (113111).
    RetainSafePrivate,
    /// Retain UIDs Option (113110).
    RetainUids,
    /// Retain Device Identity Option (113109).
    RetainDeviceIdentity,
    /// Retain Institution Identity Option (113112).
    RetainInstitutionIdentity,
    /// Retain Patient Characteristics Option (113108).
    RetainPatientCharacteristics,
    /// Retain Longitudinal Temporal Information with Full Dates Option (113106).
    RetainLongitudinalFullDates,
    /// Retain Longitudinal Temporal Information with Modified Dates Option
    /// (113107): dates shift by a keyed per-patient offset.
    RetainLongitudinalModifiedDates,
    /// Clean Descriptors Option (113105).
    CleanDescriptors,
    /// Clean Structured Content Option (113104).
    CleanStructuredContent,
    /// Clean Graphics Option (113103).
    CleanGraphics,
    /// Clean Pixel Data Option (113101): burned-in text is blanked.
    CleanPixelData,
}

impl ProfileOption {
    /// The options that have a column in Table E.1-1, in the table's order.
    pub const TABLE_COLUMNS: [ProfileOption; 10] = [
        Self::RetainSafePrivate,
        Self::RetainUids,
        Self::RetainDeviceIdentity,
        Self::RetainInstitutionIdentity,
        Self::RetainPatientCharacteristics,
        Self::RetainLongitudinalFullDates,
        Self::RetainLongitudinalModifiedDates,
        Self::CleanDescriptors,
        Self::CleanStructuredContent,
        Self::CleanGraphics,
    ];

    /// The `annex-e.csv` column that carries this option (none for Clean Pixel Data).
    pub fn table_column(self) -> Option<&'static str> {
        Some(match self {
            Self::RetainSafePrivate => "retain_safe_private",
            Self::RetainUids => "retain_uids",
            Self::RetainDeviceIdentity => "retain_device_identity",
            Self::RetainInstitutionIdentity => "retain_institution_identity",
            Self::RetainPatientCharacteristics => "retain_patient_characteristics",
            Self::RetainLongitudinalFullDates => "retain_longitudinal_full_dates",
            Self::RetainLongitudinalModifiedDates => "retain_longitudinal_modified_dates",
            Self::CleanDescriptors => "clean_descriptors",
            Self::CleanStructuredContent => "clean_structured_content",
            Self::CleanGraphics => "clean_graphics",
            Self::CleanPixelData => return None,
        })
    }

    /// CID 7050 code value.
    pub fn code(self) -> &'static str {
        match self {
            Self::CleanPixelData => "113101",
            Self::CleanGraphics => "113103",
            Self::CleanStructuredContent => "113104",
            Self::CleanDescriptors => "113105",
            Self::RetainLongitudinalFullDates => "113106",
            Self::RetainLongitudinalModifiedDates => "113107",
            Self::RetainPatientCharacteristics => "113108",
            Self::RetainDeviceIdentity => "113109",
            Self::RetainUids => "113110",
            Self::RetainSafePrivate => "113111",
            Self::RetainInstitutionIdentity => "113112",
        }
    }

    /// CID 7050 code meaning.
    pub fn meaning(self) -> &'static str {
        match self {
            Self::CleanPixelData => "Clean Pixel Data Option",
            Self::CleanGraphics => "Clean Graphics Option",
            Self::CleanStructuredContent => "Clean Structured Content Option",
            Self::CleanDescriptors => "Clean Descriptors Option",
            Self::RetainLongitudinalFullDates => {
                "Retain Longitudinal Temporal Information Full Dates Option"
            }
            Self::RetainLongitudinalModifiedDates => {
                "Retain Longitudinal Temporal Information Modified Dates Option"
            }
            Self::RetainPatientCharacteristics => "Retain Patient Characteristics Option",
            Self::RetainDeviceIdentity => "Retain Device Identity Option",
            Self::RetainUids => "Retain UIDs Option",
            Self::RetainSafePrivate => "Retain Safe Private Option",
            Self::RetainInstitutionIdentity => "Retain Institution Identity Option",
        }
    }
}

/// Code and meaning of the Basic Application Confidentiality Profile itself.
pub const BASIC_PROFILE_CODE: (&str, &str) =
    ("113100", "Basic Application Confidentiality Profile");

/// A private attribute known to carry no identifying information, kept when
/// [`ProfileOption::RetainSafePrivate`] is claimed. Private attributes are
/// matched by their creator, group and element offset (the low byte).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SafePrivate {
    /// Private Creator value of the block.
    pub creator: String,
    /// Odd group number.
    pub group: u16,
    /// Element number within the block (`0x00..=0xFF`).
    pub offset: u8,
}

/// What a de-identification claims: the Basic Profile plus these options.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Options {
    claimed: BTreeSet<ProfileOption>,
    /// Private attributes kept under Retain Safe Private (empty by default:
    /// no private attribute is trusted unless listed here).
    pub safe_private: Vec<SafePrivate>,
    /// Put a keyed pseudonym in `PatientID` (instead of an empty value), so
    /// that studies of one patient stay linkable without the key.
    pub pseudonymous_patient_id: bool,
}

impl Options {
    /// The Basic Profile alone, with no option.
    pub fn basic() -> Self {
        Self {
            claimed: BTreeSet::new(),
            safe_private: Vec::new(),
            pseudonymous_patient_id: false,
        }
    }

    /// The profile used before data can train a model: Basic Profile, Retain
    /// Longitudinal Temporal Information with Modified Dates, Retain Device
    /// Identity, Retain Patient Characteristics, Clean Descriptors and Clean
    /// Pixel Data, with a pseudonymous Patient ID.
    pub fn training() -> Self {
        Self {
            claimed: [
                ProfileOption::RetainLongitudinalModifiedDates,
                ProfileOption::RetainDeviceIdentity,
                ProfileOption::RetainPatientCharacteristics,
                ProfileOption::CleanDescriptors,
                ProfileOption::CleanPixelData,
            ]
            .into_iter()
            .collect(),
            safe_private: Vec::new(),
            pseudonymous_patient_id: true,
        }
    }

    /// Claim one more option.
    pub fn with(mut self, option: ProfileOption) -> Self {
        self.claimed.insert(option);
        self
    }

    /// Stop claiming an option.
    pub fn without(mut self, option: ProfileOption) -> Self {
        self.claimed.remove(&option);
        self
    }

    /// Whether `option` is claimed.
    pub fn claims(&self, option: ProfileOption) -> bool {
        self.claimed.contains(&option)
    }

    /// The claimed options.
    pub fn claimed(&self) -> impl Iterator<Item = ProfileOption> + '_ {
        self.claimed.iter().copied()
    }

    /// Refuse combinations the standard excludes.
    pub fn validate(&self) -> Result<()> {
        if self.claims(ProfileOption::RetainLongitudinalFullDates)
            && self.claims(ProfileOption::RetainLongitudinalModifiedDates)
        {
            return Err(DeidError::ConflictingOptions(
                "Retain Longitudinal Temporal Information with Full Dates",
                "with Modified Dates",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTIONS_CSV: &str = include_str!("../data/options.csv");

    #[test]
    fn codes_and_columns_match_the_shipped_options_table() {
        let all = ProfileOption::TABLE_COLUMNS
            .into_iter()
            .chain([ProfileOption::CleanPixelData]);
        for option in all {
            let line = OPTIONS_CSV
                .lines()
                .find(|l| l.contains(&format!(",{},", option.code())))
                .unwrap_or_else(|| panic!("{option:?} code missing from options.csv"));
            assert!(line.contains(option.meaning()), "{line}");
            let column = option.table_column().unwrap_or("");
            assert!(line.starts_with(&format!("{column},")), "{line}");
        }
    }

    #[test]
    fn full_and_modified_dates_exclude_each_other() {
        let options = Options::basic()
            .with(ProfileOption::RetainLongitudinalFullDates)
            .with(ProfileOption::RetainLongitudinalModifiedDates);
        assert!(options.validate().is_err());
        assert!(Options::training().validate().is_ok());
    }
}
