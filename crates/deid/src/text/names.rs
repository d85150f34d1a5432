//! Person names, hospitals and places, found with word lists and the words
//! around them: titles (`Mme`, `Dr`), roles (`patient`, `fils`), given and
//! family name lists, words unknown to the language next to a name, and
//! lines that hold nothing but names.

use std::collections::HashSet;
use std::sync::OnceLock;

use super::lexicon;
use super::token::{Case, Token, case_of, fold};
use super::{Found, Label, Lang};

/// What the words just before a token say about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Cue {
    None,
    /// `per`, `with`, `called`: a capitalised name may follow.
    Weak,
    /// `patient`, `usager`, `fils`: a name may follow, in any case.
    Role,
    /// `Mme`, `Dr`: a name follows.
    Title,
}

const TITLES: &[&str] = &[
    "m",
    "mr",
    "mrs",
    "ms",
    "mme",
    "mmes",
    "mlle",
    "mlles",
    "melle",
    "madame",
    "monsieur",
    "mademoiselle",
    "messieurs",
    "dr",
    "drs",
    "docteur",
    "doctor",
    "dre",
    "pr",
    "prof",
    "professeur",
    "professor",
    "me",
    "maître",
    "maitre",
    "sr",
    "soeur",
    "sœur",
    "miss",
    "mister",
    "mrs",
    "nurse",
    "interne",
    "externe",
    "ide",
    "sage-femme",
    "cadre",
];

const ROLES_FR: &[&str] = &[
    "patient",
    "patiente",
    "usager",
    "usagère",
    "bénéficiaire",
    "résident",
    "résidente",
    "enfant",
    "bébé",
    "nourrisson",
    "fils",
    "fille",
    "père",
    "mère",
    "époux",
    "épouse",
    "conjoint",
    "conjointe",
    "compagnon",
    "compagne",
    "mari",
    "frère",
    "soeur",
    "sœur",
    "tuteur",
    "tutrice",
    "assuré",
    "assurée",
    "intéressé",
    "intéressée",
    "défunt",
    "défunte",
    "curateur",
    "curatrice",
    "nom",
    "prénom",
    "prénoms",
    "née",
    "né",
    "nommé",
    "nommée",
    "signé",
    "rédigé",
    "dicté",
    "validé",
    "chez",
    "neveu",
    "nièce",
    "oncle",
    "tante",
    "grand-mère",
    "grand-père",
    "petit-fils",
    "petite-fille",
    "beau-père",
    "belle-mère",
    "belle-fille",
    "gendre",
    "ami",
    "amie",
    "voisin",
    "voisine",
    "collègue",
    "assistante",
    "assistant",
    "infirmier",
    "infirmière",
    "médecin",
    "kiné",
    "kinésithérapeute",
    "suivie",
    "suivi",
    "cas",
    "dossier",
    "confrère",
    "consœur",
    "consoeur",
    "interne",
    "externe",
    "référent",
    "référente",
    "traitant",
    "aidant",
    "aidante",
    "mandataire",
    "aide-soignante",
    "aide-soignant",
    "psychologue",
    "diététicienne",
    "ergothérapeute",
    "orthophoniste",
    "secrétaire",
    "cadre",
    "concubin",
    "concubine",
    "petit-ami",
    "belle-sœur",
    "belle-soeur",
    "beau-frère",
    "beau-fils",
];

const ROLES_EN: &[&str] = &[
    "patient",
    "pt",
    "wife",
    "husband",
    "son",
    "daughter",
    "mother",
    "father",
    "brother",
    "sister",
    "friend",
    "neighbor",
    "neighbour",
    "partner",
    "spouse",
    "grandson",
    "granddaughter",
    "grandmother",
    "grandfather",
    "niece",
    "nephew",
    "aunt",
    "uncle",
    "cousin",
    "fiance",
    "fiancee",
    "boyfriend",
    "girlfriend",
    "name",
    "named",
    "signed",
    "dictated",
    "attending",
    "resident",
    "fellow",
    "pcp",
    "cc",
    "mom",
    "dad",
    "sibling",
    "caregiver",
    "guardian",
    "colleague",
    "intern",
    "physician",
    "dr",
    "nurse",
    "np",
    "pa",
    "surgeon",
    "rn",
    "lpn",
    "cna",
    "sw",
    "hcp",
    "proxy",
    "chaplain",
    "pharmacist",
    "dietitian",
    "nutritionist",
    "therapist",
    "stepson",
    "stepdaughter",
    "grandchild",
    "roommate",
    "companion",
    "visitor",
];

const WEAK: &[&str] = &[
    "per",
    "page",
    "called",
    "paged",
    "notified",
    "informed",
    "appelé",
    "appelée",
    "contacté",
    "contactée",
    "prévenu",
    "prévenue",
    "cc",
    "signed",
    "dictated",
    "dicté",
    "dictée",
    "attn",
];

/// Words that never start or continue a name.
const STOP: &[&str] = &[
    "de", "du", "des", "la", "le", "les", "l", "d", "et", "à", "a", "au", "aux", "en", "un", "une",
    "pour", "par", "sur", "avec", "dans", "est", "il", "elle", "the", "of", "and", "to", "in",
    "on", "at", "for", "is", "was", "with", "his", "her", "he", "she", "by", "an", "or", "ou",
    "qui", "que", "ne", "pas", "se", "sa", "son", "ses", "ce", "cette", "mais", "no", "not",
    "this", "that", "it", "as", "be", "has", "had", "have", "will", "are",
];

/// Particles inside a name (`de Gaulle`, `van Gogh`, `ben Barka`).
const PARTICLES: &[&str] = &[
    "de", "du", "des", "le", "la", "van", "von", "der", "den", "ben", "bin", "ibn", "el", "al",
    "da", "di", "dos", "del", "della", "mc", "st", "ste",
];

/// Clinical abbreviations and eponyms that name lists also hold.
const CLINICAL: &[&str] = &[
    "hta",
    "avc",
    "ait",
    "ecg",
    "eeg",
    "irm",
    "tdm",
    "tep",
    "ivg",
    "iv",
    "im",
    "sc",
    "po",
    "bpco",
    "ald",
    "apl",
    "ase",
    "caf",
    "cpam",
    "mdph",
    "samu",
    "smur",
    "sau",
    "pmi",
    "ssr",
    "ehpad",
    "atcd",
    "fsl",
    "cdi",
    "cdd",
    "rsa",
    "aah",
    "apa",
    "cmu",
    "ame",
    "rdv",
    "ras",
    "nfs",
    "crp",
    "pct",
    "bnp",
    "inr",
    "tca",
    "tp",
    "vs",
    "ta",
    "fc",
    "fr",
    "spo",
    "sao",
    "gcs",
    "hr",
    "bp",
    "rr",
    "nsr",
    "sob",
    "doe",
    "cp",
    "abd",
    "ntnd",
    "nad",
    "mae",
    "perrl",
    "perrla",
    "ns",
    "lr",
    "d5w",
    "kcl",
    "npo",
    "prn",
    "bid",
    "tid",
    "qid",
    "qd",
    "qhs",
    "hs",
    "ac",
    "pc",
    "ou",
    "od",
    "os",
    "er",
    "ed",
    "icu",
    "ccu",
    "micu",
    "sicu",
    "ot",
    "pt",
    "slp",
    "cxr",
    "ct",
    "mri",
    "us",
    "ekg",
    "tte",
    "tee",
    "cabg",
    "pci",
    "mi",
    "chf",
    "copd",
    "dm",
    "htn",
    "cad",
    "afib",
    "af",
    "dvt",
    "pe",
    "uti",
    "gi",
    "gu",
    "ua",
    "cbc",
    "bmp",
    "lft",
    "abg",
    "vbg",
    "ngt",
    "ogt",
    "peg",
    "picc",
    "cvl",
    "art",
    "foley",
    "ett",
    "bipap",
    "cpap",
    "fio",
    "peep",
    "vt",
    "vf",
    "svt",
    "lasix",
    "parkinson",
    "alzheimer",
    "crohn",
    "hodgkin",
    "kaposi",
    "cushing",
    "basedow",
    "raynaud",
    "marfan",
    "babinski",
    "lasègue",
    "lasegue",
    "glasgow",
    "apgar",
    "doppler",
    "holter",
    "guillain",
    "willebrand",
    "creutzfeldt",
    "huntington",
    "hashimoto",
    "wegener",
    "behçet",
    "behcet",
    "sjögren",
    "sjogren",
    "korotkoff",
    "fallot",
    "papanicolaou",
    "pfannenstiel",
    "betadine",
    "lugol",
    "medicare",
    "medicaid",
    "aetna",
    "cigna",
    "humana",
    "anthem",
    "unitedhealthcare",
    "mutuelle",
    "cmu",
    "aspergillus",
    "candida",
    "klebsiella",
    "escherichia",
    "coli",
    "listeria",
    "salmonella",
    "shigella",
    "brucella",
    "legionella",
    "pseudomonas",
    "enterococcus",
    "staphylococcus",
    "streptococcus",
    "covid",
    "sars",
];

/// Nouns that follow an eponym (`Crohn's disease`, `Leydig cell`), or that
/// `de` joins to one (`maladie de Crohn`).
const EPONYM_NOUNS: &[&str] = &[
    "disease",
    "syndrome",
    "sign",
    "test",
    "technique",
    "cell",
    "cells",
    "stain",
    "stains",
    "bodies",
    "body",
    "incision",
    "type",
    "cyst",
    "gland",
    "glands",
    "duct",
    "tumor",
    "tumour",
    "maneuver",
    "manoeuvre",
    "procedure",
    "operation",
    "classification",
    "score",
    "scale",
    "criteria",
    "reflex",
    "fracture",
    "ulcer",
    "hernia",
    "pouch",
    "space",
    "canal",
    "node",
    "nodes",
    "neobladder",
    "reservoir",
    "anastomosis",
    "repair",
    "flap",
    "catheter",
    "tube",
    "method",
    "approach",
    "position",
    "line",
    "phenomenon",
    "law",
    "index",
    "staging",
    "grade",
    "system",
    "grading",
    "needle",
    "forceps",
    "clamp",
    "solution",
    "medium",
    "agar",
    "reaction",
    "negative",
    "positive",
    "point",
    "maladie",
    "signe",
    "opération",
    "intervention",
    "tumeur",
    "sonde",
    "méthode",
    "manœuvre",
    "manoeuvre",
    "technique",
    "triade",
    "loi",
    "classification",
    "stade",
    "kyste",
    "ulcère",
    "lymphome",
    "sarcome",
    "infection",
    "virus",
    "bacille",
    "coloration",
    "tube",
    "cellule",
    "cellules",
    "corps",
    "fracture",
    "hernie",
    "poche",
    "diverticule",
    "zone",
    "espace",
];

/// Hospitals known by name alone (AP-HP and other Paris hospitals, with
/// their three-letter site codes), folded.
const HOSPITALS: &[&str] = &[
    "necker",
    "bicetre",
    "pitie salpetriere",
    "pitie",
    "salpetriere",
    "paul brousse",
    "leopold bellan",
    "albert chenevier",
    "chenevier",
    "henri mondor",
    "georges pompidou",
    "hegp",
    "lariboisiere",
    "bichat",
    "beaujon",
    "cochin",
    "tenon",
    "robert debre",
    "saint antoine",
    "hotel dieu",
    "avicenne",
    "jean verdier",
    "rene muret",
    "louis mourier",
    "ambroise pare",
    "raymond poincare",
    "antoine beclere",
    "bretonneau",
    "charles foix",
    "corentin celton",
    "vaugirard",
    "rothschild",
    "sainte perine",
    "emile roux",
    "joffre dupuytren",
    "georges clemenceau",
    "adelaide hautval",
    "fernand widal",
    "jean jaures",
    "marmottan",
    "sainte anne",
    "quinze vingts",
    "foch",
    "bct",
    "psl",
    "hmn",
    "lrb",
    "nck",
    "sls",
    "tnn",
    "trs",
    "rdb",
    "bjn",
    "bch",
    "cch",
    "jvr",
    "lmr",
    "pbr",
    "rpc",
    "cfx",
    "mgh",
    "bwh",
    "bidmc",
    "chop",
    "ucsf",
    "ucla",
];

const HOSPITAL_WORDS: &[&str] = &[
    "hôpital",
    "hopital",
    "hôp",
    "hop",
    "clinique",
    "chu",
    "chr",
    "chru",
    "ch",
    "chi",
    "chg",
    "gh",
    "polyclinique",
    "ehpad",
    "maternité",
    "institut",
    "fondation",
    "cds",
    "hospital",
    "clinic",
    "infirmary",
    "hospice",
    "ghu",
    "aphp",
    "ap-hp",
    "ssr",
    "usld",
    "had",
];

const HOSPITAL_SUFFIXES: &[&str] = &[
    "hospital",
    "clinic",
    "infirmary",
    "hospice",
    "center",
    "centre",
    "institute",
    "home",
    "rehab",
    "rehabilitation",
];

const LOCATIVES: &[&str] = &[
    "à", "a", "de", "d", "sur", "en", "vers", "in", "at", "from", "to", "near", "of", "au",
];

fn set(words: &[&str]) -> HashSet<String> {
    words.iter().map(|w| w.to_string()).collect()
}

struct Lists {
    eponym_nouns: HashSet<String>,
    titles: HashSet<String>,
    roles: HashSet<String>,
    weak: HashSet<String>,
    stop: HashSet<String>,
    particles: HashSet<String>,
    clinical: HashSet<String>,
    hospitals: HashSet<String>,
    hospital_words: HashSet<String>,
    hospital_suffixes: HashSet<String>,
    locatives: HashSet<String>,
}

fn lists(lang: Lang) -> &'static Lists {
    static FR: OnceLock<Lists> = OnceLock::new();
    static EN: OnceLock<Lists> = OnceLock::new();
    let cell = match lang {
        Lang::Fr => &FR,
        Lang::En => &EN,
    };
    cell.get_or_init(|| Lists {
        eponym_nouns: set(EPONYM_NOUNS),
        titles: set(TITLES),
        roles: set(match lang {
            Lang::Fr => ROLES_FR,
            Lang::En => ROLES_EN,
        }),
        weak: set(WEAK),
        stop: set(STOP),
        particles: set(PARTICLES),
        clinical: set(CLINICAL),
        hospitals: set(HOSPITALS),
        hospital_words: set(HOSPITAL_WORDS),
        hospital_suffixes: set(HOSPITAL_SUFFIXES),
        locatives: set(LOCATIVES),
    })
}

/// What the word lists say about one token.
#[derive(Debug, Clone, Copy, Default)]
struct Word {
    /// Inside a span found earlier.
    taken: bool,
    /// An ordinary word of the language (or a clinical abbreviation).
    common: bool,
    /// On the given-name list.
    given: bool,
    /// On the family-name list.
    family: bool,
    stop: bool,
    clinical: bool,
}

impl Word {
    /// On a given- or family-name list.
    fn listed(&self) -> bool {
        self.given || self.family
    }
}

struct Note<'a> {
    text: &'a str,
    tokens: &'a [Token],
    words: Vec<Word>,
    /// Each token folded, hyphens and apostrophes as spaces (for list lookups).
    folded: Vec<String>,
    lists: &'static Lists,
    lang: Lang,
}

impl Note<'_> {
    /// The characters between tokens `i` and `i + 1`.
    fn gap(&self, i: usize) -> &str {
        &self.text[self.tokens[i].end..self.tokens[i + 1].start]
    }

    /// Tokens `i` and `i + 1` belong to one name when only spaces, a
    /// hyphen, a full stop after an initial, or a comma separate them.
    fn joined(&self, i: usize, comma: bool) -> bool {
        let gap = self.gap(i);
        let gap = gap.trim_matches([' ', '\t']);
        gap.is_empty()
            || gap == "-"
            || (gap == "." && self.tokens[i].chars() <= 3)
            || (comma && gap == ",")
    }

    /// Token `i` is followed by punctuation, a line break or the end.
    fn ends_phrase(&self, i: usize) -> bool {
        let rest = self.text[self.tokens[i].end..].trim_start_matches([' ', '\t']);
        rest.is_empty() || rest.starts_with([',', '.', ';', ':', '\n', '\r', '(', ')', '-'])
    }

    /// Token `i` names a disease, sign or technique (`Crohn's disease`,
    /// `Leydig cell`, `maladie de Crohn`).
    fn eponym(&self, i: usize) -> bool {
        let l = &self.lists;
        let n = self.tokens.len();
        let mut j = i + 1;
        while j < n && j <= i + 3 {
            let t = &self.tokens[j];
            if l.eponym_nouns.contains(&t.lower) {
                return true;
            }
            if self.words[j].stop && t.lower != "s" {
                break;
            }
            j += 1;
        }
        i >= 2
            && matches!(self.tokens[i - 1].lower.as_str(), "de" | "d" | "of")
            && l.eponym_nouns.contains(&self.tokens[i - 2].lower)
    }

    /// Token `i` starts a sentence (first of the text, or after `.`, `!`,
    /// `?`, `:` or a line break).
    fn sentence_start(&self, i: usize) -> bool {
        i == 0 || {
            let gap = self.gap(i - 1);
            gap.contains(['.', '!', '?', ':', '\n', '#', '-', '*', '•'])
        }
    }

    /// Could token `i` be part of a name next to another name word?
    fn continues(&self, i: usize) -> bool {
        let (t, w) = (&self.tokens[i], self.words[i]);
        if !t.alpha || w.taken || w.stop || w.clinical || self.is_cue_word(i) || self.eponym(i) {
            return false;
        }
        if t.chars() == 1 {
            return t.case == Case::Title;
        }
        // An ordinary word continues a name only at the end of the phrase
        // (`Dupont Jean ,` but not `RAMON Bilan sanguin`).
        let last = self.ends_phrase(i);
        match t.case {
            Case::Upper | Case::Title => !w.common || (w.listed() && last),
            Case::Lower => (!w.common && t.chars() >= 3) || (w.listed() && last),
            Case::Other => false,
        }
    }

    /// Could token `i` be the first word of a name after a cue?
    fn starts(&self, i: usize, cue: Cue) -> bool {
        let (t, w) = (&self.tokens[i], self.words[i]);
        if !t.alpha || w.taken || w.stop || self.is_cue_word(i) {
            return false;
        }
        match cue {
            Cue::Title => true,
            Cue::Role => {
                !w.clinical
                    && ((t.capitalised() && (!w.common || w.listed()))
                        || (!w.common && t.chars() >= 3))
            }
            Cue::Weak => {
                !w.clinical && t.capitalised() && t.chars() >= 2 && (!w.common || w.listed())
            }
            Cue::None => false,
        }
    }

    /// A title, or a role word written in lower case (`Voisin` may be a name, `voisin` is not).
    fn is_cue_word(&self, i: usize) -> bool {
        match self.cue(i) {
            Cue::Title => true,
            Cue::Role | Cue::Weak => !self.tokens[i].capitalised(),
            Cue::None => false,
        }
    }

    fn cue(&self, i: usize) -> Cue {
        let t = &self.tokens[i];
        let l = &self.lists;
        // A word inside a span found earlier (the state in `Salem, ME`) is no cue.
        if self.words[i].taken {
            return Cue::None;
        }
        if l.titles.contains(&t.lower) {
            // `M.` and `Me` are titles only when capitalised, `Me` (Maître) only in French.
            if matches!(t.lower.as_str(), "m" | "me" | "pr" | "ide") && !t.capitalised()
                || t.lower == "me" && self.lang == Lang::En
            {
                return Cue::None;
            }
            Cue::Title
        } else if l.roles.contains(&t.lower) {
            Cue::Role
        } else if l.weak.contains(&t.lower) {
            Cue::Weak
        } else {
            Cue::None
        }
    }
}

/// Load the word lists and build the cue sets now.
pub fn preload(lang: Lang) {
    lists(lang);
    lexicon::words(lang);
    lexicon::given_names();
    lexicon::family_names();
    lexicon::cities(lang);
}

/// What the word lists say of each token of a note, kept from [`detect`] for the tagger.
pub(super) struct Lexed {
    words: Vec<Word>,
    folded: Vec<String>,
}

/// Names, hospitals and places in `text`, besides the spans already `taken`, and what the word
/// lists said of each token.
pub fn detect(text: &str, tokens: &[Token], lang: Lang, taken: &[Found]) -> (Vec<Found>, Lexed) {
    let lists = lists(lang);
    let words = classify(tokens, lang, lists, taken);
    let folded = tokens.iter().map(|t| folded_key(&t.lower)).collect();
    let note = Note {
        text,
        tokens,
        words,
        folded,
        lists,
        lang,
    };
    let mut found = Vec::new();
    let mut name = vec![false; tokens.len()];
    hospitals(&note, &mut name, &mut found);
    places(&note, &mut name, &mut found);
    let place = name.clone();
    people(&note, &mut name);
    for (i, t) in tokens.iter().enumerate() {
        if name[i] && !place[i] {
            found.push(Found::new(t.start, t.end, Label::Name));
        }
    }
    let lexed = Lexed {
        words: note.words,
        folded: note.folded,
    };
    (found, lexed)
}

/// A token as the lists hold it: folded, hyphens and apostrophes as spaces.
fn folded_key(lower: &str) -> String {
    if lower
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    {
        return lower.to_string();
    }
    fold(lower).replace(['-', '\'', '’'], " ")
}

/// What the word lists and cues say of one token: the statistical tagger's view of a word
/// that does not name it (see `tagger`).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Facts {
    /// Inside a span found by the rules.
    pub taken: bool,
    /// An ordinary word of the language (or a clinical abbreviation).
    pub common: bool,
    /// On the given-name list.
    pub given: bool,
    /// On the family-name list.
    pub family: bool,
    /// A function word.
    pub stop: bool,
    /// A clinical abbreviation or eponym.
    pub clinical: bool,
    /// A title (`Dr`, `Mme`), role (`patient`, `fils`) or weak cue (`avec`, `per`), if any.
    pub cue: Option<&'static str>,
    /// A word of a hospital's name (`hôpital`, `clinic`, `CHU`) or a hospital known by name.
    pub hospital: bool,
    /// A listed city on its own.
    pub city: bool,
    /// Starts a sentence or a line.
    pub sentence_start: bool,
}

/// The [`Facts`] of every token of `text` from what [`detect`] found (`lexed`), with the
/// spans of all the rules `taken`.
pub(super) fn facts(
    text: &str,
    tokens: &[Token],
    lang: Lang,
    lexed: Lexed,
    taken: &[Found],
) -> Vec<Facts> {
    let lists = lists(lang);
    let mut words = lexed.words;
    let mut spans = taken.iter().peekable();
    for (t, w) in tokens.iter().zip(&mut words) {
        while spans.next_if(|s| s.end <= t.start).is_some() {}
        w.taken = spans.peek().is_some_and(|s| s.start < t.end);
    }
    let cities = lexicon::cities(lang);
    let note = Note {
        text,
        tokens,
        words,
        folded: lexed.folded,
        lists,
        lang,
    };
    (0..tokens.len())
        .map(|i| {
            let (t, w) = (&tokens[i], note.words[i]);
            // Places only matter for the words the tagger looks at (capitalised or unknown).
            let place = t.alpha && (t.capitalised() || !w.common);
            let folded = &note.folded[i];
            Facts {
                taken: w.taken,
                common: w.common,
                given: w.given,
                family: w.family,
                stop: w.stop,
                clinical: w.clinical,
                cue: match note.cue(i) {
                    Cue::Title => Some("title"),
                    Cue::Role => Some("role"),
                    Cue::Weak => Some("weak"),
                    Cue::None => None,
                },
                hospital: place
                    && (lists.hospital_words.contains(&t.lower)
                        || lists.hospitals.contains(folded)),
                city: place && cities.contains(folded),
                sentence_start: note.sentence_start(i),
            }
        })
        .collect()
}

fn classify(tokens: &[Token], lang: Lang, lists: &Lists, taken: &[Found]) -> Vec<Word> {
    let words = lexicon::words(lang);
    let (given, family) = (lexicon::given_names(), lexicon::family_names());
    let mut spans = taken.iter().peekable();
    tokens
        .iter()
        .map(|t| {
            while spans.next_if(|s| s.end <= t.start).is_some() {}
            let taken = spans.peek().is_some_and(|s| s.start < t.end);
            if !t.alpha {
                return Word {
                    taken,
                    ..Word::default()
                };
            }
            let clinical = lists.clinical.contains(&t.lower);
            let common = clinical
                || words.contains(&t.lower)
                || (t.case == Case::Upper && words.contains_folded(&t.lower))
                || t.lower.split(['-', '\'', '’']).all(|p| words.contains(p))
                    && t.lower.contains('-');
            let is_given = given.contains_folded(&t.lower);
            let is_family = family.contains_folded(&t.lower);
            Word {
                taken,
                common,
                given: is_given,
                family: is_family,
                stop: lists.stop.contains(&t.lower),
                clinical,
            }
        })
        .collect()
}

/// Person names: after cues, from the lists, next to other name words,
/// and lines of nothing but names.
fn people(note: &Note<'_>, name: &mut [bool]) {
    let n = note.tokens.len();
    for i in 0..n {
        let cue = note.cue(i);
        // A role word ends a sentence before a full stop (`..., NP.  Daughter`).
        if cue == Cue::None
            || i + 1 >= n
            || !cue_gap(note.gap(i))
            || (cue == Cue::Role && note.gap(i).contains('.'))
        {
            continue;
        }
        // `Patient(e) : Valentine`
        let mut j = i + 1;
        if note.tokens[j].lower == "e" && note.gap(i) == "(" && j + 1 < n {
            j += 1;
        }
        // `Dr ben barka`, `Mme LE Christophe`, `Dr Da,`: particles after a title are part of the name.
        while cue == Cue::Title && j < n && note.lists.particles.contains(&note.tokens[j].lower) {
            let last = j + 1 >= n || !note.joined(j, false) || note.ends_phrase(j);
            if note.tokens[j].capitalised() || last || note.starts(j + 1, cue) {
                name[j] = true;
            }
            if last {
                break;
            }
            j += 1;
        }
        if j < n && note.starts(j, cue) {
            name[j] = true;
        }
    }
    let fr = note.lang == Lang::Fr;
    for (i, t) in note.tokens.iter().enumerate() {
        let w = note.words[i];
        if !t.alpha || w.taken || w.clinical || w.stop || note.cue(i) != Cue::None || note.eponym(i)
        {
            continue;
        }
        // From the lists: capitalised (or, in French, a lower-case given
        // name), not an ordinary word.
        let short_caps = t.case == Case::Upper && t.chars() <= 3;
        let listed = w.listed() && !w.common && !short_caps && t.chars() >= 2;
        let seed = match t.case {
            Case::Title | Case::Upper => listed,
            Case::Lower => listed && note.lang == Lang::Fr && t.chars() >= 4,
            Case::Other => false,
        };
        // A capitalised word unknown to French inside a sentence (English
        // capitalises drugs and eponyms too often for this).
        let unknown =
            fr && t.case == Case::Title && !w.common && t.chars() >= 4 && !note.sentence_start(i);
        // `Tom is a 29 year-old`, `Dupont, 78 ans`: a capitalised word before an age.
        let aged = t.capitalised() && !is_person_noun(&t.lower) && before_age(note, i);
        if seed || unknown || aged {
            name[i] = true;
        }
    }
    after_suffixes(note, name);
    typist_initials(note, name);
    expand(note, name);
    lines_of_names(note, name);
    expand(note, name);
}

/// `Male, 45 years`: words before an age that are not names.
fn is_person_noun(lower: &str) -> bool {
    matches!(
        lower,
        "male"
            | "female"
            | "man"
            | "woman"
            | "boy"
            | "girl"
            | "homme"
            | "femme"
            | "garçon"
            | "fille"
            | "child"
            | "infant"
            | "enfant"
            | "age"
            | "aged"
            | "âge"
            | "âgé"
            | "âgée"
            | "patient"
            | "patiente"
            | "gentleman"
            | "lady"
            | "baby"
            | "bébé"
    )
}

/// `Jean Dupont, MD` / `DUPONT, M.D.` / `Marie Curie RN`: the capitalised words before.
fn after_suffixes(note: &Note<'_>, name: &mut [bool]) {
    static SUFFIX: OnceLock<regex::Regex> = OnceLock::new();
    let re = SUFFIX.get_or_init(|| {
        regex::Regex::new(
            r"^,?\s*(?:M\.\s?D\.?|MD|R\.N\.|RN|NP|PA-C|D\.O\.|Ph\.?D|DDS|CNM|LPN|LICSW|FNP)(?-u:\b)",
        )
        .expect("valid")
    });
    for i in 0..note.tokens.len() {
        let t = &note.tokens[i];
        if !(t.alpha && t.capitalised() && re.is_match(&note.text[t.end..]))
            || note.cue(i) != Cue::None
        {
            continue;
        }
        let mut j = i;
        loop {
            let (tj, wj) = (&note.tokens[j], note.words[j]);
            let initial = tj.chars() == 1;
            if !tj.alpha
                || !tj.capitalised()
                || wj.stop
                || wj.taken
                || (note.cue(j) != Cue::None && !initial)
            {
                break;
            }
            name[j] = true;
            if j == 0 || i - j >= 3 || !note.joined(j - 1, false) {
                break;
            }
            j -= 1;
        }
    }
}

/// `XGT:holmes`, `GPP/church/olinger`: a typist's initials and names.
fn typist_initials(note: &Note<'_>, name: &mut [bool]) {
    static TYPIST: OnceLock<regex::Regex> = OnceLock::new();
    let re = TYPIST.get_or_init(|| {
        regex::Regex::new(r"(?-u:\b)[A-Z]{2,4}(?:[:/][a-z]{2,}){1,3}(?-u:\b)").expect("valid")
    });
    for m in re.find_iter(note.text) {
        let first = note.tokens.partition_point(|t| t.start < m.start());
        for (i, t) in note.tokens.iter().enumerate().skip(first) {
            if t.end > m.end() {
                break;
            }
            if t.case == Case::Lower {
                name[i] = true;
            }
        }
    }
}

/// Token `i` (and maybe a second name word) is followed by an age: `is a
/// 29 year-old`, `, 78 ans`, `(45 ans)`, `, Jenna is a 98 year old`.
fn before_age(note: &Note<'_>, i: usize) -> bool {
    static AGE: OnceLock<regex::Regex> = OnceLock::new();
    let re = AGE.get_or_init(|| {
        regex::Regex::new(
            r"^(?:(?:[ \t]+\p{Lu}[\p{L}'\-]*)?[ \t]*(?:,|\(|is an?|was an?|est un|est une|, âgée? de)|,[ \t]*\p{Lu}[\p{L}'\-]*[ \t]+(?:is|was)[ \t]+an?)[ \t]*\d{1,3}\s*(?:-|\s)?(?:ans(?-u:\b)|an(?-u:\b)|years?(?-u:\b)|yo(?-u:\b)|y/o|y\.o\.|-year|year-old|mois(?-u:\b)|months?(?-u:\b))",
        )
        .expect("valid")
    });
    re.is_match(&note.text[note.tokens[i].end..])
}

/// Spread names to joined words until nothing changes.
fn expand(note: &Note<'_>, name: &mut [bool]) {
    let n = note.tokens.len();
    loop {
        let mut changed = false;
        for i in 0..n.saturating_sub(1) {
            if name[i] && !name[i + 1] && note.joined(i, false) {
                let next = i + 1;
                // Particles inside a name (`Moya de Atencia`), or ending it capitalised (`Sébastien Le,`).
                let particle = note.lists.particles.contains(&note.tokens[next].lower)
                    && ((next + 1 < n
                        && note.joined(next, false)
                        && note.continues(next + 1)
                        && note.tokens[next + 1].capitalised())
                        || (note.tokens[next].capitalised() && note.ends_phrase(next)));
                // `Dr Louis Voisin`: a family name that is also a word, after a given name.
                let (a, b) = (&note.tokens[i], &note.tokens[next]);
                let family = note.words[i].given
                    && note.words[next].listed()
                    && b.alpha
                    && a.case == b.case
                    && a.capitalised()
                    && !note.words[next].stop
                    && !note.is_cue_word(next);
                if note.continues(next) || particle || family {
                    name[next] = true;
                    changed = true;
                }
            }
            if name[i + 1]
                && !name[i]
                && note.joined(i, false)
                && (note.continues(i) || given_before_name(note, i))
            {
                name[i] = true;
                changed = true;
            }
            // `DUPONT, Jean`: a comma between two names.
            if name[i] && !name[i + 1] && note.joined(i, true) {
                let (t, w) = (&note.tokens[i + 1], note.words[i + 1]);
                let ok = t.alpha
                    && !w.taken
                    && !w.stop
                    && !w.clinical
                    && note.cue(i + 1) == Cue::None
                    && t.chars() >= 2
                    && (!w.common || (w.listed() && t.capitalised()));
                if ok {
                    name[i + 1] = true;
                    changed = true;
                }
            }
        }
        if !changed {
            break;
        }
    }
}

/// Token `i` is a capitalised given name, also an ordinary word, before a
/// capitalised name (`Chad Quitin`, `Raven Ashley`).
fn given_before_name(note: &Note<'_>, i: usize) -> bool {
    let (t, w) = (&note.tokens[i], note.words[i]);
    t.case == Case::Title
        && note.tokens[i + 1].case == Case::Title
        && w.given
        && !w.taken
        && !w.stop
        && !w.clinical
        && t.chars() >= 3
        && note.cue(i) == Cue::None
        && !note.eponym(i)
}

/// A line (or a note) of at most four words that are all names: words
/// unknown to the language or listed names (`bougeard`, `Aubin gaston`,
/// `HERREMAN, Alain, 24.3.40`), or capitalised words one of which is a
/// listed name (`JEUNESSE Benjamin 0551443356`).
fn lines_of_names(note: &Note<'_>, name: &mut [bool]) {
    let mut i = 0;
    let n = note.tokens.len();
    while i < n {
        let mut j = i;
        while j + 1 < n && !note.gap(j).contains('\n') {
            j += 1;
        }
        let words: Vec<usize> = (i..=j)
            .filter(|&k| !note.words[k].taken && note.tokens[k].alpha && note.cue(k) != Cue::Title)
            .collect();
        let line_end = note.tokens[j].end;
        let line = &note.text[note.tokens[i].start..line_end];
        let plausible = |k: usize| {
            let (t, w) = (&note.tokens[k], note.words[k]);
            !w.stop && !w.clinical && t.chars() >= 2 && note.cue(k) == Cue::None
        };
        let unknown = words.iter().all(|&k| {
            let (t, w) = (&note.tokens[k], note.words[k]);
            plausible(k)
                && (!w.common || w.listed() || name[k])
                && !(t.case == Case::Upper && t.chars() <= 4 && !w.listed())
        });
        let capitalised = words.len() <= 3
            && !line.contains(':')
            && words
                .iter()
                .all(|&k| plausible(k) && note.tokens[k].capitalised())
            && (words.iter().all(|&k| note.words[k].listed())
                || words
                    .iter()
                    .any(|&k| note.words[k].listed() && !note.words[k].common)
                || words.iter().any(|&k| {
                    let w = note.words[k];
                    w.given
                        && note.tokens[k].case == Case::Title
                        && (note.lang == Lang::Fr || !w.common)
                }));
        if !words.is_empty() && words.len() <= 4 && (unknown || capitalised) {
            for k in words {
                name[k] = true;
            }
        }
        i = j + 1;
    }
}

fn cue_gap(gap: &str) -> bool {
    let g = gap.trim_matches([' ', '\t']);
    !g.contains('\n')
        && g.trim_matches(['.', ':', ' ', ',', '(', ')', 'e', '-'])
            .is_empty()
        && g.len() <= 6
}

/// Hospitals: a word such as `Hôpital`/`Clinique`/`CHU` and the capitalised
/// words after it; names known alone; `l'` before a consonant (`l'Necker`),
/// a name slotted into the sentence; English `... Hospital`.
fn hospitals(note: &Note<'_>, taken: &mut [bool], found: &mut Vec<Found>) {
    let n = note.tokens.len();
    let mut i = 0;
    while i < n {
        let t = &note.tokens[i];
        let mut span = None;
        let trigger = note.lists.hospital_words.contains(&t.lower)
            && t.capitalised()
            && !(matches!(t.lower.as_str(), "ch" | "had" | "gh") && t.case != Case::Upper);
        if trigger {
            let end = name_words(note, i + 1, 5);
            if end > i + 1 {
                span = Some((i, end));
            }
        } else if let Some(len) = known(note, i, &note.lists.hospitals, 3) {
            let upper_code = len == 1 && t.chars() == 3 && t.case == Case::Upper;
            if len > 1 || t.chars() > 3 || upper_code || prior_elision(note, i) {
                span = Some((i, i + len));
            }
        } else if note.lang == Lang::Fr && prior_elision(note, i) && t.alpha {
            let first = t.lower.chars().next().unwrap_or('a');
            let consonant = !"aeiouyhàâéèêëîïôûùœ".contains(first);
            let initial =
                t.chars() == 1 && t.case == Case::Title && note.text[t.end..].starts_with('.');
            if consonant || initial {
                let end = name_words(note, i + 1, 4).max(i + 1);
                span = Some((i, end));
            }
        }
        if note.lang == Lang::En
            && note.lists.hospital_suffixes.contains(&t.lower)
            && t.case == Case::Title
        {
            let mut j = i;
            while j > 0
                && note.joined(j - 1, false)
                && (note.tokens[j - 1].capitalised() || possessive(note, j - 1))
                && !note.words[j - 1].stop
                && i - j < 4
            {
                j -= 1;
            }
            // `St. Mary's Hospital`, `Framingham General Hospital`
            let cities = lexicon::cities(note.lang);
            let proper = |k: usize| {
                !note.words[k].common
                    || note.words[k].listed()
                    || possessive(note, k)
                    || cities.contains(&note.folded[k])
            };
            // Not an ordinary word capitalised because it starts the sentence (`Call St. Mary's Hospital`).
            if j < i && note.sentence_start(j) && !proper(j) {
                j += 1;
            }
            let named = (j..i).any(proper);
            if j < i && named {
                span = Some((j, i + 1));
            }
        }
        if span.is_none() && note.lang == Lang::En {
            span = place_before_service(note, i);
        }
        match span {
            Some((s, e)) => {
                for flag in taken.iter_mut().take(e).skip(s) {
                    *flag = true;
                }
                found.push(Found::new(
                    note.tokens[s].start,
                    note.tokens[e - 1].end,
                    Label::Hospital,
                ));
                // a place before its service ends before token `i`
                i = e.max(i + 1);
            }
            None => i += 1,
        }
    }
}

/// English: the place named before an emergency department or urgent care (`SILVER RIDGE
/// EMERGENCY DEPT`, `Maple Grove Emergency Department`, `Lakeside Urgent Care`), when token `i`
/// starts the service: two capitalised words or more, or one that is not an ordinary word.
fn place_before_service(note: &Note<'_>, i: usize) -> Option<(usize, usize)> {
    let t = &note.tokens[i];
    let next = note.tokens.get(i + 1)?;
    let service = match t.lower.as_str() {
        "emergency" => matches!(next.lower.as_str(), "dept" | "department" | "room" | "ward"),
        "urgent" => next.lower == "care",
        _ => false,
    };
    if !service || !t.capitalised() || !next.capitalised() || !note.joined(i, false) {
        return None;
    }
    let mut j = i;
    while j > 0
        && i - j < 3
        && note.joined(j - 1, false)
        && note.tokens[j - 1].alpha
        && note.tokens[j - 1].capitalised()
        && !note.words[j - 1].stop
        && !note.lists.titles.contains(&note.tokens[j - 1].lower)
    {
        j -= 1;
    }
    let proper = (j..i).any(|k| !note.words[k].common || note.words[k].listed());
    (i - j >= 2 || (j < i && proper)).then_some((j, i))
}

/// Token `i` is a capitalised word with an English possessive (`Mary's`).
fn possessive(note: &Note<'_>, i: usize) -> bool {
    let t = &note.tokens[i];
    let word = &note.text[t.start..t.end];
    let stem = word
        .strip_suffix("'s")
        .or_else(|| word.strip_suffix("’s"))
        .unwrap_or("");
    !stem.is_empty() && case_of(stem) == Case::Title
}

/// Token `i` follows `l'` (or `L'`).
fn prior_elision(note: &Note<'_>, i: usize) -> bool {
    i > 0 && note.tokens[i - 1].lower == "l" && matches!(note.gap(i - 1), "'" | "’")
}

/// Past the capitalised (or unknown) words from `from`, particles between
/// them, at most `max` words.
fn name_words(note: &Note<'_>, from: usize, max: usize) -> usize {
    let mut end = from;
    let mut j = from;
    while j < note.tokens.len() && j < from + max {
        if j > from
            && !note.joined(j - 1, false)
            && !matches!(note.gap(j - 1).trim(), "." | "'" | "’")
        {
            break;
        }
        let (t, w) = (&note.tokens[j], note.words[j]);
        if t.alpha && !w.taken && (t.capitalised() || !w.common) && !w.stop && !w.clinical {
            j += 1;
            end = j;
        } else if note.lists.particles.contains(&t.lower)
            || matches!(t.lower.as_str(), "l" | "d" | "saint" | "sainte")
        {
            j += 1;
        } else {
            break;
        }
    }
    end
}

/// Length in tokens of the longest entry of `entries` (folded, words joined
/// by spaces) starting at token `i`.
fn known(note: &Note<'_>, i: usize, entries: &HashSet<String>, max: usize) -> Option<usize> {
    if !note.tokens[i].alpha || note.words[i].taken {
        return None;
    }
    let mut key = String::new();
    let mut best = None;
    for len in 1..=max {
        let k = i + len - 1;
        if k >= note.tokens.len()
            || !note.tokens[k].alpha
            || (len > 1 && !note.joined(k - 1, false))
        {
            break;
        }
        if len > 1 {
            key.push(' ');
        }
        key.push_str(&note.folded[k]);
        if entries.contains(&key) {
            best = Some(len);
        }
    }
    best
}

/// Cities from the list (capitalised and not an ordinary word, or after
/// `à`/`de`/`in`), and capitalised unknown words after `lives in`-like cues.
fn places(note: &Note<'_>, taken: &mut [bool], found: &mut Vec<Found>) {
    let cities = lexicon::cities(note.lang);
    let n = note.tokens.len();
    let mut i = 0;
    while i < n {
        if taken[i] {
            i += 1;
            continue;
        }
        let t = &note.tokens[i];
        let w = note.words[i];
        let after_locative = i > 0 && note.lists.locatives.contains(&note.tokens[i - 1].lower);
        if let Some(len) = known(note, i, cities, 4) {
            let ok = if len > 1 {
                t.capitalised() || after_locative
            } else {
                (t.capitalised() && (!w.common || after_locative) && !w.clinical)
                    || (after_locative && !w.common && t.chars() >= 4)
            };
            if ok && !w.stop {
                for flag in taken.iter_mut().skip(i).take(len) {
                    *flag = true;
                }
                let end = note.tokens[i + len - 1].end;
                found.push(Found::new(t.start, end, Label::City));
                i += len;
                continue;
            }
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::super::token::tokenize;
    use super::*;

    fn names(text: &str, lang: Lang) -> Vec<String> {
        let tokens = tokenize(text);
        detect(text, &tokens, lang, &[])
            .0
            .into_iter()
            .filter(|f| f.label == Label::Name)
            .map(|f| text[f.start..f.end].to_string())
            .collect()
    }

    #[test]
    fn names_after_titles_and_roles_in_any_case() {
        assert_eq!(
            names("Mme krajewski patrice , 68 ans", Lang::Fr),
            ["krajewski", "patrice"]
        );
        assert_eq!(
            names("Le bénéficiaire lascaud , mère", Lang::Fr),
            ["lascaud"]
        );
        assert_eq!(
            names("Dupont Jean , 78 ans, connu pour HTA", Lang::Fr),
            ["Dupont", "Jean"]
        );
        assert_eq!(names("Mr. Villegas is seen today.", Lang::En), ["Villegas"]);
    }

    #[test]
    fn unknown_capitalised_words_inside_a_french_sentence() {
        assert_eq!(
            names("Antenne de la CPAM de Zorbalek", Lang::Fr),
            ["Zorbalek"]
        );
    }

    #[test]
    fn a_line_of_names_alone() {
        assert_eq!(names("bougeard", Lang::Fr), ["bougeard"]);
        assert_eq!(names("Aubin gaston", Lang::Fr), ["Aubin", "gaston"]);
    }

    #[test]
    fn ordinary_sentences_keep_their_words() {
        assert!(names("Patient is presenting with acute bronchitis.", Lang::En).is_empty());
        assert!(
            names(
                "Patiente fatiguée, le plan d'aide est fonctionnel",
                Lang::Fr
            )
            .is_empty()
        );
    }

    #[test]
    fn english_names_without_a_title() {
        assert_eq!(
            names("Social work (Chad Quitin, x5609) following", Lang::En),
            ["Chad", "Quitin"]
        );
        assert_eq!(
            names("Wade, Jillian is a 95 year old woman", Lang::En),
            ["Wade", "Jillian"]
        );
        assert_eq!(
            names(
                "summary to 572-4240 (attn. Zonusdal Wall, case manager)",
                Lang::En
            ),
            ["Zonusdal", "Wall"]
        );
        assert_eq!(
            names("Pt lives in Salem, ME. ID: Tmax 101.2", Lang::En),
            Vec::<String>::new()
        );
        // A role word before a full stop is no cue for the next sentence.
        assert_eq!(
            names("Seen by Daniel Tamfenhol, NP.  Daughter called.", Lang::En),
            ["Daniel", "Tamfenhol"]
        );
    }

    #[test]
    fn english_hospitals_with_a_saint_or_a_town() {
        let text =
            "from St. Tamara's Hospital, then Framingham General Hospital and Mccormick Rehab";
        let tokens = tokenize(text);
        let found: Vec<&str> = detect(text, &tokens, Lang::En, &[])
            .0
            .iter()
            .filter(|f| f.label == Label::Hospital)
            .map(|f| &text[f.start..f.end])
            .collect();
        assert_eq!(
            found,
            [
                "St. Tamara's Hospital",
                "Framingham General Hospital",
                "Mccormick Rehab"
            ]
        );
    }

    #[test]
    fn hospitals_named_alone_or_slotted_after_l() {
        let text = "orienté vers l'Necker puis admise à l'bct";
        let tokens = tokenize(text);
        let found: Vec<&str> = detect(text, &tokens, Lang::Fr, &[])
            .0
            .iter()
            .filter(|f| f.label == Label::Hospital)
            .map(|f| &text[f.start..f.end])
            .collect();
        assert_eq!(found, ["Necker", "bct"]);
    }
}
