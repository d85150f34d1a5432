//! The word lists behind the dictionary detectors, vendored gzip-compressed
//! under `crates/deid/data/text/` (sources and licences in its README) and
//! decompressed once per process on first use.

use std::collections::HashSet;
use std::io::Read;
use std::sync::OnceLock;

use super::Lang;
use super::token::fold;

/// A set of lower-case entries.
pub struct WordSet {
    exact: HashSet<Box<str>>,
    /// Entries with accents, folded (for text typed in capitals or without accents).
    folded: HashSet<Box<str>>,
}

impl WordSet {
    fn load(gz: &[u8]) -> Self {
        let mut text = String::new();
        flate2::read::GzDecoder::new(gz)
            .read_to_string(&mut text)
            .expect("vendored word lists are valid gzip UTF-8");
        let mut exact = HashSet::new();
        let mut folded = HashSet::new();
        for line in text.lines().filter(|l| !l.is_empty()) {
            if !line.is_ascii() {
                folded.insert(fold(line).into_boxed_str());
            }
            exact.insert(line.into());
        }
        Self { exact, folded }
    }

    /// Whether `lower` (lower case) is an entry as written.
    pub fn contains(&self, lower: &str) -> bool {
        self.exact.contains(lower)
    }

    /// Whether `lower` is an entry, accents ignored.
    pub fn contains_folded(&self, lower: &str) -> bool {
        if self.exact.contains(lower) {
            return true;
        }
        // Lower-case ASCII folds to itself: nothing more to look up.
        let unchanged = lower
            .bytes()
            .all(|b| b.is_ascii() && !b.is_ascii_uppercase());
        !unchanged && self.folded.contains(fold(lower).as_str())
    }

    /// The entries, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.exact.iter().map(|s| &**s)
    }
}

macro_rules! list {
    ($name:ident, $file:literal) => {
        fn $name() -> &'static WordSet {
            static SET: OnceLock<WordSet> = OnceLock::new();
            SET.get_or_init(|| WordSet::load(include_bytes!(concat!("../../data/text/", $file))))
        }
    };
}

list!(words_fr, "words-fr.txt.gz");
list!(words_en, "words-en.txt.gz");
list!(first_names, "first-names.txt.gz");
list!(last_names, "last-names.txt.gz");
list!(cities_fr, "cities-fr.txt.gz");

/// Ordinary words of `lang` (inflected forms).
pub fn words(lang: Lang) -> &'static WordSet {
    match lang {
        Lang::Fr => words_fr(),
        Lang::En => words_en(),
    }
}

/// Given names (French, English and many others).
pub fn given_names() -> &'static WordSet {
    first_names()
}

/// Family names.
pub fn family_names() -> &'static WordSet {
    last_names()
}

/// French communes, folded, hyphens as spaces.
pub fn cities(lang: Lang) -> &'static HashSet<String> {
    static FR: OnceLock<HashSet<String>> = OnceLock::new();
    static EN: OnceLock<HashSet<String>> = OnceLock::new();
    match lang {
        Lang::Fr => FR.get_or_init(|| {
            cities_fr()
                .iter()
                .map(|c| fold(c).replace(['-', '\''], " "))
                .collect()
        }),
        Lang::En => EN.get_or_init(|| US_CITIES.iter().map(|c| c.to_string()).collect()),
    }
}

/// Surrogate names for one language: (given, family), sorted.
pub fn surrogate_names(lang: Lang) -> &'static (Vec<String>, Vec<String>) {
    static FR: OnceLock<(Vec<String>, Vec<String>)> = OnceLock::new();
    static EN: OnceLock<(Vec<String>, Vec<String>)> = OnceLock::new();
    fn sorted(gz: &[u8]) -> Vec<String> {
        let mut v: Vec<String> = WordSet::load(gz).iter().map(str::to_string).collect();
        v.sort();
        v
    }
    match lang {
        Lang::Fr => FR.get_or_init(|| {
            (
                sorted(include_bytes!("../../data/text/surrogate-first-fr.txt.gz")),
                sorted(include_bytes!("../../data/text/surrogate-last-fr.txt.gz")),
            )
        }),
        Lang::En => EN.get_or_init(|| {
            (
                sorted(include_bytes!("../../data/text/surrogate-first-en.txt.gz")),
                sorted(include_bytes!("../../data/text/surrogate-last-en.txt.gz")),
            )
        }),
    }
}

/// Large US cities (folded); smaller places are found by context.
const US_CITIES: &[&str] = &[
    "new york",
    "los angeles",
    "chicago",
    "houston",
    "phoenix",
    "philadelphia",
    "san antonio",
    "san diego",
    "dallas",
    "san jose",
    "austin",
    "jacksonville",
    "fort worth",
    "columbus",
    "charlotte",
    "indianapolis",
    "san francisco",
    "seattle",
    "denver",
    "oklahoma city",
    "nashville",
    "washington",
    "el paso",
    "las vegas",
    "boston",
    "detroit",
    "portland",
    "louisville",
    "memphis",
    "baltimore",
    "milwaukee",
    "albuquerque",
    "tucson",
    "fresno",
    "sacramento",
    "mesa",
    "kansas city",
    "atlanta",
    "omaha",
    "colorado springs",
    "raleigh",
    "miami",
    "long beach",
    "virginia beach",
    "oakland",
    "minneapolis",
    "tulsa",
    "tampa",
    "arlington",
    "new orleans",
    "cleveland",
    "pittsburgh",
    "cincinnati",
    "st louis",
    "saint louis",
    "orlando",
    "buffalo",
    "newark",
    "honolulu",
    "anchorage",
    "providence",
    "hartford",
    "worcester",
    "springfield",
    "cambridge",
    "somerville",
    "quincy",
    "lowell",
    "brockton",
    "lynn",
    "salem",
    "framingham",
    "brookline",
    "newton",
    "waltham",
    "medford",
    "malden",
    "revere",
    "chelsea",
    "everett",
    "peabody",
    "methuen",
    "haverhill",
    "lawrence",
    "fall river",
    "new bedford",
    "plymouth",
    "weymouth",
    "braintree",
    "dorchester",
    "roxbury",
    "jamaica plain",
    "allston",
    "brighton",
    "charlestown",
    "south boston",
    "mattapan",
    "hyde park",
    "roslindale",
    "west roxbury",
    "chestnut hill",
    "needham",
    "wellesley",
    "natick",
    "lexington",
    "concord",
    "woburn",
    "burlington",
    "beverly",
    "gloucester",
    "marblehead",
    "swampscott",
    "saugus",
    "melrose",
    "stoneham",
    "wakefield",
    "reading",
    "andover",
    "north andover",
    "billerica",
    "chelmsford",
    "dracut",
    "tewksbury",
    "wilmington",
    "winchester",
    "belmont",
    "watertown",
    "dedham",
    "milton",
    "randolph",
    "stoughton",
    "canton",
    "norwood",
    "walpole",
    "sharon",
    "foxborough",
    "attleboro",
    "taunton",
    "barnstable",
    "pittsfield",
    "northampton",
    "amherst",
    "holyoke",
    "chicopee",
    "westfield",
    "fitchburg",
    "leominster",
    "marlborough",
    "hudson",
    "shrewsbury",
];
