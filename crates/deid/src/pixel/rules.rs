//! Per-device rules: where known models print the patient banner, as
//! fractions of the frame (so downsized copies match too). Applied on top of
//! the geometry and the detector.

use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

use crate::patient::text;
use crate::pixel::geometry::Rect;

/// A known text area of a device model.
struct DeviceRule {
    /// Upper-case fragment of Manufacturer.
    manufacturer: &'static str,
    /// Upper-case fragment of Manufacturer's Model Name ("" = any model).
    model: &'static str,
    /// `[x0, y0, x1, y1]` as fractions of columns and rows.
    area: [f64; 4],
}

/// Seen on the fixtures: GE LOGIQ 700 prints institution, patient codes and
/// clock in the top 22 %; Philips EPIQ a name/MRN/DOB/institution banner in
/// the top 5 %, CX50 a blue banner in the top 10 %; ALOKA SSD-4000 the
/// institution in the top 5 %; SonoSite the patient name top left.
const RULES: [DeviceRule; 5] = [
    DeviceRule {
        manufacturer: "G.E.",
        model: "LOGIQ 700",
        area: [0.0, 0.0, 1.0, 0.22],
    },
    DeviceRule {
        manufacturer: "PHILIPS",
        model: "EPIQ",
        area: [0.0, 0.0, 1.0, 0.05],
    },
    DeviceRule {
        manufacturer: "PHILIPS",
        model: "CX50",
        area: [0.0, 0.0, 1.0, 0.10],
    },
    DeviceRule {
        manufacturer: "ALOKA",
        model: "",
        area: [0.0, 0.0, 1.0, 0.05],
    },
    DeviceRule {
        manufacturer: "SONOSITE",
        model: "",
        area: [0.0, 0.0, 0.3, 0.06],
    },
];

/// The text areas known for this file's device, in pixels.
pub fn device_areas(obj: &InMemDicomObject, cols: u32, rows: u32) -> Vec<Rect> {
    let manufacturer = text(obj, tags::MANUFACTURER)
        .unwrap_or_default()
        .to_uppercase();
    let model = text(obj, tags::MANUFACTURER_MODEL_NAME)
        .unwrap_or_default()
        .to_uppercase();
    RULES
        .iter()
        .filter(|r| manufacturer.contains(r.manufacturer) && model.contains(r.model))
        .filter_map(|r| {
            let [x0, y0, x1, y1] = r.area;
            let (w, h) = (f64::from(cols), f64::from(rows));
            Rect::from_corners(
                (x0 * w) as i64,
                (y0 * h) as i64,
                (x1 * w).ceil() as i64 - 1,
                (y1 * h).ceil() as i64 - 1,
                cols,
                rows,
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_core::{DataElement, VR};

    #[test]
    fn a_known_model_gets_its_banner_scaled_to_the_frame() {
        let obj = InMemDicomObject::from_element_iter([
            DataElement::new(tags::MANUFACTURER, VR::LO, "G.E. Medical Systems"),
            DataElement::new(tags::MANUFACTURER_MODEL_NAME, VR::LO, "LOGIQ 700"),
        ]);
        let areas = device_areas(&obj, 80, 60);
        assert_eq!(
            areas,
            [Rect {
                x: 0,
                y: 0,
                width: 80,
                height: 14
            }]
        );
        assert!(device_areas(&InMemDicomObject::new_empty(), 80, 60).is_empty());
    }
}
