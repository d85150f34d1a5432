//! Reading the public corpora (text in, records out): ACI-Bench visits with their full notes and
//! MTS-Dialog dialogue/section pairs, both CSV with quoted multi-line fields.

use std::collections::HashMap;

use crate::Error;

/// One ACI-Bench visit.
#[derive(Clone, Debug, PartialEq)]
pub struct Encounter {
    /// `encounter_id` (or `id`).
    pub id: String,
    /// Source subset: `aci`, `virtassist` or `virtscribe`.
    pub dataset: String,
    /// The transcript, `[doctor] …` / `[patient] …`.
    pub dialogue: String,
    /// The reference note.
    pub note: String,
}

/// One MTS-Dialog pair: a short dialogue and the note section written from it.
#[derive(Clone, Debug, PartialEq)]
pub struct SectionPair {
    /// MTS-Dialog's section header (`GENHX`, `ROS`, …).
    pub header: String,
    /// The section text.
    pub section_text: String,
    /// The dialogue, `Doctor: …` lines.
    pub dialogue: String,
}

/// Parses CSV (RFC 4180: quoted fields with doubled quotes and line breaks; a UTF-8 BOM is
/// skipped) into records keyed by the header row.
pub fn read_csv(text: &str) -> Result<Vec<HashMap<String, String>>, Error> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut rows: Vec<Vec<String>> = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    if quoted {
        return Err(Error::Corpus("a quoted field is not closed".into()));
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    let mut rows = rows.into_iter().filter(|r| r.iter().any(|f| !f.is_empty()));
    let header = rows
        .next()
        .ok_or_else(|| Error::Corpus("the file is empty".into()))?;
    rows.enumerate()
        .map(|(i, r)| {
            if r.len() != header.len() {
                return Err(Error::Corpus(format!(
                    "record {} has {} fields, the header {}",
                    i + 1,
                    r.len(),
                    header.len()
                )));
            }
            Ok(header.iter().cloned().zip(r).collect())
        })
        .collect()
}

fn column(record: &HashMap<String, String>, names: &[&str]) -> Result<String, Error> {
    names
        .iter()
        .find_map(|n| record.get(*n))
        .cloned()
        .ok_or_else(|| Error::Corpus(format!("no column {}", names.join(" or "))))
}

/// ACI-Bench visits from `train.csv` / `valid.csv` (columns `dataset, encounter_id, dialogue,
/// note`).
pub fn aci_bench(csv: &str) -> Result<Vec<Encounter>, Error> {
    read_csv(csv)?
        .iter()
        .map(|r| {
            Ok(Encounter {
                id: column(r, &["encounter_id", "id"])?,
                dataset: column(r, &["dataset"])?,
                dialogue: column(r, &["dialogue"])?,
                note: column(r, &["note"])?,
            })
        })
        .collect()
}

/// MTS-Dialog pairs (columns `ID, section_header, section_text, dialogue`).
pub fn mts_dialog(csv: &str) -> Result<Vec<SectionPair>, Error> {
    read_csv(csv)?
        .iter()
        .map(|r| {
            Ok(SectionPair {
                header: column(r, &["section_header"])?,
                section_text: column(r, &["section_text"])?,
                dialogue: column(r, &["dialogue"])?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_fields_keep_commas_quotes_and_line_breaks() {
        let csv = "\u{feff}dataset,encounter_id,dialogue,note\r\n\
                   aci,D1,\"[doctor] hi , \"\"there\"\"\n[patient] hello\",\"PLAN\n\nRest.\"\n";
        let visits = aci_bench(csv).unwrap();
        assert_eq!(visits.len(), 1);
        assert_eq!(
            visits[0].dialogue,
            "[doctor] hi , \"there\"\n[patient] hello"
        );
        assert_eq!(visits[0].note, "PLAN\n\nRest.");
    }

    #[test]
    fn ragged_records_are_refused() {
        assert!(read_csv("a,b\n1\n").is_err());
        assert!(read_csv("a\n\"open\n").is_err());
    }
}
