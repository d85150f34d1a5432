//! Replacing spans: `[LABEL]` tags, or surrogates keyed by the hospital's
//! secret and the patient: the same name gives the same fake name within a
//! patient, dates move by the patient's date shift (the one the gate uses
//! for every other date), numbers keep their shape.

use std::sync::OnceLock;

use regex::Regex;
use time::{Date, Duration, Month};

use super::lexicon;
use super::token::fold;
use super::{Context, Found, Label, Lang};
use crate::keys::DeidKey;

/// `text` with every span replaced by its `[LABEL]` tag.
pub fn tags(text: &str, found: &[Found]) -> String {
    replace(text, found, |f, _| format!("[{}]", f.label))
}

fn replace(text: &str, found: &[Found], mut with: impl FnMut(&Found, &str) -> String) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for f in found {
        out.push_str(&text[at..f.start]);
        out.push_str(&with(f, &text[f.start..f.end]));
        at = f.end;
    }
    out.push_str(&text[at..]);
    out
}

/// Keyed surrogates for one note.
pub struct Surrogates<'a> {
    key: &'a DeidKey,
    lang: Lang,
    /// Whose values these are: the patient id, or the note itself.
    scope: String,
    offset_days: i64,
}

impl<'a> Surrogates<'a> {
    /// Surrogates for a note of the patient `context.patient_id` (without
    /// one, the note is its own scope).
    pub fn new(key: &'a DeidKey, lang: Lang, text: &str, context: &Context) -> Self {
        let scope = context
            .patient_id
            .clone()
            .unwrap_or_else(|| format!("note:{}", key.pseudonym("text-note", text, 32)));
        Self {
            key,
            lang,
            offset_days: context
                .date_shift_days
                .unwrap_or_else(|| key.date_offset_days(&scope)),
            scope,
        }
    }

    /// `text` with every span replaced by its surrogate.
    pub fn apply(&self, text: &str, found: &[Found]) -> String {
        replace(text, found, |f, original| self.surrogate(f.label, original))
    }

    fn surrogate(&self, label: Label, original: &str) -> String {
        match label {
            Label::Name => self.name(original),
            Label::Date => self.date(original).unwrap_or_else(|| format!("[{label}]")),
            Label::Age => "90+".to_string(),
            Label::Email => {
                let local = original.split('@').next().unwrap_or(original);
                format!("{}@example.org", fold(&self.name(local)).replace(' ', "."))
            }
            Label::Phone
            | Label::Ipp
            | Label::Nda
            | Label::Nir
            | Label::Ssn
            | Label::Mrn
            | Label::Account
            | Label::Id
            | Label::Zip
            | Label::Ip => self.same_shape(label, original),
            Label::Url | Label::Address | Label::City | Label::Hospital => format!("[{label}]"),
        }
    }

    fn index(&self, domain: &str, value: &str, len: usize) -> usize {
        let hex = self
            .key
            .pseudonym(domain, &format!("{}\0{value}", self.scope), 12);
        (u64::from_str_radix(&hex, 16).unwrap_or(0) % len as u64) as usize
    }

    /// Each word of a name becomes a listed name of the same kind (given or
    /// family) and the same case.
    fn name(&self, original: &str) -> String {
        let (given, family) = lexicon::surrogate_names(self.lang);
        let mut out = String::with_capacity(original.len());
        let mut word = String::new();
        let flush = |word: &mut String, out: &mut String| {
            if word.is_empty() {
                return;
            }
            let key = fold(word);
            let list = if lexicon::given_names().contains_folded(&key)
                && !lexicon::family_names().contains_folded(&key)
            {
                given
            } else {
                family
            };
            let mut at = self.index("text-name", &key, list.len());
            if fold(&list[at]) == key {
                at = (at + 1) % list.len();
            }
            let fake = &list[at];
            out.push_str(&recase(fake, word));
            word.clear();
        };
        for c in original.chars() {
            if c.is_alphanumeric() {
                word.push(c);
            } else {
                flush(&mut word, &mut out);
                out.push(c);
            }
        }
        flush(&mut word, &mut out);
        out
    }

    /// Digits become keyed digits and letters keyed letters; separators stay.
    fn same_shape(&self, label: Label, original: &str) -> String {
        let normal: String = original.chars().filter(|c| c.is_alphanumeric()).collect();
        let hex = self.key.pseudonym(
            &format!("text-{label}"),
            &format!("{}\0{}", self.scope, normal.to_uppercase()),
            64,
        );
        let mut digits = hex.bytes().cycle();
        let mut first = true;
        original
            .chars()
            .map(|c| {
                let b = digits.next().unwrap_or(b'0');
                let n = if b.is_ascii_digit() {
                    b - b'0'
                } else {
                    b - b'A' + 10
                };
                if c.is_ascii_digit() {
                    // Keep a leading `0` (French phone numbers, postcodes).
                    let keep = first && c == '0';
                    first = false;
                    if keep { '0' } else { char::from(b'0' + n % 10) }
                } else if c.is_alphabetic() {
                    first = false;
                    let l = char::from(b'A' + n % 26);
                    if c.is_lowercase() {
                        l.to_ascii_lowercase()
                    } else {
                        l
                    }
                } else {
                    c
                }
            })
            .collect()
    }

    fn date(&self, original: &str) -> Option<String> {
        let parsed = parse_date(original, self.lang)?;
        parsed.shifted(self.offset_days, self.lang)
    }
}

fn recase(fake: &str, like: &str) -> String {
    let letters: Vec<char> = like.chars().filter(|c| c.is_alphabetic()).collect();
    if letters.len() > 1 && letters.iter().all(|c| c.is_uppercase()) {
        fake.to_uppercase()
    } else if letters.iter().all(|c| c.is_lowercase()) {
        fake.to_string()
    } else {
        let mut cs = fake.chars();
        cs.next()
            .map(|f| f.to_uppercase().chain(cs).collect())
            .unwrap_or_default()
    }
}

/// A date as written: which parts it had and how they were written.
struct Parsed {
    date: Date,
    shape: Shape,
}

enum Shape {
    /// `12/03/2024`-like: order (day first?), separator, two-digit year?, time suffix.
    Numeric {
        day_first: bool,
        sep: String,
        short_year: bool,
        suffix: String,
    },
    /// `2024-03-12` and timestamps.
    Iso {
        sep: char,
        suffix: String,
    },
    /// Day and month without year.
    DayMonth {
        day_first: bool,
        sep: char,
    },
    /// `3/2019`
    MonthYear,
    /// Written month, with day and year when given.
    Written {
        day: bool,
        year: bool,
    },
    Year,
}

fn month_from_word(word: &str) -> Option<u8> {
    let w = fold(word);
    let w = w.trim_end_matches('.');
    const PREFIXES: [(&str, u8); 16] = [
        ("jan", 1),
        ("fe", 2),
        ("mar", 3),
        ("av", 4),
        ("ap", 4),
        ("mai", 5),
        ("may", 5),
        ("juin", 6),
        ("jun", 6),
        ("juil", 7),
        ("jul", 7),
        ("ao", 8),
        ("au", 8),
        ("se", 9),
        ("oc", 10),
        ("no", 11),
    ];
    if w.starts_with("de") {
        return Some(12);
    }
    PREFIXES
        .iter()
        .find(|(p, _)| w.starts_with(p))
        .map(|&(_, m)| m)
}

const MONTH_NAMES_FR: [&str; 12] = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
];
const MONTH_NAMES_EN: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

fn make(year: i32, month: u8, day: u8) -> Option<Date> {
    Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()
}

fn full_year(y: i32, digits: usize) -> i32 {
    if digits <= 2 {
        if y > 30 { 1900 + y } else { 2000 + y }
    } else {
        y
    }
}

fn parse_date(text: &str, lang: Lang) -> Option<Parsed> {
    static ISO: OnceLock<Regex> = OnceLock::new();
    static NUM: OnceLock<Regex> = OnceLock::new();
    static SHORT: OnceLock<Regex> = OnceLock::new();
    let iso = ISO
        .get_or_init(|| Regex::new(r"^(\d{4})([-/.])(\d{1,2})[-/.](\d{1,2})(.*)$").expect("valid"));
    let num = NUM.get_or_init(|| {
        Regex::new(r"^(\d{1,2})\s?([/.\-])\s?(\d{1,2})\s?[/.\-]\s?(\d{2,4})(.*)$").expect("valid")
    });
    let short = SHORT.get_or_init(|| Regex::new(r"^(\d{1,2})([/.\-])(\d{1,4})$").expect("valid"));
    let t = text.trim();
    if let Some(c) = iso.captures(t) {
        let date = make(c[1].parse().ok()?, c[3].parse().ok()?, c[4].parse().ok()?)?;
        let sep = c[2].chars().next()?;
        return Some(Parsed {
            date,
            shape: Shape::Iso {
                sep,
                suffix: c[5].to_string(),
            },
        });
    }
    let compact: String = t.chars().filter(|c| !c.is_whitespace()).collect();
    if compact.len() == 8 && compact.chars().all(|c| c.is_ascii_digit()) {
        let date = make(
            compact[4..].parse().ok()?,
            compact[2..4].parse().ok()?,
            compact[..2].parse().ok()?,
        )?;
        return Some(Parsed {
            date,
            shape: Shape::Numeric {
                day_first: true,
                sep: "/".into(),
                short_year: false,
                suffix: String::new(),
            },
        });
    }
    if let Some(c) = num.captures(&compact).or_else(|| num.captures(t)) {
        let (a, b): (u8, u8) = (c[1].parse().ok()?, c[3].parse().ok()?);
        let year = full_year(c[4].parse().ok()?, c[4].len());
        let day_first = lang == Lang::Fr && a <= 31 && b <= 12 || a > 12;
        let (d, m) = if day_first { (a, b) } else { (b, a) };
        return Some(Parsed {
            date: make(year, m, d)?,
            shape: Shape::Numeric {
                day_first,
                sep: c[2].to_string(),
                short_year: c[4].len() == 2,
                suffix: c[5].to_string(),
            },
        });
    }
    if let Some(c) = short.captures(t) {
        let (a, b): (i32, i32) = (c[1].parse().ok()?, c[3].parse().ok()?);
        if c[3].len() == 4 {
            return Some(Parsed {
                date: make(b, a as u8, 15)?,
                shape: Shape::MonthYear,
            });
        }
        let day_first = lang == Lang::Fr && b <= 12 || a > 12;
        let (d, m) = if day_first { (a, b) } else { (b, a) };
        return Some(Parsed {
            date: make(2001, m as u8, d as u8)?,
            shape: Shape::DayMonth {
                day_first,
                sep: c[2].chars().next()?,
            },
        });
    }
    if t.len() == 4 && t.chars().all(|c| c.is_ascii_digit()) {
        return Some(Parsed {
            date: make(t.parse().ok()?, 7, 1)?,
            shape: Shape::Year,
        });
    }
    // Written month: find the month word, a day (1-31) and a year.
    let mut month = None;
    let mut day = None;
    let mut year = None;
    for word in t.split(|c: char| !c.is_alphanumeric() && c != '\'') {
        if word.is_empty() {
            continue;
        }
        let digits: String = word.chars().take_while(char::is_ascii_digit).collect();
        let word_clean = word.trim_start_matches('\'');
        if !digits.is_empty() {
            let v: i32 = digits.parse().ok()?;
            if digits.len() == 4 || (month.is_some() && day.is_some()) || word.starts_with('\'') {
                year = Some(full_year(v, digits.len()));
            } else if day.is_none() && (1..=31).contains(&v) {
                day = Some(v as u8);
            } else {
                year = Some(full_year(v, digits.len()));
            }
        } else if month.is_none() && word_clean.len() >= 3 && is_month_word(word_clean) {
            month = month_from_word(word_clean);
        }
    }
    let month = month?;
    Some(Parsed {
        date: make(year.unwrap_or(2001), month, day.unwrap_or(15))?,
        shape: Shape::Written {
            day: day.is_some(),
            year: year.is_some(),
        },
    })
}

fn is_month_word(word: &str) -> bool {
    let w = fold(word);
    MONTH_NAMES_FR.iter().chain(MONTH_NAMES_EN.iter()).any(|m| {
        let m = fold(m);
        m.starts_with(&w) || w.starts_with(&m)
    })
}

impl Parsed {
    fn shifted(&self, days: i64, lang: Lang) -> Option<String> {
        let d = self.date.checked_add(Duration::days(days))?;
        let (y, m, day) = (d.year(), u8::from(d.month()), d.day());
        Some(match &self.shape {
            Shape::Iso { sep, suffix } => format!("{y:04}{sep}{m:02}{sep}{day:02}{suffix}"),
            Shape::Numeric {
                day_first,
                sep,
                short_year,
                suffix,
            } => {
                let year = if *short_year {
                    format!("{:02}", y.rem_euclid(100))
                } else {
                    format!("{y:04}")
                };
                if *day_first {
                    format!("{day:02}{sep}{m:02}{sep}{year}{suffix}")
                } else {
                    format!("{m:02}{sep}{day:02}{sep}{year}{suffix}")
                }
            }
            Shape::DayMonth { day_first, sep } => {
                if *day_first {
                    format!("{day}{sep}{m}")
                } else {
                    format!("{m}{sep}{day}")
                }
            }
            Shape::MonthYear => format!("{m}/{y}"),
            Shape::Year => format!("{y}"),
            Shape::Written {
                day: has_day,
                year: has_year,
            } => {
                let names = match lang {
                    Lang::Fr => &MONTH_NAMES_FR,
                    Lang::En => &MONTH_NAMES_EN,
                };
                let month = names[usize::from(m) - 1];
                match (has_day, has_year, lang) {
                    (true, true, Lang::Fr) => format!("{day} {month} {y}"),
                    (true, true, Lang::En) => format!("{month} {day}, {y}"),
                    (true, false, Lang::Fr) => format!("{day} {month}"),
                    (true, false, Lang::En) => format!("{month} {day}"),
                    (false, true, _) => format!("{month} {y}"),
                    (false, false, _) => month.to_string(),
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> DeidKey {
        DeidKey::new(b"a test secret of enough bytes").expect("key")
    }

    #[test]
    fn dates_move_by_the_patient_shift_in_their_own_shape() {
        let key = key();
        let context = Context {
            patient_id: Some("p1".into()),
            ..Context::default()
        };
        let s = Surrogates::new(&key, Lang::Fr, "", &context);
        let shift = key.date_offset_days("p1");
        let expected = make(2024, 3, 12)
            .unwrap()
            .checked_add(Duration::days(shift))
            .unwrap();
        let out = s.date("12/03/2024").expect("parsed");
        assert_eq!(
            out,
            format!(
                "{:02}/{:02}/{}",
                expected.day(),
                u8::from(expected.month()),
                expected.year()
            )
        );
        assert!(
            s.date("17 avril 2098")
                .expect("parsed")
                .chars()
                .any(char::is_alphabetic)
        );
        assert!(
            s.date("2024-03-12T10:00:00")
                .expect("parsed")
                .ends_with("T10:00:00")
        );
    }

    #[test]
    fn same_name_same_surrogate_within_a_patient() {
        let key = key();
        let context = Context {
            patient_id: Some("p1".into()),
            ..Context::default()
        };
        let s = Surrogates::new(&key, Lang::Fr, "", &context);
        assert_eq!(
            s.name("Dupont").to_lowercase(),
            s.name("DUPONT").to_lowercase()
        );
        assert_eq!(s.name("DUPONT"), s.name("DUPONT").to_uppercase());
        assert_ne!(s.name("Dupont").to_lowercase(), "dupont");
    }

    #[test]
    fn numbers_keep_their_shape() {
        let key = key();
        let s = Surrogates::new(&key, Lang::Fr, "note", &Context::default());
        let out = s.same_shape(Label::Phone, "06 12 34 56 78");
        assert_eq!(out.len(), 14);
        assert!(out.starts_with('0'));
        assert_eq!(out.chars().filter(|c| *c == ' ').count(), 4);
    }
}
