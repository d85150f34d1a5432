//! Moving DA and DT values by a whole number of days (Retain Longitudinal
//! Temporal Information with Modified Dates). Times of day are kept.

use time::{Date, Duration, Month};

/// Shift every value of a (possibly multi-valued) DA string by `days`.
/// Accepts `YYYYMMDD` and the old ACR-NEMA `YYYY.MM.DD`; writes `YYYYMMDD`.
/// `None` when a value is not a date: the caller then removes it.
pub fn shift_dates(text: &str, days: i64) -> Option<String> {
    map_values(text, |value| {
        let digits: String = value.chars().filter(|c| *c != '.').collect();
        if digits.len() != 8 {
            return None;
        }
        let shifted = parse_ymd(&digits)?.checked_add(Duration::days(days))?;
        Some(format_ymd(shifted))
    })
}

/// Shift every value of a (possibly multi-valued) DT string by `days`,
/// keeping its precision, time of day, fraction and UTC offset.
pub fn shift_datetimes(text: &str, days: i64) -> Option<String> {
    map_values(text, |value| {
        let (stamp, zone) = match value.find(['+', '-']) {
            Some(at) if at >= 4 => value.split_at(at),
            _ => (value, ""),
        };
        let date_len = stamp.len().min(8);
        // not a char boundary: not digits either
        let (date_part, rest) = stamp.split_at_checked(date_len)?;
        if !date_part.chars().all(|c| c.is_ascii_digit()) || !matches!(date_len, 4 | 6 | 8) {
            return None;
        }
        let padded = format!("{date_part}{}", &"0101"[..8 - date_len]);
        let shifted = parse_ymd(&padded)?.checked_add(Duration::days(days))?;
        let mut out = format_ymd(shifted);
        out.truncate(date_len);
        Some(format!("{out}{rest}{zone}"))
    })
}

fn map_values(text: &str, mut f: impl FnMut(&str) -> Option<String>) -> Option<String> {
    let values: Option<Vec<String>> = text
        .split('\\')
        .map(|v| {
            let v = v.trim_matches(|c: char| c == ' ' || c == '\0');
            if v.is_empty() {
                Some(String::new())
            } else {
                f(v)
            }
        })
        .collect();
    values.map(|v| v.join("\\"))
}

fn parse_ymd(digits: &str) -> Option<Date> {
    let year: i32 = digits.get(0..4)?.parse().ok()?;
    let month: u8 = digits.get(4..6)?.parse().ok()?;
    let day: u8 = digits.get(6..8)?.parse().ok()?;
    Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()
}

fn format_ymd(date: Date) -> String {
    format!(
        "{:04}{:02}{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_datetime_with_non_ascii_characters_is_not_a_date() {
        assert_eq!(shift_datetimes("2024\u{e9}0301", 3), None);
        assert_eq!(shift_datetimes("20240\u{e9}", 3), None);
    }

    #[test]
    fn dates_move_by_the_offset_across_month_and_leap_year() {
        assert_eq!(shift_dates("20240301", -1).as_deref(), Some("20240229"));
        assert_eq!(shift_dates("20230101", -365).as_deref(), Some("20220101"));
    }

    #[test]
    fn multi_valued_and_acr_nema_dates_are_shifted() {
        assert_eq!(
            shift_dates("1997.04.24\\20000101", -1).as_deref(),
            Some("19970423\\19991231")
        );
    }

    #[test]
    fn malformed_dates_are_refused() {
        assert_eq!(shift_dates("2024-13-01", -1), None);
        assert_eq!(shift_dates("20241301", -1), None);
        assert_eq!(shift_dates("yesterday", -1), None);
    }

    #[test]
    fn datetimes_keep_time_fraction_zone_and_precision() {
        assert_eq!(
            shift_datetimes("20240301123456.789+0100", -1).as_deref(),
            Some("20240229123456.789+0100")
        );
        assert_eq!(shift_datetimes("2024", -400).as_deref(), Some("2022"));
        assert_eq!(shift_datetimes("20x4", -1), None);
    }

    #[test]
    fn empty_values_stay_empty() {
        assert_eq!(shift_dates("", -10).as_deref(), Some(""));
    }
}
