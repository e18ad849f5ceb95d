//! When each reminder goes out: pure arithmetic on business time, kept apart from I/O so every
//! rule can be tested, DST nights included.
//!
//! A reminder is due `offset` hours before the visit. Texts go out only inside the send window
//! (e.g. 08:00–21:00 local, the patient's zone else the clinic's). A due time outside the window
//! moves to the latest allowed time before it if that is still after the previous message (the
//! earlier reminder, or now); otherwise to the earliest allowed time after it. A reminder that
//! would land at or after the visit's start, or that is already in the past, is skipped.

use aro_domain::policy::SendWindow;
use chrono::{DateTime, Duration, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedReminder {
    /// `reminder_48h`, `reminder_24h`: the template name and the reminder's identity.
    pub kind: String,
    pub offset_hours: u32,
    pub nominal: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// The nominal time had already passed when the booking arrived.
    BookedTooLate,
    /// No allowed time exists between the previous message and the visit.
    NoSendWindowBeforeVisit,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BookedTooLate => "booked_too_late",
            Self::NoSendWindowBeforeVisit => "no_send_window_before_visit",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedReminder {
    pub kind: String,
    pub offset_hours: u32,
    pub reason: SkipReason,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReminderPlan {
    pub reminders: Vec<PlannedReminder>,
    pub skipped: Vec<SkippedReminder>,
}

pub fn reminder_kind(offset_hours: u32) -> String {
    format!("reminder_{offset_hours}h")
}

/// The UTC instant of a local wall-clock time. In the spring-forward gap the wall time does not
/// exist: the instant the clocks jump to is used. In the fall-back hour it exists twice: the
/// first one is used, so nothing is sent an hour late.
pub fn local_to_utc(zone: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    match zone.from_local_datetime(&local) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
        LocalResult::None => {
            // Walk forward minute by minute to the end of the gap (gaps are at most a few hours).
            let mut probe = local;
            for _ in 0..(4 * 60) {
                probe += Duration::minutes(1);
                if let Some(t) = zone.from_local_datetime(&probe).earliest() {
                    return t.with_timezone(&Utc);
                }
            }
            // Unreachable for real zones; fall back to reading the wall time as UTC.
            Utc.from_utc_datetime(&local)
        }
    }
}

fn window_bounds(zone: Tz, day: NaiveDate, window: SendWindow) -> (DateTime<Utc>, DateTime<Utc>) {
    (
        local_to_utc(zone, day.and_time(window.start.to_naive())),
        local_to_utc(zone, day.and_time(window.end.to_naive())),
    )
}

/// Whether `t` is inside the window (start and end included) in `zone`.
pub fn in_window(t: DateTime<Utc>, zone: Tz, window: SendWindow) -> bool {
    let day = t.with_timezone(&zone).date_naive();
    let (start, end) = window_bounds(zone, day, window);
    t >= start && t <= end
}

/// The latest allowed instant at or before `t`.
pub fn latest_allowed_at_or_before(
    t: DateTime<Utc>,
    zone: Tz,
    window: SendWindow,
) -> DateTime<Utc> {
    if in_window(t, zone, window) {
        return t;
    }
    let day = t.with_timezone(&zone).date_naive();
    let (start, end) = window_bounds(zone, day, window);
    if t > end {
        return end;
    }
    debug_assert!(t < start);
    let previous = day.pred_opt().unwrap_or(day);
    window_bounds(zone, previous, window).1
}

/// The earliest allowed instant at or after `t`.
pub fn earliest_allowed_at_or_after(
    t: DateTime<Utc>,
    zone: Tz,
    window: SendWindow,
) -> DateTime<Utc> {
    if in_window(t, zone, window) {
        return t;
    }
    let day = t.with_timezone(&zone).date_naive();
    let (start, end) = window_bounds(zone, day, window);
    if t < start {
        return start;
    }
    debug_assert!(t > end);
    let next = day.succ_opt().unwrap_or(day);
    window_bounds(zone, next, window).0
}

/// Plans the reminders of one visit. `offsets` are hours before the visit, largest first;
/// `now` is business time; `zone` the patient's (else the clinic's).
pub fn plan_reminders(
    starts_at: DateTime<Utc>,
    now: DateTime<Utc>,
    offsets: &[u32],
    window: SendWindow,
    zone: Tz,
) -> ReminderPlan {
    let mut plan = ReminderPlan::default();
    let mut previous = now;
    for &offset in offsets {
        let kind = reminder_kind(offset);
        let nominal = starts_at - Duration::hours(i64::from(offset));
        if nominal < now {
            plan.skipped.push(SkippedReminder {
                kind,
                offset_hours: offset,
                reason: SkipReason::BookedTooLate,
            });
            continue;
        }
        let before = latest_allowed_at_or_before(nominal, zone, window);
        let due = if before > previous {
            before
        } else {
            earliest_allowed_at_or_after(nominal.max(previous), zone, window)
        };
        if due >= starts_at || due <= previous && !plan.reminders.is_empty() {
            plan.skipped.push(SkippedReminder {
                kind,
                offset_hours: offset,
                reason: SkipReason::NoSendWindowBeforeVisit,
            });
            continue;
        }
        previous = due;
        plan.reminders.push(PlannedReminder {
            kind,
            offset_hours: offset,
            nominal,
            due_at: due,
        });
    }
    plan
}

/// When a message that is due at `t` may go out: `t` itself inside the window, else the next
/// window opening (used for follow-ups such as review requests and digests).
pub fn next_send_time(t: DateTime<Utc>, zone: Tz, window: SendWindow) -> DateTime<Utc> {
    earliest_allowed_at_or_after(t, zone, window)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aro_domain::policy::LocalTime;

    fn window() -> SendWindow {
        SendWindow::default()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn ny() -> Tz {
        "America/New_York".parse().unwrap()
    }

    fn la() -> Tz {
        "America/Los_Angeles".parse().unwrap()
    }

    #[test]
    fn reminders_inside_the_window_go_out_at_their_nominal_time() {
        // Visit Fri 15 Mar 2030 14:00 in New York (18:00Z).
        let start = utc("2030-03-15T18:00:00Z");
        let plan = plan_reminders(
            start,
            utc("2030-03-01T00:00:00Z"),
            &[48, 24],
            window(),
            ny(),
        );
        let due: Vec<_> = plan.reminders.iter().map(|r| r.due_at).collect();
        assert_eq!(
            due,
            vec![utc("2030-03-13T18:00:00Z"), utc("2030-03-14T18:00:00Z")]
        );
        assert_eq!(plan.reminders[0].kind, "reminder_48h");
        assert!(plan.skipped.is_empty());
    }

    #[test]
    fn an_early_morning_visit_is_reminded_the_evening_before() {
        // Visit 07:00 local in Los Angeles; nominal 07:00 two days and one day before, both
        // before 08:00: move to 21:00 the previous evening.
        let start = utc("2030-06-12T14:00:00Z"); // 07:00 PDT
        let plan = plan_reminders(
            start,
            utc("2030-06-01T00:00:00Z"),
            &[48, 24],
            window(),
            la(),
        );
        let due: Vec<_> = plan
            .reminders
            .iter()
            .map(|r| r.due_at.with_timezone(&la()).to_string())
            .collect();
        assert_eq!(
            due,
            vec!["2030-06-09 21:00:00 PDT", "2030-06-10 21:00:00 PDT"]
        );
    }

    #[test]
    fn the_patients_zone_decides_not_the_clinics_or_the_servers() {
        // 22:30 in New York is 19:30 in Los Angeles: inside the patient's window.
        let start = utc("2030-06-12T02:30:00Z") + Duration::hours(48);
        let now = utc("2030-06-01T00:00:00Z");
        let for_la = plan_reminders(start, now, &[48], window(), la());
        assert_eq!(for_la.reminders[0].due_at, utc("2030-06-12T02:30:00Z"));
        let for_ny = plan_reminders(start, now, &[48], window(), ny());
        assert_eq!(
            for_ny.reminders[0].due_at.with_timezone(&ny()).to_string(),
            "2030-06-11 21:00:00 EDT"
        );
    }

    #[test]
    fn a_booking_made_less_than_48h_ahead_gets_only_the_reminders_still_ahead() {
        let start = utc("2030-03-15T18:00:00Z");
        let now = start - Duration::hours(30);
        let plan = plan_reminders(start, now, &[48, 24], window(), ny());
        assert_eq!(plan.reminders.len(), 1);
        assert_eq!(plan.reminders[0].kind, "reminder_24h");
        assert_eq!(plan.skipped[0].reason, SkipReason::BookedTooLate);
    }

    #[test]
    fn when_the_latest_earlier_time_is_not_after_the_previous_message_the_next_opening_is_used() {
        // Visit 08:30 New York. 24h reminder nominal 08:30 the day before (inside).
        // 48h nominal 08:30 two days before (inside). Now: 07:00 two days before.
        let start = utc("2030-03-15T12:30:00Z"); // 08:30 EDT
        let now = utc("2030-03-13T11:00:00Z"); // 07:00 EDT, 49.5 h before
        let plan = plan_reminders(start, now, &[48, 24], window(), ny());
        assert_eq!(plan.reminders[0].due_at, utc("2030-03-13T12:30:00Z"));
        // A visit at 08:05 with now 07:00 the same morning: 1h offset nominal 07:05 is outside,
        // the latest earlier time (21:00 yesterday) precedes now, the earliest after (08:00) is
        // before the visit: send at 08:00.
        let start = utc("2030-03-15T12:05:00Z");
        let now = utc("2030-03-15T11:00:00Z");
        let plan = plan_reminders(start, now, &[1], window(), ny());
        assert_eq!(plan.reminders[0].due_at, utc("2030-03-15T12:00:00Z"));
    }

    #[test]
    fn a_reminder_that_could_only_go_out_after_the_visit_starts_is_skipped() {
        // Visit 07:30, booked at 06:00 the same day, 1h reminder: nominal 06:30 outside, the
        // latest earlier is yesterday 21:00 (before now), the earliest after is 08:00 (after the
        // visit): skipped.
        let start = utc("2030-03-15T11:30:00Z");
        let now = utc("2030-03-15T10:00:00Z");
        let plan = plan_reminders(start, now, &[1], window(), ny());
        assert!(plan.reminders.is_empty());
        assert_eq!(plan.skipped[0].reason, SkipReason::NoSendWindowBeforeVisit);
    }

    #[test]
    fn the_spring_forward_night_has_no_0230_and_the_window_still_holds() {
        // New York springs forward on 2030-03-10 at 02:00 → 03:00.
        let gap = NaiveDate::from_ymd_opt(2030, 3, 10)
            .unwrap()
            .and_hms_opt(2, 30, 0)
            .unwrap();
        assert_eq!(local_to_utc(ny(), gap), utc("2030-03-10T07:00:00Z")); // 03:00 EDT
        // A window opening at 02:30 on that night opens when the clocks reach 03:00.
        let w = SendWindow {
            start: LocalTime {
                hour: 2,
                minute: 30,
            },
            end: LocalTime {
                hour: 21,
                minute: 0,
            },
        };
        assert_eq!(
            earliest_allowed_at_or_after(utc("2030-03-10T06:00:00Z"), ny(), w),
            utc("2030-03-10T07:00:00Z")
        );
        // Visit Mon 2030-03-11 09:00 EDT. Offsets are real hours: the 48h reminder is due Sat
        // 08:00 EST (an hour earlier on the wall clock), the 24h one Sun 09:00 EDT.
        let start = utc("2030-03-11T13:00:00Z");
        let plan = plan_reminders(
            start,
            utc("2030-03-01T00:00:00Z"),
            &[48, 24],
            window(),
            ny(),
        );
        let local: Vec<_> = plan
            .reminders
            .iter()
            .map(|r| r.due_at.with_timezone(&ny()).to_string())
            .collect();
        assert_eq!(
            local,
            vec!["2030-03-09 08:00:00 EST", "2030-03-10 09:00:00 EDT"]
        );
    }

    #[test]
    fn the_fall_back_night_uses_the_first_0130() {
        // New York falls back on 2030-11-03 at 02:00 → 01:00: 01:30 happens twice.
        let twice = NaiveDate::from_ymd_opt(2030, 11, 3)
            .unwrap()
            .and_hms_opt(1, 30, 0)
            .unwrap();
        assert_eq!(local_to_utc(ny(), twice), utc("2030-11-03T05:30:00Z")); // 01:30 EDT
        // A reminder due 22:00 local on the fall-back evening (outside) goes at 21:00 the same
        // evening, which is an EST instant.
        let start = utc("2030-11-05T03:00:00Z"); // Mon 22:00 EST
        let plan = plan_reminders(start, utc("2030-10-20T00:00:00Z"), &[48], window(), ny());
        assert_eq!(
            plan.reminders[0].due_at.with_timezone(&ny()).to_string(),
            "2030-11-02 21:00:00 EDT"
        );
        assert!(
            plan.reminders
                .iter()
                .all(|r| in_window(r.due_at, ny(), window()))
        );
    }

    #[test]
    fn planned_reminders_are_always_in_the_window_in_order_and_before_the_visit() {
        let zones = [
            "America/New_York",
            "America/Los_Angeles",
            "Europe/Madrid",
            "Australia/Sydney",
        ];
        let mut t = utc("2030-01-01T00:00:00Z");
        for i in 0..2000 {
            t += Duration::minutes(263);
            let zone: Tz = zones[i % zones.len()].parse().unwrap();
            let now = t - Duration::hours((i % 80) as i64);
            let plan = plan_reminders(t, now, &[48, 24], window(), zone);
            let mut prev = now;
            for r in &plan.reminders {
                assert!(
                    in_window(r.due_at, zone, window()),
                    "{r:?} at {t} in {zone}"
                );
                assert!(
                    r.due_at > prev || (r.due_at >= prev && prev == now),
                    "{r:?} after {prev}"
                );
                assert!(r.due_at < t, "{r:?} before the visit {t}");
                prev = r.due_at;
            }
            assert_eq!(plan.reminders.len() + plan.skipped.len(), 2);
        }
    }
}
