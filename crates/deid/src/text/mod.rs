//! De-identification of clinical free text (French and English): spans of
//! protected health information found by rules, word lists and the
//! patient's own record, then replaced by `[LABEL]` tags or by surrogates.
//!
//! Pure: text in, spans and redacted text out, keyed by the hospital's
//! secret ([`DeidKey`]) for surrogates and date shifts.
//!
//! ```
//! use deid::DeidKey;
//! use deid::text::{Context, Deidentifier, Lang, Replacement, TextOptions};
//!
//! let key = DeidKey::new(b"a hospital secret of 16+ bytes")?;
//! let deid = Deidentifier::new(Lang::Fr, Some(key), TextOptions::default())?;
//! let context = Context { names: vec!["Jeanne Dupont".into()], ..Context::default() };
//! let out = deid.redact("Mme DUPONT vue le 12/03/2024, tél 06 12 34 56 78.", &context);
//! assert!(!out.text.contains("DUPONT"));
//! assert_eq!(out.spans.len(), 3);
//!
//! let tags = Deidentifier::new(Lang::Fr, None, TextOptions { replacement: Replacement::Tags })?;
//! assert_eq!(tags.redact("Dr Martin", &Context::default()).text, "Dr [NAME]");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Recall comes first: a missed name is a leak, a word removed for nothing
//! only costs a word. `docs/deid-text.md` lists the detectors and the
//! measured quality.

mod context;
pub mod eval;
mod lexicon;
mod names;
mod patterns;
mod surrogate;
pub mod tagger;
mod token;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::keys::DeidKey;

pub use token::fold;

/// Language of the notes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    /// French.
    Fr,
    /// English.
    En,
}

impl Lang {
    /// Its code: `fr` or `en`.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Fr => "fr",
            Lang::En => "en",
        }
    }
}

impl FromStr for Lang {
    type Err = TextError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "fr" | "french" => Ok(Lang::Fr),
            "en" | "english" => Ok(Lang::En),
            _ => Err(TextError::UnknownLanguage(s.to_string())),
        }
    }
}

/// Category of a span of protected health information.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Label {
    /// A person's name (patient, relative, staff).
    Name,
    /// A date or part of one (day and month, month and year, weekday...).
    Date,
    /// An age over 89.
    Age,
    /// Telephone or fax number.
    Phone,
    /// E-mail address.
    Email,
    /// Web address.
    Url,
    /// IP address.
    Ip,
    /// Street address.
    Address,
    /// Postcode.
    Zip,
    /// City or other place.
    City,
    /// Hospital, clinic or service named with a place.
    Hospital,
    /// French patient identifier (IPP).
    Ipp,
    /// French stay number (NDA).
    Nda,
    /// French social-security number (NIR).
    Nir,
    /// US social-security number.
    Ssn,
    /// Medical record number.
    Mrn,
    /// Account or insurance number.
    Account,
    /// Any other identifying number or code.
    Id,
}

impl Label {
    /// Every label, in order.
    pub const ALL: [Label; 18] = [
        Label::Name,
        Label::Date,
        Label::Age,
        Label::Phone,
        Label::Email,
        Label::Url,
        Label::Ip,
        Label::Address,
        Label::Zip,
        Label::City,
        Label::Hospital,
        Label::Ipp,
        Label::Nda,
        Label::Nir,
        Label::Ssn,
        Label::Mrn,
        Label::Account,
        Label::Id,
    ];

    /// The tag written in place of a span (`NAME`, `DATE`...).
    pub fn as_str(self) -> &'static str {
        match self {
            Label::Name => "NAME",
            Label::Date => "DATE",
            Label::Age => "AGE",
            Label::Phone => "PHONE",
            Label::Email => "EMAIL",
            Label::Url => "URL",
            Label::Ip => "IP",
            Label::Address => "ADDRESS",
            Label::Zip => "ZIP",
            Label::City => "CITY",
            Label::Hospital => "HOSPITAL",
            Label::Ipp => "IPP",
            Label::Nda => "NDA",
            Label::Nir => "NIR",
            Label::Ssn => "SSN",
            Label::Mrn => "MRN",
            Label::Account => "ACCOUNT",
            Label::Id => "ID",
        }
    }

    /// Names and identifiers (the categories held to the highest recall).
    pub fn is_name_or_id(self) -> bool {
        matches!(
            self,
            Label::Name
                | Label::Phone
                | Label::Email
                | Label::Ipp
                | Label::Nda
                | Label::Nir
                | Label::Ssn
                | Label::Mrn
                | Label::Account
                | Label::Id
        )
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A span found in a note: character offsets (Unicode scalar values, end
/// exclusive) into the input text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Span {
    /// First character.
    pub start: usize,
    /// Past the last character.
    pub end: usize,
    /// Category.
    pub label: Label,
}

/// What the EHR knows of the note's patient: every occurrence of these
/// values is removed, also misspelt, abbreviated, in capitals or without
/// accents.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Context {
    /// Key of the patient for date shifts and consistent surrogates (e.g.
    /// the FHIR Patient id); without it, one per note.
    pub patient_id: Option<String>,
    /// Person names of the record: the patient, relatives and contacts,
    /// practitioners of the encounter (`"Jeanne Marie Dupont"`).
    pub names: Vec<String>,
    /// Birth date (`YYYY-MM-DD`).
    pub birth_date: Option<String>,
    /// Identifiers (IPP, NDA, NIR, MRN, SSN, insurance numbers...).
    pub identifiers: Vec<String>,
    /// Address lines, cities and postcodes.
    pub addresses: Vec<String>,
    /// Phone numbers and e-mail addresses.
    pub telecom: Vec<String>,
    /// Days by which this patient's dates move (the caller's own shift, e.g.
    /// the training gate's); without it, derived from the key and `patient_id`.
    pub date_shift_days: Option<i64>,
}

/// How spans are replaced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Replacement {
    /// Consistent fake values: the same name gives the same surrogate within
    /// a patient, dates move by the patient's keyed shift (intervals
    /// survive), numbers keep their format.
    #[default]
    Surrogates,
    /// `[LABEL]` tags.
    Tags,
}

/// Options of the text de-identifier.
#[derive(Debug, Clone, Copy, Default)]
pub struct TextOptions {
    /// Surrogates (the default) or tags.
    pub replacement: Replacement,
}

/// Why a text de-identifier cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum TextError {
    /// Not `fr` or `en`.
    #[error("unknown language {0:?} (expected fr or en)")]
    UnknownLanguage(String),
    /// Surrogates and date shifts need the hospital's key.
    #[error("surrogates need a de-identification key (or choose tags)")]
    NoKey,
    /// Weights that are not a PHI tagger's.
    #[error("PHI tagger: {0}")]
    Tagger(String),
    /// A tagger trained for another language.
    #[error("the PHI tagger is for another language than the de-identifier")]
    TaggerLanguage,
}

/// A note after de-identification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redaction {
    /// The note with every span replaced.
    pub text: String,
    /// The spans found, in order, with offsets into the input.
    pub spans: Vec<Span>,
}

/// A span in byte offsets, before conversion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Found {
    pub start: usize,
    pub end: usize,
    pub label: Label,
}

impl Found {
    fn new(start: usize, end: usize, label: Label) -> Self {
        Self { start, end, label }
    }
}

/// The text de-identifier of one language, keyed by the hospital's secret.
#[derive(Debug, Clone)]
pub struct Deidentifier {
    lang: Lang,
    key: Option<DeidKey>,
    options: TextOptions,
    tagger: Option<tagger::Tagger>,
}

impl Deidentifier {
    /// A de-identifier for `lang`. `key` may be `None` only with
    /// [`Replacement::Tags`].
    pub fn new(lang: Lang, key: Option<DeidKey>, options: TextOptions) -> Result<Self, TextError> {
        if key.is_none() && options.replacement == Replacement::Surrogates {
            return Err(TextError::NoKey);
        }
        Ok(Self {
            lang,
            key,
            options,
            tagger: None,
        })
    }

    /// This de-identifier with the statistical tagger added after the rules (see [`tagger`]):
    /// the words it calls PHI are removed too.
    ///
    /// # Errors
    /// A tagger of another language.
    pub fn with_tagger(mut self, tagger: tagger::Tagger) -> Result<Self, TextError> {
        if tagger.lang() != self.lang {
            return Err(TextError::TaggerLanguage);
        }
        self.tagger = Some(tagger);
        Ok(self)
    }

    /// Training rows for the tagger from one note: its candidate words labelled by `gold`
    /// (character offsets).
    pub fn tagger_examples(
        &self,
        text: &str,
        context: &Context,
        gold: &[Span],
    ) -> Vec<learn::sparse::Example> {
        let tokens = token::tokenize(text);
        let (rules, lexed) = self.rules(text, &tokens, context);
        tagger::examples(text, &tokens, self.lang, &rules, lexed, gold)
    }

    /// Training rows for the tagger from one note of a hospital's own: its candidate words
    /// labelled by this de-identifier's spans with the patient's `context` (the silver labels a
    /// hospital trains on), and those spans.
    pub fn silver_tagger_examples(
        &self,
        text: &str,
        context: &Context,
    ) -> (Vec<learn::sparse::Example>, Vec<Span>) {
        let tokens = token::tokenize(text);
        let (rules, lexed) = self.rules(text, &tokens, context);
        let spans = to_chars(text, &rules);
        let examples = tagger::examples(text, &tokens, self.lang, &rules, lexed, &spans);
        (examples, spans)
    }

    /// Load the word lists and compile the rules now rather than on the
    /// first note (about a second; they are shared by every de-identifier
    /// of the process).
    pub fn preload(&self) {
        patterns::preload(self.lang);
        names::preload(self.lang);
        if self.options.replacement == Replacement::Surrogates {
            lexicon::surrogate_names(self.lang);
        }
    }

    /// Language of this de-identifier.
    pub fn lang(&self) -> Lang {
        self.lang
    }

    /// The spans of protected information in `text`, character offsets.
    pub fn detect(&self, text: &str, context: &Context) -> Vec<Span> {
        to_chars(text, &self.find(text, context))
    }

    /// Find the spans of `text` and replace them.
    pub fn redact(&self, text: &str, context: &Context) -> Redaction {
        let found = self.find(text, context);
        let redacted = match (&self.key, self.options.replacement) {
            (Some(key), Replacement::Surrogates) => {
                surrogate::Surrogates::new(key, self.lang, text, context).apply(text, &found)
            }
            _ => surrogate::tags(text, &found),
        };
        Redaction {
            text: redacted,
            spans: to_chars(text, &found),
        }
    }

    fn find(&self, text: &str, context: &Context) -> Vec<Found> {
        let tokens = token::tokenize(text);
        let (found, lexed) = self.rules(text, &tokens, context);
        match &self.tagger {
            Some(tagger) => {
                let tagged = tagger.find(text, &tokens, &found, lexed);
                if tagged.is_empty() {
                    return found;
                }
                let mut found = found;
                found.extend(tagged);
                join_names(text, merge(found))
            }
            None => found,
        }
    }

    /// The spans of the rules, the word lists and the patient's record, and what the lists
    /// said of each token.
    fn rules(
        &self,
        text: &str,
        tokens: &[token::Token],
        context: &Context,
    ) -> (Vec<Found>, names::Lexed) {
        let mut found = patterns::detect(text, self.lang);
        found.extend(context::detect(text, tokens, context));
        found = merge(found);
        let (named, lexed) = names::detect(text, tokens, self.lang, &found);
        found.extend(named);
        let mut found = join_names(text, merge(found));
        let codes = initials_codes(text, &found);
        if !codes.is_empty() {
            found.extend(codes);
            found = merge(found);
        }
        (found, lexed)
    }
}

/// Codes made of a named person's initials and digits (`FB59` beside `FILBERT BRIGHT, M.D.`):
/// the dictating clinician's or typist's reference at the foot of a note, which names them.
fn initials_codes(text: &str, found: &[Found]) -> Vec<Found> {
    // A person: name spans next to each other (`FILBERT` `BRIGHT`), or one span of words.
    let mut people: Vec<(usize, usize)> = Vec::new();
    for name in found.iter().filter(|f| f.label == Label::Name) {
        match people.last_mut() {
            Some((_, end))
                if text[*end..name.start].len() <= 3
                    && text[*end..name.start]
                        .chars()
                        .all(|c| matches!(c, ' ' | ',' | '.')) =>
            {
                *end = name.end
            }
            _ => people.push((name.start, name.end)),
        }
    }
    let mut initials = std::collections::HashSet::new();
    for (start, end) in people {
        let words: Vec<char> = text[start..end]
            .split(|c: char| !c.is_alphabetic())
            .filter(|w| w.chars().count() > 1)
            .filter_map(|w| w.chars().next())
            .flat_map(char::to_uppercase)
            .collect();
        if (2..=4).contains(&words.len()) {
            initials.insert(words.iter().collect::<String>());
            // `LAST, First` written the other way round
            initials.insert(words.iter().rev().collect::<String>());
        }
    }
    if initials.is_empty() {
        return Vec::new();
    }
    let mut codes = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices().chain([(text.len(), ' ')]) {
        match (c.is_ascii_alphanumeric(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                let word = &text[s..i];
                let letters = word.trim_end_matches(|c: char| c.is_ascii_digit());
                let digits = word.len() - letters.len();
                if (1..=4).contains(&digits)
                    && letters.chars().all(|c| c.is_ascii_uppercase())
                    && initials.contains(letters)
                {
                    codes.push(Found::new(s, i, Label::Name));
                }
                start = None;
            }
            _ => {}
        }
    }
    codes
}

/// One span for a name written with punctuation between its words
/// (`Villegas, Yosef`, `Xzavian G. Tavares`, `OROZCO,KYLE`).
fn join_names(text: &str, found: Vec<Found>) -> Vec<Found> {
    let mut out: Vec<Found> = Vec::with_capacity(found.len());
    for f in found {
        if let Some(last) = out.last_mut() {
            let gap = &text[last.end..f.start];
            let punctuation = gap.len() <= 3
                && gap.chars().any(|c| matches!(c, ',' | '.' | '-' | '\''))
                && gap
                    .chars()
                    .all(|c| matches!(c, ',' | '.' | '-' | '\'' | ' '));
            if last.label == Label::Name && f.label == Label::Name && punctuation {
                last.end = f.end;
                continue;
            }
        }
        out.push(f);
    }
    out
}

/// Merge overlapping spans; the merged span takes the label of its longest part.
fn merge(mut found: Vec<Found>) -> Vec<Found> {
    found.sort_by_key(|f| (f.start, std::cmp::Reverse(f.end)));
    let mut out: Vec<(Found, usize)> = Vec::with_capacity(found.len());
    for f in found {
        if f.start >= f.end {
            continue;
        }
        match out.last_mut() {
            Some((last, longest)) if f.start < last.end => {
                if f.end - f.start > *longest {
                    *longest = f.end - f.start;
                    last.label = f.label;
                }
                last.end = last.end.max(f.end);
            }
            _ => out.push((f, f.end - f.start)),
        }
    }
    out.into_iter().map(|(f, _)| f).collect()
}

fn to_chars(text: &str, found: &[Found]) -> Vec<Span> {
    let mut spans = Vec::with_capacity(found.len());
    let mut chars = 0;
    let mut at = 0;
    let mut advance = |to: usize| {
        chars += text[at..to].chars().count();
        at = to;
        chars
    };
    for f in found {
        let start = advance(f.start);
        let end = advance(f.end);
        spans.push(Span {
            start,
            end,
            label: f.label,
        });
    }
    spans
}
