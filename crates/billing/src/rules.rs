//! Code rules from the tables a hospital supplies: which codes exist in a code system's edition,
//! which are billable leaves and which only headers, and which may not be the principal
//! diagnosis. Readers for the public CMS formats: the ICD-10-CM tabular XML and the
//! ICD-10-CM / ICD-10-PCS order files.

use std::collections::BTreeMap;

use crate::corpus::CodeSystem;

/// What a table knows about one code.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    /// A leaf that can go on a claim as it is.
    billable: bool,
    /// Description.
    description: String,
    /// 7th characters the code takes (ICD-10-CM `sevenChrDef`); such a code is billable only
    /// with one of them.
    extensions: Vec<char>,
    /// The tabular says "code first" the underlying condition: never a principal diagnosis.
    code_first: bool,
}

/// A code system's table for one edition (e.g. ICD-10-CM 2026).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeTable {
    /// The code system.
    pub system: CodeSystem,
    /// Edition, e.g. `2026`.
    pub edition: String,
    entries: BTreeMap<String, Entry>,
}

/// What the rules say about a code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A billable code; `principal_allowed` is false for codes the tabular says to sequence
    /// after their underlying condition.
    Billable {
        /// Description from the table.
        description: String,
        /// Whether it may be the principal diagnosis.
        principal_allowed: bool,
    },
    /// A category or subcategory with more specific codes below it: not billable.
    Header,
    /// A code that needs a 7th character it lacks (or has one the category does not define).
    MissingExtension,
    /// Not in this edition's table.
    Unknown,
}

/// A table that could not be read.
#[derive(Debug, thiserror::Error)]
#[error("{what} line {line}: {message}")]
pub struct TableError {
    /// Which reader.
    pub what: &'static str,
    /// 1-based line.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

/// Upper case without the dot: `r50.9` → `R509`.
fn normalise(code: &str) -> String {
    code.trim()
        .chars()
        .filter(|&c| c != '.')
        .flat_map(char::to_uppercase)
        .collect()
}

impl CodeTable {
    /// Reads a CMS order file (`icd10cm_order_YYYY.txt`, `icd10pcs_order_YYYY.txt`): fixed
    /// columns — order number (1–5), code (7–13), 1 for a valid code or 0 for a header (15),
    /// short description (17–76), long description (78 on).
    pub fn from_order_file(
        system: CodeSystem,
        edition: &str,
        text: &str,
    ) -> Result<Self, TableError> {
        let mut entries = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let error = |message: &str| TableError {
                what: "order file",
                line: i + 1,
                message: message.into(),
            };
            let chars: Vec<char> = line.chars().collect();
            let column = |from: usize, to: usize| -> String {
                chars[from.min(chars.len())..to.min(chars.len())]
                    .iter()
                    .collect()
            };
            let code = normalise(&column(6, 13));
            let billable = match column(14, 15).as_str() {
                "1" => true,
                "0" => false,
                other => return Err(error(&format!("flag {other:?} is neither 0 nor 1"))),
            };
            if code.is_empty() || !code.chars().all(|c| c.is_ascii_alphanumeric()) {
                return Err(error(&format!("bad code {code:?}")));
            }
            let long = column(77, chars.len());
            let description = if long.trim().is_empty() {
                column(16, 76)
            } else {
                long
            };
            entries.insert(
                code,
                Entry {
                    billable,
                    description: description.trim().to_string(),
                    extensions: Vec::new(),
                    code_first: false,
                },
            );
        }
        Ok(Self {
            system,
            edition: edition.into(),
            entries,
        })
    }

    /// Reads the ICD-10-CM tabular XML (`icd10cm_tabular_YYYY.xml`): every `diag` element is a
    /// code, billable when it has no `diag` below it; `sevenChrDef` extensions apply to the
    /// leaves below the element that defines them; a `codeFirst` note marks a code that cannot
    /// be principal.
    pub fn from_tabular_xml(edition: &str, xml: &str) -> Result<Self, TableError> {
        struct Open {
            name: Option<String>,
            description: String,
            extensions: Vec<char>,
            code_first: bool,
            has_child: bool,
        }
        let mut entries = BTreeMap::new();
        let mut open: Vec<Open> = Vec::new();
        let mut elements: Vec<String> = Vec::new();
        let mut rest = xml;
        let mut line = 1;
        while let Some(start) = rest.find('<') {
            let text = &rest[..start];
            line += text.matches('\n').count();
            let end = rest[start..].find('>').ok_or_else(|| TableError {
                what: "tabular XML",
                line,
                message: "unterminated tag".into(),
            })? + start;
            let tag = &rest[start + 1..end];
            rest = &rest[end + 1..];
            if tag.starts_with('?') || tag.starts_with('!') || tag.ends_with('/') {
                continue;
            }
            if let Some(name) = tag.strip_prefix('/') {
                let name = name.trim();
                // The text just before a closing tag is the element's content.
                let content = unescape(text.trim());
                let parent = elements.len().checked_sub(2).map(|i| elements[i].as_str());
                match (name, parent) {
                    ("name", Some("diag")) => {
                        if let Some(diag) = open.last_mut() {
                            diag.name = Some(normalise(&content));
                        }
                    }
                    ("desc", Some("diag")) => {
                        if let Some(diag) = open.last_mut() {
                            diag.description = content;
                        }
                    }
                    ("extension", Some("sevenChrDef")) => {
                        let char = elements.last().and_then(|open_tag| {
                            open_tag
                                .split("char=\"")
                                .nth(1)
                                .and_then(|v| v.chars().next())
                        });
                        if let (Some(c), Some(diag)) = (char, open.last_mut()) {
                            diag.extensions.push(c.to_ascii_uppercase());
                        }
                    }
                    ("diag", _) => {
                        let diag = open.pop().ok_or_else(|| TableError {
                            what: "tabular XML",
                            line,
                            message: "</diag> without <diag>".into(),
                        })?;
                        let code = diag.name.ok_or_else(|| TableError {
                            what: "tabular XML",
                            line,
                            message: "a diag without a name".into(),
                        })?;
                        // Extensions defined higher up apply to this code too.
                        let extensions = if diag.extensions.is_empty() {
                            open.iter()
                                .rev()
                                .find(|d| !d.extensions.is_empty())
                                .map(|d| d.extensions.clone())
                                .unwrap_or_default()
                        } else {
                            diag.extensions
                        };
                        entries.insert(
                            code,
                            Entry {
                                billable: !diag.has_child,
                                description: diag.description,
                                extensions,
                                code_first: diag.code_first,
                            },
                        );
                    }
                    _ => {}
                }
                if elements.last().map(|e| element_name(e)) == Some(name) {
                    elements.pop();
                }
            } else {
                match element_name(tag) {
                    "diag" => {
                        if let Some(parent) = open.last_mut() {
                            parent.has_child = true;
                        }
                        open.push(Open {
                            name: None,
                            description: String::new(),
                            extensions: Vec::new(),
                            code_first: false,
                            has_child: false,
                        });
                    }
                    "codeFirst" => {
                        if let Some(diag) = open.last_mut() {
                            diag.code_first = true;
                        }
                    }
                    _ => {}
                }
                elements.push(tag.to_string());
            }
        }
        if !open.is_empty() {
            return Err(TableError {
                what: "tabular XML",
                line,
                message: "unclosed diag".into(),
            });
        }
        Ok(Self {
            system: CodeSystem::Diagnosis,
            edition: edition.into(),
            entries,
        })
    }

    /// Number of codes (headers included).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the table has no code.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// What the table says about `code` (with or without its dot, any case). A 7-character
    /// ICD-10-CM code is looked up as its stem (placeholder `X`s dropped) plus a 7th character.
    pub fn check(&self, code: &str) -> Verdict {
        let code = normalise(code);
        let billable = |entry: &Entry| Verdict::Billable {
            description: entry.description.clone(),
            principal_allowed: !entry.code_first,
        };
        if let Some(entry) = self.entries.get(&code) {
            return match (entry.billable, entry.extensions.is_empty()) {
                (false, _) => Verdict::Header,
                (true, true) => billable(entry),
                (true, false) => Verdict::MissingExtension,
            };
        }
        if self.system == CodeSystem::Diagnosis && code.len() == 7 && code.is_ascii() {
            let seventh = char::from(code.as_bytes()[6]);
            let stem = code[..6].trim_end_matches('X');
            if let Some(entry) = self.entries.get(stem)
                && entry.billable
                && !entry.extensions.is_empty()
            {
                return if entry.extensions.contains(&seventh) {
                    billable(entry)
                } else {
                    Verdict::MissingExtension
                };
            }
        }
        Verdict::Unknown
    }
}

/// The element name of an opening tag's text (`extension char="A"` → `extension`).
fn element_name(tag: &str) -> &str {
    tag.split_whitespace().next().unwrap_or("")
}

/// Replaces XML's five predefined entities.
fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An excerpt of the CMS ICD-10-CM 2026 tabular (public domain), see tests/data/README.md.
    const TABULAR: &str = include_str!("../tests/data/icd10cm_tabular_excerpt.xml");
    /// Rows in the CMS order-file format, see tests/data/README.md.
    const PCS_ORDER: &str = include_str!("../tests/data/icd10pcs_order_excerpt.txt");

    #[test]
    fn tabular_leaves_are_billable_and_categories_headers() {
        let table = CodeTable::from_tabular_xml("2026", TABULAR).unwrap();
        assert_eq!(table.len(), 14);
        assert!(matches!(
            table.check("r50.9"),
            Verdict::Billable { principal_allowed: true, ref description } if description == "Fever, unspecified"
        ));
        assert_eq!(table.check("R50"), Verdict::Header);
        assert_eq!(table.check("R50.8"), Verdict::Header);
        assert_eq!(table.check("R50.7"), Verdict::Unknown);
        // "Code first" the underlying condition: never principal.
        assert!(matches!(
            table.check("R50.81"),
            Verdict::Billable {
                principal_allowed: false,
                ..
            }
        ));
    }

    #[test]
    fn seventh_characters_come_from_the_category() {
        let table = CodeTable::from_tabular_xml("2026", TABULAR).unwrap();
        assert_eq!(table.check("S72.001"), Verdict::MissingExtension);
        assert!(matches!(table.check("S72.001A"), Verdict::Billable { .. }));
        assert!(matches!(table.check("s72001a"), Verdict::Billable { .. }));
        assert_eq!(table.check("S72.001Z"), Verdict::MissingExtension);
        assert_eq!(table.check("S72.0"), Verdict::Header);
    }

    #[test]
    fn order_files_flag_headers_and_valid_codes() {
        let table = CodeTable::from_order_file(CodeSystem::Procedure, "2026", PCS_ORDER).unwrap();
        assert!(matches!(
            table.check("bw03zzz"),
            Verdict::Billable { ref description, .. } if description == "Plain Radiography of Chest"
        ));
        assert_eq!(table.check("BW0"), Verdict::Header);
        assert_eq!(table.check("BW03ZZ"), Verdict::Unknown);
        let bad = "00001 BW0     2 Imaging, Anatomical Regions, Plain Radiography";
        assert!(CodeTable::from_order_file(CodeSystem::Procedure, "2026", bad).is_err());
    }

    #[test]
    fn broken_xml_is_refused() {
        assert!(CodeTable::from_tabular_xml("2026", "<diag><name>A00</name>").is_err());
        assert!(CodeTable::from_tabular_xml("2026", "<diag><desc>x</desc></diag>").is_err());
        assert!(CodeTable::from_tabular_xml("2026", "<diag><name>A00").is_err());
    }
}
