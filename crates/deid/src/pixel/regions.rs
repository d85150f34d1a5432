//! The image's own geometry: the data regions of SequenceOfUltrasoundRegions
//! (PS3.3 C.8.5.5). Tissue, flow, Doppler and physiological traces are
//! data; everything else on the screen (banners, menus, grey and colour
//! bars) is not, and is blanked.

use dicom_core::Tag;
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;

use crate::pixel::geometry::Rect;

/// Region Data Type values that hold image or signal data: tissue (1),
/// colour flow (2), spectral Doppler and traces (3-12), integrated
/// backscatter and area traces (15-18). Grey bar (13) and colour bar (14)
/// are not data.
fn is_data(region_data_type: u32) -> bool {
    matches!(region_data_type, 1..=12 | 15..=18)
}

fn int(item: &InMemDicomObject, tag: Tag) -> Option<i64> {
    item.get(tag)?.to_int::<i64>().ok()
}

/// The data regions of the first frame geometry, clipped to `cols × rows`.
/// Empty when the file has no usable region.
pub fn data_regions(obj: &InMemDicomObject, cols: u32, rows: u32) -> Vec<Rect> {
    let Some(items) = obj
        .get(tags::SEQUENCE_OF_ULTRASOUND_REGIONS)
        .and_then(|e| e.items())
    else {
        return Vec::new();
    };
    items
        .iter()
        .filter(|item| int(item, tags::REGION_DATA_TYPE).is_some_and(|t| is_data(t as u32)))
        .filter_map(|item| {
            Rect::from_corners(
                int(item, tags::REGION_LOCATION_MIN_X0)?,
                int(item, tags::REGION_LOCATION_MIN_Y0)?,
                int(item, tags::REGION_LOCATION_MAX_X1)?,
                int(item, tags::REGION_LOCATION_MAX_Y1)?,
                cols,
                rows,
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_core::value::DataSetSequence;
    use dicom_core::{DataElement, Length, PrimitiveValue, VR};

    fn region(data_type: u16, corners: [u32; 4]) -> InMemDicomObject {
        let tags = [
            tags::REGION_LOCATION_MIN_X0,
            tags::REGION_LOCATION_MIN_Y0,
            tags::REGION_LOCATION_MAX_X1,
            tags::REGION_LOCATION_MAX_Y1,
        ];
        InMemDicomObject::from_element_iter(
            std::iter::once(DataElement::new(
                tags::REGION_DATA_TYPE,
                VR::US,
                PrimitiveValue::from(data_type),
            ))
            .chain(
                tags.into_iter()
                    .zip(corners)
                    .map(|(t, v)| DataElement::new(t, VR::UL, PrimitiveValue::from(v))),
            ),
        )
    }

    #[test]
    fn tissue_regions_are_kept_and_colour_bars_are_not() {
        let obj = InMemDicomObject::from_element_iter([DataElement::new(
            tags::SEQUENCE_OF_ULTRASOUND_REGIONS,
            VR::SQ,
            DataSetSequence::new(
                vec![region(1, [10, 20, 109, 219]), region(14, [0, 0, 5, 5])],
                Length::UNDEFINED,
            ),
        )]);
        let regions = data_regions(&obj, 100, 200);
        assert_eq!(
            regions,
            [Rect {
                x: 10,
                y: 20,
                width: 90,
                height: 180
            }]
        );
    }
}
