//! Scoring predicted spans against gold spans: character level (whitespace
//! ignored, labels not compared: the official `textdeid_score.py` way),
//! token level and span level, overall and per label.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::token::tokenize;
use super::{Label, Span};

/// A gold note: `{"note_id", "note_text", "entities": [{"start", "end", "label"}]}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GoldNote {
    /// Identifier of the note.
    pub note_id: String,
    /// Its text.
    pub note_text: String,
    /// Gold spans, character offsets.
    #[serde(default)]
    pub entities: Vec<GoldSpan>,
}

/// One gold span.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GoldSpan {
    /// First character.
    pub start: usize,
    /// Past the last character.
    pub end: usize,
    /// The corpus' own label (`NOM`, `PTName`, `DATE`...).
    pub label: String,
}

/// The label of this crate that a corpus label means (EDS-Pseudo, i2b2,
/// PhysioNet and this crate's own labels).
pub fn canonical(label: &str) -> Option<Label> {
    let l = label.to_ascii_uppercase();
    Some(match l.as_str() {
        "NOM" | "PRENOM" | "NAME" | "PTNAME" | "HCPNAME" | "RELATIVEPROXYNAME" | "PATIENT"
        | "DOCTOR" | "PERSON" | "USERNAME" | "PTNAMEINITIAL" => Label::Name,
        "DATE" | "DATE_NAISSANCE" | "DATEYEAR" | "DATE_TIME" | "BIRTHDATE" => Label::Date,
        "AGE" => Label::Age,
        "TEL" | "PHONE" | "FAX" | "PHONE_NUMBER" => Label::Phone,
        "MAIL" | "EMAIL" | "EMAIL_ADDRESS" => Label::Email,
        "URL" => Label::Url,
        "IP" | "IP_ADDRESS" => Label::Ip,
        "ADRESSE" | "ADDRESS" | "STREET" | "LOCATION" | "LOCATION-OTHER" => Label::Address,
        "ZIP" => Label::Zip,
        "VILLE" | "CITY" | "STATE" | "COUNTRY" => Label::City,
        "HOPITAL" | "HOSPITAL" | "ORGANIZATION" => Label::Hospital,
        "IPP" => Label::Ipp,
        "NDA" => Label::Nda,
        "SECU" | "NIR" => Label::Nir,
        "SSN" | "US_SSN" => Label::Ssn,
        "MRN" | "MEDICALRECORD" => Label::Mrn,
        "ACCOUNT" => Label::Account,
        "ID" | "IDNUM" | "DEVICE" | "HEALTHPLAN" | "LICENSE" | "OTHERID" => Label::Id,
        _ => return None,
    })
}

/// Counts and the precision, recall and F1 they give.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Counts {
    /// True positives.
    pub tp: usize,
    /// False positives.
    pub fp: usize,
    /// False negatives.
    pub fn_: usize,
}

impl Counts {
    /// tp / (tp + fp); 1 when nothing was predicted.
    pub fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }
    /// tp / (tp + fn); 1 when there was nothing to find.
    pub fn recall(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }
    /// Harmonic mean of precision and recall.
    pub fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 1.0 } else { a as f64 / b as f64 }
}

/// Scores at one level: overall, and per label (recall counted on gold
/// spans of the label, precision on predicted spans of the label).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Level {
    /// All labels together, label-agnostic.
    pub overall: Counts,
    /// Per label.
    pub per_label: BTreeMap<Label, Counts>,
}

/// The scores of a set of notes.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    /// Notes scored.
    pub notes: usize,
    /// Gold spans whose label this crate does not know (counted under overall only).
    pub unknown_labels: BTreeMap<String, usize>,
    /// Non-whitespace characters.
    pub chars: Level,
    /// Recall on the characters of names and identifiers.
    pub name_id_chars: Counts,
    /// Words (a word counts as PHI when any of its characters is).
    pub tokens: Level,
    /// Spans: a gold span is found when all its characters are covered; a
    /// predicted span is right when it overlaps a gold span.
    pub spans: Level,
}

impl Report {
    /// Add one note: its gold and predicted spans.
    pub fn add(&mut self, gold: &GoldNote, predicted: &[Span]) {
        self.notes += 1;
        let text: Vec<char> = gold.note_text.chars().collect();
        let n = text.len();
        let mut gold_mask: Vec<Option<Label>> = vec![None; n];
        let mut gold_any = vec![false; n];
        let mut name_id = vec![false; n];
        for e in &gold.entities {
            let label = canonical(&e.label);
            if label.is_none() {
                *self.unknown_labels.entry(e.label.clone()).or_insert(0) += 1;
            }
            for i in e.start.min(n)..e.end.min(n) {
                gold_any[i] = true;
                if gold_mask[i].is_none() {
                    gold_mask[i] = label;
                }
                if label.is_some_and(Label::is_name_or_id) {
                    name_id[i] = true;
                }
            }
        }
        let mut pred_mask: Vec<Option<Label>> = vec![None; n];
        for s in predicted {
            for slot in pred_mask.iter_mut().take(s.end.min(n)).skip(s.start.min(n)) {
                slot.get_or_insert(s.label);
            }
        }
        for i in 0..n {
            if text[i].is_whitespace() {
                continue;
            }
            tally(&mut self.chars, gold_any[i], gold_mask[i], pred_mask[i]);
            if name_id[i] {
                if pred_mask[i].is_some() {
                    self.name_id_chars.tp += 1;
                } else {
                    self.name_id_chars.fn_ += 1;
                }
            }
        }
        // Tokens: character offsets of each word.
        let byte_to_char: Vec<usize> = {
            let mut v = vec![0; gold.note_text.len() + 1];
            for (c, (b, ch)) in gold.note_text.char_indices().enumerate() {
                for slot in v.iter_mut().skip(b).take(ch.len_utf8()) {
                    *slot = c;
                }
            }
            v[gold.note_text.len()] = n;
            v
        };
        for t in tokenize(&gold.note_text) {
            let (s, e) = (byte_to_char[t.start], byte_to_char[t.end]);
            let g = (s..e).any(|i| gold_any[i]);
            let gl = (s..e).find_map(|i| gold_mask[i]);
            let p = (s..e).find_map(|i| pred_mask[i]);
            tally(&mut self.tokens, g, gl, p);
        }
        // Spans.
        for e in &gold.entities {
            let covered = (e.start.min(n)..e.end.min(n))
                .filter(|&i| !text[i].is_whitespace())
                .all(|i| pred_mask[i].is_some());
            let label = canonical(&e.label);
            let c = &mut self.spans.overall;
            if covered {
                c.tp += 1
            } else {
                c.fn_ += 1
            }
            if let Some(l) = label {
                let c = self.spans.per_label.entry(l).or_default();
                if covered { c.tp += 1 } else { c.fn_ += 1 }
            }
        }
        for s in predicted {
            let right = (s.start.min(n)..s.end.min(n)).any(|i| gold_any[i]);
            if !right {
                self.spans.overall.fp += 1;
                self.spans.per_label.entry(s.label).or_default().fp += 1;
            }
        }
    }
}

fn tally(level: &mut Level, gold: bool, gold_label: Option<Label>, pred: Option<Label>) {
    match (gold, pred) {
        (true, Some(_)) => level.overall.tp += 1,
        (true, None) => level.overall.fn_ += 1,
        (false, Some(_)) => level.overall.fp += 1,
        (false, None) => {}
    }
    if let Some(l) = gold_label {
        let c = level.per_label.entry(l).or_default();
        if pred.is_some() {
            c.tp += 1
        } else {
            c.fn_ += 1
        }
    }
    if let (false, Some(p)) = (gold, pred) {
        level.per_label.entry(p).or_default().fp += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn character_scores_ignore_whitespace_and_labels() {
        let gold = GoldNote {
            note_id: "n".into(),
            note_text: "Mme Jeanne DUPONT vue".into(),
            entities: vec![GoldSpan {
                start: 4,
                end: 17,
                label: "NOM".into(),
            }],
        };
        let mut report = Report::default();
        report.add(
            &gold,
            &[Span {
                start: 4,
                end: 10,
                label: Label::Date,
            }],
        );
        assert_eq!(report.chars.overall.tp, 6);
        assert_eq!(report.chars.overall.fn_, 6);
        assert_eq!(report.chars.overall.fp, 0);
        assert_eq!(report.name_id_chars.recall(), 0.5);
        assert_eq!(report.spans.overall.fn_, 1);
    }
}
