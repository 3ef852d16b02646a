//! `/raft/probing`: etcd's prober target (`xiang90/probing`,
//! `server.go:21-25`), which etcd members poll to measure the round trip
//! and clock difference to a peer.

use std::time::SystemTime;

use actix_web::http::header;
use actix_web::HttpResponse;

use super::answer::go_style;
use crate::etcd_text::{rfc3339_nano, GO_TEXT_PLAIN};

/// Any method; 200 with `{"OK":true,"Now":"<RFC 3339 time>"}` and a
/// newline, typed as Go sniffs it.
pub(crate) async fn serve() -> HttpResponse {
    go_style(
        HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, GO_TEXT_PLAIN))
            .body(health_body(SystemTime::now())),
    )
}

/// The prober's JSON health at `now`, as Go's `json.Encoder` writes it.
fn health_body(now: SystemTime) -> String {
    format!("{{\"OK\":true,\"Now\":\"{}\"}}\n", rfc3339_nano(now))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;

    #[test]
    fn health_is_the_probers_json() {
        let now = UNIX_EPOCH + Duration::new(1_700_000_000, 5_000_000);
        assert_eq!(
            health_body(now),
            "{\"OK\":true,\"Now\":\"2023-11-14T22:13:20.005Z\"}\n"
        );
    }
}
