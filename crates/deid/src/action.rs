//! What happens to one attribute: the table row's Basic Profile action,
//! overridden by the claimed options, with the compound codes (`X/Z`,
//! `Z/D`...) resolved for the ultrasound image IODs.

use dicom_core::Tag;
use dicom_dictionary_std::tags;

use crate::options::{Options, ProfileOption};
use crate::table::{Action, Rule};

/// The single thing done to an attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effective {
    /// Remove the attribute.
    Remove,
    /// Keep it with a zero-length value (an empty sequence for SQ).
    Empty,
    /// Replace its value with a dummy of its VR.
    Dummy,
    /// Keep it (sequences: keep and clean their items).
    Keep,
    /// Clean it: dates shift, text loses identifying words, sequences are cleaned.
    Clean,
    /// Replace its UIDs consistently (sequences: replace UIDs inside their items).
    Uid,
}

/// Attributes of Type 2 (must be present, may be empty) in the modules of
/// the US Image and US Multi-frame Image IODs. For those, `X/Z` and `X/Z/D`
/// resolve to `Z`; for every other attribute to `X`. No attribute with a
/// `/D` alternative is Type 1 in these IODs, so `Z/D` resolves to `Z` and
/// `X/D` to `X`.
const TYPE_2: [Tag; 11] = [
    tags::PATIENT_NAME,
    tags::PATIENT_ID,
    tags::PATIENT_BIRTH_DATE,
    tags::PATIENT_SEX,
    tags::STUDY_DATE,
    tags::STUDY_TIME,
    tags::REFERRING_PHYSICIAN_NAME,
    tags::STUDY_ID,
    tags::ACCESSION_NUMBER,
    tags::CONTENT_DATE,
    tags::CONTENT_TIME,
];

/// Resolve the action for `tag` covered by `rule` under `options`.
pub fn resolve(rule: &Rule, tag: Tag, options: &Options) -> Effective {
    let overrides: Vec<Action> = ProfileOption::TABLE_COLUMNS
        .iter()
        .filter(|o| options.claims(**o))
        .filter_map(|o| rule.option_action(*o))
        .collect();
    if overrides.contains(&Action::Clean) {
        return Effective::Clean;
    }
    if overrides.contains(&Action::Keep) {
        return Effective::Keep;
    }
    let type_2 = TYPE_2.contains(&tag);
    match rule.basic {
        Action::Dummy => Effective::Dummy,
        Action::Zero | Action::ZeroOrDummy => Effective::Empty,
        Action::Remove | Action::RemoveOrDummy => Effective::Remove,
        Action::Keep => Effective::Keep,
        Action::Clean => Effective::Clean,
        Action::Uid | Action::RemoveOrZeroOrUids => Effective::Uid,
        Action::RemoveOrZero | Action::RemoveOrZeroOrDummy if type_2 => Effective::Empty,
        Action::RemoveOrZero | Action::RemoveOrZeroOrDummy => Effective::Remove,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::ProfileTable;

    fn effective(tag: Tag, options: &Options) -> Effective {
        let rule = ProfileTable::standard().rule(tag).expect("row");
        resolve(rule, tag, options)
    }

    #[test]
    fn basic_profile_empties_type_2_and_removes_type_3() {
        let basic = Options::basic();
        assert_eq!(effective(tags::STUDY_DATE, &basic), Effective::Empty);
        assert_eq!(effective(tags::INSTITUTION_NAME, &basic), Effective::Remove);
        assert_eq!(effective(tags::ACQUISITION_DATE, &basic), Effective::Remove);
        assert_eq!(effective(tags::CONTENT_DATE, &basic), Effective::Empty);
        assert_eq!(effective(tags::STUDY_INSTANCE_UID, &basic), Effective::Uid);
    }

    #[test]
    fn options_override_the_basic_action() {
        let training = Options::training();
        assert_eq!(
            effective(tags::ACQUISITION_DATE, &training),
            Effective::Clean
        );
        assert_eq!(effective(tags::STATION_NAME, &training), Effective::Keep);
        assert_eq!(effective(tags::PATIENT_AGE, &training), Effective::Keep);
        assert_eq!(
            effective(tags::STUDY_DESCRIPTION, &training),
            Effective::Clean
        );
        assert_eq!(
            effective(tags::INSTITUTION_NAME, &training),
            Effective::Remove
        );
        assert_eq!(
            effective(tags::PATIENT_BIRTH_DATE, &training),
            Effective::Empty
        );
    }

    #[test]
    fn reference_sequences_keep_their_items_with_new_uids() {
        assert_eq!(
            effective(tags::REFERENCED_IMAGE_SEQUENCE, &Options::basic()),
            Effective::Uid
        );
    }
}
