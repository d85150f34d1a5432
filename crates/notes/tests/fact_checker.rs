//! The fact checker on crafted visits (written for these tests): a changed dose, the wrong side
//! and a flipped negation must leave the draft as flags, and the evaluation's hallucination,
//! omission and corruption figures must count what the drafts say.

use notes::Section;
use notes::dialogue::Dialogue;
use notes::draft::{Statement, checked_draft};
use notes::eval::{corrupt, score};
use notes::facts::{FactChecker, FactKind};

const VISIT: &str = "[doctor] good morning . what brings you in today ?\n\
    [patient] my right knee has been hurting for about two weeks .\n\
    [doctor] any fever or chills ?\n\
    [patient] no .\n\
    [doctor] any swelling in the knee ?\n\
    [patient] yes , it swells up at night .\n\
    [doctor] okay . on exam there is tenderness over the right knee joint line .\n\
    [doctor] let's start ibuprofen six hundred milligrams three times a day with food .\n\
    [patient] okay , thank you .";

const REFERENCE: &str = "CHIEF COMPLAINT\n\nRight knee pain.\n\n\
    HISTORY OF PRESENT ILLNESS\n\nThe patient reports right knee pain for 2 weeks with swelling at night.\n\n\
    REVIEW OF SYSTEMS\n\nDenies fever or chills.\n\n\
    PHYSICAL EXAMINATION\n\nTenderness over the right knee joint line.\n\n\
    ASSESSMENT AND PLAN\n\nStart ibuprofen 600 mg three times a day with food.";

fn checker() -> FactChecker {
    FactChecker::new(&Dialogue::parse(VISIT).unwrap())
}

fn candidates(sentences: &[(Section, &str)]) -> Vec<(Section, Statement)> {
    sentences
        .iter()
        .map(|(section, text)| {
            let statement = Statement {
                text: (*text).into(),
                sources: vec![],
            };
            (*section, statement)
        })
        .collect()
}

/// The kinds of the unsupported facts of each flagged sentence, by sentence.
fn flagged(sentences: &[(Section, &str)]) -> Vec<(String, Vec<FactKind>)> {
    let draft = checked_draft(candidates(sentences), &checker());
    draft
        .flags
        .into_iter()
        .map(|f| (f.text, f.unsupported.iter().map(|u| u.kind).collect()))
        .collect()
}

#[test]
fn said_facts_stay_in_the_draft() {
    let good = [
        (
            Section::ReviewOfSystems,
            "The patient denies fever or chills.",
        ),
        (
            Section::ReviewOfSystems,
            "The patient reports swelling in the knee.",
        ),
        (
            Section::PhysicalExamination,
            "Tenderness over the right knee joint line.",
        ),
        (
            Section::AssessmentAndPlan,
            "Start ibuprofen 600 mg three times a day.",
        ),
    ];
    assert!(flagged(&good).is_empty());
    let draft = checked_draft(candidates(&good), &checker());
    assert_eq!(draft.sections.len(), 3);
}

#[test]
fn an_unsupported_dose_is_flagged() {
    assert_eq!(
        flagged(&[(
            Section::AssessmentAndPlan,
            "Start ibuprofen 800 mg three times a day."
        )]),
        [(
            "Start ibuprofen 800 mg three times a day.".to_string(),
            vec![FactKind::Dose]
        )]
    );
}

#[test]
fn the_wrong_side_is_flagged() {
    assert_eq!(
        flagged(&[(
            Section::PhysicalExamination,
            "Tenderness over the left knee joint line."
        )]),
        [(
            "Tenderness over the left knee joint line.".to_string(),
            vec![FactKind::Laterality]
        )]
    );
}

#[test]
fn flipped_negations_are_flagged_both_ways() {
    let kinds: Vec<Vec<FactKind>> = flagged(&[
        (
            Section::ReviewOfSystems,
            "The patient reports fever or chills.",
        ),
        (
            Section::ReviewOfSystems,
            "The patient denies swelling in the knee.",
        ),
    ])
    .into_iter()
    .map(|(_, k)| k)
    .collect();
    assert_eq!(
        kinds,
        [
            vec![FactKind::AffirmedFinding],
            vec![FactKind::NegatedFinding]
        ]
    );
}

#[test]
fn every_corruption_of_a_good_sentence_is_caught() {
    let checker = checker();
    let mut kinds = Vec::new();
    for sentence in [
        "Start ibuprofen 600 mg three times a day.",
        "Tenderness over the right knee joint line.",
        "The patient denies fever or chills.",
        "The patient reports swelling in the knee.",
    ] {
        assert!(checker.unsupported(sentence).is_empty(), "{sentence}");
        for (kind, corrupted) in corrupt(sentence, &checker) {
            assert!(!checker.unsupported(&corrupted).is_empty(), "{corrupted}");
            kinds.push(kind);
        }
    }
    kinds.sort();
    assert_eq!(
        kinds,
        [
            FactKind::Medication,
            FactKind::Dose,
            FactKind::Laterality,
            FactKind::NegatedFinding,
            FactKind::AffirmedFinding
        ]
    );
}

#[test]
fn the_evaluation_counts_hallucinations_and_omissions() {
    let summarizer = notes::Summarizer::shipped().unwrap();
    let (draft, s) = score(&summarizer, VISIT, REFERENCE).unwrap();
    let total = s.facts.total();
    assert_eq!(total.unsupported_draft, 0, "{}", draft.text());
    assert_eq!(total.hallucination_rate(), 0.0);
    // The reference's facts, all said in the transcript: ibuprofen, 600 mg, 2 (weeks), 3 (times
    // a day), the right knee, the denied fever, the reported knee pain.
    assert_eq!(total.reference, 7, "{:?}", s.facts);
    let stated = |kind| {
        s.facts
            .by_kind
            .get(&kind)
            .map_or(0, |c| c.reference - c.omitted)
    };
    assert_eq!(stated(FactKind::Medication), 1, "{}", draft.text());
    assert_eq!(stated(FactKind::Dose), 1, "{}", draft.text());
    assert!(
        total.omission_rate() <= 0.5,
        "{:?}\n{}",
        s.facts,
        draft.text()
    );
    assert!(s.sections.contains_key(&Section::AssessmentAndPlan));
}
