//! `cohort deid text` on files: JSON lines in and out, and bad input
//! (invalid UTF-8, blank lines, a 10 MB note) refused cleanly or handled.

use cli::deid_text_cmd::redact_file;
use deid::DeidKey;
use deid::text::{Deidentifier, Lang, TextOptions};

fn deid() -> Deidentifier {
    let key = DeidKey::new(b"a test secret of enough bytes").expect("key");
    Deidentifier::new(Lang::Fr, Some(key), TextOptions::default()).expect("keyed")
}

#[test]
fn notes_come_out_redacted_with_character_offsets() {
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("in.jsonl");
    let output = dir.path().join("out.jsonl");
    std::fs::write(
        &input,
        concat!(
            r#"{"note_id": "a", "note_text": "Hélène DUPONT née le 12/03/1950, IPP 8000123456.", "context": {"patient_id": "p1", "names": ["Hélène Dupont"]}}"#,
            "\n\n   \n",
            r#"{"note_id": 7, "note_text": ""}"#,
            "\n"
        ),
    )
    .expect("write");
    let (notes, spans, _) = redact_file(&deid(), &input, &output).expect("redacted");
    assert_eq!((notes, spans), (2, 4));
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&output)
        .expect("output")
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    let text = lines[0]["text"].as_str().expect("text");
    assert!(!text.contains("DUPONT") && !text.contains("8000123456") && !text.contains("1950"));
    let first = &lines[0]["entities"][0];
    assert_eq!(
        (first["start"].as_u64(), first["end"].as_u64()),
        (Some(0), Some(6))
    );
    assert_eq!(first["label"], "NAME");
    assert_eq!(lines[1]["note_id"], 7);
}

#[test]
fn invalid_utf8_and_bad_json_are_refused_with_the_line_and_no_output() {
    let dir = tempfile::tempdir().expect("temp dir");
    let output = dir.path().join("out.jsonl");
    for (content, message) in [
        (
            b"{\"note_id\": \"a\", \"note_text\": \"ok\"}\n\xff\xfe\n".to_vec(),
            ":2: not UTF-8",
        ),
        (
            b"{\"note_id\": \"a\"}\n".to_vec(),
            ":1: not a valid note line",
        ),
    ] {
        let input = dir.path().join("in.jsonl");
        std::fs::write(&input, content).expect("write");
        let error = redact_file(&deid(), &input, &output).expect_err("refused");
        assert!(format!("{error:#}").contains(message), "{error:#}");
        assert!(!output.exists());
    }
}

#[test]
fn a_ten_megabyte_note_is_redacted() {
    let dir = tempfile::tempdir().expect("temp dir");
    let input = dir.path().join("in.jsonl");
    let output = dir.path().join("out.jsonl");
    let sentence = "Mme DUPONT revue le 12/03/2024 au 06 12 34 56 78, état stable. ";
    let text = sentence.repeat(10_000_000 / sentence.len());
    let line = serde_json::json!({"note_id": "big", "note_text": text});
    std::fs::write(&input, format!("{line}\n")).expect("write");
    let (notes, spans, bytes) = redact_file(&deid(), &input, &output).expect("redacted");
    assert_eq!(notes, 1);
    assert!(bytes >= 9_900_000);
    assert!(spans >= 3 * (10_000_000 / sentence.len()));
    let out = std::fs::read_to_string(&output).expect("output");
    assert!(!out.contains("DUPONT"));
}

#[test]
fn a_tagger_trained_on_a_gold_file_is_taken_by_tagger_and_bad_weights_are_refused() {
    use cli::deid_text_cmd::{TaggerArgs, TrainArgs, train};
    let dir = tempfile::tempdir().expect("temp dir");
    let gold = dir.path().join("gold.jsonl");
    let lines: Vec<String> = ["Vrolbek", "Tandrosz", "Quelmira", "Ostravik", "Bendulo"]
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let text = format!("Vue avec {name} ce jour, pansement refait.");
            serde_json::json!({"note_id": format!("n{i}"), "note_text": text,
                "entities": [{"start": 9, "end": 9 + name.chars().count(), "label": "NOM"}]})
            .to_string()
        })
        .collect();
    std::fs::write(&gold, lines.join("\n")).expect("write");
    let weights = dir.path().join("tagger.safetensors");
    train(TrainArgs {
        gold: vec![gold],
        lang: "fr".into(),
        out: weights.clone(),
        epochs: 30,
        learning_rate: 0.05,
        seed: 1,
    })
    .expect("trained");
    let tags = || {
        Deidentifier::new(
            Lang::Fr,
            None,
            TextOptions {
                replacement: deid::text::Replacement::Tags,
            },
        )
        .expect("tags")
    };
    let args = |tagger: &str| TaggerArgs {
        tagger: tagger.into(),
        tagger_threshold: deid::text::tagger::DEFAULT_THRESHOLD,
    };
    let tagged = args(weights.to_str().expect("path"))
        .apply(tags())
        .expect("the trained tagger reads");
    let out = tagged.redact("Vue avec Kzorvan ce jour.", &Default::default());
    assert_eq!(out.text, "Vue avec [NAME] ce jour.");

    let bad = dir.path().join("bad.safetensors");
    std::fs::write(&bad, b"not weights").expect("write");
    let error = args(bad.to_str().expect("path"))
        .apply(tags())
        .expect_err("refused");
    assert!(
        format!("{error:#}").contains("not a weights file"),
        "{error:#}"
    );
    let english = Deidentifier::new(
        Lang::En,
        None,
        TextOptions {
            replacement: deid::text::Replacement::Tags,
        },
    )
    .expect("tags");
    let error = args(weights.to_str().expect("path"))
        .apply(english)
        .expect_err("a French tagger on English notes");
    assert!(
        format!("{error:#}").contains("not a PHI tagger for En notes"),
        "{error:#}"
    );
}
