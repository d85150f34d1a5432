//! Text de-identification on hostile notes: huge lines, empty and blank
//! notes, lines of nothing but separators, invalid UTF-8 decoded lossily,
//! and pseudo-random text mixing scripts, digits and punctuation. Every
//! case must give a clean result (spans inside the text, in order, the
//! redacted text valid), never a panic.

use deid::DeidKey;
use deid::text::{Context, Deidentifier, Lang, Replacement, Span, TextOptions};

fn deidentifiers() -> Vec<Deidentifier> {
    let key = DeidKey::new(b"a test secret of enough bytes").expect("key");
    let mut out = Vec::new();
    for lang in [Lang::Fr, Lang::En] {
        out.push(
            Deidentifier::new(lang, Some(key.clone()), TextOptions::default()).expect("keyed"),
        );
        out.push(
            Deidentifier::new(
                lang,
                None,
                TextOptions {
                    replacement: Replacement::Tags,
                },
            )
            .expect("tags"),
        );
    }
    out
}

fn context() -> Context {
    Context {
        patient_id: Some("p1".into()),
        names: vec!["Jeanne Dupont".into(), "  ".into(), String::new()],
        birth_date: Some("not a date".into()),
        identifiers: vec![String::new(), "8000123456".into()],
        addresses: vec![",,,".into()],
        telecom: vec!["+".into()],
        date_shift_days: Some(-40_000),
    }
}

/// Spans within the text, ordered, not overlapping, not empty.
fn check(text: &str, spans: &[Span]) {
    let n = text.chars().count();
    let mut last = 0;
    for s in spans {
        assert!(s.start < s.end && s.end <= n, "{s:?} in {n} chars");
        assert!(s.start >= last, "{spans:?} overlap");
        last = s.end;
    }
}

fn run_all(text: &str) {
    for deid in deidentifiers() {
        for ctx in [Context::default(), context()] {
            let out = deid.redact(text, &ctx);
            check(text, &out.spans);
            assert_eq!(out.spans, deid.detect(text, &ctx));
        }
    }
}

#[test]
fn empty_blank_and_separator_notes() {
    for text in [
        "", " ", "\n", "\n\n\n\n", "\r\n\r\n", "\t", ".", ",,,,", "----", "/////", "''''", "Dr",
        "Dr.", "Mme", "M.", "le", "01/", "/01", "+33", "@", "@@.fr", "http://", "1 2 3",
    ] {
        run_all(text);
    }
}

#[test]
fn invalid_utf8_read_lossily_gives_a_clean_result() {
    let bytes: &[u8] = b"Mme DUP\xffONT n\xc3e le 12/03/\xe2\x82 2024 \xf0\x9f tel 06 12 34 56 78";
    let text = String::from_utf8_lossy(bytes);
    assert!(text.contains('\u{FFFD}'), "the invalid bytes were replaced");
    run_all(&text);
}

/// (`cli/tests/deid_text.rs` runs a 10 MB note of sentences through the command.)
#[test]
fn millions_of_characters_without_a_space_or_a_line_break() {
    let deid = Deidentifier::new(
        Lang::Fr,
        Some(DeidKey::new(b"a test secret of enough bytes").expect("key")),
        TextOptions::default(),
    )
    .expect("keyed");
    for line in [
        "7".repeat(1_000_000) + &"é".repeat(1_000_000),
        "Dr.".repeat(600_000),
        "12/03/".repeat(300_000),
    ] {
        let out = deid.redact(&line, &context());
        check(&line, &out.spans);
    }
}

#[test]
fn pseudo_random_text_never_panics() {
    const ALPHABET: &[&str] = &[
        "a",
        "E",
        "é",
        "Ü",
        "ß",
        "ø",
        "Ł",
        "ж",
        "中",
        "🙂",
        "\u{301}",
        "\u{200b}",
        "0",
        "1",
        "9",
        " ",
        " ",
        "\n",
        "\t",
        ".",
        ",",
        "/",
        "-",
        ":",
        "'",
        "’",
        "(",
        ")",
        "@",
        "#",
        "+",
        "Dr ",
        "Mme ",
        "le ",
        "IPP ",
        "MRN ",
        "rue ",
        "Street ",
        "janvier ",
        "March ",
        "ans ",
        "yo ",
        "CHU ",
        "Hospital ",
        "06 ",
        "12/",
        "2024",
        "DUPONT ",
        "Jeanne ",
    ];
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for _ in 0..300 {
        let len = (next() % 80) as usize;
        let text: String = (0..len)
            .map(|_| ALPHABET[(next() % ALPHABET.len() as u64) as usize])
            .collect();
        run_all(&text);
    }
}

/// A 10 MB English note of ordinary sentences: every planted value of every
/// sentence is found, none is left in the text.
#[test]
fn a_ten_megabyte_english_note() {
    let deid = Deidentifier::new(
        Lang::En,
        None,
        TextOptions {
            replacement: Replacement::Tags,
        },
    )
    .expect("tags");
    let sentence = "Social work (Chad Quitin, x5609) called St. Mary's Hospital on 3/16; \
                    address 12 Elm Street, Apt 4, Salem, ME 01970. ";
    let copies = 10_000_000 / sentence.len();
    let text = sentence.repeat(copies);
    let out = deid.redact(&text, &Context::default());
    check(&text, &out.spans);
    let per_sentence = deid.detect(sentence, &Context::default()).len();
    assert!(per_sentence >= 5, "{per_sentence} spans in one sentence");
    assert_eq!(out.spans.len(), per_sentence * copies);
    for value in ["Chad", "Quitin", "Mary", "Elm", "Apt 4", "Salem"] {
        assert!(!out.text.contains(value), "{value} left");
    }
}
