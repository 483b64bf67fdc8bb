//! When a pull runs: a cron expression read in a time zone.
//!
//! Five fields (`minute hour day month weekday`, as in crontab) or six with
//! seconds first (for short test intervals). Weekdays are best written by
//! name (`MON-FRI`): the cron crate numbers them 1 (Sunday) to 7.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

/// A parsed schedule.
#[derive(Debug, Clone)]
pub struct Schedule {
    cron: cron::Schedule,
    tz: Tz,
    text: String,
}

impl Schedule {
    /// Parses `expression` in time zone `timezone` (an IANA name).
    pub fn parse(expression: &str, timezone: &str) -> Result<Self, String> {
        let tz = Tz::from_str(timezone).map_err(|_| {
            format!("unknown time zone `{timezone}` (use an IANA name such as Asia/Jakarta)")
        })?;
        let fields = expression.split_whitespace().count();
        let full = match fields {
            5 => format!("0 {expression}"),
            6 => expression.to_string(),
            n => {
                return Err(format!(
                    "`{expression}` has {n} fields; a schedule has 5 (minute hour day month weekday) or 6 (seconds first)"
                ))
            }
        };
        let cron = cron::Schedule::from_str(&full)
            .map_err(|e| format!("bad schedule `{expression}`: {e}"))?;
        Ok(Self {
            cron,
            tz,
            text: expression.to_string(),
        })
    }

    /// The first firing strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .after(&after.with_timezone(&self.tz))
            .next()
            .map(|t| t.with_timezone(&Utc))
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn five_fields_in_jakarta() {
        let s = Schedule::parse("0 2 * * *", "Asia/Jakarta").expect("valid");
        let now = Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap();
        // 02:00 WIB (UTC+7) is 19:00 UTC.
        assert_eq!(
            s.next_after(now),
            Some(Utc.with_ymd_and_hms(2026, 11, 23, 19, 0, 0).unwrap())
        );
    }

    #[test]
    fn six_fields_and_errors() {
        let s = Schedule::parse("*/2 * * * * *", "UTC").expect("valid");
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 1).unwrap();
        assert_eq!(
            s.next_after(now),
            Some(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 2).unwrap())
        );
        assert!(Schedule::parse("0 2 * *", "UTC")
            .unwrap_err()
            .contains("4 fields"));
        assert!(Schedule::parse("0 2 * * *", "Mars/Olympus")
            .unwrap_err()
            .contains("unknown time zone"));
        assert!(Schedule::parse("0 25 * * *", "UTC").is_err());
    }
}
