//! The summariser and the fact checker on a whole visit (a transcript written for these tests).

use notes::Section;
use notes::dialogue::Dialogue;
use notes::draft::{Statement, checked_draft};
use notes::facts::{FactChecker, FactKind};

const VISIT: &str = "[doctor] good morning , mrs diaz . you're here today for follow up of your hypertension .\n\
    [patient] yes . i've been taking my lisinopril twenty milligrams every day .\n\
    [doctor] any chest pain or shortness of breath ?\n\
    [patient] no .\n\
    [doctor] and how about headaches ?\n\
    [patient] i get a headache maybe twice a week , usually in the morning .\n\
    [doctor] okay . let me examine you . on exam your heart has a regular rate and rhythm and your lungs are clear .\n\
    [doctor] there is trace edema in the left ankle .\n\
    [doctor] your blood work from last week shows a potassium of four point two , which is normal .\n\
    [doctor] so for your hypertension , i'd like to continue the lisinopril twenty milligrams daily and add amlodipine five milligrams daily .\n\
    [doctor] we'll check your blood pressure again in four weeks .\n\
    [patient] okay , that sounds good .";

fn statement(text: &str) -> Statement {
    Statement {
        text: text.into(),
        sources: vec![],
    }
}

#[test]
fn sections_come_out_in_note_order() {
    let draft = notes::Summarizer::shipped().unwrap().draft(VISIT).unwrap();
    let order: Vec<Section> = draft.sections.iter().map(|s| s.section).collect();
    let mut sorted = order.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(order, sorted);
    assert_eq!(order.first(), Some(&Section::ChiefComplaint));
    let text = draft.text();
    assert!(
        text.starts_with("CHIEF COMPLAINT\n\nFollow up of"),
        "{text}"
    );
    assert!(text.contains("ASSESSMENT AND PLAN"), "{text}");
}

#[test]
fn drafted_medications_and_doses_are_all_in_the_transcript() {
    let draft = notes::Summarizer::shipped().unwrap().draft(VISIT).unwrap();
    let checker = FactChecker::new(&Dialogue::parse(VISIT).unwrap());
    for section in &draft.sections {
        for s in &section.statements {
            assert!(checker.unsupported(&s.text).is_empty(), "{}", s.text);
        }
    }
}

#[test]
fn fact_checker_removes_an_invented_dose() {
    let checker = FactChecker::new(&Dialogue::parse(VISIT).unwrap());
    let draft = checked_draft(
        vec![
            (
                Section::AssessmentAndPlan,
                statement("Continue lisinopril 20 mg daily."),
            ),
            (
                Section::AssessmentAndPlan,
                statement("Increase lisinopril to 40 mg daily."),
            ),
        ],
        &checker,
    );
    assert_eq!(
        draft.section_text(Section::AssessmentAndPlan).unwrap(),
        "Continue lisinopril 20 mg daily."
    );
    assert_eq!(draft.flags.len(), 1);
    assert_eq!(draft.flags[0].unsupported[0].kind, FactKind::Dose);
    assert_eq!(draft.flags[0].unsupported[0].text, "40 mg");
}

#[test]
fn fact_checker_removes_invented_medications_sides_and_denials() {
    let checker = FactChecker::new(&Dialogue::parse(VISIT).unwrap());
    let draft = checked_draft(
        vec![
            (Section::AssessmentAndPlan, statement("Start metformin.")),
            (
                Section::PhysicalExamination,
                statement("Trace edema in the right ankle."),
            ),
            (
                Section::ReviewOfSystems,
                statement("The patient denies headaches."),
            ),
            (
                Section::ReviewOfSystems,
                statement("The patient denies chest pain."),
            ),
        ],
        &checker,
    );
    let kinds: Vec<FactKind> = draft.flags.iter().map(|f| f.unsupported[0].kind).collect();
    assert_eq!(
        kinds,
        [
            FactKind::Medication,
            FactKind::Laterality,
            FactKind::NegatedFinding
        ]
    );
    assert_eq!(
        draft.section_text(Section::ReviewOfSystems).unwrap(),
        "The patient denies chest pain."
    );
}
