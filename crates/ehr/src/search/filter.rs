//! Translates one search criterion (`name[:modifier]=value[,value]`) into an SQL condition on a
//! `resources` row alias, through the index tables.

use crate::datetime::{self, Range};
use crate::error::{Error, Result};
use crate::search::extract::normalize;
use crate::search::parameters::{self, Kind, Param};
use crate::store::sql::Sql;
use crate::types;

/// The largest code point, appended to a prefix as the upper bound of a range scan.
const MAX_CHAR: char = '\u{10FFFF}';

/// The condition selecting `param`'s rows of index table alias `alias`: its name, and for a
/// parameter stored under a broader one ([`Param::narrows`]) its target types.
pub(crate) fn rows_of(sql: &mut Sql, alias: &str, param: &Param) -> String {
    let name = sql.arg(param.stored_as());
    if param.narrows.is_none() {
        return format!("{alias}.param = {name}");
    }
    let targets: Vec<String> = param.targets().map(|t| sql.arg(t)).collect();
    format!(
        "{alias}.param = {name} AND {alias}.target_type IN ({})",
        targets.join(", ")
    )
}

/// The SQL condition on `alias` (a `resources` row of `resource_type`) for `key=value`.
/// `base` is this server's base URL, so absolute references to it are read as local.
pub(crate) fn condition(
    sql: &mut Sql,
    resource_type: &str,
    alias: &str,
    key: &str,
    value: &str,
    base: Option<&str>,
    driving: bool,
) -> Result<String> {
    if let Some(rest) = key.strip_prefix("_has:") {
        return reverse_chain(sql, resource_type, alias, rest, value, base);
    }
    if let Some((left, inner)) = key.split_once('.') {
        return chain(sql, resource_type, alias, left, inner, value, base);
    }
    let (name, modifier) = match key.split_once(':') {
        Some((n, m)) => (n, Some(m)),
        None => (key, None),
    };
    let values = split_unescaped(value, ',');
    if values.iter().any(String::is_empty) {
        return Err(Error::invalid(format!(
            "search parameter {key} has an empty value"
        )));
    }
    match name {
        "_id" => {
            if modifier.is_some() {
                return Err(unsupported_modifier(name, modifier));
            }
            let list: Vec<String> = values.into_iter().map(|v| sql.arg(v)).collect();
            Ok(format!("{alias}.res_id IN ({})", list.join(", ")))
        }
        "_lastUpdated" => {
            if modifier.is_some() {
                return Err(unsupported_modifier(name, modifier));
            }
            let mut ors = Vec::new();
            for v in &values {
                let (prefix, text) = split_prefix(v);
                let range = datetime::parse_range(text)
                    .map_err(|e| Error::invalid(format!("_lastUpdated: {e}")))?;
                ors.push(date_condition(
                    sql,
                    prefix,
                    range,
                    &format!("{alias}.last_updated"),
                    &format!("{alias}.last_updated + 1"),
                )?);
            }
            Ok(format!("({})", ors.join(" OR ")))
        }
        _ => {
            let param = parameters::find(resource_type, name).ok_or_else(|| {
                Error::invalid(format!(
                    "unknown search parameter {name:?} for {resource_type}"
                ))
            })?;
            let term = Term {
                param,
                modifier,
                base,
            };
            param_condition(sql, resource_type, alias, term, &values, driving)
        }
    }
}

fn unsupported_modifier(name: &str, modifier: Option<&str>) -> Error {
    Error::invalid(format!(
        "modifier :{} is not supported on {name}",
        modifier.unwrap_or_default()
    ))
}

fn table(kind: Kind) -> &'static str {
    match kind {
        Kind::String => "idx_string",
        Kind::Token | Kind::Uri => "idx_token",
        Kind::Reference => "idx_reference",
        Kind::Date => "idx_date",
        Kind::Number => "idx_number",
        Kind::Quantity => "idx_quantity",
    }
}

/// The condition of one parameter. The `driving` criterion of a search selects candidate rows
/// through the index (`seq IN (…)`); the others are checked per candidate (`EXISTS`, by `seq`),
/// which keeps SQLite from re-scanning a broad index for every candidate.
fn param_condition(
    sql: &mut Sql,
    resource_type: &str,
    alias: &str,
    term: Term<'_>,
    values: &[String],
    driving: bool,
) -> Result<String> {
    let param = term.param;
    let table = table(param.kind);
    let t = sql.arg(resource_type);
    let rows = rows_of(sql, "i", param);
    let wrap = |filter: Option<String>, negate: bool| {
        let filter = filter.map(|f| format!(" AND ({f})")).unwrap_or_default();
        if driving && !negate {
            format!(
                "{alias}.seq IN (SELECT i.seq FROM {table} i WHERE i.res_type = {t} AND {rows}{filter})"
            )
        } else {
            let exists = format!(
                "EXISTS (SELECT 1 FROM {table} i WHERE i.seq = {alias}.seq AND {rows}{filter})"
            );
            if negate {
                format!("NOT {exists}")
            } else {
                exists
            }
        }
    };
    if term.modifier == Some("missing") {
        return match values {
            [v] if v == "true" => Ok(wrap(None, true)),
            [v] if v == "false" => Ok(wrap(None, false)),
            _ => Err(Error::invalid(format!(
                "{}:missing takes true or false",
                param.name
            ))),
        };
    }
    let (negate, modifier) = match term.modifier {
        Some("not") if param.kind == Kind::Token => (true, None),
        other => (false, other),
    };
    let term = Term { modifier, ..term };
    let mut ors = Vec::new();
    for value in values {
        ors.push(value_condition(sql, &term, value)?);
    }
    Ok(wrap(Some(ors.join(" OR ")), negate))
}

/// How well a criterion narrows a search, lowest first: the search is driven by the first.
pub(crate) fn selectivity_rank(resource_type: &str, key: &str) -> u8 {
    let (name, modifier) = key
        .split_once(':')
        .map_or((key, None), |(n, m)| (n, Some(m)));
    if key.starts_with("_has:") || key.contains('.') {
        return 3;
    }
    match (
        name,
        parameters::find(resource_type, name).map(|p| p.kind),
        modifier,
    ) {
        ("_id", _, _) => 0,
        (_, _, Some("missing" | "not" | "contains" | "text")) => 7,
        (_, Some(Kind::Reference), _) => 1,
        (_, Some(Kind::Token | Kind::Uri), _) => 2,
        (_, Some(Kind::String), _) => 4,
        (_, Some(Kind::Number | Kind::Quantity), _) => 5,
        _ => 6,
    }
}

/// A parameter as a search uses it: with its modifier, and this server's base URL.
#[derive(Clone, Copy)]
struct Term<'a> {
    param: &'static parameters::Param,
    modifier: Option<&'a str>,
    base: Option<&'a str>,
}

/// The condition on index row `i` for one value.
fn value_condition(sql: &mut Sql, term: &Term<'_>, value: &str) -> Result<String> {
    let Term {
        param, modifier, ..
    } = *term;
    let name = param.name;
    match (param.kind, modifier) {
        (Kind::String, None) => Ok(prefix_condition(sql, "i.value", &normalize(value))),
        (Kind::String, Some("exact")) => Ok(format!("i.exact = {}", sql.arg(unescape(value)))),
        (Kind::String, Some("contains")) => {
            let pattern = format!("%{}%", escape_like(&normalize(value)));
            Ok(format!("i.value LIKE {} ESCAPE '\\'", sql.arg(pattern)))
        }
        (Kind::Token, None) => Ok(token_condition(sql, value)),
        (Kind::Token, Some("text")) => Ok(prefix_condition(sql, "i.text", &normalize(value))),
        (Kind::Uri, None) => Ok(format!("i.code = {}", sql.arg(unescape(value)))),
        (Kind::Uri, Some("below")) => Ok(prefix_condition(sql, "i.code", &unescape(value))),
        (Kind::Reference, _) => reference_condition(sql, term, value),
        (Kind::Date, None) => {
            let (prefix, text) = split_prefix(value);
            let range =
                datetime::parse_range(text).map_err(|e| Error::invalid(format!("{name}: {e}")))?;
            date_condition(sql, prefix, range, "i.lo", "i.hi")
        }
        (Kind::Number, None) => {
            let (prefix, text) = split_prefix(value);
            number_condition(sql, name, prefix, text)
        }
        (Kind::Quantity, None) => {
            let parts = split_unescaped(value, '|');
            let (prefix, number) = split_prefix(&parts[0]);
            let mut condition = number_condition(sql, name, prefix, number)?;
            let system = parts.get(1).filter(|s| !s.is_empty());
            let code = parts.get(2).filter(|s| !s.is_empty());
            if parts.len() > 3 {
                return Err(Error::invalid(format!(
                    "{name}: a quantity is number|system|code"
                )));
            }
            if let Some(system) = system {
                condition = format!("{condition} AND i.system = {}", sql.arg(system.clone()));
            }
            if let Some(code) = code {
                let c = sql.arg(code.clone());
                condition = if system.is_some() {
                    format!("{condition} AND i.code = {c}")
                } else {
                    format!("{condition} AND (i.code = {c} OR i.unit = {c})")
                };
            }
            Ok(format!("({condition})"))
        }
        (_, Some(m)) => Err(Error::invalid(format!(
            "modifier :{m} is not supported on {} parameter {name}",
            param.kind.fhir_name()
        ))),
    }
}

fn prefix_condition(sql: &mut Sql, column: &str, prefix: &str) -> String {
    let low = sql.arg(prefix.to_string());
    let high = sql.arg(format!("{prefix}{MAX_CHAR}"));
    format!("({column} >= {low} AND {column} < {high})")
}

fn token_condition(sql: &mut Sql, value: &str) -> String {
    let parts = split_unescaped(value, '|');
    match parts.as_slice() {
        [code] => format!("i.code = {}", sql.arg(code.clone())),
        [system, code] if system.is_empty() => {
            format!("(i.system IS NULL AND i.code = {})", sql.arg(code.clone()))
        }
        [system, code] if code.is_empty() => format!("i.system = {}", sql.arg(system.clone())),
        [system, code, ..] => {
            let s = sql.arg(system.clone());
            let c = sql.arg(code.clone());
            format!("(i.code = {c} AND i.system = {s})")
        }
        [] => "1 = 0".to_string(),
    }
}

fn reference_condition(sql: &mut Sql, term: &Term<'_>, value: &str) -> Result<String> {
    let Term {
        param,
        modifier,
        base,
    } = *term;
    let type_modifier = match modifier {
        None => None,
        Some(m) if types::resource_type(m).is_ok() => Some(m),
        Some(m) => {
            return Err(Error::invalid(format!(
                "modifier :{m} is not supported on reference parameter {}",
                param.name
            )));
        }
    };
    let local = base
        .and_then(|b| value.strip_prefix(b.trim_end_matches('/')))
        .map(|rest| rest.trim_start_matches('/'))
        .unwrap_or(value);
    if local.contains("://") {
        return Ok(format!(
            "(i.target_type = '' AND i.target_id = {})",
            sql.arg(local.to_string())
        ));
    }
    let (target_type, id) = match local.split('/').collect::<Vec<_>>().as_slice() {
        [id] => (type_modifier, *id),
        [t, id] | [t, id, "_history", _] => (Some(*t), *id),
        _ => {
            return Err(Error::invalid(format!(
                "{}: {value:?} is not a reference (Type/id or id)",
                param.name
            )));
        }
    };
    match target_type {
        Some(t) => {
            let t = sql.arg(t);
            let id = sql.arg(id);
            Ok(format!("(i.target_id = {id} AND i.target_type = {t})"))
        }
        None => Ok(format!("i.target_id = {}", sql.arg(id))),
    }
}

/// FHIR date comparison of the indexed range `[lo, hi)` with the searched range.
fn date_condition(sql: &mut Sql, prefix: &str, range: Range, lo: &str, hi: &str) -> Result<String> {
    let s = sql.arg(range.start);
    let e = sql.arg(range.end);
    let within = format!("({lo} >= {s} AND {hi} <= {e})");
    Ok(match prefix {
        "eq" => within,
        "ne" => format!("NOT {within}"),
        "gt" => format!("{hi} > {e}"),
        "lt" => format!("{lo} < {s}"),
        "ge" => format!("({hi} > {e} OR {within})"),
        "le" => format!("({lo} < {s} OR {within})"),
        "sa" => format!("{lo} >= {e}"),
        "eb" => format!("{hi} <= {s}"),
        "ap" => {
            let now = datetime::now_micros();
            let margin = (now.saturating_sub(range.start)).unsigned_abs() / 10;
            let margin = i64::try_from(margin).unwrap_or(i64::MAX);
            let a = sql.arg(range.start.saturating_sub(margin));
            let b = sql.arg(range.end.saturating_add(margin));
            format!("({lo} < {b} AND {hi} > {a})")
        }
        other => return Err(Error::invalid(format!("unknown date prefix {other:?}"))),
    })
}

/// FHIR number comparison; `eq` uses the precision the value is written with.
fn number_condition(sql: &mut Sql, name: &str, prefix: &str, text: &str) -> Result<String> {
    let value: f64 = text
        .parse()
        .ok()
        .filter(|v: &f64| v.is_finite())
        .ok_or_else(|| Error::invalid(format!("{name}: {text:?} is not a number")))?;
    let decimals = text.split_once('.').map_or(0, |(_, f)| {
        f.chars().take_while(char::is_ascii_digit).count()
    });
    let half = 0.5 * 10f64.powi(-i32::try_from(decimals).unwrap_or(0));
    let column = "i.value";
    let cmp = |sql: &mut Sql, op: &str, v: f64| format!("{column} {op} {}", sql.arg(v));
    Ok(match prefix {
        "eq" => format!(
            "({} AND {})",
            cmp(sql, ">=", value - half),
            cmp(sql, "<", value + half)
        ),
        "ne" => format!(
            "({} OR {})",
            cmp(sql, "<", value - half),
            cmp(sql, ">=", value + half)
        ),
        "gt" => cmp(sql, ">", value),
        "lt" => cmp(sql, "<", value),
        "ge" => cmp(sql, ">=", value),
        "le" => cmp(sql, "<=", value),
        "sa" => cmp(sql, ">=", value + half),
        "eb" => cmp(sql, "<", value - half),
        "ap" => {
            let margin = (value * 0.1).abs().max(half);
            format!(
                "({} AND {})",
                cmp(sql, ">=", value - margin),
                cmp(sql, "<=", value + margin)
            )
        }
        other => return Err(Error::invalid(format!("unknown number prefix {other:?}"))),
    })
}

/// `subject:Patient.name=x`: resources whose reference points at a resource matching `inner`.
fn chain(
    sql: &mut Sql,
    resource_type: &str,
    alias: &str,
    left: &str,
    inner: &str,
    value: &str,
    base: Option<&str>,
) -> Result<String> {
    if inner.contains('.') {
        return Err(Error::invalid(format!(
            "chained search {left}.{inner} is more than one level deep; only one level is supported"
        )));
    }
    let (name, type_modifier) = match left.split_once(':') {
        Some((n, t)) => (n, Some(types::resource_type(t)?)),
        None => (left, None),
    };
    let param = parameters::find(resource_type, name)
        .filter(|p| p.kind == Kind::Reference)
        .ok_or_else(|| {
            Error::invalid(format!(
                "{name} is not a reference parameter of {resource_type}, so it cannot be chained"
            ))
        })?;
    let inner_name = inner.split(':').next().unwrap_or(inner);
    let targets: Vec<&str> = match type_modifier {
        Some(t) => vec![t],
        None if param.targets().next().is_some() => param.targets().collect(),
        None => types::RESOURCE_TYPES
            .iter()
            .copied()
            .filter(|t| inner_name.starts_with('_') || parameters::find(t, inner_name).is_some())
            .collect(),
    };
    let t = sql.arg(resource_type);
    let rows = rows_of(sql, "i", param);
    let mut ors = Vec::new();
    for target in targets {
        if !inner_name.starts_with('_') && parameters::find(target, inner_name).is_none() {
            continue;
        }
        let tt = sql.arg(target);
        let cond = condition(sql, target, "c", inner, value, base, true)?;
        ors.push(format!("(c.res_type = {tt} AND {cond})"));
    }
    if ors.is_empty() {
        return Err(Error::invalid(format!(
            "no target type of {resource_type}.{name} has a search parameter {inner_name:?}"
        )));
    }
    Ok(format!(
        "{alias}.seq IN (SELECT i.seq FROM idx_reference i JOIN resources c \
         ON c.res_type = i.target_type AND c.res_id = i.target_id AND c.current AND NOT c.deleted \
         WHERE i.res_type = {t} AND {rows} AND ({}))",
        ors.join(" OR ")
    ))
}

/// `_has:Observation:patient:code=x`: resources referenced (through `patient`) by an
/// Observation matching `code=x`.
fn reverse_chain(
    sql: &mut Sql,
    resource_type: &str,
    alias: &str,
    rest: &str,
    value: &str,
    base: Option<&str>,
) -> Result<String> {
    let mut parts = rest.splitn(3, ':');
    let (Some(source), Some(name), Some(inner)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(Error::invalid(format!(
            "_has:{rest} must be _has:Type:reference-parameter:parameter"
        )));
    };
    if inner.starts_with("_has") || inner.contains('.') {
        return Err(Error::invalid(
            "nested _has or chains inside _has are not supported",
        ));
    }
    let source = types::resource_type(source)?;
    let param = parameters::find(source, name)
        .filter(|p| p.kind == Kind::Reference)
        .ok_or_else(|| {
            Error::invalid(format!("{name} is not a reference parameter of {source}"))
        })?;
    let s = sql.arg(source);
    let rows = rows_of(sql, "i", param);
    let t = sql.arg(resource_type);
    let cond = condition(sql, source, "h", inner, value, base, true)?;
    Ok(format!(
        "{alias}.res_id IN (SELECT i.target_id FROM idx_reference i JOIN resources h ON h.seq = i.seq \
         WHERE i.res_type = {s} AND {rows} AND i.target_type = {t} AND h.current AND NOT h.deleted AND {cond})"
    ))
}

/// Splits a comparison prefix (`ge2020` → `("ge", "2020")`); no prefix means `eq`.
fn split_prefix(value: &str) -> (&str, &str) {
    const PREFIXES: [&str; 9] = ["eq", "ne", "gt", "lt", "ge", "le", "sa", "eb", "ap"];
    match value.get(..2) {
        Some(p) if PREFIXES.contains(&p) => (p, &value[2..]),
        _ => ("eq", value),
    }
}

/// Splits on `separator` except where escaped with `\`, and unescapes.
fn split_unescaped(value: &str, separator: char) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                if !matches!(next, ',' | '|' | '$' | '\\') && next != separator {
                    current.push('\\');
                }
                current.push(next);
            }
        } else if c == separator {
            parts.push(std::mem::take(&mut current));
        } else {
            current.push(c);
        }
    }
    parts.push(current);
    parts
}

fn unescape(value: &str) -> String {
    split_unescaped(value, '\u{0}').concat()
}

fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_separators_stay_in_the_value() {
        assert_eq!(split_unescaped(r"a\,b,c", ','), vec!["a,b", "c"]);
        assert_eq!(
            split_unescaped(r"http://s|x\|y", '|'),
            vec!["http://s", "x|y"]
        );
        assert_eq!(split_prefix("ge2020"), ("ge", "2020"));
        assert_eq!(split_prefix("2020"), ("eq", "2020"));
    }

    #[test]
    fn unknown_parameters_and_modifiers_are_refused_with_their_name() {
        let mut sql = Sql::default();
        let err = condition(&mut sql, "Patient", "r", "shoe-size", "4", None, true).unwrap_err();
        assert!(err.to_string().contains("shoe-size"), "{err}");
        let err = condition(
            &mut sql,
            "Patient",
            "r",
            "birthdate:exact",
            "2020",
            None,
            true,
        )
        .unwrap_err();
        assert!(err.to_string().contains(":exact"), "{err}");
        let err = condition(
            &mut sql,
            "Observation",
            "r",
            "subject.organization.name",
            "x",
            None,
            true,
        )
        .unwrap_err();
        assert!(err.to_string().contains("one level"), "{err}");
        let err = condition(&mut sql, "Patient", "r", "birthdate", "20xx", None, true).unwrap_err();
        assert!(err.to_string().contains("birthdate"), "{err}");
    }

    #[test]
    fn chain_targets_only_types_with_the_inner_parameter() {
        let mut sql = Sql::default();
        let cond = condition(
            &mut sql,
            "Observation",
            "r",
            "subject.name",
            "peter",
            None,
            true,
        )
        .unwrap();
        assert!(cond.contains("JOIN resources c"));
        assert!(sql.args.contains(&"Patient".into()));
        assert!(!sql.args.contains(&"Device".into()));
    }
}
