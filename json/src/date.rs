//! The `date` field: seconds since the Unix epoch, or an RFC 3339 string
//! such as `2026-11-29T08:30:00Z` or `2026-11-29T09:30:00.5+01:00`.

use serde_json::Value;

use crate::error::JsonError;

/// The date in seconds since the Unix epoch.
pub fn parse_date(value: &Value) -> Result<i64, JsonError> {
    match value {
        Value::Number(n) => n
            .as_i64()
            .ok_or_else(|| JsonError::field("date", "expected whole seconds since the Unix epoch")),
        Value::String(s) => rfc3339(s).ok_or_else(|| {
            JsonError::field(
                "date",
                format!("`{s}` is not an RFC 3339 date such as 2026-11-29T08:30:00Z"),
            )
        }),
        _ => Err(JsonError::field(
            "date",
            "expected seconds since the Unix epoch or an RFC 3339 string",
        )),
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`, fractions dropped.
fn rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let digits = |from: usize, len: usize| -> Option<i64> {
        let part = b.get(from..from + len)?;
        part.iter()
            .all(u8::is_ascii_digit)
            .then(|| part.iter().fold(0i64, |n, d| n * 10 + i64::from(d - b'0')))
    };
    let separators = [(4, b'-'), (7, b'-'), (13, b':'), (16, b':')];
    if separators.iter().any(|&(i, c)| b.get(i) != Some(&c))
        || !matches!(b.get(10), Some(b'T' | b't' | b' '))
    {
        return None;
    }
    let (year, month, day) = (digits(0, 4)?, digits(5, 2)?, digits(8, 2)?);
    let (hour, minute, second) = (digits(11, 2)?, digits(14, 2)?, digits(17, 2)?);
    if !(1..=12).contains(&month)
        || !(1..=days_in_month(year, month)).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(fraction) = rest.strip_prefix('.') {
        let end = fraction
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(fraction.len());
        if end == 0 {
            return None;
        }
        rest = &fraction[end..];
    }
    let offset = match rest.as_bytes() {
        [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let two = |a: u8, b: u8| -> Option<i64> {
                (a.is_ascii_digit() && b.is_ascii_digit())
                    .then(|| i64::from(a - b'0') * 10 + i64::from(b - b'0'))
            };
            let (h, m) = (two(*h1, *h2)?, two(*m1, *m2)?);
            if h > 23 || m > 59 {
                return None;
            }
            let minutes = h * 60 + m;
            if *sign == b'+' {
                minutes * 60
            } else {
                -minutes * 60
            }
        }
        _ => return None,
    };
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar
/// (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_seconds_and_rfc3339() {
        assert_eq!(parse_date(&json!(1_700_000_000)).unwrap(), 1_700_000_000);
        assert_eq!(parse_date(&json!("1970-01-01T00:00:00Z")).unwrap(), 0);
        assert_eq!(
            parse_date(&json!("2023-11-14T22:13:20Z")).unwrap(),
            1_700_000_000
        );
        assert_eq!(
            parse_date(&json!("2023-11-14T23:13:20.75+01:00")).unwrap(),
            1_700_000_000
        );
        assert_eq!(
            parse_date(&json!("2024-02-29T00:00:00-05:30")).unwrap(),
            1_709_184_600
        );
    }

    #[test]
    fn refuses_what_is_not_a_date() {
        for bad in [
            json!("2023-11-14"),
            json!("2023-02-30T00:00:00Z"),
            json!("2023-11-14T25:00:00Z"),
            json!("2023-11-14T22:13:20"),
            json!("2023-11-14T22:13:20.Z"),
            json!("2023-11-14T22:13:20+1:00"),
            json!(1.5),
            json!(true),
        ] {
            let e = parse_date(&bad).unwrap_err();
            assert_eq!(e.field.as_deref(), Some("date"), "{bad}");
        }
    }
}
