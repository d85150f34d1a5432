//! The statistical PHI tagger: a linear softmax over hashed features of each word that the rules
//! left (its shape, what the word lists say of it, the words and cues around it), for the names
//! and places that no rule catches. It only adds spans: recall first.
//!
//! A word's own letters are a feature only when it is an ordinary word of the language, and its
//! last three letters when it is not: the tagger learns where names stand and how they look, not
//! which names exist, so its weights carry no list of the names it was trained on (and they are
//! trained with DP-SGD when hospitals train it through the federation).

use std::sync::Arc;

use learn::Weights;
use learn::sparse::{Example, Softmax, hash_parts, indices_row};

use super::names::{self, Facts, Lexed};
use super::token::{Case, Token};
use super::{Found, Label, Lang, Span, TextError};

/// Width of the hashed feature rows.
pub const FEATURES: usize = 1 << 15;

/// The classes, in order: no PHI, then the labels the tagger may add.
pub const CLASSES: [Option<Label>; 5] = [
    None,
    Some(Label::Name),
    Some(Label::City),
    Some(Label::Hospital),
    Some(Label::Address),
];

/// Probability of "no PHI" under which a word is tagged, by default.
pub const DEFAULT_THRESHOLD: f32 = 0.5;

/// The tagger's classifier for `lang`: tensors `phi_tagger_fr.weight` (or `_en`) `[5, FEATURES]`
/// and `phi_tagger_fr.bias`, so that weights say which language they were trained for.
pub fn model(lang: Lang) -> Softmax {
    let name = format!("phi_tagger_{}", lang.code());
    Softmax::new(&name, CLASSES.len(), FEATURES).expect("a valid size")
}

/// The class of a label (0 for labels the tagger does not predict).
fn class_of(label: Label) -> usize {
    CLASSES.iter().position(|&c| c == Some(label)).unwrap_or(0)
}

/// A trained tagger for one language.
#[derive(Clone, PartialEq)]
pub struct Tagger {
    lang: Lang,
    model: Softmax,
    values: Arc<[f32]>,
    threshold: f32,
}

impl std::fmt::Debug for Tagger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tagger")
            .field("lang", &self.lang)
            .field("parameters", &self.values.len())
            .field("threshold", &self.threshold)
            .finish()
    }
}

impl Tagger {
    /// A tagger with trained `weights` ([`model`]'s layout for `lang`).
    ///
    /// # Errors
    /// Weights of another layout (another language's tagger included) or not finite.
    pub fn new(lang: Lang, weights: &Weights) -> Result<Self, TextError> {
        let model = model(lang);
        model
            .check(weights)
            .map_err(|e| TextError::Tagger(e.to_string()))?;
        Ok(Self {
            lang,
            model,
            values: weights.values().into(),
            threshold: DEFAULT_THRESHOLD,
        })
    }

    /// The tagger shipped with the crate for `lang`, trained on the tuning halves of the gold
    /// sets (`cohort deid text train`; `docs/deid-text.md`).
    pub fn shipped(lang: Lang) -> Self {
        let bytes: &[u8] = match lang {
            Lang::Fr => include_bytes!("../../model/phi_tagger_fr.safetensors"),
            Lang::En => include_bytes!("../../model/phi_tagger_en.safetensors"),
        };
        let weights = Weights::from_safetensors(bytes).expect("the shipped tagger reads");
        Self::new(lang, &weights).expect("the shipped tagger fits its model")
    }

    /// Tag words whose probability of "no PHI" is under `threshold` (0 to 1; lower tags
    /// fewer words).
    pub fn with_threshold(mut self, threshold: f32) -> Self {
        self.threshold = threshold.clamp(0.0, 1.0);
        self
    }

    /// Language the tagger was trained for.
    pub fn lang(&self) -> Lang {
        self.lang
    }

    /// The words of `text` that the rules left (`found`) and the tagger calls PHI.
    pub(super) fn find(
        &self,
        text: &str,
        tokens: &[Token],
        found: &[Found],
        lexed: Lexed,
    ) -> Vec<Found> {
        let facts = names::facts(text, tokens, self.lang, lexed, found);
        let taken = taken_labels(tokens, found);
        let mut out = Vec::new();
        for i in 0..tokens.len() {
            if facts[i].taken || !candidate(&tokens[i], &facts[i]) {
                continue;
            }
            let row = features(text, tokens, &facts, &taken, i);
            let p = self.model.probabilities(&self.values, &row);
            if p[0] >= self.threshold {
                continue;
            }
            let best = (1..CLASSES.len()).max_by(|&a, &b| p[a].total_cmp(&p[b]));
            if let Some(label) = best.and_then(|c| CLASSES[c]) {
                out.push(Found::new(tokens[i].start, tokens[i].end, label));
            }
        }
        out
    }
}

/// The training rows of one note: every candidate word (whether or not the rules found it),
/// labelled by `gold` (character offsets), with the rules' spans `found` as its neighbours'
/// context, as [`Tagger::find`] sees them.
pub(super) fn examples(
    text: &str,
    tokens: &[Token],
    lang: Lang,
    found: &[Found],
    lexed: Lexed,
    gold: &[Span],
) -> Vec<Example> {
    let facts = names::facts(text, tokens, lang, lexed, found);
    let taken = taken_labels(tokens, found);
    let gold = byte_spans(text, gold);
    let mut spans = gold.iter().peekable();
    let mut rows = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        while spans.next_if(|s| s.1 <= t.start).is_some() {}
        if !candidate(t, &facts[i]) {
            continue;
        }
        let label = spans
            .peek()
            .filter(|s| s.0 < t.end)
            .map_or(0, |s| class_of(s.2));
        rows.push(Example {
            features: features(text, tokens, &facts, &taken, i),
            label,
        });
    }
    rows
}

/// Gold spans in byte offsets, sorted.
fn byte_spans(text: &str, spans: &[Span]) -> Vec<(usize, usize, Label)> {
    let mut offsets: Vec<usize> = text.char_indices().map(|(b, _)| b).collect();
    offsets.push(text.len());
    let at = |c: usize| offsets[c.min(offsets.len() - 1)];
    let mut out: Vec<_> = spans
        .iter()
        .map(|s| (at(s.start), at(s.end), s.label))
        .collect();
    out.sort_by_key(|s| (s.0, s.1));
    out
}

/// The label of the rules' span over each token, if any.
fn taken_labels(tokens: &[Token], found: &[Found]) -> Vec<Option<Label>> {
    let mut spans = found.iter().peekable();
    tokens
        .iter()
        .map(|t| {
            while spans.next_if(|s| s.end <= t.start).is_some() {}
            spans.peek().filter(|s| s.start < t.end).map(|s| s.label)
        })
        .collect()
}

/// Words the tagger looks at: letters, two or more, not a function word, and capitalised or
/// not an ordinary word (lower-case ordinary words are never tagged).
fn candidate(t: &Token, f: &Facts) -> bool {
    t.alpha && t.chars() >= 2 && !f.stop && (t.capitalised() || !f.common)
}

fn case_name(case: Case) -> &'static str {
    match case {
        Case::Upper => "U",
        Case::Title => "T",
        Case::Lower => "L",
        Case::Other => "O",
    }
}

fn length_bucket(chars: usize) -> &'static str {
    match chars {
        0..=2 => "2",
        3 => "3",
        4..=5 => "5",
        6..=8 => "8",
        _ => "9",
    }
}

/// Shapes of words that are not shown: case, then `n` for a listed name, `c` for an ordinary
/// word.
const SHAPES: [[&str; 4]; 4] = [
    ["<U>", "<Uc>", "<Un>", "<Unc>"],
    ["<T>", "<Tc>", "<Tn>", "<Tnc>"],
    ["<L>", "<Lc>", "<Ln>", "<Lnc>"],
    ["<O>", "<Oc>", "<On>", "<Onc>"],
];
const NUMBERS: [&str; 7] = [
    "<num0>", "<num1>", "<num2>", "<num3>", "<num4>", "<num5>", "<num6>",
];

/// What a neighbouring word shows: itself when it is an ordinary or function word, the label
/// of the rules' span over it, or its shape (a name is never a feature).
fn neighbour<'a>(t: &'a Token, f: &Facts, taken: Option<Label>) -> &'a str {
    if let Some(label) = taken {
        return label.as_str();
    }
    if !t.alpha {
        return NUMBERS[t.chars().min(6)];
    }
    let listed = f.given || f.family;
    if (f.common || f.stop) && !(t.capitalised() && listed) {
        return &t.lower;
    }
    let case = match t.case {
        Case::Upper => 0,
        Case::Title => 1,
        Case::Lower => 2,
        Case::Other => 3,
    };
    SHAPES[case][usize::from(listed) * 2 + usize::from(f.common)]
}

/// The characters between two words, as a class: a space, a line break, or the punctuation
/// (at most two marks).
fn gap_class(gap: &str) -> &str {
    if gap.contains('\n') {
        return "nl";
    }
    let trimmed = gap.trim();
    match trimmed.char_indices().nth(2) {
        None if trimmed.is_empty() => "sp",
        None => trimmed,
        Some((cut, _)) => &trimmed[..cut],
    }
}

/// The hashed features of token `i`.
fn features(
    text: &str,
    tokens: &[Token],
    facts: &[Facts],
    taken: &[Option<Label>],
    i: usize,
) -> Vec<(u32, f32)> {
    let (t, f) = (&tokens[i], &facts[i]);
    let case = case_name(t.case);
    let bits = [f.common, f.given, f.family, f.clinical, f.city, f.hospital]
        .map(|b| if b { b'1' } else { b'0' });
    let flags = std::str::from_utf8(&bits).expect("ASCII");
    let mut indices = Vec::with_capacity(24);
    let mut add = |parts: &[&str]| indices.push(hash_parts(parts, FEATURES));
    add(&["bias"]);
    add(&["shape:", case, length_bucket(t.chars())]);
    add(&["flags:", flags]);
    add(&["flags:", case, flags]);
    add(&["start:", if f.sentence_start { "1" } else { "0" }, case]);
    if f.common {
        add(&["w:", &t.lower]);
    } else if t.chars() >= 4 {
        let cut = t.lower.char_indices().rev().nth(2).map_or(0, |(b, _)| b);
        add(&["suffix:", &t.lower[cut..]]);
    }
    if let Some(cue) = f.cue {
        add(&["cue:", cue]);
    }
    let n = tokens.len();
    let context = [i.checked_sub(2), i.checked_sub(1), Some(i + 1), Some(i + 2)].map(|j| {
        match j.filter(|&j| j < n) {
            Some(j) => neighbour(&tokens[j], &facts[j], taken[j]),
            None => "<edge>",
        }
    });
    for (offset, word) in ["-2:", "-1:", "+1:", "+2:"].iter().zip(context) {
        add(&[offset, word]);
    }
    add(&["-1:", context[1], "|", case]);
    add(&["+1:", context[2], "|", case]);
    add(&["-2-1:", context[0], "|", context[1]]);
    for (offset, j) in [("-1cue:", i.checked_sub(1)), ("-2cue:", i.checked_sub(2))] {
        if let Some(cue) = j.and_then(|j| facts[j].cue) {
            add(&[offset, cue]);
        }
    }
    let before = match i.checked_sub(1) {
        Some(p) => gap_class(&text[tokens[p].end..t.start]),
        None => "edge",
    };
    let after = match tokens.get(i + 1) {
        Some(next) => gap_class(&text[t.end..next.start]),
        None => "edge",
    };
    add(&["gap-:", before]);
    add(&["gap+:", after]);
    add(&["gap-+:", before, "|", after, "|", case]);
    indices_row(indices)
}

#[cfg(test)]
mod tests {
    use super::super::token::tokenize;
    use super::*;

    fn rows(text: &str) -> Vec<Example> {
        let tokens = tokenize(text);
        let gold = [Span {
            start: 3,
            end: 9,
            label: Label::Name,
        }];
        let lexed = names::detect(text, &tokens, Lang::En, &[]).1;
        examples(text, &tokens, Lang::En, &[], lexed, &gold)
    }

    #[test]
    fn candidates_are_capitalised_or_unknown_words_labelled_by_gold() {
        let r = rows("Dr Zyxwab saw the patient in Boston today.");
        // `Dr` (a title), `Zyxwab`, `Boston`: lower-case ordinary words are no candidates.
        assert_eq!(r.len(), 3);
        assert_eq!(r.iter().map(|e| e.label).collect::<Vec<_>>(), [0, 1, 0]);
    }

    #[test]
    fn a_name_is_never_a_feature_of_its_own_or_its_neighbours() {
        // the same sentence with another unknown name gives the same rows
        let a = rows("Dr Zyxwab saw the patient in Boston today.");
        let b = rows("Dr Qopwuv saw the patient in Boston today.");
        assert_eq!(a[0], b[0]);
        assert_eq!(a[2], b[2]);
    }

    #[test]
    fn a_trained_tagger_tags_what_it_learned() {
        let text = "Seen with Zyxwab today. Seen with Qopwuv today. Seen with Plorbin today.";
        let tokens = tokenize(text);
        let gold: Vec<Span> = [(10, 16), (34, 40), (58, 65)]
            .iter()
            .map(|&(start, end)| Span {
                start,
                end,
                label: Label::Name,
            })
            .collect();
        let lexed = names::detect(text, &tokens, Lang::En, &[]).1;
        let rows = examples(text, &tokens, Lang::En, &[], lexed, &gold);
        let config = learn::sparse::Config {
            epochs: 40,
            ..learn::sparse::Config::default()
        };
        let model = model(Lang::En);
        let (weights, _) = model
            .train(&model.initial_weights(), &rows, &config, 1)
            .unwrap();
        let tagger = Tagger::new(Lang::En, &weights).unwrap();
        let other = "Seen with Vrentok today.";
        let tokens = tokenize(other);
        let lexed = names::detect(other, &tokens, Lang::En, &[]).1;
        let found = tagger.find(other, &tokens, &[], lexed);
        assert_eq!(found, [Found::new(10, 17, Label::Name)]);
        let wrong = Weights::new(vec![("x.weight".into(), vec![2])], vec![0.0; 2]).unwrap();
        assert!(Tagger::new(Lang::En, &wrong).is_err());
        let french = Tagger::new(Lang::Fr, &weights).unwrap_err();
        assert!(french.to_string().contains("phi_tagger_fr"), "{french}");
    }
}
