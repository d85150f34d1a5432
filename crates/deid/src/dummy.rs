//! Dummy values (action `D`): non-empty, valid for the VR, identifying nobody.

use dicom_core::{PrimitiveValue, VR};

/// Text put in place of identifying text of any string VR.
pub const DUMMY_TEXT: &str = "DEIDENTIFIED";

/// A dummy value for an attribute of `vr` (`None` for SQ, whose items are
/// cleaned instead).
pub fn dummy_value(vr: VR) -> Option<PrimitiveValue> {
    Some(match vr {
        VR::SQ => return None,
        VR::DA => PrimitiveValue::from("19000101"),
        VR::DT => PrimitiveValue::from("19000101000000"),
        VR::TM => PrimitiveValue::from("000000"),
        VR::AS => PrimitiveValue::from("000D"),
        VR::DS | VR::IS => PrimitiveValue::from("0"),
        VR::UR => PrimitiveValue::from("urn:deidentified"),
        VR::AE | VR::CS | VR::LO | VR::LT | VR::PN | VR::SH | VR::ST | VR::UC | VR::UT => {
            PrimitiveValue::from(DUMMY_TEXT)
        }
        VR::US | VR::OW => PrimitiveValue::from(0_u16),
        VR::SS => PrimitiveValue::from(0_i16),
        VR::UL | VR::OL => PrimitiveValue::from(0_u32),
        VR::SL => PrimitiveValue::from(0_i32),
        VR::UV | VR::OV => PrimitiveValue::from(0_u64),
        VR::SV => PrimitiveValue::from(0_i64),
        VR::FL | VR::OF => PrimitiveValue::from(0_f32),
        VR::FD | VR::OD => PrimitiveValue::from(0_f64),
        VR::AT => PrimitiveValue::Tags(std::iter::once(dicom_core::Tag(0, 0)).collect()),
        VR::UI => PrimitiveValue::from("2.25.0"),
        VR::OB | VR::UN => PrimitiveValue::U8([0, 0].into()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dummies_are_non_empty_for_every_primitive_vr() {
        for vr in [VR::AE, VR::DA, VR::PN, VR::OB, VR::US, VR::AT, VR::UR] {
            let value = dummy_value(vr).expect("primitive VR");
            assert!(!value.to_bytes().is_empty(), "{vr:?}");
        }
        assert!(dummy_value(VR::SQ).is_none());
    }
}
