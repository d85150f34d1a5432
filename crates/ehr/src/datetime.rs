//! FHIR `date`, `dateTime` and `instant` values as ranges of microseconds since the Unix epoch
//! (UTC), the form dates are indexed and searched in.
//!
//! A partial date covers its whole period: `2024` is `[2024-01-01T00:00Z, 2025-01-01T00:00Z)`.
//! Values without a time zone are read as UTC.

use time::{Date, Month, OffsetDateTime};

use crate::error::{Error, Result};

const MICROS_PER_SECOND: i64 = 1_000_000;
const MICROS_PER_DAY: i64 = 86_400 * MICROS_PER_SECOND;
/// Julian day number of 1970-01-01.
const UNIX_EPOCH_JULIAN_DAY: i64 = 2_440_588;

/// A half-open range `[start, end)` of microseconds since the epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    /// First microsecond covered.
    pub start: i64,
    /// First microsecond after the range.
    pub end: i64,
}

impl Range {
    /// The range of everything (an open Period on both sides).
    pub const ALL: Range = Range {
        start: i64::MIN,
        end: i64::MAX,
    };
}

/// Parses a FHIR date, dateTime or instant (`YYYY`, `YYYY-MM`, `YYYY-MM-DD`,
/// `YYYY-MM-DDThh:mm[:ss[.fff]][Z|±hh:mm]`) into the range it denotes.
pub fn parse_range(text: &str) -> Result<Range> {
    let bad = |why: &str| Error::invalid(format!("{text:?} is not a valid FHIR date/time: {why}"));
    let (date_part, time_part) = match text.split_once('T') {
        Some((d, t)) => (d, Some(t)),
        None => (text, None),
    };
    let mut fields = date_part.split('-');
    let year = number(fields.next(), 4).ok_or_else(|| bad("year must have 4 digits"))?;
    let month = fields
        .next()
        .map(|m| number(Some(m), 2).ok_or_else(|| bad("month must have 2 digits")))
        .transpose()?;
    let day = fields
        .next()
        .map(|d| number(Some(d), 2).ok_or_else(|| bad("day must have 2 digits")))
        .transpose()?;
    if fields.next().is_some() {
        return Err(bad("too many date fields"));
    }
    let year = i32::try_from(year).map_err(|_| bad("year out of range"))?;
    let month_value = month.unwrap_or(1);
    let month_enum = u8::try_from(month_value)
        .ok()
        .and_then(|m| Month::try_from(m).ok())
        .ok_or_else(|| bad("month must be 01-12"))?;
    let day_value = u8::try_from(day.unwrap_or(1)).map_err(|_| bad("day out of range"))?;
    let date = Date::from_calendar_date(year, month_enum, day_value)
        .map_err(|_| bad("no such calendar day"))?;
    let day_start = day_micros(date);
    let Some(time_part) = time_part else {
        let end = match (month, day) {
            (None, _) => Date::from_calendar_date(year + 1, Month::January, 1).map(day_micros),
            (Some(_), None) => {
                let (y, m) = if month_enum == Month::December {
                    (year + 1, Month::January)
                } else {
                    (year, month_enum.next())
                };
                Date::from_calendar_date(y, m, 1).map(day_micros)
            }
            (Some(_), Some(_)) => Ok(day_start + MICROS_PER_DAY),
        }
        .map_err(|_| bad("year out of range"))?;
        return Ok(Range {
            start: day_start,
            end,
        });
    };
    if day.is_none() {
        return Err(bad("a time needs a full date"));
    }
    let (clock, offset) = split_zone(time_part).ok_or_else(|| bad("bad time zone"))?;
    let mut parts = clock.split(':');
    let hour = number(parts.next(), 2).ok_or_else(|| bad("hour must have 2 digits"))?;
    let minute = number(parts.next(), 2).ok_or_else(|| bad("minute must have 2 digits"))?;
    let (second, fraction, unit) = match parts.next() {
        None => (0, 0, 60 * MICROS_PER_SECOND),
        Some(sec) => {
            let (whole, frac) = sec.split_once('.').unwrap_or((sec, ""));
            let second = number(Some(whole), 2).ok_or_else(|| bad("second must have 2 digits"))?;
            if !frac.chars().all(|c| c.is_ascii_digit()) || (sec.contains('.') && frac.is_empty()) {
                return Err(bad("bad fraction of a second"));
            }
            let digits = frac.len().min(6);
            let scale = 10_i64.pow(6 - digits as u32);
            let fraction = if digits == 0 {
                0
            } else {
                frac[..digits]
                    .parse::<i64>()
                    .map_err(|_| bad("bad fraction"))?
                    * scale
            };
            (second, fraction, scale.max(1))
        }
    };
    if parts.next().is_some() || hour > 23 || minute > 59 || second > 60 {
        return Err(bad("time out of range"));
    }
    let start = day_start + (hour * 3600 + minute * 60 + second) * MICROS_PER_SECOND + fraction
        - offset * 60 * MICROS_PER_SECOND;
    Ok(Range {
        start,
        end: start + unit,
    })
}

/// Splits `hh:mm:ss.fff±hh:mm` into the clock and the zone offset in minutes (0 for `Z` or none).
fn split_zone(time: &str) -> Option<(&str, i64)> {
    if let Some(clock) = time.strip_suffix('Z') {
        return Some((clock, 0));
    }
    match time.rfind(['+', '-']) {
        None => Some((time, 0)),
        Some(at) => {
            let (clock, zone) = time.split_at(at);
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let (h, m) = zone[1..].split_once(':')?;
            let (h, m) = (number(Some(h), 2)?, number(Some(m), 2)?);
            (h <= 14 && m <= 59).then_some((clock, sign * (h * 60 + m)))
        }
    }
}

/// A run of exactly `digits` ASCII digits.
fn number(text: Option<&str>, digits: usize) -> Option<i64> {
    let text = text?;
    (text.len() == digits && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

fn day_micros(date: Date) -> i64 {
    (i64::from(date.to_julian_day()) - UNIX_EPOCH_JULIAN_DAY) * MICROS_PER_DAY
}

/// The current time in microseconds since the epoch.
pub fn now_micros() -> i64 {
    let now = OffsetDateTime::now_utc();
    i64::try_from(now.unix_timestamp_nanos() / 1000).unwrap_or(i64::MAX)
}

/// The current time in milliseconds since the Unix epoch (the services' logs and stores).
pub fn now_millis() -> i64 {
    now_micros() / 1000
}

/// Formats microseconds since the epoch as a FHIR instant, e.g. `2026-11-28T05:53:21.123456Z`.
pub fn format_instant(micros: i64) -> String {
    let seconds = micros.div_euclid(MICROS_PER_SECOND);
    let fraction = micros.rem_euclid(MICROS_PER_SECOND);
    match OffsetDateTime::from_unix_timestamp(seconds) {
        Ok(t) => format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{fraction:06}Z",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        ),
        Err(_) => "1970-01-01T00:00:00.000000Z".to_string(),
    }
}

/// Shifts a FHIR date or dateTime by whole days, keeping its precision and time zone text.
pub fn shift_days(text: &str, days: i64) -> Result<String> {
    parse_range(text)?;
    let (date_part, rest) = match text.find('T') {
        Some(at) => text.split_at(at),
        None => (text, ""),
    };
    if date_part.len() < 10 {
        // Year or year-month precision: shifting by days would invent precision; shift the
        // year-month of the period's middle instead.
        let range = parse_range(text)?;
        let middle = range.start / 2 + range.end / 2 + days * MICROS_PER_DAY;
        let date = date_of(middle)?;
        return Ok(if date_part.len() == 4 {
            format!("{:04}", date.year())
        } else {
            format!("{:04}-{:02}", date.year(), u8::from(date.month()))
        });
    }
    let range = parse_range(date_part)?;
    let date = date_of(range.start + days * MICROS_PER_DAY)?;
    Ok(format!(
        "{:04}-{:02}-{:02}{rest}",
        date.year(),
        u8::from(date.month()),
        date.day()
    ))
}

fn date_of(micros: i64) -> Result<Date> {
    let julian = micros.div_euclid(MICROS_PER_DAY) + UNIX_EPOCH_JULIAN_DAY;
    i32::try_from(julian)
        .ok()
        .and_then(|j| Date::from_julian_day(j).ok())
        .ok_or_else(|| Error::invalid("date out of range after shifting"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> i64 {
        parse_range(text).unwrap().start
    }

    #[test]
    fn partial_dates_cover_their_whole_period() {
        let year = parse_range("2024").unwrap();
        assert_eq!(year.start, at("2024-01-01T00:00:00Z"));
        assert_eq!(year.end, at("2025-01-01"));
        let month = parse_range("2024-02").unwrap();
        assert_eq!(month.end, at("2024-03-01"));
        let december = parse_range("2023-12").unwrap();
        assert_eq!(december.end, at("2024-01-01"));
        let day = parse_range("2024-02-29").unwrap();
        assert_eq!(day.end - day.start, MICROS_PER_DAY);
    }

    #[test]
    fn time_zones_are_converted_to_utc() {
        assert_eq!(at("2024-05-01T10:00:00+02:00"), at("2024-05-01T08:00:00Z"));
        assert_eq!(at("2024-05-01T10:00:00-05:30"), at("2024-05-01T15:30:00Z"));
        let precise = parse_range("2024-05-01T10:00:00.123456789Z").unwrap();
        assert_eq!(precise.end - precise.start, 1);
        assert_eq!(
            parse_range("2024-05-01T10:00").unwrap().end - at("2024-05-01T10:00"),
            60_000_000
        );
    }

    #[test]
    fn malformed_dates_are_rejected() {
        for bad in [
            "",
            "24",
            "2024-2",
            "2024-13",
            "2024-02-30",
            "2024-01-01T25:00",
            "2024-01-01T10:00:00+15:00",
            "2024-01-01T10:00:00.",
            "2024-01-01-01",
            "2024T10:00",
            "abcd",
        ] {
            assert!(parse_range(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn instants_round_trip_through_text() {
        let t = at("2026-11-28T05:53:21.123456Z");
        assert_eq!(format_instant(t), "2026-11-28T05:53:21.123456Z");
        assert_eq!(at(&format_instant(t)), t);
    }

    #[test]
    fn shifting_keeps_precision_and_zone() {
        assert_eq!(shift_days("2024-02-28", 2).unwrap(), "2024-03-01");
        assert_eq!(
            shift_days("2024-02-28T10:00:00+02:00", -30).unwrap(),
            "2024-01-29T10:00:00+02:00"
        );
        assert_eq!(shift_days("2024-06", 20).unwrap(), "2024-07");
        assert_eq!(shift_days("1999", 1).unwrap(), "1999");
    }
}
