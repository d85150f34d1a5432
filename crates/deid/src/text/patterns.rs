//! Rules for the categories with a shape: dates, ages over 89, phone and
//! fax numbers, e-mail and web addresses, IP addresses, street addresses,
//! postcodes, and identifiers (NIR with its key check, IPP, NDA, SSN, MRN,
//! account numbers, any long number or code).

use std::sync::OnceLock;

use regex::{Captures, Regex};

use super::lexicon;
use super::token::fold;
use super::{Found, Label, Lang};

const MONTHS: &str = r"janvier|janv|f[ée]vrier|f[ée]vr|f[ée]v|mars|avril|avr|mai|juin|juillet|juil|ao[uû]t|septembre|sept|octobre|oct|novembre|nov|d[ée]cembre|d[ée]c|january|jan|february|feb|march|mar|april|apr|may|june|jun|july|jul|august|aug|september|sep|october|november|december|dec";
const FULL_MONTHS_FR: &str =
    r"janvier|f[ée]vrier|avril|juin|juillet|ao[uû]t|septembre|octobre|novembre|d[ée]cembre";
const FULL_MONTHS_EN: &str =
    r"January|February|April|June|July|August|September|October|November|December";
const WEEKDAYS: &str = r"lundi|lun|mardi|mar|mercredi|mer|jeudi|jeu|vendredi|ven|samedi|sam|dimanche|dim|monday|mon|tuesday|tues|tue|wednesday|wed|thursday|thurs|thur|thu|friday|fri|saturday|sat|sunday|sun";
const US_STATES: &str = "AL|AK|AZ|AR|CA|CO|CT|DE|DC|FL|GA|HI|ID|IL|IN|IA|KS|KY|LA|ME|MD|MA|MI|MN|MS|MO|MT|NE|NV|NH|NJ|NM|NY|NC|ND|OH|OK|OR|PA|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY|PR";
/// The states that are no title or ordinary word (not `MD`, `PA`, `OR`, `ME`...).
const US_STATES_SAFE: &str = "AL|AK|AZ|AR|CA|CO|CT|DC|FL|GA|IA|KS|KY|LA|MA|MI|MN|MS|MO|MT|NE|NV|NH|NJ|NM|NY|NC|ND|OH|RI|SC|SD|TN|TX|UT|VT|VA|WA|WV|WI|WY";
const US_STATE_NAMES: &str = "Alabama|Alaska|Arizona|Arkansas|California|Colorado|Connecticut|Delaware|Florida|Georgia|Hawaii|Idaho|Illinois|Indiana|Iowa|Kansas|Kentucky|Louisiana|Maine|Maryland|Massachusetts|Michigan|Minnesota|Mississippi|Missouri|Montana|Nebraska|Nevada|New Hampshire|New Jersey|New Mexico|New York|North Carolina|North Dakota|Ohio|Oklahoma|Oregon|Pennsylvania|Rhode Island|South Carolina|South Dakota|Tennessee|Texas|Utah|Vermont|Virginia|Washington|West Virginia|Wisconsin|Wyoming|Puerto Rico";
const DAY: &str = r"(?:0?[1-9]|[12]\d|3[01])(?:er|e|ème|st|nd|rd|th)?";
const STREET_FR: &str = r"(?i:rue|avenue|av|boulevard|bd|bld|all[ée]e|impasse|imp|chemin|quai|r[ée]sidence|lotissement|lieu-dit|hameau|sentier|rond-point|esplanade|parvis|promenade|faubourg|fg|chauss[ée]e|ruelle|venelle)|Route|ROUTE|Rte|Place|PLACE|Cours|COURS|Passage|PASSAGE|Voie|VOIE|Square|SQUARE|Cit[ée]|CIT[ÉE]|Villa|VILLA|Mont[ée]e|MONT[ÉE]E|Traverse|TRAVERSE|Clos|CLOS|Domaine|DOMAINE";
const STREET_EN: &str = r"Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|Terrace|Ter|Circle|Cir|Glen|Parkway|Pkwy|Highway|Hwy|Square|Sq|Trail|Trl|Path|Pike|Row|Alley|Crossing|Loop|Run|Ridge|Heights|Plaza|Crescent|Cres|Gardens|Grove|Hill|Hollow|Junction|Manor|Mews|Mill|Park|Point|Port|Station|Summit|Valley|View|Village|Walk";

struct Rules {
    /// (pattern, label, capture group that holds the value).
    plain: Vec<(Regex, Label, usize)>,
    /// A US city (group 1) before its state (group 2); whether the city
    /// must be on the list (states that are also words: `Salem, ME`).
    city_states: Vec<(Regex, bool)>,
    numeric_date: Regex,
    short_date: Regex,
    year: Regex,
    nir: Regex,
    keyword_id: Regex,
    street_fr: Regex,
    street_en: Regex,
    street_fr_zip: Regex,
    zip_city: Regex,
    service_place: Regex,
}

fn rules(lang: Lang) -> &'static Rules {
    static FR: OnceLock<Rules> = OnceLock::new();
    static EN: OnceLock<Rules> = OnceLock::new();
    let cell = match lang {
        Lang::Fr => &FR,
        Lang::En => &EN,
    };
    cell.get_or_init(|| Rules::new(lang))
}

/// Word boundaries are ASCII ones: Unicode `\b` keeps the regex engine off
/// its fast path on text with accents, and every boundary here sits next to
/// a digit or an ASCII letter.
fn re(pattern: &str) -> Regex {
    Regex::new(&pattern.replace(r"\b", r"(?-u:\b)")).expect("built-in pattern compiles")
}

impl Rules {
    fn new(lang: Lang) -> Self {
        let weekday = format!(r"(?:\b(?:{WEEKDAYS})\.?,?\s+)?");
        let year = r"(?:1[89]\d{2}|2[01]\d{2}|'?\d{2})\b";
        let full_months = match lang {
            Lang::Fr => format!(r"(?i)\b(?:{FULL_MONTHS_FR})\b"),
            Lang::En => format!(r"\b(?:{FULL_MONTHS_EN})\b"),
        };
        let mut plain = vec![
            // 20 févr. 2083, Jeu, 17 Avr 2098, 8 juillet, 1er mai 1990
            (
                re(&format!(
                    r"(?i){weekday}\b{DAY}\s*(?:-\s*)?(?:{MONTHS})\b\.?(?:,?\s*{year})?"
                )),
                Label::Date,
                0,
            ),
            // November 5, 2019; Nov 5th
            (
                re(&format!(
                    r"(?i){weekday}\b(?:{MONTHS})\.?\s+{DAY}\b(?:,?\s+(?:1[89]|2[01])\d{{2}}\b)?"
                )),
                Label::Date,
                0,
            ),
            // janvier 2020, Nov. 2019, juin/47, March '98
            (
                re(&format!(
                    r"(?i)\b(?:{MONTHS})\.?\s*[,/\-]?\s*(?:(?:1[89]|2[01])\d{{2}}\b|'\d{{2}}\b|/\d{{2}}\b)"
                )),
                Label::Date,
                0,
            ),
            (re(&full_months), Label::Date, 0),
            // a weekday before a numeric date: Tues 3/14, jeudi 12/03/2024
            (
                re(
                    r"(?i)\b(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday|lundi|mardi|mercredi|jeudi|vendredi|samedi|dimanche|mon|tue|tues|wed|thu|thur|thurs|fri|lun|mer|jeu|ven)\.?,?\s+\d{1,2}[/.\-]\d{1,2}(?:[/.\-]\d{2,4})?\b",
                ),
                Label::Date,
                0,
            ),
            // the 14th of March, 3rd of Nov 2019 (`the` is part of the date)
            (
                re(&format!(
                    r"(?i)(?:\bthe\s+)?\b{DAY}\s+of\s+(?:{MONTHS})\b\.?(?:,?\s*(?:1[89]|2[01])\d{{2}}\b)?"
                )),
                Label::Date,
                0,
            ),
            // seasons and holidays with a year: summer 2019, Noël 2020, Xmas '98
            (
                re(
                    r"(?i)\b(?:spring|summer|fall|autumn|winter|printemps|été|automne|hiver|christmas|xmas|thanksgiving|easter|no[eë]l|p[aâ]ques|toussaint)\s+(?:of\s+|de\s+|d')?(?:(?:1[89]|2[01])\d{2}|'\d{2})\b",
                ),
                Label::Date,
                0,
            ),
            // ISO dates and timestamps
            (
                re(
                    r"\b(?:1[89]|2[01])\d{2}[-/.](?:0?[1-9]|1[0-2])[-/.](?:0?[1-9]|[12]\d|3[01])(?:[T ]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?\b",
                ),
                Label::Date,
                0,
            ),
            // dates typed with spaces between digits: 2 1 0 6 2 0 5 4, 2 2 / 2 / 2 0 6 6
            (re(r"\b\d(?: \d){7}\b"), Label::Date, 0),
            (
                re(r"\b\d(?: \d)? ?[/\-] ?\d(?: \d)? ?[/\-] ?\d(?: \d){1,3}\b"),
                Label::Date,
                0,
            ),
            // ages over 89
            (
                re(
                    r"(?i)\b(9\d|1[0-4]\d)\s*-?\s*(?:ans|an|years?|yrs?|yo|y/o|y\.o|year-old|years-old|ys)\b",
                ),
                Label::Age,
                1,
            ),
            (
                re(r"(?i)\b(?:âg[ée]e?\s+de|aged?)\s+(9\d|1[0-4]\d)\b"),
                Label::Age,
                1,
            ),
            // written out: ninety-two years old, quatre-vingt-treize ans
            (
                re(
                    r"(?i)\b((?:ninety|one\s+hundred(?:\s+and)?)(?:[\s\-]+(?:one|two|three|four|five|six|seven|eight|nine|ten))?|quatre[\s\-]vingt[\s\-](?:dix|onze|douze|treize|quatorze|quinze|seize|dix[\s\-]sept|dix[\s\-]huit|dix[\s\-]neuf)|cent(?:[\s\-]\w+)?)[\s\-]+(?:ans|years?|yrs?|year-old)\b",
                ),
                Label::Age,
                1,
            ),
            // e-mail, web and IP addresses
            (re(r"[\w.%+\-]+@[\w\-]+(?:\.[\w\-]+)+"), Label::Email, 0),
            (
                re(r#"(?i)\b(?:https?://|ftp://|www\.)[^\s<>"']+[^\s<>"'.,;:)]"#),
                Label::Url,
                0,
            ),
            (
                re(
                    r"(?i)\b[a-z0-9][a-z0-9\-]*(?:\.[a-z0-9\-]+)*\.(?:com|org|net|fr|edu|gov|io|info|eu|uk|de|be|ch|ca|us)\b(?:/[^\s]*[^\s.,;:)])?",
                ),
                Label::Url,
                0,
            ),
            (
                re(r"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b"),
                Label::Ip,
                0,
            ),
            // phone and fax numbers
            (
                re(r"(?:(?:\+|\b00)\s?33\s?(?:\(0\)\s?)?|\b0)[1-9](?:[\s.\-]?\d{2}){4}\b"),
                Label::Phone,
                0,
            ),
            (
                re(r"\(\d{2,3}\)\s?\d(?:[\s.\-]?\d{2}){4}\b"),
                Label::Phone,
                0,
            ),
            (
                re(r"(?:\+?\b1[\s.\-]?)?(?:\(\d{3}\)\s?|\b\d{3}[\s.\-])\d{3}[\s.\-]\d{4}\b"),
                Label::Phone,
                0,
            ),
            (
                re(r"\+\d{1,3}[\s.\-]?(?:\(\d+\)[\s.\-]?)?\d(?:[\s.\-]?\d){6,13}\b"),
                Label::Phone,
                0,
            ),
            (re(r"\b\d{3}-\d{4}\b"), Label::Phone, 0),
            // French numbers typed with spaces or dashes between digits: 0 1 7 3 2 5 0 3 7 0
            (re(r"\b0(?:\s?[\-.]?\s?\d){9}\b"), Label::Phone, 0),
            (
                re(
                    r"(?i)\b(?:t[ée]l[ée]?(?:phone)?|phone|fax|t[ée]l[ée]copie|portable|mobile|cell|standard|bip|pager|beeper|ext|poste|contact)\b\.?\s*(?:[:#]|n°)?\s*(\+?[\d(][\d\s.\-()/]{2,18}\d)",
                ),
                Label::Phone,
                1,
            ),
            (re(r"(?i)\b(?:x|ext\.?\s?)(\d{4,5})\b"), Label::Phone, 1),
            // pager numbers: `page Janet at 83273`, `beeper #4521`
            (
                re(r"(?i)\b(?:page|paged|pager|beeper|bip|bipper)\b[^\n.\d]{0,30}?(\d{4,6})\b"),
                Label::Phone,
                1,
            ),
            // a typist's or signer's initials: `tapé par AB/CD`, `Dictated by: JS`, `typed: ab/kl`
            (
                re(
                    r"(?i:tap[ée]e?s?|typed|transcribed|dictated|dict[ée]e?s?|dactylographi[ée]e?s?|transcrit|transcrite)(?:\s+(?i:par|by))?\s*:?\s*([A-Z]{2,3}(?:\s?/\s?(?:[A-Z]{2,3}|[a-z]{2,3}))*|[a-z]{2,3}/[a-z]{2,3})\b",
                ),
                Label::Name,
                1,
            ),
            // identifiers with a shape
            (re(r"\b\d{3}[ \-]\d{2}[ \-]\d{4}\b"), Label::Ssn, 0),
            (re(r"\b\d{6,}\b"), Label::Id, 0),
            (re(r"\b\d{2,5}(?:-\d{1,5}){2,}\b"), Label::Id, 0),
            (
                re(
                    r"\b(?:[A-Z]{1,4}-?\d{5,}[A-Z0-9]*|\d{5,}[A-Z]{1,3}|[A-Z]{1,4}\d{3,}(?:/\d+)?)\b",
                ),
                Label::Id,
                0,
            ),
            // postcodes after a state or with their name
            (re(r"\b[A-Z]{2},?\s+(\d{5}(?:-\d{4})?)\b"), Label::Zip, 1),
            (
                re(r"(?i)\b(?:CP|code postal|zip(?: code)?|postcode)\s*:?\s*(\d{5}(?:-\d{4})?)\b"),
                Label::Zip,
                1,
            ),
            (
                re(r"(?i)\b(?:P\.?\s?O\.?\s+Box|bo[iî]te postale)\s+\d+"),
                Label::Address,
                0,
            ),
        ];
        if lang == Lang::Fr {
            plain.push((
                re(r"(?i)\b(?:CEDEX|cedex)(?:\s+\d{1,2})?\b"),
                Label::City,
                0,
            ));
        }
        let mut city_states = Vec::new();
        if lang == Lang::En {
            // A US city before its state (`Quincy, MA`), the state too;
            // states that are also titles or words (`Smith, MD`) only before a ZIP code.
            let city = r"\b((?:[A-Z][a-z]+[ \-]){0,2}[A-Z][a-z]{2,}),[ \t]*";
            let states = format!(r"(?:{US_STATES})");
            let safe = format!(r"(?:{US_STATES_SAFE})");
            city_states.push((re(&format!(r"{city}({safe})\b")), false));
            city_states.push((re(&format!(r"{city}({states})\s+\d{{5}}\b")), false));
            // not `MD`, `PA` after a name that is also a city (`Lowell, MD`)
            let words: Vec<&str> = US_STATES
                .split('|')
                .filter(|s| !matches!(*s, "MD" | "PA"))
                .collect();
            let words = words.join("|");
            city_states.push((re(&format!(r"{city}({words})\b")), true));
            plain.push((re(&format!(r"\b(?:{US_STATE_NAMES})\b")), Label::City, 0));
        }
        Self {
            plain,
            city_states,
            numeric_date: re(r"\b(\d{1,2})\s?[/.\-]\s?(\d{1,2})\s?[/.\-]\s?(\d{4}|\d{2})\b"),
            short_date: re(r"\b(\d{1,2})/(\d{1,4})\b"),
            year: re(r"\b(?:1[89]|20)\d{2}\b"),
            nir: re(
                r"\b([12378])\s?(\d{2})\s?(0[1-9]|1[0-2]|[2-9]\d)\s?(\d{2}|2[ABab])\s?(\d{3})\s?(\d{3})(?:\s?(\d{2}))?\b",
            ),
            keyword_id: re(
                r"(?i)\b(IPP|NIP|NDA|n°\s*(?:d'|de\s+)?(?:dossier|s[ée]jour|venue|admission|patient|IPP|NDA)|num[ée]ro\s+(?:de\s+|d')?(?:dossier|s[ée]jour|patient|venue|admission|IPP|NDA)|dossier\s+n°|MRN|MR\s*#|medical\s+record(?:\s+(?:number|no\.?|#))?|record\s*#|unit\s+(?:no\.?|number)|acct\.?|account(?:\s+(?:number|no\.?|#))?|SSN|social\s+security(?:\s+number)?|NIR|n°\s*(?:de\s+)?s[ée]cu(?:rit[ée]\s+sociale)?|s[ée]curit[ée]\s+sociale|s[ée]cu|insurance\s+(?:id|number|no\.?)|policy\s+(?:number|no\.?)|member\s+id|patient\s+id|ID)\b\s*(?:[:#=]|n°|no\.?|num[ée]ro)?\s*((?-i:[A-Z]{1,4}[\s\-]?)?\d[\dA-Z]*(?:[\s\-/.]\d[\dA-Z]*)*)",
            ),
            street_fr: re(&format!(
                r"\b\d{{1,4}}(?:\s?(?i:bis|ter|quater|b|t)\b)?\s*,?\s*(?:{STREET_FR})\b\.?(?:\s+[\p{{L}}\d'’\-]+\.?){{1,7}}"
            )),
            street_fr_zip: re(&format!(
                r"\b(?:{STREET_FR})\b\.?(?:\s+[\p{{L}}'’\-]+){{1,5}},?\s*\d{{5}}\b"
            )),
            street_en: re(&format!(
                r"\b\d{{1,6}}\s+(?:[NSEW]\.?\s+)?(?:[A-Z][\w'\-]*\.?\s+){{1,4}}(?:{STREET_EN})\b\.?(?:,?\s*(?:Suite|Ste|Apt|Apartment|Unit|Room|Rm|Floor|Fl|#)\.?\s*#?\w+)?"
            )),
            service_place: re(
                r"(?i:service|consultation|unit[ée]|p[ôo]le|d[ée]partement|[ée]quipe|h[ôo]pital\s+de\s+jour)\s+(?:de\s+|des\s+|d['’]\s*)(?:la\s+|l['’])?\p{Ll}[\p{Ll}\-]+(?:\s+\p{Ll}[\p{Ll}\-]+)?\s+(?:de\s+l['’]\s*|de\s+la\s+|du\s+|de\s+|d['’]\s*|au\s+|à\s+(?:l['’]\s*)?)(\p{Lu}[\p{L}'’.\-]*(?:(?:[ \t]+|[ \t]*[–\-][ \t]*)(?:\p{Lu}[\p{L}'’.\-]*|\d{1,2}\b)){0,5})",
            ),
            zip_city: re(
                r"\b(\d{5}|\d{2}\s\d{3}|2[AB]\s?\d{3})\s+(\p{Lu}[\p{L}'’\-]*(?:[\s\-]+(?:\p{Lu}[\p{L}'’\-]*|sur|sous|en|lès|les|de|du|des|la|le|aux?)){0,4})",
            ),
        }
    }
}

/// Compile the rules of `lang` now.
pub fn preload(lang: Lang) {
    rules(lang);
}

/// Every span the rules find in `text` (overlaps allowed).
pub fn detect(text: &str, lang: Lang) -> Vec<Found> {
    let rules = rules(lang);
    let mut found = Vec::new();
    for (pattern, label, group) in &rules.plain {
        if *group == 0 {
            for m in pattern.find_iter(text) {
                found.push(Found::new(m.start(), m.end(), *label));
            }
            continue;
        }
        for caps in pattern.captures_iter(text) {
            if let Some(m) = caps.get(*group) {
                found.push(Found::new(m.start(), m.end(), *label));
            }
        }
    }
    for caps in rules.numeric_date.captures_iter(text) {
        if let (Some(a), Some(b)) = (number(&caps, 1), number(&caps, 2))
            && plausible_day_month(a, b)
        {
            let m = caps.get(0).expect("whole match");
            found.push(Found::new(m.start(), m.end(), Label::Date));
        }
    }
    city_states(text, rules, lang, &mut found);
    short_dates(text, rules, &mut found);
    years(text, rules, &mut found);
    nir(text, rules, &mut found);
    keyword_ids(text, rules, &mut found);
    streets(text, rules, lang, &mut found);
    if lang == Lang::Fr {
        zip_cities(text, rules, &mut found);
        service_places(text, rules, &mut found);
    }
    found
}

/// `Quincy, MA`: a city and its state, unless the city is an ordinary word
/// no list holds as a city (`Soft, ND` in an examination); states that are
/// also words or titles (`ME`, `MD`) only after a listed city.
fn city_states(text: &str, rules: &Rules, lang: Lang, found: &mut Vec<Found>) {
    let (words, cities) = (lexicon::words(lang), lexicon::cities(lang));
    for (pattern, listed_only) in &rules.city_states {
        for caps in pattern.captures_iter(text) {
            let (city, state) = (caps.get(1).expect("city"), caps.get(2).expect("state"));
            let lower = city.as_str().to_lowercase();
            let listed = cities.contains(&fold(&lower).replace('-', " "));
            let ordinary = lower.split([' ', '-']).all(|w| words.contains(w));
            if !listed && (ordinary || *listed_only) {
                continue;
            }
            found.push(Found::new(city.start(), city.end(), Label::City));
            found.push(Found::new(state.start(), state.end(), Label::City));
        }
    }
}

/// `63570 Boutin`, `08 333 RUIAN`: a French postcode before a capitalised name.
fn zip_cities(text: &str, rules: &Rules, found: &mut Vec<Found>) {
    for caps in rules.zip_city.captures_iter(text) {
        let (zip, city) = (caps.get(1).expect("zip"), caps.get(2).expect("city"));
        let word = city.as_str().split([' ', '-']).next().unwrap_or("");
        if word.chars().count() >= 3 && !is_unit(word) && !word.chars().all(char::is_uppercase)
            || word.chars().count() >= 4
        {
            found.push(Found::new(zip.start(), zip.end(), Label::Zip));
            found.push(Found::new(city.start(), city.end(), Label::City));
        }
    }
}

/// `Service de gériatrie de PARIS 7 – DENIS DIDEROT`, `Consultation de
/// cardiologie de l'FOUGÈRE`: the capitalised words after a service and its
/// specialty name its hospital or town; words in capitals stop at the first
/// word that is not (`PAUL BROUSSE Saturation`).
fn service_places(text: &str, rules: &Rules, found: &mut Vec<Found>) {
    for caps in rules.service_place.captures_iter(text) {
        let place = caps.get(1).expect("place");
        let words: Vec<(usize, &str)> = place
            .as_str()
            .split_inclusive([' ', '\t'])
            .scan(0, |at, w| {
                let s = *at;
                *at += w.len();
                Some((s, w))
            })
            .collect();
        let title = words.first().is_some_and(|(_, w)| {
            let w = w.trim().trim_end_matches('.').to_lowercase();
            matches!(
                w.as_str(),
                "m" | "mme"
                    | "mlle"
                    | "mr"
                    | "dr"
                    | "pr"
                    | "monsieur"
                    | "madame"
                    | "docteur"
                    | "professeur"
            )
        });
        if title {
            continue;
        }
        let upper = |w: &str| !w.chars().any(char::is_lowercase);
        let first_upper = words.first().is_some_and(|&(_, w)| upper(w));
        let mut end = 0;
        for (at, w) in words {
            if first_upper && !upper(w) {
                break;
            }
            let trimmed = w.trim_end();
            if !trimmed.is_empty() && !matches!(trimmed, "–" | "-") {
                end = at + trimmed.len();
            }
        }
        found.push(Found::new(
            place.start(),
            place.start() + end,
            Label::Hospital,
        ));
    }
}

fn number(caps: &Captures<'_>, group: usize) -> Option<u32> {
    caps.get(group)?.as_str().parse().ok()
}

fn plausible_day_month(a: u32, b: u32) -> bool {
    (1..=31).contains(&a) && (1..=31).contains(&b) && (a <= 12 || b <= 12)
}

/// `12/03`, `3/2019`: day and month or month and year, not fractions,
/// scores (`5/10` pain, `4/5` strength) or ratios of larger numbers.
fn short_dates(text: &str, rules: &Rules, found: &mut Vec<Found>) {
    for caps in rules.short_date.captures_iter(text) {
        let m = caps.get(0).expect("whole match");
        let before = text[..m.start()].chars().next_back();
        let after = text[m.end()..].chars().next();
        if before.is_some_and(|c| c == '/' || c == '.' || c.is_ascii_digit())
            || after.is_some_and(|c| c == '/' || c.is_ascii_digit())
        {
            continue;
        }
        let (Some(a), Some(b)) = (number(&caps, 1), number(&caps, 2)) else {
            continue;
        };
        let second = caps.get(2).expect("second").as_str();
        let month_year = (1..=12).contains(&a)
            && ((second.len() == 4 && (1900..2100).contains(&b)) || (second.len() == 2 && b > 31));
        let day_month = second.len() <= 2 && plausible_day_month(a, b);
        let padded = second.starts_with('0');
        let fraction =
            !padded && matches!((a, b), (1, 2) | (1, 3) | (2, 3) | (1, 4) | (3, 4) | (1, 8));
        // `on 3/10` is a date, `pain 3/10` a score.
        let word_before: String = text[..m.start()]
            .trim_end()
            .chars()
            .rev()
            .take_while(|c| c.is_alphabetic())
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<String>()
            .to_lowercase();
        let dated = matches!(
            word_before.as_str(),
            "on" | "le"
                | "du"
                | "au"
                | "since"
                | "depuis"
                | "from"
                | "until"
                | "by"
                | "dated"
                | "of"
        );
        let score = !padded && !dated && (b == 10 || b == 5 || b == 6 || b == 4) && a <= b;
        // `2/2 to chest pain`: secondary to.
        let secondary = (a, second) == (2, "2") && text[m.end()..].trim_start().starts_with("to ");
        if month_year || (day_month && !fraction && !score && !secondary) {
            found.push(Found::new(m.start(), m.end(), Label::Date));
        }
    }
}

/// A year on its own after a preposition (`en 2019`, `in 1998`, `from 1980
/// to 1983`), unless a unit follows (`2000 mg`).
fn years(text: &str, rules: &Rules, found: &mut Vec<Found>) {
    for m in rules.year.find_iter(text) {
        let previous: String = text[..m.start()]
            .trim_end()
            .chars()
            .rev()
            .take_while(|c| c.is_alphabetic() || *c == '\'')
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<String>()
            .to_lowercase();
        let dated = matches!(
            previous.as_str(),
            "in" | "since"
                | "en"
                | "depuis"
                | "from"
                | "to"
                | "until"
                | "till"
                | "de"
                | "à"
                | "au"
                | "of"
                | "year"
                | "année"
                | "an"
                | "et"
                | "and"
                | "through"
                | "between"
                | "entre"
                | "avant"
                | "après"
                | "before"
                | "after"
                | "vers"
                | "circa"
                | "né"
                | "née"
                | "born"
                | "jusqu'en"
                | "d'"
                | "l'an"
                | "during"
                | "pendant"
                | "summer"
                | "winter"
                | "spring"
                | "fall"
                | "autumn"
                | "été"
                | "hiver"
                | "printemps"
                | "automne"
                | "early"
                | "late"
                | "mid"
                | "début"
                | "fin"
                | "courant"
        ) || text[..m.start()].trim_end().ends_with(['(', '-', '/']);
        if !dated {
            continue;
        }
        let rest = text[m.end()..].trim_start();
        let next: String = rest
            .chars()
            .take_while(|c| c.is_alphabetic() || *c == '%' || *c == '/')
            .collect();
        let before = text[..m.start()].chars().next_back();
        if is_unit(&next) || before.is_some_and(|c| matches!(c, ',' | '.' | 'x' | '×' | '+')) {
            continue;
        }
        if text[m.end()..].starts_with([',', '.'])
            && rest[1..].starts_with(|c: char| c.is_ascii_digit())
        {
            continue;
        }
        found.push(Found::new(m.start(), m.end(), Label::Date));
    }
}

fn is_unit(word: &str) -> bool {
    matches!(
        word.to_lowercase().as_str(),
        "mg" | "g"
            | "kg"
            | "mcg"
            | "µg"
            | "ug"
            | "ml"
            | "cc"
            | "l"
            | "dl"
            | "ui"
            | "u"
            | "iu"
            | "units"
            | "unités"
            | "unites"
            | "unit"
            | "mmol"
            | "mosm"
            | "kcal"
            | "cal"
            | "mm"
            | "cm"
            | "m"
            | "km"
            | "m2"
            | "%"
            | "pg"
            | "ng"
            | "meq"
            | "mmhg"
            | "ms"
            | "hz"
            | "mosm/kg"
            | "cells"
            | "cellules"
            | "el"
            | "/mm3"
            | "/µl"
            | "/ul"
            | "g/l"
            | "mg/l"
            | "ml/h"
            | "calories"
            | "steps"
            | "pas"
            | "feet"
            | "ft"
            | "lbs"
            | "lb"
            | "grammes"
            | "grams"
    )
}

/// NIR: sex, year, month, department, commune, order, optional key (checked).
fn nir(text: &str, rules: &Rules, found: &mut Vec<Found>) {
    for caps in rules.nir.captures_iter(text) {
        let m = caps.get(0).expect("whole match");
        let body: String = (1..=6)
            .map(|g| caps.get(g).expect("group").as_str())
            .collect::<String>()
            .to_ascii_uppercase();
        let label = match caps.get(7) {
            Some(key) if nir_key(&body) == key.as_str().parse().ok() => Label::Nir,
            Some(_) => Label::Id,
            None => Label::Nir,
        };
        found.push(Found::new(m.start(), m.end(), label));
    }
}

/// The NIR key of a 13-character body: 97 - (number mod 97), Corsica's
/// 2A and 2B read as 19 and 18.
pub fn nir_key(body: &str) -> Option<u32> {
    let digits = body.replace("2A", "19").replace("2B", "18");
    let number: u64 = digits.parse().ok()?;
    let shift = if body.contains("2A") {
        1_000_000
    } else if body.contains("2B") {
        2_000_000
    } else {
        0
    };
    Some(97 - ((number - shift) % 97) as u32)
}

/// Values after a keyword naming an identifier (`IPP : 8000123456`).
fn keyword_ids(text: &str, rules: &Rules, found: &mut Vec<Found>) {
    for caps in rules.keyword_id.captures_iter(text) {
        let keyword = caps.get(1).expect("keyword").as_str().to_lowercase();
        let value = caps.get(2).expect("value");
        let label = if keyword.contains("ipp") || keyword == "nip" || keyword.contains("patient") {
            Label::Ipp
        } else if keyword.contains("nda")
            || keyword.contains("séjour")
            || keyword.contains("sejour")
            || keyword.contains("venue")
            || keyword.contains("admission")
            || keyword.contains("dossier")
        {
            Label::Nda
        } else if keyword.contains("nir") || keyword.contains("s") && keyword.contains("cu") {
            Label::Nir
        } else if keyword.contains("ssn") || keyword.contains("social") {
            Label::Ssn
        } else if keyword.contains("acc")
            || keyword.contains("insurance")
            || keyword.contains("policy")
            || keyword.contains("member")
        {
            Label::Account
        } else if keyword.contains("record") || keyword.contains("mr") || keyword.contains("unit") {
            Label::Mrn
        } else {
            Label::Id
        };
        let v = value.as_str().trim_end_matches(['.', '-', '/', ' ']);
        found.push(Found::new(value.start(), value.start() + v.len(), label));
    }
}

/// Street addresses: number, street type, name, then `, postcode city`.
fn streets(text: &str, rules: &Rules, lang: Lang, found: &mut Vec<Found>) {
    let pattern = match lang {
        Lang::Fr => &rules.street_fr,
        Lang::En => &rules.street_en,
    };
    for m in pattern.find_iter(text) {
        let mut end = street_end(text, m.start(), m.end());
        if lang == Lang::En {
            end += unit_len(&text[end..]);
        }
        let rest = &text[end..];
        let trimmed = rest.trim_start_matches([',', ' ']);
        let zip_len = trimmed
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '-')
            .count();
        if (5..=10).contains(&zip_len) {
            let city_start = end + (rest.len() - trimmed.len()) + zip_len;
            end = city_end(text, city_start);
        } else if let Some(city) = english_city_state_zip(trimmed) {
            end += rest.len() - trimmed.len() + city;
        }
        found.push(Found::new(m.start(), end, Label::Address));
    }
    if lang == Lang::Fr {
        for m in rules.street_fr_zip.find_iter(text) {
            found.push(Found::new(
                m.start(),
                city_end(text, m.end()),
                Label::Address,
            ));
        }
    }
}

/// The street name stops at a comma, a full stop or a line break, and
/// before a lower-case word that starts a new clause.
fn street_end(text: &str, start: usize, end: usize) -> usize {
    let matched = &text[start..end];
    let street = matched.find(char::is_alphabetic).unwrap_or(0);
    let cut = matched[street..]
        .find([',', '\n', ';', '('])
        .map_or(end, |i| start + street + i);
    let mut out = start;
    for (i, word) in text[start..cut].split_inclusive(' ').scan(start, |at, w| {
        let s = *at;
        *at += w.len();
        Some((s, w))
    }) {
        let w = word.trim();
        if matches!(
            w.to_lowercase().as_str(),
            "pour"
                | "le"
                | "à"
                | "au"
                | "et"
                | "depuis"
                | "où"
                | "avec"
                | "chez"
                | "dans"
                | "for"
                | "on"
                | "at"
                | "and"
                | "since"
                | "with"
        ) && i > start + 6
        {
            break;
        }
        out = i + word.trim_end().len();
    }
    out.max(start)
}

/// After a postcode: the city's words, capitalised or joined (`sainte édouard`,
/// `Boutin-Sur-Mer`), at most four, before a word that starts a clause.
fn city_end(text: &str, from: usize) -> usize {
    let mut end = from;
    let mut words = 0;
    let mut at = from;
    for word in text[from..].split_inclusive([' ', ',', '\n', '.', ';']) {
        let w = word.trim_end_matches([' ', ',', '\n', '.', ';']);
        if w.is_empty() {
            if word.contains(['\n', ',', '.', ';']) && words > 0 {
                break;
            }
            at += word.len();
            continue;
        }
        let lower = w.to_lowercase();
        if words >= 4
            || !w.chars().next().is_some_and(char::is_alphabetic)
            || matches!(
                lower.as_str(),
                "pour"
                    | "le"
                    | "à"
                    | "au"
                    | "aux"
                    | "et"
                    | "depuis"
                    | "par"
                    | "avec"
                    | "chez"
                    | "dans"
                    | "où"
                    | "qui"
                    | "the"
                    | "on"
                    | "at"
                    | "for"
                    | "in"
                    | "and"
                    | "tel"
                    | "tél"
            )
        {
            break;
        }
        words += 1;
        end = at + w.len();
        at += word.len();
        if word.ends_with([',', '\n', '.', ';']) {
            break;
        }
    }
    end
}

/// `, Apt 28`, `, Suite 4B` after an English street: its length.
fn unit_len(text: &str) -> usize {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        re(r"^,?[ \t]*(?:Suite|Ste|Apt|Apartment|Unit|Room|Rm|Floor|Fl|#)\.?[ \t]*#?[A-Za-z]?\d+[A-Za-z]?\b")
    });
    re.find(text).map_or(0, |m| m.end())
}

/// `Boston, MA 02109` after an English street: its length.
fn english_city_state_zip(text: &str) -> Option<usize> {
    static RE: OnceLock<Regex> = OnceLock::new();
    let re = RE.get_or_init(|| {
        re(r"^(?:[A-Z][a-z]+\s?){1,3},?\s*(?:[A-Z]{2}|[A-Z][a-z]+)?\s*\d{5}(?:-\d{4})?\b")
    });
    re.find(text).map(|m| m.end())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(text: &str, lang: Lang) -> Vec<(String, Label)> {
        let mut v: Vec<_> = detect(text, lang)
            .into_iter()
            .map(|f| (text[f.start..f.end].to_string(), f.label))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v.dedup();
        v
    }

    #[test]
    fn nir_key_is_checked() {
        // 1 84 12 76 451 089, key 46 (a published example).
        assert_eq!(nir_key("1841276451089"), Some(46));
        let found = labels("NIR 1 84 12 76 451 089 46", Lang::Fr);
        assert!(
            found
                .iter()
                .any(|(s, l)| s == "1 84 12 76 451 089 46" && *l == Label::Nir),
            "{found:?}"
        );
    }

    #[test]
    fn french_dates_in_many_shapes() {
        for date in [
            "SAM 20 FÉVR 2083",
            "Jeu, 17 Avr 2098",
            "8/07/76",
            "21-5-2076",
            "23.12.60",
            "2 1 0 6 2 0 5 4",
            "2 2 / 2 / 2 0 6 6",
            "14 JUILLET 2017",
            "Ven., 9 Juin 2056",
        ] {
            let text = format!("vu le {date} pour");
            let found = labels(&text, Lang::Fr);
            assert!(
                found
                    .iter()
                    .any(|(s, l)| s.contains(date) && *l == Label::Date),
                "{date}: {found:?}"
            );
        }
    }

    #[test]
    fn scores_and_fractions_are_not_dates() {
        assert!(labels("pain 5/10, strength 4/5, 1/2 tab", Lang::En).is_empty());
        assert!(!labels("seen 10/12 by team", Lang::En).is_empty());
        assert!(!labels("transferred on 3/10", Lang::En).is_empty());
    }

    #[test]
    fn addresses_with_postcode_and_city() {
        let text = "Visiter l'appartement au 44, rue charles, 63570 sainte édouard pour le RDV";
        let found = labels(text, Lang::Fr);
        assert!(
            found
                .iter()
                .any(|(s, l)| s == "44, rue charles, 63570 sainte édouard" && *l == Label::Address),
            "{found:?}"
        );
        let en = labels(
            "lives at 2491 Bogisich Glen Suite 636, Boston, MA 02109 alone",
            Lang::En,
        );
        assert!(
            en.iter()
                .any(|(s, _)| s.starts_with("2491 Bogisich Glen Suite 636")),
            "{en:?}"
        );
    }

    #[test]
    fn english_dates_ages_and_places_in_more_shapes() {
        let text = "seen the 14th of March, again Tues 3/14 and in summer 2019; a ninety-two year old from Quincy, MA and Texas; typed by JS/kl";
        let found = labels(text, Lang::En);
        for (value, label) in [
            ("the 14th of March", Label::Date),
            ("Tues 3/14", Label::Date),
            ("summer 2019", Label::Date),
            ("ninety-two", Label::Age),
            ("Quincy", Label::City),
            ("MA", Label::City),
            ("Texas", Label::City),
            ("JS/kl", Label::Name),
        ] {
            assert!(
                found.contains(&(value.to_string(), label)),
                "{value}: {found:?}"
            );
        }
        // A physician's degree after a name is no state.
        assert!(
            !labels("Jones, MD saw him", Lang::En)
                .iter()
                .any(|(_, l)| *l == Label::City)
        );
    }

    #[test]
    fn english_apartments_states_and_look_alikes() {
        let found = labels(
            "Address: 6555 Rantamben Road, Apt 28, Burlington, MA 01809. Lives in Salem, ME.",
            Lang::En,
        );
        assert!(
            found
                .iter()
                .any(|(s, l)| s.starts_with("6555 Rantamben Road, Apt 28") && *l == Label::Address),
            "{found:?}"
        );
        assert!(found.contains(&("ME".into(), Label::City)), "{found:?}");
        // An examination, a temperature after a section name, `secondary to`.
        assert!(labels("Abdomen: Soft, ND, NT.", Lang::En).is_empty());
        assert!(labels("ID: Tmax 101.2, vanco continues", Lang::En).is_empty());
        assert!(labels("stopped 2/2 to chest pain", Lang::En).is_empty());
        assert!(!labels("Patient ID: AB12345", Lang::En).is_empty());
    }

    #[test]
    fn french_services_named_with_their_place() {
        let text = "Service de gériatrie de PARIS 7 – DENIS DIDEROT Saturation en O2, 2B 065 CHATENOIS-LES-FORGES";
        let found = labels(text, Lang::Fr);
        assert!(
            found.contains(&("PARIS 7 – DENIS DIDEROT".into(), Label::Hospital)),
            "{found:?}"
        );
        assert!(found.contains(&("2B 065".into(), Label::Zip)), "{found:?}");
        assert!(
            !labels("Consultation de suivi de Mme Dupont", Lang::Fr)
                .iter()
                .any(|(_, l)| *l == Label::Hospital)
        );
    }

    #[test]
    fn identifiers_after_their_keyword() {
        let found = labels("IPP : 8000123456, NDA n° 12345 et MRN# 4567", Lang::Fr);
        assert!(
            found.contains(&("8000123456".into(), Label::Ipp)),
            "{found:?}"
        );
        assert!(found.contains(&("12345".into(), Label::Nda)), "{found:?}");
        assert!(found.contains(&("4567".into(), Label::Mrn)), "{found:?}");
    }
}
