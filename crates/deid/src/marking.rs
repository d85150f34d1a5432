//! The attributes that record a de-identification (PS3.15 E.1.1 and
//! PS3.3 C.12.1): Patient Identity Removed, De-identification Method (and
//! its code sequence), Longitudinal Temporal Information Modified, and
//! Burned In Annotation once pixels are clean.

use dicom_core::value::DataSetSequence;
use dicom_core::{DataElement, Length, PrimitiveValue, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

use crate::options::{BASIC_PROFILE_CODE, Options, ProfileOption};

/// De-identification Method: the codes say which options.
pub const METHOD: &str = "cohort deid, PS3.15 E.1-1 (2024b), options in code sequence";

/// How dates were treated, for Longitudinal Temporal Information Modified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DateTreatment {
    /// Kept as they were (Full Dates option).
    Unmodified,
    /// Shifted by a per-patient offset (Modified Dates option).
    Modified,
    /// Removed or emptied (Basic Profile).
    Removed,
}

/// Record the de-identification in the data set. `pixels_cleaned` is true
/// when Clean Pixel Data was applied to this file.
pub fn mark(
    obj: &mut InMemDicomObject,
    options: &Options,
    dates: DateTreatment,
    pixels_cleaned: bool,
) {
    let claimed = method_options(options, pixels_cleaned);
    obj.put(DataElement::new(
        tags::PATIENT_IDENTITY_REMOVED,
        VR::CS,
        PrimitiveValue::from("YES"),
    ));
    obj.put(DataElement::new(
        tags::DEIDENTIFICATION_METHOD,
        VR::LO,
        PrimitiveValue::from(METHOD),
    ));
    let codes: Vec<InMemDicomObject> = std::iter::once(BASIC_PROFILE_CODE)
        .chain(claimed.iter().map(|o| (o.code(), o.meaning())))
        .map(|(value, meaning)| {
            InMemDicomObject::from_element_iter([
                DataElement::new(tags::CODE_VALUE, VR::SH, PrimitiveValue::from(value)),
                DataElement::new(
                    tags::CODING_SCHEME_DESIGNATOR,
                    VR::SH,
                    PrimitiveValue::from("DCM"),
                ),
                DataElement::new(tags::CODE_MEANING, VR::LO, PrimitiveValue::from(meaning)),
            ])
        })
        .collect();
    obj.put(DataElement::new(
        tags::DEIDENTIFICATION_METHOD_CODE_SEQUENCE,
        VR::SQ,
        DataSetSequence::new(codes, Length::UNDEFINED),
    ));
    let dates = match dates {
        DateTreatment::Unmodified => "UNMODIFIED",
        DateTreatment::Modified => "MODIFIED",
        DateTreatment::Removed => "REMOVED",
    };
    obj.put(DataElement::new(
        tags::LONGITUDINAL_TEMPORAL_INFORMATION_MODIFIED,
        VR::CS,
        PrimitiveValue::from(dates),
    ));
    if pixels_cleaned {
        obj.put(DataElement::new(
            tags::BURNED_IN_ANNOTATION,
            VR::CS,
            PrimitiveValue::from("NO"),
        ));
    }
}

/// The options to declare, in code order: those claimed, less Clean Pixel
/// Data when the pixels were not actually cleaned.
pub fn method_options(options: &Options, pixels_cleaned: bool) -> Vec<ProfileOption> {
    let mut claimed: Vec<ProfileOption> = options
        .claimed()
        .filter(|o| *o != ProfileOption::CleanPixelData || pixels_cleaned)
        .collect();
    claimed.sort_by_key(|o| o.code());
    claimed
}
