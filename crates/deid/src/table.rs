//! PS3.15 Table E.1-1, loaded from the embedded `data/annex-e.csv` (every
//! row of the standard's table, edition 2024b).

use std::collections::HashMap;
use std::sync::OnceLock;

use dicom_core::Tag;

use crate::options::ProfileOption;

/// The Annex E table as shipped with this crate.
const ANNEX_E_CSV: &str = include_str!("../data/annex-e.csv");

/// An action code of Table E.1-1a.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// `D`: replace with a non-zero-length dummy value.
    Dummy,
    /// `Z`: replace with a zero-length value.
    Zero,
    /// `X`: remove.
    Remove,
    /// `K`: keep (sequences: keep and clean their items).
    Keep,
    /// `C`: clean (replace with values of similar meaning that identify nobody).
    Clean,
    /// `U`: replace the UID consistently.
    Uid,
    /// `Z/D`.
    ZeroOrDummy,
    /// `X/Z`.
    RemoveOrZero,
    /// `X/D`.
    RemoveOrDummy,
    /// `X/Z/D`.
    RemoveOrZeroOrDummy,
    /// `X/Z/U*`: sequences of references whose UIDs are replaced.
    RemoveOrZeroOrUids,
}

impl Action {
    fn parse(code: &str) -> Option<Self> {
        Some(match code {
            "D" => Self::Dummy,
            "Z" => Self::Zero,
            "X" => Self::Remove,
            "K" => Self::Keep,
            "C" => Self::Clean,
            "U" => Self::Uid,
            "Z/D" => Self::ZeroOrDummy,
            "X/Z" => Self::RemoveOrZero,
            "X/D" => Self::RemoveOrDummy,
            "X/Z/D" => Self::RemoveOrZeroOrDummy,
            "X/Z/U*" => Self::RemoveOrZeroOrUids,
            _ => return None,
        })
    }
}

/// Which attributes a row of the table covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagPattern {
    /// One attribute.
    Exact(Tag),
    /// `(50xx,xxxx)`: curve data (retired groups 5000-501E).
    Curve,
    /// `(60xx,3000)`: overlay data.
    OverlayData,
    /// `(60xx,4000)`: overlay comments.
    OverlayComments,
    /// `(gggg,eeee) where gggg is odd`: private attributes.
    Private,
}

/// One row of Table E.1-1.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The attribute(s) this row covers.
    pub pattern: TagPattern,
    /// Attribute name as in the standard.
    pub name: String,
    /// PS3.6 keyword (empty for the group patterns).
    pub keyword: String,
    /// Value representation as listed (e.g. `OB or OW`).
    pub vr: String,
    /// Action of the Basic Profile.
    pub basic: Action,
    /// Action of each option column, in [`ProfileOption::TABLE_COLUMNS`] order.
    option_actions: [Option<Action>; ProfileOption::TABLE_COLUMNS.len()],
}

impl Rule {
    /// The action an option's column gives this attribute (`K` or `C`), if any.
    pub fn option_action(&self, option: ProfileOption) -> Option<Action> {
        let column = ProfileOption::TABLE_COLUMNS
            .iter()
            .position(|o| *o == option)?;
        self.option_actions[column]
    }
}

/// The whole table, indexed by tag.
#[derive(Debug)]
pub struct ProfileTable {
    rules: Vec<Rule>,
    exact: HashMap<Tag, usize>,
    curve: usize,
    overlay_data: usize,
    overlay_comments: usize,
    private: usize,
}

impl ProfileTable {
    /// The table embedded in this crate (parsed once).
    pub fn standard() -> &'static ProfileTable {
        static TABLE: OnceLock<ProfileTable> = OnceLock::new();
        TABLE.get_or_init(|| {
            Self::parse(ANNEX_E_CSV).expect("the embedded Annex E table is well-formed (tested)")
        })
    }

    /// Parse a table in the `annex-e.csv` format.
    pub fn parse(csv: &str) -> Result<ProfileTable, String> {
        let mut lines = csv.lines().filter(|l| !l.trim().is_empty());
        let header = split_csv_row(lines.next().ok_or("empty table")?);
        let column = |name: &str| {
            header
                .iter()
                .position(|h| h == name)
                .ok_or_else(|| format!("column {name} missing"))
        };
        let (tag_col, name_col, keyword_col, vr_col, basic_col) = (
            column("tag")?,
            column("name")?,
            column("keyword")?,
            column("vr")?,
            column("basic_profile")?,
        );
        let option_cols = ProfileOption::TABLE_COLUMNS
            .iter()
            .map(|o| column(o.table_column().unwrap_or_default()))
            .collect::<Result<Vec<_>, _>>()?;
        let mut rules = Vec::new();
        for (n, line) in lines.enumerate() {
            let fields = split_csv_row(line);
            let field = |i: usize| fields.get(i).map(String::as_str).unwrap_or("");
            let pattern = parse_pattern(field(tag_col))
                .ok_or_else(|| format!("row {}: bad tag {:?}", n + 2, field(tag_col)))?;
            let basic = Action::parse(field(basic_col))
                .ok_or_else(|| format!("row {}: bad action {:?}", n + 2, field(basic_col)))?;
            let mut option_actions = [None; ProfileOption::TABLE_COLUMNS.len()];
            for (slot, &col) in option_actions.iter_mut().zip(&option_cols) {
                let code = field(col);
                if !code.is_empty() {
                    *slot = Some(
                        Action::parse(code)
                            .ok_or_else(|| format!("row {}: bad option {code:?}", n + 2))?,
                    );
                }
            }
            rules.push(Rule {
                pattern,
                name: field(name_col).to_string(),
                keyword: field(keyword_col).to_string(),
                vr: field(vr_col).to_string(),
                basic,
                option_actions,
            });
        }
        let find = |p: TagPattern| {
            rules
                .iter()
                .position(|r| r.pattern == p)
                .ok_or_else(|| format!("row for {p:?} missing"))
        };
        let (curve, overlay_data, overlay_comments, private) = (
            find(TagPattern::Curve)?,
            find(TagPattern::OverlayData)?,
            find(TagPattern::OverlayComments)?,
            find(TagPattern::Private)?,
        );
        let exact = rules
            .iter()
            .enumerate()
            .filter_map(|(i, r)| match r.pattern {
                TagPattern::Exact(tag) => Some((tag, i)),
                _ => None,
            })
            .collect();
        Ok(ProfileTable {
            rules,
            exact,
            curve,
            overlay_data,
            overlay_comments,
            private,
        })
    }

    /// All rows, in the table's order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The row that covers `tag`, if any.
    pub fn rule(&self, tag: Tag) -> Option<&Rule> {
        let index = if let Some(&i) = self.exact.get(&tag) {
            i
        } else if tag.group() % 2 == 1 {
            self.private
        } else if is_repeating_group(tag.group(), 0x5000) {
            self.curve
        } else if is_repeating_group(tag.group(), 0x6000) && tag.element() == 0x3000 {
            self.overlay_data
        } else if is_repeating_group(tag.group(), 0x6000) && tag.element() == 0x4000 {
            self.overlay_comments
        } else {
            return None;
        };
        self.rules.get(index)
    }
}

/// Whether `group` is one of the even groups `base..=base+0x1E` (curves, overlays).
pub fn is_repeating_group(group: u16, base: u16) -> bool {
    (base..=base + 0x1E).contains(&group) && group.is_multiple_of(2)
}

fn parse_pattern(text: &str) -> Option<TagPattern> {
    match text {
        "(50xx,xxxx)" => return Some(TagPattern::Curve),
        "(60xx,3000)" => return Some(TagPattern::OverlayData),
        "(60xx,4000)" => return Some(TagPattern::OverlayComments),
        t if t.starts_with("(gggg,eeee)") => return Some(TagPattern::Private),
        _ => {}
    }
    let inner = text.strip_prefix('(')?.strip_suffix(')')?;
    let (group, element) = inner.split_once(',')?;
    Some(TagPattern::Exact(Tag(
        u16::from_str_radix(group, 16).ok()?,
        u16::from_str_radix(element, 16).ok()?,
    )))
}

/// Split one CSV row (RFC 4180 quoting, no embedded line breaks).
fn split_csv_row(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut field)),
            _ => field.push(c),
        }
    }
    fields.push(field);
    fields
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_dictionary_std::tags;

    #[test]
    fn embedded_table_has_every_row_of_the_standard() {
        let table = ProfileTable::standard();
        assert_eq!(table.rules().len(), 621);
        let count = |a: Action| table.rules().iter().filter(|r| r.basic == a).count();
        assert_eq!(count(Action::Remove), 384);
        assert_eq!(count(Action::Dummy), 92);
        assert_eq!(count(Action::Uid), 54);
        assert_eq!(count(Action::Zero), 42);
        assert_eq!(count(Action::RemoveOrZeroOrUids), 2);
    }

    #[test]
    fn lookup_finds_exact_and_pattern_rows() {
        let table = ProfileTable::standard();
        let name = table.rule(tags::PATIENT_NAME).map(|r| r.basic);
        assert_eq!(name, Some(Action::Zero));
        let study = table.rule(tags::STUDY_INSTANCE_UID).map(|r| r.basic);
        assert_eq!(study, Some(Action::Uid));
        let private = table.rule(Tag(0x0009, 0x1001)).map(|r| r.pattern);
        assert_eq!(private, Some(TagPattern::Private));
        let overlay = table.rule(Tag(0x6002, 0x3000)).map(|r| r.pattern);
        assert_eq!(overlay, Some(TagPattern::OverlayData));
        let curve = table.rule(Tag(0x5010, 0x0005)).map(|r| r.pattern);
        assert_eq!(curve, Some(TagPattern::Curve));
        assert!(table.rule(tags::ROWS).is_none());
    }

    #[test]
    fn option_columns_override_the_basic_action() {
        let table = ProfileTable::standard();
        let rule = table.rule(tags::ACQUISITION_DATE).expect("row");
        assert_eq!(
            rule.option_action(ProfileOption::RetainLongitudinalModifiedDates),
            Some(Action::Clean)
        );
        assert_eq!(rule.option_action(ProfileOption::CleanDescriptors), None);
    }

    #[test]
    fn csv_rows_with_quotes_split_into_fields() {
        let row = r#""(0008,0050)","Name, with comma",Kw,"say ""hi""""#;
        assert_eq!(
            split_csv_row(row),
            ["(0008,0050)", "Name, with comma", "Kw", "say \"hi\""]
        );
    }
}
