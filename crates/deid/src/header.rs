//! Applying the profile to a data set, attribute by attribute and at every
//! nesting depth.

use std::collections::HashMap;

use dicom_core::header::Header;
use dicom_core::value::{DataSetSequence, Value};
use dicom_core::{DataElement, Length, PrimitiveValue, Tag, VR};
use dicom_dictionary_std::tags;
use dicom_object::InMemDicomObject;
use dicom_object::mem::InMemElement;

use crate::action::{Effective, resolve};
use crate::dates::{shift_dates, shift_datetimes};
use crate::dummy::dummy_value;
use crate::keys::{DeidKey, trim_uid};
use crate::options::{Options, ProfileOption};
use crate::report::HeaderReport;
use crate::scrub::Scrubber;
use crate::table::{ProfileTable, Rule, TagPattern, is_repeating_group};

/// Root of the UIDs that the DICOM standard itself defines (SOP classes,
/// transfer syntaxes, coding schemes): they identify nothing and are kept.
const STANDARD_UID_ROOT: &str = "1.2.840.10008.";

/// UI attributes that name a kind of thing rather than an instance; their
/// values are kept even outside the standard root (e.g. a private SOP class).
const CLASS_UIDS: [Tag; 6] = [
    tags::SOP_CLASS_UID,
    tags::REFERENCED_SOP_CLASS_UID,
    tags::RELATED_GENERAL_SOP_CLASS_UID,
    tags::ORIGINAL_SPECIALIZED_SOP_CLASS_UID,
    tags::CODING_SCHEME_UID,
    tags::MAPPING_RESOURCE_UID,
];

/// Everything the walk needs besides the data set.
pub struct HeaderContext<'a> {
    /// The Annex E table.
    pub table: &'a ProfileTable,
    /// Options claimed.
    pub options: &'a Options,
    /// Keyed derivations.
    pub key: &'a DeidKey,
    /// Days to move dates by (Modified Dates option); `None` removes them.
    pub date_offset: Option<i64>,
    /// Masks identifying words in cleaned text.
    pub scrubber: &'a Scrubber,
    /// Value for Patient ID, when pseudonymous IDs are asked for.
    pub patient_pseudonym: Option<String>,
    /// What was done, filled in as the walk goes.
    pub report: HeaderReport,
}

impl HeaderContext<'_> {
    /// De-identify one data set (and, recursively, its sequence items).
    pub fn clean(&mut self, obj: InMemDicomObject) -> InMemDicomObject {
        let creators = private_creators(&obj);
        let mut out = Vec::new();
        for element in obj {
            if let Some(kept) = self.element(element, &creators) {
                out.push(kept);
            }
        }
        InMemDicomObject::from_element_iter(out)
    }

    fn element(
        &mut self,
        element: InMemElement,
        creators: &HashMap<(u16, u8), String>,
    ) -> Option<InMemElement> {
        let tag = element.tag();
        if is_repeating_group(tag.group(), 0x6000) || is_repeating_group(tag.group(), 0x5000) {
            // overlays and curves go whole: without their data the rest is meaningless
            self.report.graphics_removed += 1;
            return None;
        }
        let table = self.table;
        match table.rule(tag) {
            Some(rule) if rule.pattern == TagPattern::Private => self.private(element, creators),
            Some(rule) => {
                let effective = resolve(rule, tag, self.options);
                self.apply(element, rule, effective)
            }
            None => Some(self.unlisted(element)),
        }
    }

    fn private(
        &mut self,
        element: InMemElement,
        creators: &HashMap<(u16, u8), String>,
    ) -> Option<InMemElement> {
        let tag = element.tag();
        let safe = self.options.claims(ProfileOption::RetainSafePrivate)
            && self.options.safe_private.iter().any(|s| {
                s.group == tag.group()
                    && match tag.element() {
                        // a creator is kept when one of its attributes may be
                        0x0010..=0x00FF => {
                            creators.get(&(tag.group(), tag.element() as u8)) == Some(&s.creator)
                        }
                        0x1000..=0xFFFF => {
                            tag.element() as u8 == s.offset
                                && creators.get(&(tag.group(), (tag.element() >> 8) as u8))
                                    == Some(&s.creator)
                        }
                        _ => false,
                    }
            });
        if safe {
            self.report.private_kept += 1;
            Some(self.unlisted(element))
        } else {
            self.report.private_removed += 1;
            None
        }
    }

    fn apply(
        &mut self,
        element: InMemElement,
        rule: &Rule,
        effective: Effective,
    ) -> Option<InMemElement> {
        let tag = element.tag();
        let vr = element.vr();
        let name = || rule.keyword.clone();
        match effective {
            Effective::Remove => {
                self.report.removed.insert(name());
                None
            }
            Effective::Empty if tag == tags::PATIENT_ID && self.patient_pseudonym.is_some() => {
                self.report.dummied.insert(name());
                let pseudonym = self.patient_pseudonym.clone().unwrap_or_default();
                Some(DataElement::new(tag, vr, PrimitiveValue::from(pseudonym)))
            }
            Effective::Empty => {
                self.report.emptied.insert(name());
                Some(empty_like(tag, vr))
            }
            Effective::Keep if vr != VR::SQ => {
                self.report.retained.insert(name());
                Some(element)
            }
            Effective::Uid if vr == VR::UI => Some(self.replace_uids(element)),
            Effective::Dummy if vr == VR::UI => Some(self.replace_uids(element)),
            Effective::Dummy if vr != VR::SQ => {
                self.report.dummied.insert(name());
                let value = dummy_value(vr).unwrap_or(PrimitiveValue::Empty);
                Some(DataElement::new(tag, vr, value))
            }
            Effective::Clean if vr != VR::SQ => self.clean_value(element, rule),
            // sequences that are kept, cleaned, dummied or re-UIDed: clean their items
            Effective::Keep | Effective::Clean | Effective::Dummy | Effective::Uid => {
                Some(self.sequence(element))
            }
        }
    }

    /// An attribute the table does not list: kept, except that instance UIDs
    /// are still replaced (unless UIDs are retained) and sequence items cleaned.
    fn unlisted(&mut self, element: InMemElement) -> InMemElement {
        match element.vr() {
            VR::SQ => self.sequence(element),
            VR::UI
                if !CLASS_UIDS.contains(&element.tag())
                    && !self.options.claims(ProfileOption::RetainUids) =>
            {
                self.replace_uids(element)
            }
            _ => element,
        }
    }

    fn sequence(&mut self, element: InMemElement) -> InMemElement {
        let tag = element.tag();
        match element.into_value() {
            Value::Sequence(seq) => {
                let items: Vec<InMemDicomObject> = seq
                    .into_items()
                    .into_iter()
                    .map(|i| self.clean(i))
                    .collect();
                DataElement::new(tag, VR::SQ, DataSetSequence::new(items, Length::UNDEFINED))
            }
            // a primitive value under an SQ tag (malformed): drop its value
            _ => empty_like(tag, VR::SQ),
        }
    }

    fn replace_uids(&mut self, element: InMemElement) -> InMemElement {
        let tag = element.tag();
        let Ok(text) = element.to_str() else {
            return empty_like(tag, VR::UI);
        };
        let replaced: Vec<String> = text
            .split('\\')
            .map(|uid| {
                let uid = trim_uid(uid);
                if uid.is_empty() || uid.starts_with(STANDARD_UID_ROOT) {
                    uid.to_string()
                } else {
                    self.report.uids_replaced += 1;
                    self.key.uid(uid)
                }
            })
            .collect();
        DataElement::new(tag, VR::UI, PrimitiveValue::from(replaced.join("\\")))
    }

    fn clean_value(&mut self, element: InMemElement, rule: &Rule) -> Option<InMemElement> {
        let tag = element.tag();
        let vr = element.vr();
        let text = element.to_str().map(|t| t.into_owned()).unwrap_or_default();
        let shifted = match (vr, self.date_offset) {
            (VR::DA, Some(days)) => Some(shift_dates(&text, days)),
            (VR::DT, Some(days)) => Some(shift_datetimes(&text, days)),
            (VR::DA | VR::DT, None) => Some(None),
            _ => None,
        };
        if let Some(shifted) = shifted {
            return match shifted {
                Some(value) => {
                    self.report.dates_shifted += 1;
                    Some(DataElement::new(tag, vr, PrimitiveValue::from(value)))
                }
                None => {
                    self.report.bad_dates_removed += 1;
                    self.report.removed.insert(rule.keyword.clone());
                    None
                }
            };
        }
        let temporal = rule
            .option_action(ProfileOption::RetainLongitudinalModifiedDates)
            .is_some();
        match vr {
            // times of day stay: only whole days move
            VR::TM if temporal => {
                self.report.retained.insert(rule.keyword.clone());
                Some(element)
            }
            VR::AE => {
                self.report.cleaned.insert(rule.keyword.clone());
                let pseudonym = format!("AE{}", self.key.pseudonym("AE", text.trim(), 14));
                Some(DataElement::new(tag, vr, PrimitiveValue::from(pseudonym)))
            }
            // other temporal values (time zone offsets...) carry no shifted meaning
            _ if temporal => {
                self.report.emptied.insert(rule.keyword.clone());
                Some(empty_like(tag, vr))
            }
            VR::LO | VR::SH | VR::LT | VR::ST | VR::UT | VR::UC | VR::PN | VR::CS => {
                match self.scrubber.clean(&text) {
                    Some(clean) => {
                        self.report.cleaned.insert(rule.keyword.clone());
                        Some(DataElement::new(tag, vr, PrimitiveValue::from(clean)))
                    }
                    None => {
                        self.report.retained.insert(rule.keyword.clone());
                        Some(element)
                    }
                }
            }
            _ => {
                self.report.emptied.insert(rule.keyword.clone());
                Some(empty_like(tag, vr))
            }
        }
    }
}

fn empty_like(tag: Tag, vr: VR) -> InMemElement {
    if vr == VR::SQ {
        DataElement::new(tag, VR::SQ, DataSetSequence::<InMemDicomObject>::empty())
    } else {
        DataElement::new(tag, vr, PrimitiveValue::Empty)
    }
}

/// Private creators of a data set: (group, block) → creator.
fn private_creators(obj: &InMemDicomObject) -> HashMap<(u16, u8), String> {
    obj.iter()
        .filter(|e| e.tag().group() % 2 == 1 && (0x0010..=0x00FF).contains(&e.tag().element()))
        .filter_map(|e| {
            let creator = e.to_str().ok()?.trim().to_string();
            Some(((e.tag().group(), e.tag().element() as u8), creator))
        })
        .collect()
}
