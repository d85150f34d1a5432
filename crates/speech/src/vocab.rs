//! Vocabulary from the patient's record (medications, problems, allergies), used three ways:
//! as Whisper's prompt (the decoder reads it as preceding text), as a logit bonus for the next
//! token of a vocabulary word whose first tokens were just sampled, and after decoding, to
//! correct near misses: a run of words that sounds like a record term
//! ("met forming", "Suma trip tan") is replaced by the term when their phonetic keys are close.

use crate::tokenizer::Tokenizer;

/// Bonus added to the logit of a token that continues a vocabulary word.
pub const DEFAULT_BONUS: f32 = 4.0;

/// Terms and their token sequences.
pub struct Bias {
    sequences: Vec<Vec<u32>>,
    bonus: f32,
}

impl Bias {
    /// Tokenises each term as a word (leading space), as written and capitalised.
    pub fn new(tok: &Tokenizer, terms: &[String], bonus: f32) -> Bias {
        let mut sequences: Vec<Vec<u32>> = terms
            .iter()
            .flat_map(|t| {
                let t = t.trim();
                [
                    format!(" {t}"),
                    format!(" {}", capitalised(t)),
                    format!(" {}", t.to_lowercase()),
                ]
            })
            .map(|w| tok.encode(&w))
            .filter(|s| s.len() > 1)
            .collect();
        sequences.sort();
        sequences.dedup();
        Bias { sequences, bonus }
    }

    /// Adds the bonus to every token that continues a term whose first tokens end `text`.
    pub fn apply(&self, text: &[u32], logits: &mut [f32]) {
        for seq in &self.sequences {
            for k in 1..seq.len().min(text.len() + 1) {
                if text.ends_with(&seq[..k])
                    && let Some(l) = logits.get_mut(seq[k] as usize)
                {
                    *l += self.bonus;
                }
            }
        }
    }
}

/// The prompt text naming the record's terms, in the language of the dictation.
pub fn prompt_text(terms: &[String], language: &str) -> String {
    if terms.is_empty() {
        return String::new();
    }
    let head = if language == "fr" {
        "Traitements et antécédents :"
    } else {
        "Medications and history:"
    };
    format!("{head} {}.", terms.join(", "))
}

/// Terms from a text file: one per line, `#` comments and blank lines ignored.
pub fn terms_from_text(text: &str) -> Vec<String> {
    let mut terms: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect();
    terms.dedup();
    terms
}

/// Words that end a medication's name in a display such as `amLODIPine 2.5 MG Oral Tablet`
/// (strengths, units and dose forms).
const DOSE_FORM_WORDS: &[&str] = &[
    "mg",
    "ml",
    "unt",
    "hr",
    "actuat",
    "oral",
    "tablet",
    "capsule",
    "injectable",
    "injection",
    "solution",
    "delayed",
    "extended",
    "release",
    "chewable",
    "transdermal",
    "system",
    "inhaler",
    "dry",
    "powder",
    "auto-injector",
    "inhalation",
    "suspension",
    "topical",
    "cream",
    "prefilled",
    "syringe",
    "pen",
    "cartridge",
    "patch",
    "spray",
    "nasal",
    "ophthalmic",
    "drops",
];
/// Salts named after the active moiety, left out of the spoken name.
const SALTS: &[&str] = &[
    "hydrochloride",
    "potassium",
    "sodium",
    "hyclate",
    "bitartrate",
];
/// Qualifiers SNOMED CT adds to a concept's display, e.g. `Hypertension (disorder)`.
const SEMANTIC_TAGS: &[&str] = &["(disorder)", "(finding)", "(situation)", "(procedure)"];
/// Longest problem or allergy name used as a term (longer displays are never said as such).
const MAX_TERM_CHARS: usize = 40;

/// The spoken name of a medication display: its first ingredient, lower case, without the
/// strength, unit, dose form or salt (`24 HR metFORMIN hydrochloride 500 MG Extended Release
/// Oral Tablet` -> `metformin`).
pub fn medication_name(display: &str) -> String {
    let first = display.split('/').next().unwrap_or_default();
    let mut words: Vec<&str> = first.split_whitespace().collect();
    if words.len() > 2
        && words[0].parse::<f64>().is_ok()
        && ["hr", "actuat", "ml"].contains(&words[1].to_lowercase().as_str())
    {
        words.drain(..2);
    }
    words
        .iter()
        .map(|w| w.to_lowercase())
        .take_while(|w| {
            !w.starts_with(|c: char| c.is_ascii_digit())
                && !DOSE_FORM_WORDS.contains(&w.as_str())
                && !w.starts_with('[')
        })
        .filter(|w| !SALTS.contains(&w.as_str()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A CodeableConcept's text, else its first coding's display.
fn concept_text(concept: &serde_json::Value) -> Option<&str> {
    concept["text"]
        .as_str()
        .or_else(|| concept["coding"][0]["display"].as_str())
}

/// The vocabulary a patient's record gives a dictation about them, from FHIR R4 resources
/// (the patient's `$everything`): medication names (MedicationRequest, MedicationStatement),
/// problems (Condition) and allergies (AllergyIntolerance), lower case, then the names of the
/// patient and of their related persons and practitioners as written. Each term once, in
/// record order.
pub fn record_terms(resources: &[serde_json::Value]) -> Vec<String> {
    let mut clinical: Vec<String> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for r in resources {
        match r["resourceType"].as_str().unwrap_or_default() {
            "MedicationRequest" | "MedicationStatement" => {
                if let Some(display) = concept_text(&r["medicationCodeableConcept"]) {
                    clinical.push(medication_name(display));
                }
            }
            "Condition" | "AllergyIntolerance" => {
                if let Some(text) = concept_text(&r["code"]) {
                    let mut text = text.to_lowercase();
                    for tag in SEMANTIC_TAGS {
                        text = text.replace(tag, "");
                    }
                    clinical.push(text.trim().to_string());
                }
            }
            "Patient" | "RelatedPerson" | "Practitioner" => {
                for name in r["name"].as_array().into_iter().flatten() {
                    let parts = name["given"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .chain(std::iter::once(&name["family"]))
                        .filter_map(|p| p.as_str());
                    names.extend(parts.map(|p| p.trim_end_matches(char::is_numeric).to_string()));
                }
            }
            _ => {}
        }
    }
    let mut terms: Vec<String> = Vec::new();
    for term in clinical.into_iter().chain(names) {
        let useful = term.chars().filter(|c| c.is_alphabetic()).count() > 3
            && term.chars().count() <= MAX_TERM_CHARS;
        if useful && !terms.contains(&term) {
            terms.push(term);
        }
    }
    terms
}

/// The hospital's formulary as its store holds it: the names of its `Medication` resources and
/// of every medication its MedicationRequests and MedicationStatements name (what the hospital
/// prescribes), each a spoken name ([`medication_name`]), sorted, each once.
pub fn formulary_names(resources: &[serde_json::Value]) -> Vec<String> {
    let displays =
        resources
            .iter()
            .filter_map(|r| match r["resourceType"].as_str().unwrap_or_default() {
                "Medication" => concept_text(&r["code"]),
                "MedicationRequest" | "MedicationStatement" => {
                    concept_text(&r["medicationCodeableConcept"])
                }
                _ => None,
            });
    spoken_names(displays)
}

/// A formulary file: one medication per line, as a name (`metformine`) or a display
/// (`amLODIPine 2.5 MG Oral Tablet`); `#` comments and blank lines ignored. Spoken names,
/// sorted, each once.
pub fn formulary_from_text(text: &str) -> Vec<String> {
    spoken_names(terms_from_text(text).iter().map(String::as_str))
}

fn spoken_names<'a>(displays: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut names: Vec<String> = displays
        .map(medication_name)
        .filter(|n| n.chars().filter(|c| c.is_alphabetic()).count() > 3)
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Shortest term (in letters) that corrections may produce: short names collide with words.
const MIN_TERM_LETTERS: usize = 5;
/// Largest edit distance between phonetic keys, as a fraction of the term's key length.
const MAX_KEY_DISTANCE: f32 = 0.3;
/// Largest such distance of words checked on the audio ([`crate::term_check`]): looser, since
/// the decoder's scores, not the spelling, decide there.
const CHECK_KEY_DISTANCE: f32 = 0.4;
/// Largest edit distance between the spellings (letters only), as a fraction of the term's.
const MAX_SPELLING_DISTANCE: f32 = 0.34;
/// One heard word that sounds closer than this (phonetic keys) may be spelled further off...
const CLOSE_KEY_DISTANCE: f32 = 0.2;
/// ...up to this (`listenoperal` for lisinopril).
const MAX_SPELLING_DISTANCE_CLOSE: f32 = 0.45;
/// Terms with shorter phonetic keys must also start with the same sound.
const SAME_START_BELOW: usize = 10;

/// Letters of a word, lower case, accents removed (`ç` sounds `s`); None when it has a digit.
fn letters(word: &str) -> Option<String> {
    let mut out = String::new();
    for c in word.chars().flat_map(char::to_lowercase) {
        match crate::wer::unaccented(c) {
            _ if c == 'ç' => out.push('s'),
            c @ 'a'..='z' => out.push(c),
            '0'..='9' => return None,
            _ => {}
        }
    }
    Some(out)
}

/// Splits a French elided word (`l'omeprazole`, `d'aspirine`, `qu'il`) into the elided
/// article or pronoun with its apostrophe and the word itself; other words are all word.
pub(crate) fn split_elision(word: &str) -> (&str, &str) {
    const ELIDED: &[&str] = &["l", "d", "j", "n", "s", "c", "m", "t", "qu"];
    if let Some(at) = word.find(['\'', '\u{2019}']) {
        let apostrophe = word[at..].chars().next().map_or(1, char::len_utf8);
        let (head, rest) = (&word[..at], &word[at + apostrophe..]);
        if ELIDED.contains(&head.to_lowercase().as_str()) && !rest.is_empty() {
            return (&word[..at + apostrophe], rest);
        }
    }
    ("", word)
}

/// A phonetic key: spellings of one sound merged (ph/f, c/k/s, x/ks, y/i, z/s), `h` after a
/// consonant dropped, every vowel run one `a`, doubled letters single.
fn phonetic_key(letters: &str) -> Vec<u8> {
    let b = letters.as_bytes();
    let vowel = |c: u8| matches!(c, b'a' | b'e' | b'i' | b'o' | b'u' | b'y');
    let mut out: Vec<u8> = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let next = b.get(i + 1).copied();
        let (sound, skip): (&[u8], usize) = match (b[i], next) {
            (b'p', Some(b'h')) => (b"f", 2),
            (b'q', Some(b'u')) => (b"k", 2),
            (b'c', Some(b'e' | b'i' | b'y')) => (b"s", 1),
            (b'c' | b'q', _) => (b"k", 1),
            (b'x', _) => (b"ks", 1),
            (b'z', _) => (b"s", 1),
            (b'h', _) if i > 0 && !vowel(b[i - 1]) => (b"", 1),
            (c, _) if vowel(c) => (b"a", 1),
            _ => (&b[i..i + 1], 1),
        };
        for &c in sound {
            if out.last() != Some(&c) {
                out.push(c);
            }
        }
        i += skip;
    }
    out
}

fn edit_distance(a: &[u8], b: &[u8]) -> usize {
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut diag = row[0];
        row[0] = i;
        for j in 1..=b.len() {
            let next = (row[j] + 1)
                .min(row[j - 1] + 1)
                .min(diag + usize::from(a[i - 1] != b[j - 1]));
            diag = row[j];
            row[j] = next;
        }
    }
    row[b.len()]
}

/// A record term as the near-miss matching sees it.
pub(crate) struct Sound {
    /// The term as written in the record.
    pub term: String,
    key: Vec<u8>,
    spelling: Vec<u8>,
    /// Words in the term.
    pub words: usize,
}

/// The terms long enough to be matched (five letters or more, no digit).
pub(crate) fn sounds(terms: &[String]) -> Vec<Sound> {
    terms
        .iter()
        .filter_map(|t| {
            let l = letters(t)?;
            (l.len() >= MIN_TERM_LETTERS).then(|| Sound {
                term: t.trim().to_string(),
                key: phonetic_key(&l),
                spelling: l.into_bytes(),
                words: t.split_whitespace().count(),
            })
        })
        .collect()
}

/// How far heard words lie from a term.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Distance {
    /// Edit distance of the phonetic keys over the term's key length.
    pub sound: f32,
    /// Edit distance of the letters over the term's letter count.
    pub spelling: f32,
    /// The words start with the term's first sound, or the term is long (a short term is only
    /// corrected on spelling when they do).
    pub same_start: bool,
}

impl Distance {
    /// Close enough to replace the words by the term on spelling alone: within 30% in sound and
    /// 34% in spelling, or, for a single heard word, 20% in sound and 45% in spelling.
    pub fn near(self, heard_words: usize) -> bool {
        self.same_start
            && ((self.sound <= MAX_KEY_DISTANCE && self.spelling <= MAX_SPELLING_DISTANCE)
                || (heard_words == 1
                    && self.sound <= CLOSE_KEY_DISTANCE
                    && self.spelling <= MAX_SPELLING_DISTANCE_CLOSE))
    }

    /// Sounds like the term (within 40%), whatever the spelling: worth checking on the audio.
    pub fn sounds_alike(self) -> bool {
        self.sound <= CHECK_KEY_DISTANCE
    }
}

/// The letters of each word, an elided article left out (None for a word with a digit).
pub(crate) fn word_letters(words: &[&str]) -> Vec<Option<String>> {
    words.iter().map(|w| letters(split_elision(w).1)).collect()
}

/// A run of heard words as the matching sees it: their letters joined, and its phonetic key.
struct Run {
    letters: String,
    key: Vec<u8>,
}

impl Run {
    /// None when a word has a digit.
    fn new(words: &[Option<String>]) -> Option<Run> {
        let letters = words
            .iter()
            .map(|k| k.as_deref())
            .collect::<Option<String>>()?;
        let key = phonetic_key(&letters);
        Some(Run { letters, key })
    }

    /// The edit distance of the keys over the term's key length.
    fn sound(&self, term: &Sound) -> f32 {
        edit_distance(&self.key, &term.key) as f32 / term.key.len() as f32
    }

    /// The key lengths alone put the run further than [`CHECK_KEY_DISTANCE`] from the term.
    fn out_of_reach(&self, term: &Sound) -> bool {
        self.key.len().abs_diff(term.key.len()) as f32 > CHECK_KEY_DISTANCE * term.key.len() as f32
    }

    /// The distance from the term; None beyond [`CHECK_KEY_DISTANCE`] in sound (the spelling
    /// is then not compared).
    fn distance(&self, term: &Sound) -> Option<Distance> {
        let sound = self.sound(term);
        (sound <= CHECK_KEY_DISTANCE).then(|| Distance {
            sound,
            spelling: edit_distance(self.letters.as_bytes(), &term.spelling) as f32
                / term.spelling.len() as f32,
            same_start: term.key.len() >= SAME_START_BELOW || self.key.first() == term.key.first(),
        })
    }
}

/// Replaces runs of words that sound like one of `terms` by that term: a run of up to two words
/// more than the term has, without digits, whose joined phonetic key lies within 30% of the
/// term's key length in edit distance and whose joined letters lie within 34% of the term's
/// (short terms must also start with the same sound); a single word within 20% in sound may be
/// within 45% in spelling. Terms shorter than five letters are left alone; the closest match
/// wins. On 100 MTS-Dialog conversations (9,000 words) with 66 drug names these thresholds change
/// one word ("Hydrocode" to "hydrocodone"); the single-word allowance changes nothing in the
/// 1,201 conversations of its training set (174,000 words).
pub fn correct(text: &str, terms: &[String]) -> String {
    let words: Vec<&str> = text.split_whitespace().collect();
    corrected_words(&words, terms)
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(" ")
}

/// [`correct`] word by word: for each of `words`, what it becomes; a run replaced by a term
/// gives the term at its first word and `None` at the others.
pub fn corrected_words(words: &[&str], terms: &[String]) -> Vec<Option<String>> {
    let sounds = sounds(terms);
    let heard = word_letters(words);
    let mut out: Vec<Option<String>> = Vec::new();
    let mut i = 0;
    while i < words.len() {
        match closest_terms(&heard, i, &sounds, |d, len| d.near(len), 1).pop() {
            Some((len, term)) => {
                let term = term.term.as_str();
                let span = &words[i..i + len];
                let (elided, first) = split_elision(span[0]);
                let lead: String = elided
                    .chars()
                    .chain(first.chars().take_while(|c| !c.is_alphanumeric()))
                    .collect();
                let last = span[len - 1];
                let trail = &last[last.trim_end_matches(|c: char| !c.is_alphanumeric()).len()..];
                let upper = first
                    .chars()
                    .find(|c| c.is_alphabetic())
                    .is_some_and(char::is_uppercase);
                let spelled = in_case(term, upper);
                out.push(Some(format!("{lead}{spelled}{trail}")));
                out.extend(std::iter::repeat_n(None, len - 1));
                i += len;
            }
            None => {
                out.push(Some(words[i].to_string()));
                i += 1;
            }
        }
    }
    out
}

/// The `most` terms whose sound lies closest to a run of heard words starting at word `i` (up
/// to two words more than the term has, none with a digit, within 40% in sound) among the runs
/// `accept` takes, closest first, each with its closest run's length in words; ties go to the
/// earlier term, then the shorter run. A run whose tail (without its first word) is at least as
/// close is not the term's (`and simvastatin` is `and` + the term).
pub(crate) fn closest_terms<'t>(
    heard: &[Option<String>],
    i: usize,
    sounds: &'t [Sound],
    accept: impl Fn(Distance, usize) -> bool,
    most: usize,
) -> Vec<(usize, &'t Sound)> {
    let longest = sounds.iter().map(|t| t.words + 2).max().unwrap_or(0);
    let mut found: Vec<(f32, usize, usize)> = Vec::new();
    for len in 1..=longest.min(heard.len() - i) {
        let Some(run) = Run::new(&heard[i..i + len]) else {
            break;
        };
        let tail = (len > 1)
            .then(|| Run::new(&heard[i + 1..i + len]))
            .flatten();
        for (t, term) in sounds.iter().enumerate() {
            if len > term.words + 2 || run.out_of_reach(term) {
                continue;
            }
            let Some(d) = run.distance(term) else {
                continue;
            };
            let nearer_tail = tail
                .as_ref()
                .is_some_and(|tail| tail.sound(term) <= d.sound);
            if !nearer_tail && accept(d, len) {
                found.push((d.sound, t, len));
            }
        }
    }
    found.sort_by(|a, b| a.0.total_cmp(&b.0).then((a.1, a.2).cmp(&(b.1, b.2))));
    let mut terms: Vec<usize> = Vec::new();
    found.retain(|&(_, t, _)| {
        let first = !terms.contains(&t);
        terms.push(t);
        first
    });
    found
        .into_iter()
        .take(most)
        .map(|(_, t, len)| (len, &sounds[t]))
        .collect()
}

/// The term as written, or capitalised when `upper` (it replaces or starts a capitalised word).
pub(crate) fn in_case(term: &str, upper: bool) -> String {
    if upper {
        capitalised(term)
    } else {
        term.to_string()
    }
}

/// The term with its first letter upper case.
fn capitalised(term: &str) -> String {
    let mut c = term.chars();
    c.next()
        .map_or(String::new(), |f| f.to_uppercase().chain(c).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokenizer::tests::tiny_tokenizer_json;

    #[test]
    fn bonus_goes_to_the_continuation_of_a_started_term_only() {
        let tok = Tokenizer::from_json(&tiny_tokenizer_json()).unwrap();
        let bias = Bias::new(&tok, &["metformin".to_string()], 2.0);
        let seq = tok.encode(" metformin");
        let mut logits = vec![0.0f32; 400];
        bias.apply(&[], &mut logits);
        assert!(
            logits.iter().all(|&l| l == 0.0),
            "nothing before the term starts"
        );
        bias.apply(&[7, seq[0]], &mut logits);
        assert_eq!(logits[seq[1] as usize], 2.0);
        assert_eq!(logits.iter().filter(|&&l| l != 0.0).count(), 1);
    }

    #[test]
    fn prompts_and_term_files() {
        let terms = terms_from_text("# record\nmetformin\n\nlisinopril\n");
        assert_eq!(terms, ["metformin", "lisinopril"]);
        assert_eq!(
            prompt_text(&terms, "en"),
            "Medications and history: metformin, lisinopril."
        );
        assert!(prompt_text(&terms, "fr").starts_with("Traitements"));
        assert_eq!(prompt_text(&[], "en"), "");
    }

    fn record() -> Vec<String> {
        [
            "metformin",
            "sumatriptan",
            "hydrocortisone",
            "insulin lispro",
            "aspirin",
            "acetaminophen",
            "budesonide",
            "ticagrelor",
        ]
        .map(String::from)
        .to_vec()
    }

    #[test]
    fn near_misses_snap_to_record_terms() {
        let terms = record();
        assert_eq!(
            correct("The patient takes met forming 500 milligrams.", &terms),
            "The patient takes metformin 500 milligrams."
        );
        assert_eq!(
            correct("Continue Suma trip tan and review.", &terms),
            "Continue Sumatriptan and review."
        );
        assert_eq!(
            correct("insulin lisp pro at night, acetaminofen", &terms),
            "insulin lispro at night, acetaminophen"
        );
        let record = ["glatiramer acetate".to_string(), "omeprazole".into()];
        assert_eq!(
            correct(
                "The patient takes slagiramer acetate and ompranol daily.",
                &record
            ),
            "The patient takes glatiramer acetate and omeprazole daily."
        );
        // One word that sounds like the term may be spelled further off; runs of words may not
        // (`was on April` is no lisinopril, `is pain in` no aspirin).
        let record = [
            "lisinopril".to_string(),
            "aspirin".into(),
            "alteplase".into(),
        ];
        assert_eq!(
            correct("She takes a listenoperal 20 mg.", &record),
            "She takes a lisinopril 20 mg."
        );
        for said in [
            "She was on April 3.",
            "There is pain in it.",
            "Put it into place.",
        ] {
            assert_eq!(correct(said, &record), said);
        }
    }

    #[test]
    fn ordinary_words_and_numbers_are_left_alone() {
        let terms = record();
        for text in [
            "The patient takes the medication 500 milligrams twice a day.",
            "Metformin and aspirin are continued.",
            "Review in three months, inspiring progress.",
            "Because you need the regular check, you spoken to her.",
            "",
        ] {
            assert_eq!(
                correct(text, &terms),
                text.split_whitespace().collect::<Vec<_>>().join(" ")
            );
        }
        // A word before the term is not part of it.
        assert_eq!(
            correct("daily and metformin at night", &terms),
            "daily and metformin at night"
        );
        assert_eq!(
            correct("daily and met forming at night", &terms),
            "daily and metformin at night"
        );
        // French elision: the article stays, the word is matched.
        assert_eq!(
            correct(
                "Poursuivre l'omeprasol et d'aspirin.",
                &["omeprazole".into(), "aspirine".into()]
            ),
            "Poursuivre l'omeprazole et d'aspirine."
        );
        assert_eq!(split_elision("qu\u{2019}il"), ("qu\u{2019}", "il"));
        assert_eq!(split_elision("o'clock"), ("", "o'clock"));
        assert_eq!(
            correct(
                "Le patient prend à spirine 500mg de fois par jour.",
                &["aspirine".into(), "sulfate ferreux".into()]
            ),
            "Le patient prend aspirine 500mg de fois par jour."
        );
        // Short terms never replace words.
        assert_eq!(correct("take the pill", &["pill".into()]), "take the pill");
    }

    #[test]
    fn the_records_vocabulary_is_what_a_clinician_says() {
        assert_eq!(
            medication_name("amLODIPine 2.5 MG Oral Tablet"),
            "amlodipine"
        );
        assert_eq!(
            medication_name("24 HR metFORMIN hydrochloride 500 MG Extended Release Oral Tablet"),
            "metformin"
        );
        assert_eq!(
            medication_name("Acetaminophen 325 MG / HYDROcodone Bitartrate 7.5 MG Oral Tablet"),
            "acetaminophen"
        );
        assert_eq!(
            medication_name("insulin lispro 100 UNT/ML Injectable Solution"),
            "insulin lispro"
        );
        let record: Vec<serde_json::Value> = serde_json::from_str(
            r#"[{"resourceType": "Patient", "name": [{"family": "Quixley123", "given": ["Jo", "Anna"]}]},
               {"resourceType": "MedicationRequest", "medicationCodeableConcept": {"coding": [{"display": "Simvastatin 20 MG Oral Tablet"}]}},
               {"resourceType": "MedicationRequest", "medicationCodeableConcept": {"text": "simvastatin 40 MG Oral Tablet"}},
               {"resourceType": "Condition", "code": {"text": "Essential hypertension (disorder)"}},
               {"resourceType": "AllergyIntolerance", "code": {"coding": [{"display": "Penicillin V"}]}},
               {"resourceType": "Observation", "code": {"text": "Body weight"}}]"#,
        )
        .unwrap();
        assert_eq!(
            record_terms(&record),
            [
                "simvastatin",
                "essential hypertension",
                "penicillin v",
                "Anna",
                "Quixley"
            ]
        );
    }

    #[test]
    fn the_formulary_is_what_the_hospital_stocks_and_prescribes() {
        let store: Vec<serde_json::Value> = serde_json::from_str(
            r#"[{"resourceType": "Medication", "code": {"coding": [{"display": "Cefaclor 250 MG Oral Capsule"}]}},
               {"resourceType": "MedicationRequest", "medicationCodeableConcept": {"text": "amLODIPine 2.5 MG Oral Tablet"}},
               {"resourceType": "MedicationStatement", "medicationCodeableConcept": {"text": "amlodipine 5 MG Oral Tablet"}},
               {"resourceType": "Condition", "code": {"text": "Essential hypertension (disorder)"}},
               {"resourceType": "Medication", "code": {"text": "KCl"}}]"#,
        )
        .unwrap();
        assert_eq!(formulary_names(&store), ["amlodipine", "cefaclor"]);
        assert_eq!(
            formulary_from_text(
                "# livret\nmetformine\nSimvastatin 20 MG Oral Tablet\n\nmetformine\n"
            ),
            ["metformine", "simvastatin"]
        );
    }

    #[test]
    fn phonetic_keys_merge_spellings_of_one_sound() {
        assert_eq!(phonetic_key("acetaminophen"), phonetic_key("asetaminofen"));
        assert_eq!(phonetic_key("metformin"), b"matfarman");
        assert_eq!(letters("Prédnisone,"), Some("prednisone".into()));
        assert_eq!(letters("500mg"), None);
    }
}
