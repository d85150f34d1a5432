//! QIDO-RS search (PS3.18 10.6) over the study index: studies, series and
//! instances, matched on the standard attributes (UID lists, date and time
//! ranges, `*`/`?` wildcards, case-insensitive person names), paged with
//! `limit`/`offset`, answered as DICOM JSON.

use serde_json::{Map, Value, json};

use crate::error::{ImagingError, Result};
use crate::index::{InstanceRecord, SeriesRecord, StudyRecord};

/// The level searched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Studies.
    Study,
    /// Series.
    Series,
    /// Instances.
    Instance,
}

/// One result: a study, and below the study level one series and instance.
#[derive(Debug, Clone, Copy)]
pub struct Row<'a> {
    /// The study.
    pub study: &'a StudyRecord,
    /// The series (UID, record), at series and instance level.
    pub series: Option<(&'a str, &'a SeriesRecord)>,
    /// The instance (UID, record), at instance level.
    pub instance: Option<(&'a str, &'a InstanceRecord)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Uid,
    Date,
    Time,
    Text,
    Name,
    Number,
}

struct Attribute {
    keyword: &'static str,
    tag: &'static str,
    vr: &'static str,
    level: Level,
    kind: Kind,
    values: fn(&Row<'_>) -> Vec<String>,
}

fn one(value: &Option<String>) -> Vec<String> {
    value.iter().cloned().collect()
}

fn number<T: ToString>(value: Option<T>) -> Vec<String> {
    value.iter().map(ToString::to_string).collect()
}

fn series<'a>(row: &Row<'a>) -> Option<&'a SeriesRecord> {
    row.series.map(|(_, s)| s)
}

fn instance<'a>(row: &Row<'a>) -> Option<&'a InstanceRecord> {
    row.instance.map(|(_, i)| i)
}

/// The attributes returned and matched, in tag order per level.
const ATTRIBUTES: &[Attribute] = &[
    Attribute {
        keyword: "StudyDate",
        tag: "00080020",
        vr: "DA",
        level: Level::Study,
        kind: Kind::Date,
        values: |r| one(&r.study.date),
    },
    Attribute {
        keyword: "StudyTime",
        tag: "00080030",
        vr: "TM",
        level: Level::Study,
        kind: Kind::Time,
        values: |r| one(&r.study.time),
    },
    Attribute {
        keyword: "AccessionNumber",
        tag: "00080050",
        vr: "SH",
        level: Level::Study,
        kind: Kind::Text,
        values: |r| one(&r.study.accession_number),
    },
    Attribute {
        keyword: "ModalitiesInStudy",
        tag: "00080061",
        vr: "CS",
        level: Level::Study,
        kind: Kind::Text,
        values: |r| {
            let mut modalities: Vec<String> = r
                .study
                .series
                .values()
                .filter_map(|s| s.modality.clone())
                .collect();
            modalities.sort();
            modalities.dedup();
            modalities
        },
    },
    Attribute {
        keyword: "ReferringPhysicianName",
        tag: "00080090",
        vr: "PN",
        level: Level::Study,
        kind: Kind::Name,
        values: |r| one(&r.study.referring_physician),
    },
    Attribute {
        keyword: "StudyDescription",
        tag: "00081030",
        vr: "LO",
        level: Level::Study,
        kind: Kind::Text,
        values: |r| one(&r.study.description),
    },
    Attribute {
        keyword: "PatientName",
        tag: "00100010",
        vr: "PN",
        level: Level::Study,
        kind: Kind::Name,
        values: |r| one(&r.study.patient_name),
    },
    Attribute {
        keyword: "PatientID",
        tag: "00100020",
        vr: "LO",
        level: Level::Study,
        kind: Kind::Text,
        values: |r| r.study.patient.iter().map(|p| p.value.clone()).collect(),
    },
    Attribute {
        keyword: "IssuerOfPatientID",
        tag: "00100021",
        vr: "LO",
        level: Level::Study,
        kind: Kind::Text,
        values: |r| {
            r.study
                .patient
                .iter()
                .filter_map(|p| p.issuer.clone())
                .collect()
        },
    },
    Attribute {
        keyword: "PatientBirthDate",
        tag: "00100030",
        vr: "DA",
        level: Level::Study,
        kind: Kind::Date,
        values: |r| one(&r.study.patient_birth_date),
    },
    Attribute {
        keyword: "PatientSex",
        tag: "00100040",
        vr: "CS",
        level: Level::Study,
        kind: Kind::Text,
        values: |r| one(&r.study.patient_sex),
    },
    Attribute {
        keyword: "StudyInstanceUID",
        tag: "0020000D",
        vr: "UI",
        level: Level::Study,
        kind: Kind::Uid,
        values: |r| vec![r.study.uid.clone()],
    },
    Attribute {
        keyword: "StudyID",
        tag: "00200010",
        vr: "SH",
        level: Level::Study,
        kind: Kind::Text,
        values: |r| one(&r.study.study_id),
    },
    Attribute {
        keyword: "NumberOfStudyRelatedSeries",
        tag: "00201206",
        vr: "IS",
        level: Level::Study,
        kind: Kind::Number,
        values: |r| number(Some(r.study.series.len())),
    },
    Attribute {
        keyword: "NumberOfStudyRelatedInstances",
        tag: "00201208",
        vr: "IS",
        level: Level::Study,
        kind: Kind::Number,
        values: |r| number(Some(r.study.instance_count())),
    },
    Attribute {
        keyword: "Modality",
        tag: "00080060",
        vr: "CS",
        level: Level::Series,
        kind: Kind::Text,
        values: |r| series(r).map_or_else(Vec::new, |s| one(&s.modality)),
    },
    Attribute {
        keyword: "SeriesDescription",
        tag: "0008103E",
        vr: "LO",
        level: Level::Series,
        kind: Kind::Text,
        values: |r| series(r).map_or_else(Vec::new, |s| one(&s.description)),
    },
    Attribute {
        keyword: "SeriesInstanceUID",
        tag: "0020000E",
        vr: "UI",
        level: Level::Series,
        kind: Kind::Uid,
        values: |r| r.series.iter().map(|(uid, _)| uid.to_string()).collect(),
    },
    Attribute {
        keyword: "SeriesNumber",
        tag: "00200011",
        vr: "IS",
        level: Level::Series,
        kind: Kind::Number,
        values: |r| number(series(r).and_then(|s| s.number)),
    },
    Attribute {
        keyword: "NumberOfSeriesRelatedInstances",
        tag: "00201209",
        vr: "IS",
        level: Level::Series,
        kind: Kind::Number,
        values: |r| number(series(r).map(|s| s.instances.len())),
    },
    Attribute {
        keyword: "SOPClassUID",
        tag: "00080016",
        vr: "UI",
        level: Level::Instance,
        kind: Kind::Uid,
        values: |r| {
            instance(r)
                .iter()
                .map(|i| i.sop_class_uid.clone())
                .collect()
        },
    },
    Attribute {
        keyword: "SOPInstanceUID",
        tag: "00080018",
        vr: "UI",
        level: Level::Instance,
        kind: Kind::Uid,
        values: |r| r.instance.iter().map(|(uid, _)| uid.to_string()).collect(),
    },
    Attribute {
        keyword: "AvailableTransferSyntaxUID",
        tag: "00083002",
        vr: "UI",
        level: Level::Instance,
        kind: Kind::Uid,
        values: |r| {
            instance(r)
                .iter()
                .map(|i| i.transfer_syntax.clone())
                .collect()
        },
    },
    Attribute {
        keyword: "InstanceNumber",
        tag: "00200013",
        vr: "IS",
        level: Level::Instance,
        kind: Kind::Number,
        values: |r| number(instance(r).and_then(|i| i.number)),
    },
    Attribute {
        keyword: "NumberOfFrames",
        tag: "00280008",
        vr: "IS",
        level: Level::Instance,
        kind: Kind::Number,
        values: |r| number(instance(r).map(|i| i.frames)),
    },
    Attribute {
        keyword: "Rows",
        tag: "00280010",
        vr: "US",
        level: Level::Instance,
        kind: Kind::Number,
        values: |r| number(instance(r).and_then(|i| i.rows)),
    },
    Attribute {
        keyword: "Columns",
        tag: "00280011",
        vr: "US",
        level: Level::Instance,
        kind: Kind::Number,
        values: |r| number(instance(r).and_then(|i| i.columns)),
    },
];

/// A parsed QIDO-RS query.
#[derive(Debug, Default)]
pub struct Query {
    filters: Vec<(&'static Attribute, String)>,
    limit: Option<usize>,
    offset: usize,
    /// Query keys this server does not match on (for the `Warning` header).
    pub ignored: Vec<String>,
}

impl std::fmt::Debug for Attribute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.keyword)
    }
}

impl Query {
    /// Parse the query parameters of a search at `level`: attribute
    /// keywords or tags with their values, `limit`, `offset`
    /// (`includefield` and `fuzzymatching` are accepted; all attributes are
    /// always returned and matching is never fuzzy).
    pub fn parse(pairs: &[(String, String)], level: Level) -> Result<Self> {
        let mut query = Query::default();
        for (key, value) in pairs {
            match key.as_str() {
                "limit" => query.limit = Some(count(key, value)?),
                "offset" => query.offset = count(key, value)?,
                "includefield" | "fuzzymatching" => {}
                _ => match ATTRIBUTES.iter().find(|a| {
                    a.level <= level && (a.keyword == key || a.tag.eq_ignore_ascii_case(key))
                }) {
                    Some(attribute) => query.filters.push((attribute, value.clone())),
                    None => query.ignored.push(key.clone()),
                },
            }
        }
        Ok(query)
    }

    /// The rows that match, paged, as DICOM JSON objects of `level`.
    pub fn run<'a>(
        &self,
        rows: impl Iterator<Item = Row<'a>>,
        level: Level,
    ) -> Vec<(Row<'a>, Value)> {
        rows.filter(|row| {
            self.filters.iter().all(|(attribute, filter)| {
                matches(attribute.kind, filter, &(attribute.values)(row))
            })
        })
        .skip(self.offset)
        .take(self.limit.unwrap_or(usize::MAX))
        .map(|row| {
            let json = to_json(&row, level);
            (row, json)
        })
        .collect()
    }
}

fn count(key: &str, value: &str) -> Result<usize> {
    value
        .parse()
        .map_err(|_| ImagingError::BadRequest(format!("{key}={value:?} is not a count")))
}

/// The rows of `studies` at `level`, within a study and series when given.
pub fn rows<'a>(
    studies: &'a [StudyRecord],
    level: Level,
    study: Option<&'a str>,
    series: Option<&'a str>,
) -> impl Iterator<Item = Row<'a>> + 'a {
    studies
        .iter()
        .filter(move |s| study.is_none_or(|uid| s.uid == uid))
        .flat_map(move |s| {
            let study_row = Row {
                study: s,
                series: None,
                instance: None,
            };
            let series_rows: Vec<Row<'a>> = match level {
                Level::Study => vec![study_row],
                _ => s
                    .series
                    .iter()
                    .filter(|(uid, _)| series.is_none_or(|wanted| wanted == uid.as_str()))
                    .flat_map(|(uid, record)| {
                        let row = Row {
                            series: Some((uid.as_str(), record)),
                            ..study_row
                        };
                        match level {
                            Level::Instance => record
                                .instances
                                .iter()
                                .map(|(sop, i)| Row {
                                    instance: Some((sop.as_str(), i)),
                                    ..row
                                })
                                .collect(),
                            _ => vec![row],
                        }
                    })
                    .collect(),
            };
            series_rows
        })
}

/// The DICOM JSON object of a row: every attribute of `level` and above.
fn to_json(row: &Row<'_>, level: Level) -> Value {
    let mut object = Map::new();
    for attribute in ATTRIBUTES.iter().filter(|a| a.level <= level) {
        let values = (attribute.values)(row);
        let mut element = json!({ "vr": attribute.vr });
        if !values.is_empty() {
            element["Value"] = values
                .into_iter()
                .map(|v| match attribute.kind {
                    Kind::Number => v.parse::<i64>().map_or(json!(v), |n| json!(n)),
                    Kind::Name => json!({ "Alphabetic": v }),
                    _ => json!(v),
                })
                .collect();
        }
        object.insert(attribute.tag.to_string(), element);
    }
    Value::Object(object)
}

/// Whether any of `values` matches `filter` under the rules of `kind`.
fn matches(kind: Kind, filter: &str, values: &[String]) -> bool {
    let filter = filter.trim();
    if filter.is_empty() || filter == "*" {
        return true;
    }
    values.iter().any(|value| match kind {
        Kind::Uid => filter.split([',', '\\']).any(|uid| uid.trim() == value),
        Kind::Date | Kind::Time => match filter.split_once('-') {
            Some((from, to)) => {
                let time = |s: &str| s.chars().filter(char::is_ascii_digit).collect::<String>();
                let v = time(value);
                (from.is_empty() || v >= time(from))
                    && (to.is_empty()
                        || v.get(..time(to).len().min(v.len()))
                            .is_some_and(|p| p <= time(to).as_str()))
            }
            None if kind == Kind::Time => value.starts_with(filter),
            None => value == filter,
        },
        Kind::Number => filter.parse::<i64>().ok() == value.parse::<i64>().ok(),
        Kind::Text => wildcard(filter.as_bytes(), value.as_bytes()),
        Kind::Name => wildcard(
            filter.to_lowercase().as_bytes(),
            value.to_lowercase().as_bytes(),
        ),
    })
}

/// `*` matches any run, `?` any one character; the rest literally.
fn wildcard(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_ranges_and_uid_lists_match_as_ps3_4_says() {
        assert!(wildcard(b"DOE*", b"DOE^JOHN"));
        assert!(wildcard(b"D?E^*N", b"DOE^JOHN"));
        assert!(!wildcard(b"DOE", b"DOE^JOHN"));
        assert!(matches(Kind::Name, "doe*", &["Doe^John".into()]));
        assert!(!matches(Kind::Text, "doe*", &["Doe^John".into()]));
        assert!(matches(
            Kind::Date,
            "20040101-20041231",
            &["20040826".into()]
        ));
        assert!(matches(Kind::Date, "-20040826", &["20040826".into()]));
        assert!(!matches(Kind::Date, "20050101-", &["20040826".into()]));
        assert!(matches(Kind::Time, "1800-1900", &["185059.000".into()]));
        assert!(matches(Kind::Uid, "1.2.3,4.5.6", &["4.5.6".into()]));
        assert!(matches(Kind::Uid, "1.2.3\\4.5.6", &["1.2.3".into()]));
        assert!(!matches(Kind::Uid, "1.2.3", &["1.2.30".into()]));
        assert!(matches(Kind::Number, "2", &["2".into()]));
        assert!(!matches(Kind::Text, "US", &[]));
    }

    #[test]
    fn unknown_keys_are_ignored_and_bad_counts_refused() {
        let pairs = |items: &[(&str, &str)]| -> Vec<(String, String)> {
            items
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let query = Query::parse(
            &pairs(&[("PatientID", "x"), ("Foo", "y"), ("SOPInstanceUID", "1")]),
            Level::Study,
        )
        .expect("parsed");
        assert_eq!(query.filters.len(), 1);
        assert_eq!(query.ignored, ["Foo", "SOPInstanceUID"]);
        assert!(Query::parse(&pairs(&[("limit", "-1")]), Level::Study).is_err());
    }
}
