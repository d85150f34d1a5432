//! The note's sections: headings, order, LOINC section codes, and how the headings of reference
//! notes (ACI-Bench) and MTS-Dialog's section labels map onto them.

use serde::Serialize;

/// A section of the drafted note, in note order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Section {
    /// Why the patient came.
    ChiefComplaint,
    /// History of present illness, with the past, social and family history and medications.
    HistoryOfPresentIllness,
    /// Symptoms asked about, reported or denied.
    ReviewOfSystems,
    /// Examination findings and vital signs.
    PhysicalExamination,
    /// Laboratory, imaging and other results.
    Results,
    /// Assessment and plan, with instructions.
    AssessmentAndPlan,
}

impl Section {
    /// Every section in note order.
    pub const ALL: [Section; 6] = [
        Section::ChiefComplaint,
        Section::HistoryOfPresentIllness,
        Section::ReviewOfSystems,
        Section::PhysicalExamination,
        Section::Results,
        Section::AssessmentAndPlan,
    ];

    /// The heading written in the plain-text note.
    pub fn heading(self) -> &'static str {
        match self {
            Section::ChiefComplaint => "CHIEF COMPLAINT",
            Section::HistoryOfPresentIllness => "HISTORY OF PRESENT ILLNESS",
            Section::ReviewOfSystems => "REVIEW OF SYSTEMS",
            Section::PhysicalExamination => "PHYSICAL EXAMINATION",
            Section::Results => "RESULTS",
            Section::AssessmentAndPlan => "ASSESSMENT AND PLAN",
        }
    }

    /// LOINC section code and its display name (FHIR `Composition.section.code`).
    pub fn loinc(self) -> (&'static str, &'static str) {
        match self {
            Section::ChiefComplaint => ("10154-3", "Chief complaint Narrative - Reported"),
            Section::HistoryOfPresentIllness => ("10164-2", "History of Present illness Narrative"),
            Section::ReviewOfSystems => ("10187-3", "Review of systems Narrative - Reported"),
            Section::PhysicalExamination => ("29545-1", "Physical findings Narrative"),
            Section::Results => (
                "30954-2",
                "Relevant diagnostic tests/laboratory data Narrative",
            ),
            Section::AssessmentAndPlan => ("51847-2", "Evaluation + Plan note"),
        }
    }

    /// The section a reference note's heading belongs to (ACI-Bench headings, with or without
    /// a trailing colon); `None` for headings that are not sections.
    pub fn from_heading(heading: &str) -> Option<Section> {
        let h = heading
            .trim()
            .trim_end_matches(':')
            .trim()
            .to_ascii_uppercase();
        let section = match h.as_str() {
            "CHIEF COMPLAINT" | "CC" => Section::ChiefComplaint,
            "HISTORY OF PRESENT ILLNESS"
            | "HPI"
            | "MEDICAL HISTORY"
            | "PAST HISTORY"
            | "PAST MEDICAL HISTORY"
            | "SURGICAL HISTORY"
            | "SOCIAL HISTORY"
            | "FAMILY HISTORY"
            | "MEDICATIONS"
            | "CURRENT MEDICATIONS"
            | "ALLERGIES" => Section::HistoryOfPresentIllness,
            "REVIEW OF SYSTEMS" | "ROS" => Section::ReviewOfSystems,
            "PHYSICAL EXAM"
            | "PHYSICAL EXAMINATION"
            | "EXAM"
            | "VITALS"
            | "VITALS REVIEWED"
            | "VITAL SIGNS" => Section::PhysicalExamination,
            "RESULTS" | "LABS" | "IMAGING" => Section::Results,
            "ASSESSMENT AND PLAN"
            | "ASSESSMENT"
            | "PLAN"
            | "IMPRESSION"
            | "INSTRUCTIONS"
            | "PROCEDURE" => Section::AssessmentAndPlan,
            _ => return None,
        };
        Some(section)
    }

    /// The section of an MTS-Dialog `section_header` (`GENHX`, `ROS`, `EXAM`, `PLAN`, …).
    pub fn from_mts_header(header: &str) -> Option<Section> {
        let section = match header.trim().to_ascii_uppercase().as_str() {
            "CC" => Section::ChiefComplaint,
            "GENHX" | "PASTMEDICALHX" | "FAM/SOCHX" | "PASTSURGICAL" | "ALLERGY"
            | "MEDICATIONS" | "GYNHX" | "OTHER_HISTORY" | "IMMUNIZATIONS" => {
                Section::HistoryOfPresentIllness
            }
            "ROS" => Section::ReviewOfSystems,
            "EXAM" => Section::PhysicalExamination,
            "IMAGING" | "LABS" => Section::Results,
            "ASSESSMENT" | "DIAGNOSIS" | "PLAN" | "DISPOSITION" | "EDCOURSE" | "PROCEDURES" => {
                Section::AssessmentAndPlan
            }
            _ => return None,
        };
        Some(section)
    }
}

/// What the classifier predicts for an utterance: one of the body sections, or nothing.
///
/// The chief complaint is not a class: it is taken from the history (see `draft`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Label {
    /// Not in the note (greetings, small talk, instructions to the patient during the exam).
    Other,
    /// In this section.
    In(Section),
}

impl Label {
    /// The classifier's classes, in output order.
    pub const CLASSES: [Label; 6] = [
        Label::Other,
        Label::In(Section::HistoryOfPresentIllness),
        Label::In(Section::ReviewOfSystems),
        Label::In(Section::PhysicalExamination),
        Label::In(Section::Results),
        Label::In(Section::AssessmentAndPlan),
    ];

    /// Index in [`Label::CLASSES`] (the chief complaint counts as history).
    pub fn index(self) -> usize {
        match self {
            Label::Other => 0,
            Label::In(Section::ChiefComplaint | Section::HistoryOfPresentIllness) => 1,
            Label::In(Section::ReviewOfSystems) => 2,
            Label::In(Section::PhysicalExamination) => 3,
            Label::In(Section::Results) => 4,
            Label::In(Section::AssessmentAndPlan) => 5,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headings_map_to_sections() {
        assert_eq!(
            Section::from_heading("PHYSICAL EXAM"),
            Some(Section::PhysicalExamination)
        );
        assert_eq!(
            Section::from_heading("HPI:"),
            Some(Section::HistoryOfPresentIllness)
        );
        assert_eq!(Section::from_heading("COPD."), None);
        assert_eq!(
            Section::from_mts_header("FAM/SOCHX"),
            Some(Section::HistoryOfPresentIllness)
        );
    }

    #[test]
    fn class_indices_follow_the_class_list() {
        for (i, label) in Label::CLASSES.iter().enumerate() {
            assert_eq!(label.index(), i);
        }
    }
}
