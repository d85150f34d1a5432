//! French PMSI diagnosis roles from the CIM-10 FR table a hospital supplies (the ATIH's
//! "CIM-10 FR à usage PMSI", not shipped: its licence is the ATIH's). Each code carries its
//! MCO/HAD type, which says in which roles of a stay summary it may be coded:
//!
//! | type | DP (principal) | DR (related) | DAS (associated) |
//! |---|---|---|---|
//! | 0 | yes | yes | yes |
//! | 1 | no | no | yes |
//! | 2 | no | no | yes |
//! | 3 | no | no | no |
//! | 4 | no | yes | yes |
//!
//! [`check_stay`] applies it to a stay's coded diagnoses: one DP, at most one DR, each code in
//! a role its type allows.

use std::collections::BTreeMap;

use crate::rules::TableError;

/// A diagnosis's role in a French stay summary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum DiagnosisRole {
    /// Diagnostic principal.
    Dp,
    /// Diagnostic relié.
    Dr,
    /// Diagnostic associé significatif.
    Das,
}

impl DiagnosisRole {
    /// The MCO/HAD types allowed in this role.
    fn allowed_types(self) -> &'static [u8] {
        match self {
            DiagnosisRole::Dp => &[0],
            DiagnosisRole::Dr => &[0, 4],
            DiagnosisRole::Das => &[0, 1, 2, 4],
        }
    }

    /// `DP`, `DR` or `DAS`.
    pub fn name(self) -> &'static str {
        match self {
            DiagnosisRole::Dp => "DP",
            DiagnosisRole::Dr => "DR",
            DiagnosisRole::Das => "DAS",
        }
    }
}

/// One edition of the CIM-10 FR: each code's MCO/HAD type and label.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cim10Fr {
    /// Edition, e.g. `2026`.
    pub edition: String,
    entries: BTreeMap<String, (u8, String)>,
}

/// Upper case, without dot or padding: `k35.8 ` → `K358`.
fn normalise(code: &str) -> String {
    code.trim()
        .chars()
        .filter(|&c| c != '.' && c != ' ')
        .flat_map(char::to_uppercase)
        .collect()
}

impl Cim10Fr {
    /// Reads the ATIH label file (`LIBCIM10MULTI.TXT` form, decoded to text by the caller): one
    /// code per line, fields separated by `|` — the code (without its dot, padded with spaces),
    /// its MCO/HAD type (0 to 4), then further types and the labels, the long label last.
    /// Blank lines are skipped.
    ///
    /// # Errors
    /// A line without a code, a type or a label, or with a type outside 0–4.
    pub fn from_atih(edition: &str, text: &str) -> Result<Self, TableError> {
        let mut entries = BTreeMap::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let error = |message: String| TableError {
                what: "CIM-10 FR",
                line: i + 1,
                message,
            };
            let fields: Vec<&str> = line.split('|').collect();
            if fields.len() < 3 {
                return Err(error(format!(
                    "expected code|type|...|label, got {} field(s)",
                    fields.len()
                )));
            }
            let code = normalise(fields[0]);
            if code.is_empty() || !code.chars().all(|c| c.is_ascii_alphanumeric() || c == '+') {
                return Err(error(format!("{:?} is not a code", fields[0])));
            }
            let kind: u8 = fields[1]
                .trim()
                .parse()
                .ok()
                .filter(|t| *t <= 4)
                .ok_or_else(|| error(format!("type {:?} is not 0 to 4", fields[1])))?;
            let label = fields[fields.len() - 1].trim().to_string();
            entries.insert(code, (kind, label));
        }
        Ok(Cim10Fr {
            edition: edition.to_string(),
            entries,
        })
    }

    /// Number of codes.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the table has no code.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Why `code` may not be coded in `role`, or `None` when it may.
    pub fn refusal(&self, code: &str, role: DiagnosisRole) -> Option<String> {
        let key = normalise(code);
        match self.entries.get(&key) {
            None => Some(format!("{code} is not in the CIM-10 FR {}", self.edition)),
            Some((kind, label)) if !role.allowed_types().contains(kind) => Some(format!(
                "{code} ({label}) is of type {kind}: not allowed as {}",
                role.name()
            )),
            Some(_) => None,
        }
    }
}

/// The problems of a stay's coded diagnoses under `table`: exactly one DP, at most one DR, and
/// each code in a role its type allows. Empty when the stay can be sent.
pub fn check_stay(table: &Cim10Fr, diagnoses: &[(String, DiagnosisRole)]) -> Vec<String> {
    let count = |role| diagnoses.iter().filter(|(_, r)| *r == role).count();
    let mut problems = Vec::new();
    match count(DiagnosisRole::Dp) {
        1 => {}
        n => problems.push(format!("a stay has one DP, this one has {n}")),
    }
    if count(DiagnosisRole::Dr) > 1 {
        problems.push("a stay has at most one DR".to_string());
    }
    problems.extend(
        diagnoses
            .iter()
            .filter_map(|(code, role)| table.refusal(code, *role)),
    );
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines in the ATIH layout with invented labels (the real table is not redistributable);
    /// one code of each type.
    const LINES: &str = "\
K358    |0|3|0|0|Appendicite aiguë|Appendicite aiguë, autre et sans précision\n\
Z515    |1|0|1|0|Soins palliatifs|Soins palliatifs\n\
\n\
R69     |2|2|2|2|Cause inconnue|Causes inconnues et non précisées de morbidité\n\
K35     |3|3|3|3|Appendicite aiguë|Appendicite aiguë (catégorie)\n\
C509    |4|0|0|0|Tumeur du sein|Tumeur maligne du sein, sans précision\n";

    fn table() -> Cim10Fr {
        Cim10Fr::from_atih("2026", LINES).unwrap()
    }

    #[test]
    fn each_type_allows_its_roles() {
        let t = table();
        assert_eq!(t.len(), 5);
        let allowed = |code: &str, role| t.refusal(code, role).is_none();
        for role in [DiagnosisRole::Dp, DiagnosisRole::Dr, DiagnosisRole::Das] {
            assert!(allowed("K35.8", role));
            assert!(!allowed("K35", role));
        }
        assert!(!allowed("Z515", DiagnosisRole::Dp) && !allowed("Z515", DiagnosisRole::Dr));
        assert!(allowed("Z51.5", DiagnosisRole::Das));
        assert!(!allowed("R69", DiagnosisRole::Dp) && allowed("r69", DiagnosisRole::Das));
        assert!(!allowed("C509", DiagnosisRole::Dp));
        assert!(allowed("C509", DiagnosisRole::Dr) && allowed("C509", DiagnosisRole::Das));
        let unknown = t.refusal("A000", DiagnosisRole::Das).unwrap();
        assert!(unknown.contains("not in the CIM-10 FR 2026"), "{unknown}");
    }

    #[test]
    fn a_stay_has_one_dp_at_most_one_dr_and_codes_in_allowed_roles() {
        let t = table();
        let stay = |items: &[(&str, DiagnosisRole)]| {
            let items: Vec<(String, DiagnosisRole)> =
                items.iter().map(|(c, r)| (c.to_string(), *r)).collect();
            check_stay(&t, &items)
        };
        assert!(stay(&[("Z515", DiagnosisRole::Das), ("K358", DiagnosisRole::Dp)]).is_empty());
        let problems = stay(&[("Z515", DiagnosisRole::Dp), ("C509", DiagnosisRole::Dr)]);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("not allowed as DP"), "{problems:?}");
        let problems = stay(&[("R69", DiagnosisRole::Das)]);
        assert_eq!(problems, ["a stay has one DP, this one has 0"]);
        let problems = stay(&[
            ("K358", DiagnosisRole::Dp),
            ("C509", DiagnosisRole::Dr),
            ("K358", DiagnosisRole::Dr),
        ]);
        assert!(problems.iter().any(|p| p.contains("at most one DR")));
    }

    #[test]
    fn malformed_lines_are_refused_with_their_number() {
        let e = Cim10Fr::from_atih("2026", "K358|0|x\nZ515|7|Soins palliatifs\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("not 0 to 4"), "{e}");
        let e = Cim10Fr::from_atih("2026", "K358 only\n").unwrap_err();
        assert!(e.message.contains("field"), "{e}");
    }
}
