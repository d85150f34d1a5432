//! UCI Heart Disease as FLamby's Fed-Heart-Disease benchmark: four centres, fixed train/test split.
//!
//! Parsing works on text the caller has read; this module does no I/O.

use std::collections::HashSet;

use crate::{Dataset, Error};

/// The four centres of UCI Heart Disease in FLamby order: 0 cleveland, 1 hungarian, 2 switzerland, 3 va.
pub const CENTRES: [&str; 4] = ["cleveland", "hungarian", "switzerland", "va"];

/// Feature columns produced by [`load_centre`], in order.
pub const FEATURE_NAMES: [&str; 13] = [
    "age",
    "sex",
    "trestbps",
    "chol",
    "fbs",
    "thalach",
    "exang",
    "oldpeak",
    "cp_2",
    "cp_3",
    "cp_4",
    "restecg_1",
    "restecg_2",
];

/// Names of the 14 columns of a UCI "processed" data file.
const COLUMNS: [&str; 14] = [
    "age", "sex", "cp", "trestbps", "chol", "fbs", "restecg", "thalach", "exang", "oldpeak",
    "slope", "ca", "thal", "num",
];

/// Columns of the split CSV, in order.
const SPLIT_HEADER: [&str; 4] = ["center", "center_name", "source_line", "split"];

const DATA: &str = "data file";
const SPLIT: &str = "split CSV";

/// One centre's rows, divided as FLamby divides them.
#[derive(Clone, Debug, PartialEq)]
pub struct CentreSplit {
    /// Training rows.
    pub train: Dataset,
    /// Test rows.
    pub test: Dataset,
}

/// Parse one UCI "processed.*.data" file (14 comma-separated columns, missing = "NaN" or "?") of
/// centre `centre` and keep exactly the rows that FLamby's split CSV lists for that centre
/// (columns center,center_name,source_line,split; source_line is the 1-based line in the data
/// file; split is train|test), in the CSV's order.
///
/// Features are [`FEATURE_NAMES`]: age, sex, trestbps, chol, fbs, thalach, exang, oldpeak,
/// cp==2, cp==3, cp==4, restecg==1, restecg==2 (slope, ca and thal are dropped). Label = num > 0.
/// Errors name the line of a listed row that is missing or lacks a value in a kept column.
pub fn load_centre(centre: usize, data_file: &str, split_csv: &str) -> Result<CentreSplit, Error> {
    let name = CENTRES.get(centre).ok_or_else(|| {
        Error::Dataset(format!(
            "centre {centre} does not exist (0..={})",
            CENTRES.len() - 1
        ))
    })?;
    let lines: Vec<&str> = data_file.lines().collect();
    let features = FEATURE_NAMES.len();
    let (mut train_x, mut train_y, mut test_x, mut test_y) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut seen = HashSet::new();
    for entry in split_rows(centre, name, split_csv)? {
        let SplitRow {
            csv_line,
            source_line,
            train,
        } = entry;
        if !seen.insert(source_line) {
            return Err(parse_error(
                SPLIT,
                csv_line,
                format!("data line {source_line} is listed twice"),
            ));
        }
        let text = source_line
            .checked_sub(1)
            .and_then(|i| lines.get(i))
            .ok_or_else(|| {
                parse_error(
                    DATA,
                    source_line,
                    format!("listed in the split but the file has {} lines", lines.len()),
                )
            })?;
        let (row, label) = parse_row(text, source_line)?;
        if train {
            train_x.extend_from_slice(&row);
            train_y.push(label);
        } else {
            test_x.extend_from_slice(&row);
            test_y.push(label);
        }
    }
    if seen.is_empty() {
        return Err(Error::Dataset(format!(
            "the split CSV lists no rows of centre {centre} ({name})"
        )));
    }
    Ok(CentreSplit {
        train: Dataset::new(features, train_x, train_y)?,
        test: Dataset::new(features, test_x, test_y)?,
    })
}

/// One row of the split CSV that belongs to the requested centre.
struct SplitRow {
    csv_line: usize,
    source_line: usize,
    train: bool,
}

/// The rows of the split CSV listed for `centre`, checking the header and every row.
fn split_rows(centre: usize, name: &str, csv: &str) -> Result<Vec<SplitRow>, Error> {
    let mut lines = csv
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty());
    let (header_line, header) = lines
        .next()
        .ok_or_else(|| parse_error(SPLIT, 1, "the file is empty".into()))?;
    let columns: Vec<&str> = header.split(',').map(str::trim).collect();
    if columns != SPLIT_HEADER {
        return Err(parse_error(
            SPLIT,
            header_line,
            format!("header must be {}, got {header:?}", SPLIT_HEADER.join(",")),
        ));
    }
    let mut rows = Vec::new();
    for (line, text) in lines {
        let fields: Vec<&str> = text.split(',').map(str::trim).collect();
        let [center, center_name, source_line, split] = fields[..] else {
            return Err(parse_error(
                SPLIT,
                line,
                format!("expected 4 columns, got {}", fields.len()),
            ));
        };
        let center: usize = center
            .parse()
            .map_err(|_| parse_error(SPLIT, line, format!("center {center:?} is not a number")))?;
        if center != centre {
            continue;
        }
        if center_name != name {
            return Err(parse_error(
                SPLIT,
                line,
                format!("centre {centre} is named {center_name:?}, expected {name:?}"),
            ));
        }
        let source_line = source_line.parse().map_err(|_| {
            parse_error(
                SPLIT,
                line,
                format!("source_line {source_line:?} is not a number"),
            )
        })?;
        let train = match split {
            "train" => true,
            "test" => false,
            other => {
                return Err(parse_error(
                    SPLIT,
                    line,
                    format!("split {other:?} is neither train nor test"),
                ));
            }
        };
        rows.push(SplitRow {
            csv_line: line,
            source_line,
            train,
        });
    }
    Ok(rows)
}

/// The 13 features and the label of data-file line `line`.
fn parse_row(text: &str, line: usize) -> Result<([f32; 13], f32), Error> {
    let fields: Vec<&str> = text.split(',').map(str::trim).collect();
    if fields.len() != COLUMNS.len() {
        return Err(parse_error(
            DATA,
            line,
            format!("expected {} columns, got {}", COLUMNS.len(), fields.len()),
        ));
    }
    let value = |column: usize| -> Result<f32, Error> {
        let raw = fields[column];
        let name = COLUMNS[column];
        if raw.is_empty() || raw == "?" || raw.eq_ignore_ascii_case("nan") {
            return Err(parse_error(DATA, line, format!("{name} is missing")));
        }
        raw.parse::<f32>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| parse_error(DATA, line, format!("{name} {raw:?} is not a number")))
    };
    let level = |column: usize, levels: std::ops::RangeInclusive<u8>| -> Result<u8, Error> {
        let v = value(column)?;
        levels.clone().find(|&l| f32::from(l) == v).ok_or_else(|| {
            parse_error(
                DATA,
                line,
                format!("{} is {v}, expected one of {levels:?}", COLUMNS[column]),
            )
        })
    };
    let one_hot = |level: u8, of: u8| if level == of { 1.0 } else { 0.0 };
    let cp = level(2, 1..=4)?;
    let restecg = level(6, 0..=2)?;
    let num = value(13)?;
    let row = [
        value(0)?,
        value(1)?,
        value(3)?,
        value(4)?,
        value(5)?,
        value(7)?,
        value(8)?,
        value(9)?,
        one_hot(cp, 2),
        one_hot(cp, 3),
        one_hot(cp, 4),
        one_hot(restecg, 1),
        one_hot(restecg, 2),
    ];
    Ok((row, if num > 0.0 { 1.0 } else { 0.0 }))
}

fn parse_error(what: &'static str, line: usize, message: String) -> Error {
    Error::Parse {
        what,
        line,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPLIT_CSV: &str = include_str!("../../../data/heart-disease/flamby-split.csv");
    const FILES: [&str; 4] = [
        include_str!("../../../data/heart-disease/processed.cleveland.data"),
        include_str!("../../../data/heart-disease/processed.hungarian.data"),
        include_str!("../../../data/heart-disease/processed.switzerland.data"),
        include_str!("../../../data/heart-disease/processed.va.data"),
    ];

    #[test]
    fn heart_split_sizes_match_flamby() {
        let sizes: Vec<(usize, usize)> = (0..4)
            .map(|c| {
                let s = load_centre(c, FILES[c], SPLIT_CSV).unwrap();
                assert_eq!(s.train.features, 13);
                (s.train.len(), s.test.len())
            })
            .collect();
        assert_eq!(sizes, vec![(199, 104), (172, 89), (30, 16), (85, 45)]);
    }

    #[test]
    fn first_cleveland_row_is_encoded_as_documented() {
        // Line 1: 63,1,cp=1,145,233,1,restecg=2,150,0,2.3,3,0,6,num=0
        let s = load_centre(0, FILES[0], SPLIT_CSV).unwrap();
        assert_eq!(
            &s.train.x[..13],
            &[
                63.0, 1.0, 145.0, 233.0, 1.0, 150.0, 0.0, 2.3, 0.0, 0.0, 0.0, 0.0, 1.0
            ]
        );
        assert_eq!(s.train.y[0], 0.0);
        // Line 2: cp=4, restecg=2, num=2.
        assert_eq!(&s.train.x[13 + 8..26], &[0.0, 0.0, 1.0, 0.0, 1.0]);
        assert_eq!(s.train.y[1], 1.0);
    }

    #[test]
    fn listed_row_with_missing_value_names_its_line() {
        let data = "63,1,1,145,233,1,2,150,0,2.3,3,0,6,0\n64,1,2,?,240,0,0,150,0,1,NaN,NaN,NaN,1\n";
        let csv = "center,center_name,source_line,split\n0,cleveland,1,train\n0,cleveland,2,test\n";
        let err = load_centre(0, data, csv).unwrap_err();
        assert!(matches!(err, Error::Parse { line: 2, .. }), "{err}");
        assert!(err.to_string().contains("trestbps"), "{err}");
    }

    #[test]
    fn listed_line_beyond_the_file_is_an_error() {
        let data = "63,1,1,145,233,1,2,150,0,2.3,3,0,6,0\n";
        let csv = "center,center_name,source_line,split\n1,hungarian,5,train\n";
        let err = load_centre(1, data, csv).unwrap_err();
        assert!(matches!(err, Error::Parse { line: 5, .. }), "{err}");
    }

    #[test]
    fn malformed_split_csv_is_rejected() {
        let data = "63,1,1,145,233,1,2,150,0,2.3,3,0,6,0\n";
        for csv in [
            "",
            "a,b,c,d\n0,cleveland,1,train\n",
            "center,center_name,source_line,split\n0,cleveland,1,validation\n",
            "center,center_name,source_line,split\n0,hungarian,1,train\n",
            "center,center_name,source_line,split\n0,cleveland,x,train\n",
            "center,center_name,source_line,split\n0,cleveland,1\n",
            "center,center_name,source_line,split\n0,cleveland,1,train\n0,cleveland,1,test\n",
            "center,center_name,source_line,split\n1,hungarian,1,train\n",
        ] {
            assert!(load_centre(0, data, csv).is_err(), "{csv:?}");
        }
        assert!(load_centre(4, data, SPLIT_CSV).is_err());
    }

    #[test]
    fn unexpected_category_level_is_rejected() {
        let data = "63,1,5,145,233,1,2,150,0,2.3,3,0,6,0\n";
        let csv = "center,center_name,source_line,split\n0,cleveland,1,train\n";
        let err = load_centre(0, data, csv).unwrap_err();
        assert!(err.to_string().contains("cp"), "{err}");
    }
}
