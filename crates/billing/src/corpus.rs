//! Coded clinical cases in the CodiEsp layout: one text file per case, and tab-separated code
//! lists (`*D.tsv` diagnoses, `*P.tsv` procedures, `*X.tsv` codes with their evidence spans).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::Error;

/// Which code system a code belongs to.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum CodeSystem {
    /// Diagnoses: ICD-10-CM (CIE-10-ES Diagnósticos).
    Diagnosis,
    /// Procedures: ICD-10-PCS (CIE-10-ES Procedimientos).
    Procedure,
}

impl CodeSystem {
    /// Both systems, diagnoses first.
    pub const ALL: [CodeSystem; 2] = [CodeSystem::Diagnosis, CodeSystem::Procedure];

    /// The letter that ends the system's CodiEsp file names (`D` or `P`).
    pub fn letter(self) -> char {
        match self {
            Self::Diagnosis => 'D',
            Self::Procedure => 'P',
        }
    }
}

/// Language of the case texts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lang {
    /// Spanish (CodiEsp's originals, `text_files/`).
    Es,
    /// English (CodiEsp's machine translations, `text_files_en/`).
    En,
}

impl Lang {
    /// The CodiEsp folder holding a split's texts in this language.
    pub fn text_dir(self) -> &'static str {
        match self {
            Self::Es => "text_files",
            Self::En => "text_files_en",
        }
    }
}

/// A character range `[start, end)` of a case text, counted in Unicode scalar values (as
/// CodiEsp's offsets are).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
pub struct Span {
    /// First character.
    pub start: usize,
    /// One past the last character.
    pub end: usize,
}

impl Span {
    /// Whether the two ranges share at least one character.
    pub fn overlaps(&self, other: &Span) -> bool {
        self.start < other.end && other.start < self.end
    }
}

/// One clinical case: its identifier (the file name without `.txt`) and its text.
#[derive(Clone, Debug, PartialEq)]
pub struct Case {
    /// Case identifier.
    pub id: String,
    /// The document, as written.
    pub text: String,
}

/// A code assigned to a case, with the text spans that justify it (a `*X.tsv` row).
#[derive(Clone, Debug, PartialEq)]
pub struct Evidence {
    /// Code system.
    pub system: CodeSystem,
    /// The code, upper case.
    pub code: String,
    /// Its reference spans (several for a discontinuous mention).
    pub spans: Vec<Span>,
}

/// Codes per case, upper case, in file order without repeats.
pub type CodeLists = BTreeMap<String, Vec<String>>;

/// Reads every `*.txt` file of `dir` as a case, sorted by identifier.
pub fn read_cases(dir: &Path) -> Result<Vec<Case>, Error> {
    let mut cases = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(Error::io(dir))? {
        let path = entry.map_err(Error::io(dir))?.path();
        if path.extension().is_some_and(|e| e == "txt") {
            let id = path
                .file_stem()
                .and_then(|s| s.to_str())
                .ok_or_else(|| Error::Model(format!("{} is not a UTF-8 name", path.display())))?
                .to_string();
            let text = std::fs::read_to_string(&path).map_err(Error::io(&path))?;
            cases.push(Case { id, text });
        }
    }
    cases.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(cases)
}

/// Reads a `case<TAB>code` file (`*D.tsv`, `*P.tsv`).
pub fn read_codes(path: &Path) -> Result<CodeLists, Error> {
    let mut lists = CodeLists::new();
    for (line, fields) in tsv_rows(path)? {
        let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
        let [case, code, ..] = fields.as_slice() else {
            return Err(parse_error(path, line, "expected case<TAB>code"));
        };
        let codes = lists.entry(case.to_string()).or_default();
        let code = code.trim().to_uppercase();
        if !code.is_empty() && !codes.contains(&code) {
            codes.push(code);
        }
    }
    Ok(lists)
}

/// Reads a `case<TAB>DIAGNOSTICO|PROCEDIMIENTO<TAB>code<TAB>text<TAB>start end[;start end]` file.
pub fn read_evidence(path: &Path) -> Result<BTreeMap<String, Vec<Evidence>>, Error> {
    let mut all: BTreeMap<String, Vec<Evidence>> = BTreeMap::new();
    for (line, fields) in tsv_rows(path)? {
        let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
        let [case, kind, code, _text, spans] = fields.as_slice() else {
            return Err(parse_error(path, line, "expected 5 tab-separated fields"));
        };
        let system = match *kind {
            "DIAGNOSTICO" => CodeSystem::Diagnosis,
            "PROCEDIMIENTO" => CodeSystem::Procedure,
            other => return Err(parse_error(path, line, &format!("unknown kind {other:?}"))),
        };
        let spans = spans
            .split(';')
            .map(|pair| {
                let mut ends = pair.split_whitespace().map(str::parse::<usize>);
                match (ends.next(), ends.next(), ends.next()) {
                    (Some(Ok(start)), Some(Ok(end)), None) if start <= end => {
                        Ok(Span { start, end })
                    }
                    _ => Err(parse_error(path, line, &format!("bad span {pair:?}"))),
                }
            })
            .collect::<Result<_, _>>()?;
        all.entry(case.to_string()).or_default().push(Evidence {
            system,
            code: code.trim().to_uppercase(),
            spans,
        });
    }
    Ok(all)
}

/// A CodiEsp split folder: its cases in one language and whatever gold files it has.
#[derive(Clone, Debug)]
pub struct Split {
    /// The cases, sorted by identifier.
    pub cases: Vec<Case>,
    /// Gold diagnosis codes (empty without a `*D.tsv`).
    pub diagnoses: CodeLists,
    /// Gold procedure codes (empty without a `*P.tsv`).
    pub procedures: CodeLists,
    /// Gold evidence (empty without a `*X.tsv`).
    pub evidence: BTreeMap<String, Vec<Evidence>>,
}

impl Split {
    /// Loads `dir` (e.g. `codiesp/train`): texts from `dir/text_files` (Spanish) or
    /// `dir/text_files_en` (English), gold from the files whose names end in `D.tsv`, `P.tsv`
    /// and `X.tsv`.
    pub fn load(dir: &Path, lang: Lang) -> Result<Self, Error> {
        let cases = read_cases(&dir.join(lang.text_dir()))?;
        let gold = |suffix: &str| -> Result<Option<PathBuf>, Error> {
            for entry in std::fs::read_dir(dir).map_err(Error::io(dir))? {
                let path = entry.map_err(Error::io(dir))?.path();
                if path
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.ends_with(suffix))
                {
                    return Ok(Some(path));
                }
            }
            Ok(None)
        };
        let codes = |suffix| -> Result<CodeLists, Error> {
            gold(suffix)?.map_or(Ok(CodeLists::new()), |p| read_codes(&p))
        };
        Ok(Self {
            cases,
            diagnoses: codes("D.tsv")?,
            procedures: codes("P.tsv")?,
            evidence: gold("X.tsv")?.map_or(Ok(BTreeMap::new()), |p| read_evidence(&p))?,
        })
    }

    /// Hospital `h`'s share when the cases are dealt round-robin to `hospitals` hospitals:
    /// every case whose position (sorted by id) is `h` modulo `hospitals`, with the same gold.
    pub fn share(&self, h: usize, hospitals: usize) -> Split {
        Split {
            cases: self
                .cases
                .iter()
                .skip(h)
                .step_by(hospitals.max(1))
                .cloned()
                .collect(),
            ..self.clone()
        }
    }

    /// The gold codes of one system.
    pub fn codes(&self, system: CodeSystem) -> &CodeLists {
        match system {
            CodeSystem::Diagnosis => &self.diagnoses,
            CodeSystem::Procedure => &self.procedures,
        }
    }
}

/// The non-empty lines of a tab-separated file, with their 1-based numbers.
fn tsv_rows(path: &Path) -> Result<Vec<(usize, Vec<String>)>, Error> {
    let text = std::fs::read_to_string(path).map_err(Error::io(path))?;
    Ok(text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| (i + 1, l.split('\t').map(str::to_string).collect()))
        .collect())
}

fn parse_error(path: &Path, line: usize, message: &str) -> Error {
    Error::Parse {
        path: path.to_path_buf(),
        line,
        message: message.to_string(),
    }
}
