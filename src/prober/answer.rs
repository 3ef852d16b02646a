//! The answer to a probe, `GET <peer URL>/raft/probing`: etcd's prober
//! (xiang90/probing `prober.go`) takes only a 200 whose JSON body says
//! `"OK": true`, and reads the peer's clock from its `"Now"`.
//!
//! Pure: no I/O, the caller hands in the status, the `Date` header and the
//! body.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// The largest answer body read (etcd's is about 60 bytes); a longer one
/// fails the probe.
pub(super) const MAX_ANSWER_BYTES: usize = 4096;

/// Why a probe failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(super) enum ProbeError {
    /// The answer was not 200 (xiang90/probing `prober.go:63`).
    #[error("got unexpected HTTP status code {status} from {url}")]
    Status {
        /// The status received.
        status: u16,
        /// The URL probed.
        url: String,
    },
    /// The body is not a JSON object with a boolean `OK` and, if present,
    /// an RFC 3339 `Now`.
    #[error("failed to decode probing answer from {url}: {reason}")]
    Decode {
        /// What was wrong.
        reason: String,
        /// The URL probed.
        url: String,
    },
    /// The answer said `"OK": false`, or nothing.
    #[error("probing answer from {url} is not OK")]
    NotOk {
        /// The URL probed.
        url: String,
    },
    /// No answer: the connection failed, the request timed out or the
    /// body could not be read.
    #[error("probing {url}: {reason}")]
    Request {
        /// What went wrong.
        reason: String,
        /// The URL probed.
        url: String,
    },
}

/// The peer's clock, as its answer tells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerClock {
    /// The body's `"Now"`, to the nanosecond (what etcd reads).
    Now(SystemTime),
    /// The `Date` header, to the second, when the body has no `"Now"`.
    Date(SystemTime),
}

impl PeerClock {
    /// The best estimate of the peer's time when it answered: `Now`, or
    /// the middle of the `Date` header's second (the header is truncated
    /// to the second, so this halves the error).
    pub fn estimate(self) -> SystemTime {
        match self {
            PeerClock::Now(t) => t,
            PeerClock::Date(t) => t + Duration::from_millis(500),
        }
    }
}

/// Checks the answer from `url`: `Ok` with the peer's clock when it is a
/// 200 saying `"OK": true`, `Ok(None)` if it tells no time.
///
/// As Go's `json.Decoder` in the prober, the first JSON value of the body
/// is read, keys match without regard to case, unknown keys are ignored.
pub(super) fn check_answer(
    url: &str,
    status: u16,
    date: Option<&str>,
    body: &[u8],
) -> Result<Option<PeerClock>, ProbeError> {
    if status != 200 {
        return Err(ProbeError::Status {
            status,
            url: url.to_owned(),
        });
    }
    let decode = |reason: String| ProbeError::Decode {
        reason,
        url: url.to_owned(),
    };
    let value = serde_json::Deserializer::from_slice(body)
        .into_iter::<Value>()
        .next()
        .ok_or_else(|| decode("empty body".into()))?
        .map_err(|e| decode(e.to_string()))?;
    let Value::Object(fields) = value else {
        return Err(decode("not a JSON object".into()));
    };
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    };
    match field("OK") {
        Some(Value::Bool(true)) => {}
        None | Some(Value::Bool(false)) => {
            return Err(ProbeError::NotOk {
                url: url.to_owned(),
            })
        }
        Some(other) => return Err(decode(format!("OK is {other}, not a boolean"))),
    }
    match field("Now") {
        Some(Value::String(now)) => parse_rfc3339(now)
            .map(|t| Some(PeerClock::Now(t)))
            .ok_or_else(|| decode(format!("Now {now:?} is not an RFC 3339 time"))),
        Some(other) => Err(decode(format!("Now is {other}, not a time"))),
        None => Ok(date
            .and_then(|d| httpdate::parse_http_date(d).ok())
            .map(PeerClock::Date)),
    }
}

/// Parses an RFC 3339 time as Go's `time.Time` JSON decoding does
/// (`2006-01-02T15:04:05.999999999Z07:00`): a fraction of 1 to 9 digits is
/// optional, the zone is `Z` or `±hh:mm`.
pub(super) fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let year = digits(&b[0..4])?;
    let (month, day) = (digits(&b[5..7])?, digits(&b[8..10])?);
    let (hour, minute, second) = (
        digits(&b[11..13])?,
        digits(&b[14..16])?,
        digits(&b[17..19])?,
    );
    let valid_date = (1..=12).contains(&month) && day >= 1 && day <= days_in_month(year, month);
    if !valid_date || hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let (nanos, zone) = fraction(&b[19..])?;
    let offset = zone_offset(zone)?;
    let days = days_from_civil(year, month, day);
    let secs = days * 86_400 + (hour * 3600 + minute * 60 + second) - offset;
    let since_epoch = i128::from(secs) * 1_000_000_000 + i128::from(nanos);
    from_unix_nanos(since_epoch)
}

/// `.ddddddddd` (optional) and what follows it.
fn fraction(b: &[u8]) -> Option<(u32, &[u8])> {
    let Some(rest) = b.strip_prefix(b".") else {
        return Some((0, b));
    };
    let n = rest.iter().take_while(|c| c.is_ascii_digit()).count();
    if n == 0 || n > 9 {
        return None;
    }
    let value = u32::try_from(digits(&rest[..n])?).ok()?;
    Some((value * 10u32.pow(9 - n as u32), &rest[n..]))
}

/// The zone's offset from UTC in seconds: `Z`, or `+hh:mm` / `-hh:mm`.
fn zone_offset(b: &[u8]) -> Option<i64> {
    if b == b"Z" {
        return Some(0);
    }
    if b.len() != 6 || b[3] != b':' {
        return None;
    }
    let sign = match b[0] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (hours, minutes) = (digits(&b[1..3])?, digits(&b[4..6])?);
    if hours > 23 || minutes > 59 {
        return None;
    }
    Some(sign * (hours * 3600 + minutes * 60))
}

fn digits(b: &[u8]) -> Option<i64> {
    b.iter().try_fold(0i64, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + i64::from(c - b'0'))
    })
}

fn days_in_month(year: i64, month: i64) -> i64 {
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to the civil date (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn from_unix_nanos(nanos: i128) -> Option<SystemTime> {
    let magnitude = Duration::from_nanos(u64::try_from(nanos.unsigned_abs()).ok()?);
    if nanos >= 0 {
        UNIX_EPOCH.checked_add(magnitude)
    } else {
        UNIX_EPOCH.checked_sub(magnitude)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "http://127.0.0.1:2380/raft/probing";

    fn at(secs: u64, nanos: u32) -> SystemTime {
        UNIX_EPOCH + Duration::new(secs, nanos)
    }

    #[test]
    fn rfc3339_as_go_writes_it() {
        // 2023-11-14T22:13:20Z is 1_700_000_000.
        assert_eq!(
            parse_rfc3339("2023-11-14T22:13:20Z"),
            Some(at(1_700_000_000, 0))
        );
        assert_eq!(
            parse_rfc3339("2023-11-14T22:13:20.123456789Z"),
            Some(at(1_700_000_000, 123_456_789))
        );
        assert_eq!(
            parse_rfc3339("2023-11-15T00:13:20.5+02:00"),
            Some(at(1_700_000_000, 500_000_000))
        );
        assert_eq!(
            parse_rfc3339("2023-11-14T17:13:20-05:00"),
            Some(at(1_700_000_000, 0))
        );
        assert_eq!(
            parse_rfc3339("2024-02-29T00:00:00Z"),
            Some(at(1_709_164_800, 0))
        );
        assert_eq!(
            parse_rfc3339("1969-12-31T23:59:59Z"),
            UNIX_EPOCH.checked_sub(Duration::from_secs(1))
        );
    }

    #[test]
    fn rfc3339_rejects_what_go_rejects() {
        for bad in [
            "",
            "2023-11-14 22:13:20Z",
            "2023-11-14T22:13:20",
            "2023-13-14T22:13:20Z",
            "2023-02-29T22:13:20Z",
            "2023-11-14T24:00:00Z",
            "2023-11-14T22:13:20.Z",
            "2023-11-14T22:13:20.1234567891Z",
            "2023-11-14T22:13:20+0200",
            "2023-11-14T22:13:20+02:00x",
            "2023-11-14T22:13:2xZ",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn etcds_answer_gives_its_now() {
        let body = b"{\"OK\":true,\"Now\":\"2023-11-14T22:13:20.000000001Z\"}\n";
        let clock = check_answer(URL, 200, Some("Tue, 14 Nov 2023 22:13:20 GMT"), body);
        assert_eq!(clock, Ok(Some(PeerClock::Now(at(1_700_000_000, 1)))));
    }

    #[test]
    fn without_now_the_date_header_tells_the_time() {
        let clock = check_answer(
            URL,
            200,
            Some("Tue, 14 Nov 2023 22:13:20 GMT"),
            b"{\"ok\": true}",
        );
        assert_eq!(clock, Ok(Some(PeerClock::Date(at(1_700_000_000, 0)))));
        assert_eq!(
            clock.unwrap().unwrap().estimate(),
            at(1_700_000_000, 500_000_000)
        );
        assert_eq!(check_answer(URL, 200, None, b"{\"OK\":true}"), Ok(None));
        assert_eq!(
            check_answer(URL, 200, Some("yesterday"), b"{\"OK\":true}"),
            Ok(None)
        );
    }

    #[test]
    fn only_a_200_saying_ok_is_healthy() {
        assert_eq!(
            check_answer(URL, 404, None, b"").unwrap_err().to_string(),
            format!("got unexpected HTTP status code 404 from {URL}")
        );
        assert!(matches!(
            check_answer(URL, 200, None, b"{\"OK\":false}"),
            Err(ProbeError::NotOk { .. })
        ));
        assert!(matches!(
            check_answer(URL, 200, None, b"{}"),
            Err(ProbeError::NotOk { .. })
        ));
        for bad in [
            &b""[..],
            b"[]",
            b"{\"OK\":\"true\"}",
            b"{\"OK\":true,\"Now\":\"noon\"}",
            b"{\"OK\":tr",
        ] {
            assert!(
                matches!(
                    check_answer(URL, 200, None, bad),
                    Err(ProbeError::Decode { .. })
                ),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn trailing_bytes_after_the_object_are_ignored_as_go_does() {
        let body = b"{\"OK\":true,\"Now\":\"2023-11-14T22:13:20Z\"}\ngarbage";
        assert_eq!(
            check_answer(URL, 200, None, body),
            Ok(Some(PeerClock::Now(at(1_700_000_000, 0))))
        );
    }
}
