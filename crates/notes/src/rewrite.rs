//! From spoken utterance to note sentence: ASR tokenisation repaired, fillers and false starts
//! removed, number words written as digits and units abbreviated, the patient's first person
//! and the doctor's "you" turned into the third person.

/// How the note refers to the patient.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pronouns {
    /// she / her / her / herself.
    Female,
    /// he / him / his / himself.
    Male,
    /// "the patient" when the transcript does not tell.
    Unknown,
}

impl Pronouns {
    /// Guesses from the doctor's words: he/him/his/mr against she/her/hers/mrs/ms/miss.
    pub fn guess(doctor_text: &str) -> Self {
        let (mut female, mut male) = (0, 0);
        for w in doctor_text.split(|c: char| !c.is_ascii_alphabetic()) {
            match w.to_ascii_lowercase().as_str() {
                "she" | "her" | "hers" | "herself" | "mrs" | "ms" | "miss" | "female" | "woman" => {
                    female += 1
                }
                "he" | "him" | "his" | "himself" | "mr" | "male" | "man" => male += 1,
                _ => {}
            }
        }
        if female > male {
            Pronouns::Female
        } else if male > female {
            Pronouns::Male
        } else {
            Pronouns::Unknown
        }
    }

    /// Subject pronoun ("she").
    pub fn subject(self) -> &'static str {
        match self {
            Pronouns::Female => "she",
            Pronouns::Male => "he",
            Pronouns::Unknown => "the patient",
        }
    }

    fn object(self) -> &'static str {
        match self {
            Pronouns::Female => "her",
            Pronouns::Male => "him",
            Pronouns::Unknown => "the patient",
        }
    }

    fn possessive(self) -> &'static str {
        match self {
            Pronouns::Female => "her",
            Pronouns::Male => "his",
            Pronouns::Unknown => "the patient's",
        }
    }

    fn possessive_pronoun(self) -> &'static str {
        match self {
            Pronouns::Female => "hers",
            Pronouns::Male => "his",
            Pronouns::Unknown => "the patient's",
        }
    }

    fn reflexive(self) -> &'static str {
        match self {
            Pronouns::Female => "herself",
            Pronouns::Male => "himself",
            Pronouns::Unknown => "themselves",
        }
    }
}

/// Whose words are being rewritten.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Voice {
    /// The patient speaks of themself: "I", "my", "me" become the third person.
    Patient,
    /// The doctor speaks to the patient: "you", "your" become the third person; "I" stays.
    Doctor,
}

/// Words dropped wherever they occur.
const FILLERS: &[&str] = &[
    "kinda", "sorta", "um", "uh", "uhm", "hmm", "mm", "mhm", "mm-hmm", "uh-huh", "er", "ah",
];
/// Word pairs dropped wherever they occur.
const FILLER_PAIRS: &[[&str; 2]] = &[
    ["you", "know"],
    ["i", "mean"],
    ["kind", "of"],
    ["sort", "of"],
];
/// Words dropped at the start of a sentence (repeatedly).
const OPENERS: &[&str] = &[
    "okay", "ok", "alright", "so", "well", "yeah", "yes", "and", "but", "oh", "now", "right", "um",
    "uh", "like", "then", "also", "just", "no", "great", "good", "sure", "perfect", "yep", "wow",
    "hey", "hi",
];
/// ASR splits of contractions and colloquial forms, with their written form.
const JOINS: &[(&str, &str, &str)] = &[
    ("do", "n't", "don't"),
    ("does", "n't", "doesn't"),
    ("did", "n't", "didn't"),
    ("is", "n't", "isn't"),
    ("are", "n't", "aren't"),
    ("was", "n't", "wasn't"),
    ("were", "n't", "weren't"),
    ("have", "n't", "haven't"),
    ("has", "n't", "hasn't"),
    ("had", "n't", "hadn't"),
    ("ca", "n't", "can't"),
    ("could", "n't", "couldn't"),
    ("would", "n't", "wouldn't"),
    ("should", "n't", "shouldn't"),
    ("wo", "n't", "won't"),
    ("gon", "na", "going to"),
    ("wan", "na", "want to"),
    ("got", "ta", "got to"),
];
/// Base-form verbs that take `-s` after a third-person subject.
const VERBS: &[&str] = &[
    "ache",
    "admit",
    "agree",
    "appreciate",
    "believe",
    "bring",
    "burn",
    "call",
    "come",
    "complain",
    "continue",
    "cough",
    "deny",
    "do",
    "drink",
    "eat",
    "enjoy",
    "exercise",
    "experience",
    "feel",
    "find",
    "forget",
    "get",
    "go",
    "hate",
    "have",
    "hear",
    "hope",
    "hurt",
    "keep",
    "know",
    "like",
    "live",
    "look",
    "love",
    "mean",
    "miss",
    "need",
    "notice",
    "play",
    "plan",
    "prefer",
    "remember",
    "report",
    "run",
    "see",
    "seem",
    "sleep",
    "smoke",
    "start",
    "state",
    "stay",
    "suffer",
    "swim",
    "take",
    "tend",
    "think",
    "travel",
    "try",
    "use",
    "wake",
    "walk",
    "want",
    "wear",
    "wonder",
    "work",
    "worry",
];

/// Rewrites one spoken utterance as note text (no terminal punctuation added).
pub fn rewrite(text: &str, voice: Voice, pronouns: Pronouns) -> String {
    let words = tokens(text);
    let words = join_contractions(words);
    let words = drop_fillers(words);
    let words = drop_repeats(words);
    let words = numbers_to_digits(words);
    let words = match voice {
        Voice::Patient => patient_to_third_person(words, pronouns),
        Voice::Doctor => doctor_to_third_person(words, pronouns),
    };
    let words = drop_openers(words);
    detokenize(&words)
}

/// Lower-case words of `text` as the fact checker compares them: contractions joined, number
/// words as digits, units abbreviated.
pub(crate) fn normalise(text: &str) -> Vec<String> {
    numbers_to_digits(join_contractions(tokens(text)))
        .into_iter()
        .map(|w| w.to_lowercase())
        .collect()
}

/// Capitalises the first letter and ends with a full stop unless it already ends a sentence.
pub fn as_sentence(text: &str) -> String {
    let text = text.trim().trim_end_matches([',', ';', ':', '-']).trim();
    let mut chars = text.chars();
    let Some(first) = chars.next() else {
        return String::new();
    };
    let mut out: String = first.to_uppercase().chain(chars).collect();
    if !out.ends_with(['.', '?', '!']) {
        out.push('.');
    }
    out
}

fn tokens(text: &str) -> Vec<String> {
    text.split_whitespace()
        .flat_map(|w| {
            // Separate trailing punctuation glued to a word ("pain," → "pain" ",").
            let trimmed = w.trim_end_matches([',', '.', '?', '!', ';', ':', '%']);
            let mut parts = Vec::new();
            if !trimmed.is_empty() {
                parts.push(trimmed.to_lowercase());
            }
            parts.extend(w[trimmed.len()..].chars().map(|c| c.to_string()));
            parts
        })
        .filter(|w| w != "...")
        .collect()
}

fn join_contractions(words: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(words.len());
    for w in words {
        if let Some(prev) = out.last_mut()
            && let Some((_, _, joined)) = JOINS.iter().find(|(a, b, _)| prev == a && w == *b)
        {
            *prev = joined.to_string();
            continue;
        }
        out.push(w);
    }
    out
}

fn drop_fillers(words: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(words.len());
    for w in words {
        if FILLERS.contains(&w.as_str()) {
            continue;
        }
        if let Some(prev) = out.last()
            && FILLER_PAIRS.iter().any(|[a, b]| prev == a && w == *b)
        {
            out.pop();
            continue;
        }
        out.push(w);
    }
    // Commas left doubled or leading by the removals.
    let mut cleaned: Vec<String> = Vec::with_capacity(out.len());
    for w in out {
        if w == "," && cleaned.last().is_none_or(|p| p == ",") {
            continue;
        }
        cleaned.push(w);
    }
    cleaned
}

/// Removes false starts: a word (or `word ,`) said twice in a row.
fn drop_repeats(words: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(words.len());
    for w in words {
        let n = out.len();
        let repeat = (n >= 1 && out[n - 1] == w && w.chars().any(char::is_alphabetic))
            || (n >= 2 && out[n - 1] == "," && out[n - 2] == w);
        if repeat {
            if out[n - 1] == "," {
                out.pop();
            }
            continue;
        }
        out.push(w);
    }
    out
}

fn drop_openers(mut words: Vec<String>) -> Vec<String> {
    let mut start = 0;
    while start < words.len() && (OPENERS.contains(&words[start].as_str()) || words[start] == ",") {
        start += 1;
    }
    words.drain(..start);
    words
}

fn unit_word(word: &str) -> Option<&'static str> {
    Some(match word {
        "milligrams" | "milligram" | "mgs" => "mg",
        "micrograms" | "microgram" => "mcg",
        "milliliters" | "milliliter" | "ml" | "cc" | "ccs" => "mL",
        "kilograms" | "kilogram" | "kilos" => "kg",
        "percent" => "%",
        _ => return None,
    })
}

fn small_number(word: &str) -> Option<u64> {
    const ONES: [&str; 20] = [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "thirteen",
        "fourteen",
        "fifteen",
        "sixteen",
        "seventeen",
        "eighteen",
        "nineteen",
    ];
    const TENS: [&str; 8] = [
        "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety",
    ];
    if let Some(i) = ONES.iter().position(|w| *w == word) {
        return Some(i as u64);
    }
    TENS.iter()
        .position(|w| *w == word)
        .map(|i| 20 + 10 * i as u64)
}

/// Number words as digits ("six hundred milligrams" → "600 mg", "twenty-five" → "25"); a lone
/// "one" stays a word unless a unit follows it.
fn numbers_to_digits(words: Vec<String>) -> Vec<String> {
    let mut out = Vec::with_capacity(words.len());
    let mut i = 0;
    while i < words.len() {
        let (value, used) = read_number(&words[i..]);
        if used == 0 {
            out.push(unit_word(&words[i]).map_or_else(|| words[i].clone(), str::to_string));
            i += 1;
            continue;
        }
        let next = words.get(i + used).map(String::as_str);
        let lone_one = used == 1 && words[i] == "one";
        if lone_one && next.and_then(unit_word).is_none() {
            out.push(words[i].clone());
        } else {
            out.push(value.to_string());
        }
        i += used;
    }
    out
}

/// Reads number words from the start of `words`: (value, words used).
fn read_number(words: &[String]) -> (u64, usize) {
    let mut total = 0u64;
    let mut current = 0u64;
    let mut used = 0;
    let mut seen = false;
    for (i, w) in words.iter().enumerate() {
        let parts: Vec<&str> = w.split('-').collect();
        if let [tens, ones] = parts[..]
            && let (Some(t), Some(o)) = (small_number(tens), small_number(ones))
            && t >= 20
            && o < 10
        {
            current += t + o;
            used = i + 1;
            seen = true;
            continue;
        }
        if let Some(n) = small_number(w) {
            // "one twenty" is not one number: a ones word after tens or ones ends it.
            let tens_then_ones = n < 10 && current.is_multiple_of(10) && current % 100 >= 20;
            if seen && !current.is_multiple_of(100) && !tens_then_ones {
                break;
            }
            current += n;
        } else if w == "hundred" && seen {
            current = current.max(1) * 100;
        } else if w == "thousand" && seen {
            total += current.max(1) * 1000;
            current = 0;
        } else if w == "and"
            && seen
            && current >= 100
            && words.get(i + 1).is_some_and(|n| small_number(n).is_some())
        {
            continue;
        } else {
            break;
        }
        used = i + 1;
        seen = true;
    }
    (total + current, used)
}

fn third_person_verb(verb: &str) -> String {
    match verb {
        "have" => "has".into(),
        "do" => "does".into(),
        "go" => "goes".into(),
        v if v.ends_with('y') && !v.ends_with("ay") => format!("{}ies", &v[..v.len() - 1]),
        v if v.ends_with("ss") || v.ends_with("sh") || v.ends_with("ch") || v.ends_with('x') => {
            format!("{v}es")
        }
        v => format!("{v}s"),
    }
}

/// The verb after a third-person subject: "am"/"are" → "is", "have" → "has", "feel" → "feels",
/// "don't" → "doesn't", "haven't" → "hasn't"; other words unchanged.
fn agree(word: &str) -> String {
    match word {
        "am" | "are" => "is".into(),
        "'m" | "'re" => "is".into(),
        "'ve" => "has".into(),
        "don't" => "doesn't".into(),
        "haven't" => "hasn't".into(),
        "aren't" => "isn't".into(),
        "were" => "was".into(),
        w if VERBS.contains(&w) => third_person_verb(w),
        w => w.to_string(),
    }
}

/// Splits "i'm" → ["i", "'m"], "you've" → ["you", "'ve"], "i'd" → ["i", "'d"].
fn split_clitic(word: &str) -> Option<(&str, &str)> {
    let apostrophe = word.find('\'')?;
    let (head, tail) = word.split_at(apostrophe);
    matches!(head, "i" | "you").then_some((head, tail))
}

fn expand_clitic(tail: &str, next: Option<&str>) -> &'static str {
    match tail {
        "'m" | "'re" => "is",
        "'ve" => "has",
        "'ll" => "will",
        "'d" if next == Some("been") => "had",
        "'d" => "would",
        _ => "",
    }
}

fn patient_to_third_person(words: Vec<String>, p: Pronouns) -> Vec<String> {
    let mut out = Vec::with_capacity(words.len());
    let mut i = 0;
    while i < words.len() {
        let w = words[i].as_str();
        let next = words.get(i + 1).map(String::as_str);
        match (split_clitic(w), w) {
            (Some(("i", tail)), _) => {
                out.push(p.subject().to_string());
                out.push(expand_clitic(tail, next).to_string());
            }
            (_, "i") => {
                out.push(p.subject().to_string());
                if let Some(verb) = next {
                    out.push(agree(verb));
                    i += 1;
                }
            }
            (_, "my") => out.push(p.possessive().into()),
            (_, "me") => out.push(p.object().into()),
            (_, "mine") => out.push(p.possessive_pronoun().into()),
            (_, "myself") => out.push(p.reflexive().into()),
            _ => out.push(w.to_string()),
        }
        i += 1;
    }
    out.retain(|w| !w.is_empty());
    out
}

/// Auxiliaries and modals that follow a subject.
const AUXILIARIES: &[&str] = &[
    "are", "were", "had", "can", "could", "should", "will", "would", "did", "don't", "didn't",
    "haven't", "can't", "might", "may", "must", "got", "still", "also", "never", "ever",
];

fn is_verb(word: &str) -> bool {
    AUXILIARIES.contains(&word) || VERBS.contains(&word)
}

/// Words after which "you" is the subject of what follows.
const SUBJECT_CONTEXT: &[&str] = &[
    ",", "and", "but", "so", "if", "that", "when", "because", "as", "since", "until", "once",
    "where", "while", "do", "did", "have", "are", "can", "will", "would", "should", "could",
];

fn doctor_to_third_person(words: Vec<String>, p: Pronouns) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(words.len());
    let mut i = 0;
    while i < words.len() {
        let w = words[i].as_str();
        let next = words.get(i + 1).map(String::as_str);
        match (split_clitic(w), w) {
            (Some(("you", tail)), _) => {
                out.push(p.subject().into());
                out.push(expand_clitic(tail, next).into());
            }
            (Some(("i", tail)), _) => {
                out.push("I".into());
                out.push(
                    match tail {
                        "'m" => "am",
                        "'ve" => "have",
                        _ => expand_clitic(tail, next),
                    }
                    .into(),
                );
            }
            (_, "i") => out.push("I".into()),
            (_, "you") => {
                let subject = next.is_some_and(is_verb)
                    || out
                        .last()
                        .is_none_or(|prev| SUBJECT_CONTEXT.contains(&prev.as_str()));
                if subject {
                    out.push(p.subject().into());
                    if let Some(verb) = next {
                        out.push(agree(verb));
                        i += 1;
                    }
                } else {
                    out.push(p.object().into());
                }
            }
            (_, "your") => out.push(p.possessive().into()),
            (_, "yours") => out.push(p.possessive_pronoun().into()),
            (_, "yourself") => out.push(p.reflexive().into()),
            _ => out.push(w.to_string()),
        }
        i += 1;
    }
    out.retain(|w| !w.is_empty());
    out
}

fn detokenize(words: &[String]) -> String {
    let mut out = String::new();
    for w in words {
        let attach =
            matches!(w.as_str(), "," | "." | "?" | "!" | ";" | ":" | "%") || w.starts_with('\'');
        if !out.is_empty() && !attach {
            out.push(' ');
        }
        out.push_str(w);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patient_speech_becomes_third_person() {
        assert_eq!(
            rewrite(
                "um , i've been , been having pain in my , my left knee .",
                Voice::Patient,
                Pronouns::Female
            ),
            "she has been having pain in her left knee."
        );
        assert_eq!(
            rewrite(
                "yeah i feel tired and i do n't sleep well",
                Voice::Patient,
                Pronouns::Male
            ),
            "he feels tired and he doesn't sleep well"
        );
    }

    #[test]
    fn doctor_speech_keeps_i_and_turns_you() {
        assert_eq!(
            rewrite(
                "okay so i want you to take ibuprofen six hundred milligrams every six hours",
                Voice::Doctor,
                Pronouns::Male
            ),
            "I want him to take ibuprofen 600 mg every 6 hours"
        );
        assert_eq!(
            rewrite(
                "you have some swelling in your ankle",
                Voice::Doctor,
                Pronouns::Unknown
            ),
            "the patient has some swelling in the patient's ankle"
        );
    }

    #[test]
    fn numbers_are_written_as_digits() {
        let w = |s: &str| s.split(' ').map(str::to_string).collect::<Vec<_>>();
        assert_eq!(numbers_to_digits(w("twenty-five mg")), w("25 mg"));
        assert_eq!(numbers_to_digits(w("one hundred and twenty")), w("120"));
        assert_eq!(numbers_to_digits(w("one of them")), w("one of them"));
        assert_eq!(numbers_to_digits(w("one milligram")), w("1 mg"));
        assert_eq!(
            numbers_to_digits(w("one twenty over eighty")),
            w("one 20 over 80")
        );
    }

    #[test]
    fn pronouns_are_guessed_from_the_doctor() {
        assert_eq!(Pronouns::guess("she says her knee hurts"), Pronouns::Female);
        assert_eq!(Pronouns::guess("mr smith and his wife"), Pronouns::Male);
        assert_eq!(Pronouns::guess("hello there"), Pronouns::Unknown);
    }

    #[test]
    fn sentences_are_capitalised_and_closed() {
        assert_eq!(as_sentence("denies fever,"), "Denies fever.");
        assert_eq!(as_sentence(""), "");
    }
}
