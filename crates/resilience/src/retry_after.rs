//! Reading a `Retry-After` header value.
//!
//! Providers that throttle us (Twilio, Stripe, Calendly, LLM APIs) say when to come back, either
//! as delta-seconds (`120`) or as an HTTP-date (`Wed, 21 Oct 2015 07:28:00 GMT`). Honouring
//! that is both politer and faster than guessing with backoff. The value is untrusted input, so
//! the result is capped: a destination cannot park a worker for a day.
//!
//! All three date forms of RFC 9110 §5.6.7 are accepted (IMF-fixdate, the obsolete RFC 850
//! form and asctime), as the RFC asks of recipients. `now` is passed in so the parse is a pure
//! function.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The header value was neither delta-seconds nor an HTTP-date.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Retry-After is neither delta-seconds nor an HTTP-date")]
pub struct InvalidRetryAfter;

/// How long to wait according to a `Retry-After` value, at most `cap`.
///
/// A date in the past means "now" (zero). Surrounding whitespace is ignored.
pub fn parse_retry_after(
    value: &str,
    now: SystemTime,
    cap: Duration,
) -> Result<Duration, InvalidRetryAfter> {
    let value = value.trim();
    if value.is_empty() {
        return Err(InvalidRetryAfter);
    }
    if value.bytes().all(|b| b.is_ascii_digit()) {
        // All digits but too large for u64 is still a valid (absurd) delay: cap it.
        let wait = value
            .parse::<u64>()
            .map_or(Duration::MAX, Duration::from_secs);
        return Ok(wait.min(cap));
    }
    let at = parse_http_date(value, now)?;
    Ok(at.duration_since(now).unwrap_or(Duration::ZERO).min(cap))
}

const DAY_NAMES: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
const LONG_DAY_NAMES: [&str; 7] = [
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
const MONTH_NAMES: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// A calendar date and time of day in GMT, as written in the header.
struct DateTime {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
}

fn parse_http_date(value: &str, now: SystemTime) -> Result<SystemTime, InvalidRetryAfter> {
    let tokens: Vec<&str> = value.split_ascii_whitespace().collect();
    let date = match tokens.as_slice() {
        // IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
        [weekday, day, month, year, time, "GMT"] => {
            expect_weekday(weekday.strip_suffix(','), &DAY_NAMES)?;
            let (hour, minute, second) = parse_time(time)?;
            DateTime {
                year: parse_number(year, 4)?,
                month: parse_month(month)?,
                day: parse_u32(day, 2)?,
                hour,
                minute,
                second,
            }
        }
        // RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
        [weekday, date, time, "GMT"] => {
            expect_weekday(weekday.strip_suffix(','), &LONG_DAY_NAMES)?;
            let mut parts = date.split('-');
            let (Some(day), Some(month), Some(year), None) =
                (parts.next(), parts.next(), parts.next(), parts.next())
            else {
                return Err(InvalidRetryAfter);
            };
            let (hour, minute, second) = parse_time(time)?;
            DateTime {
                year: full_year(parse_number(year, 2)?, now),
                month: parse_month(month)?,
                day: parse_u32(day, 2)?,
                hour,
                minute,
                second,
            }
        }
        // asctime: Sun Nov  6 08:49:37 1994
        [weekday, month, day, time, year] => {
            expect_weekday(Some(weekday), &DAY_NAMES)?;
            let (hour, minute, second) = parse_time(time)?;
            let day = if day.len() == 1 {
                parse_u32(&format!("0{day}"), 2)?
            } else {
                parse_u32(day, 2)?
            };
            DateTime {
                year: parse_number(year, 4)?,
                month: parse_month(month)?,
                day,
                hour,
                minute,
                second,
            }
        }
        _ => return Err(InvalidRetryAfter),
    };
    to_system_time(&date)
}

fn expect_weekday(token: Option<&str>, names: &[&str]) -> Result<(), InvalidRetryAfter> {
    // The weekday is redundant; it is checked for form only, never against the date.
    match token {
        Some(token) if names.contains(&token) => Ok(()),
        _ => Err(InvalidRetryAfter),
    }
}

fn parse_month(token: &str) -> Result<u32, InvalidRetryAfter> {
    MONTH_NAMES
        .iter()
        .zip(1..)
        .find_map(|(name, number)| (*name == token).then_some(number))
        .ok_or(InvalidRetryAfter)
}

fn parse_number(token: &str, digits: usize) -> Result<i64, InvalidRetryAfter> {
    if token.len() != digits || !token.bytes().all(|b| b.is_ascii_digit()) {
        return Err(InvalidRetryAfter);
    }
    token.parse().map_err(|_| InvalidRetryAfter)
}

fn parse_u32(token: &str, digits: usize) -> Result<u32, InvalidRetryAfter> {
    parse_number(token, digits).and_then(|n| u32::try_from(n).map_err(|_| InvalidRetryAfter))
}

fn parse_time(token: &str) -> Result<(u32, u32, u32), InvalidRetryAfter> {
    let mut parts = token.split(':');
    let (Some(hour), Some(minute), Some(second), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(InvalidRetryAfter);
    };
    let (hour, minute, second) = (
        parse_u32(hour, 2)?,
        parse_u32(minute, 2)?,
        parse_u32(second, 2)?,
    );
    // 60 is allowed for a leap second, as RFC 9110 permits.
    if hour > 23 || minute > 59 || second > 60 {
        return Err(InvalidRetryAfter);
    }
    Ok((hour, minute, second))
}

/// RFC 9110: a two-digit year that looks more than 50 years in the future is in the past.
fn full_year(two_digits: i64, now: SystemTime) -> i64 {
    let now_secs = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let now_year = civil_year(now_secs.div_euclid(86_400));
    let century = now_year - now_year.rem_euclid(100);
    let year = century + two_digits;
    if year > now_year + 50 {
        year - 100
    } else {
        year
    }
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 for a proleptic Gregorian date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The year of a day counted from 1970-01-01 (inverse of [`days_from_civil`], year only).
fn civil_year(days: i64) -> i64 {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let year = year_of_era + era * 400;
    if month_index >= 10 { year + 1 } else { year }
}

fn to_system_time(date: &DateTime) -> Result<SystemTime, InvalidRetryAfter> {
    if date.day == 0 || date.day > days_in_month(date.year, date.month) {
        return Err(InvalidRetryAfter);
    }
    let days = days_from_civil(date.year, date.month, date.day);
    let seconds = days * 86_400
        + i64::from(date.hour) * 3_600
        + i64::from(date.minute) * 60
        + i64::from(date.second);
    // A date before 1970 is long past: treat it as the epoch, which yields a zero wait.
    let seconds = u64::try_from(seconds).unwrap_or(0);
    UNIX_EPOCH
        .checked_add(Duration::from_secs(seconds))
        .ok_or(InvalidRetryAfter)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CAP: Duration = Duration::from_secs(3_600);

    /// 1994-11-06T08:49:37Z, the example date of RFC 9110.
    const RFC_EXAMPLE: u64 = 784_111_777;

    fn at(seconds: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(seconds)
    }

    /// The IMF-fixdate writer, for round trips (the crate itself only reads dates).
    fn imf_fixdate(seconds: u64) -> String {
        let days = i64::try_from(seconds / 86_400).unwrap_or(0);
        let rest = seconds % 86_400;
        // Find month and day by walking from the year start: slow but obviously right.
        let year = civil_year(days);
        let mut day_of_year = days - days_from_civil(year, 1, 1);
        let mut month = 1;
        while day_of_year >= i64::from(days_in_month(year, month)) {
            day_of_year -= i64::from(days_in_month(year, month));
            month += 1;
        }
        // 1970-01-01 was a Thursday (index 3 from Monday).
        let weekday = DAY_NAMES[usize::try_from((days + 3).rem_euclid(7)).unwrap_or(0)];
        format!(
            "{weekday}, {:02} {} {year:04} {:02}:{:02}:{:02} GMT",
            day_of_year + 1,
            MONTH_NAMES[(month - 1) as usize],
            rest / 3_600,
            rest % 3_600 / 60,
            rest % 60,
        )
    }

    #[test]
    fn delta_seconds_are_read_as_seconds() {
        assert_eq!(
            parse_retry_after("120", at(0), CAP),
            Ok(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("  7 ", at(0), CAP),
            Ok(Duration::from_secs(7))
        );
        assert_eq!(parse_retry_after("0", at(0), CAP), Ok(Duration::ZERO));
    }

    #[test]
    fn delta_seconds_are_capped_even_when_absurd() {
        assert_eq!(parse_retry_after("86400", at(0), CAP), Ok(CAP));
        assert_eq!(
            parse_retry_after("99999999999999999999999999", at(0), CAP),
            Ok(CAP)
        );
    }

    #[test]
    fn imf_fixdate_gives_the_time_until_that_date() {
        let now = at(RFC_EXAMPLE - 30);
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now, CAP),
            Ok(Duration::from_secs(30))
        );
    }

    #[test]
    fn obsolete_date_forms_are_accepted() {
        let now = at(RFC_EXAMPLE - 45);
        assert_eq!(
            parse_retry_after("Sunday, 06-Nov-94 08:49:37 GMT", now, CAP),
            Ok(Duration::from_secs(45))
        );
        assert_eq!(
            parse_retry_after("Sun Nov  6 08:49:37 1994", now, CAP),
            Ok(Duration::from_secs(45))
        );
    }

    #[test]
    fn two_digit_years_resolve_to_the_nearest_century() {
        // Seen from 2030, "30" is 2030 and "99" is 1999 (more than 50 years ahead otherwise).
        let now_2030 = at(1_893_456_000); // 2030-01-01T00:00:00Z
        let in_2030 = parse_retry_after("Tuesday, 01-Jan-30 00:01:00 GMT", now_2030, CAP);
        assert_eq!(in_2030, Ok(Duration::from_secs(60)));
        let in_1999 = parse_retry_after("Friday, 31-Dec-99 23:59:59 GMT", now_2030, CAP);
        assert_eq!(in_1999, Ok(Duration::ZERO));
    }

    #[test]
    fn a_date_in_the_past_means_now() {
        let now = at(RFC_EXAMPLE + 1_000);
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now, CAP),
            Ok(Duration::ZERO)
        );
    }

    #[test]
    fn a_far_date_is_capped() {
        let now = at(RFC_EXAMPLE);
        assert_eq!(
            parse_retry_after("Sun, 06 Nov 2094 08:49:37 GMT", now, CAP),
            Ok(CAP)
        );
    }

    #[test]
    fn malformed_values_are_rejected() {
        for value in [
            "",
            "   ",
            "-5",
            "1.5",
            "soon",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 31 Feb 1994 08:49:37 GMT",
            "Sun, 29 Feb 1900 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Xyz, 06 Nov 1994 08:49:37 GMT",
            "Sun 06 Nov 1994 08:49:37 GMT",
            "Sun, 6 Nov 1994 08:49:37 GMT",
            "Sunday, 06-Nov-1994 08:49:37 GMT",
        ] {
            assert_eq!(
                parse_retry_after(value, at(0), CAP),
                Err(InvalidRetryAfter),
                "{value:?}"
            );
        }
    }

    #[test]
    fn leap_day_is_a_valid_date() {
        let now = at(951_782_400 - 10); // 2000-02-29T00:00:00Z minus 10 s
        assert_eq!(
            parse_retry_after("Tue, 29 Feb 2000 00:00:00 GMT", now, CAP),
            Ok(Duration::from_secs(10))
        );
    }

    proptest! {
        #[test]
        fn imf_fixdate_round_trips(date in 0u64..8_000_000_000, ahead in 0u64..7_200) {
            let value = imf_fixdate(date + ahead);
            let wait = parse_retry_after(&value, at(date), CAP);
            prop_assert_eq!(wait, Ok(Duration::from_secs(ahead).min(CAP)), "{}", value);
        }

        #[test]
        fn any_digits_parse_to_at_most_the_cap(seconds in any::<u64>()) {
            let wait = parse_retry_after(&seconds.to_string(), at(0), CAP);
            prop_assert_eq!(wait, Ok(Duration::from_secs(seconds).min(CAP)));
        }

        #[test]
        fn arbitrary_text_never_panics(value in ".{0,40}") {
            let _ = parse_retry_after(&value, at(RFC_EXAMPLE), CAP);
        }
    }
}
