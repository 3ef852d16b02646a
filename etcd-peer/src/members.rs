//! etcd's `GET /members` route.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use rafthttp_pipeline::membership::InitialCluster;

/// etcd's `GET /members` answer, prepared once.
pub(crate) struct MembersJson {
    pub(crate) cluster_id: String,
    pub(crate) body: String,
}

/// `/members` as etcd's `peerMembersHandler` serves it
/// (`etcdserver/api/etcdhttp/peer.go`): a JSON list of the members with
/// `X-Etcd-Cluster-ID`. etcd reads it at start to see whether it was
/// already bootstrapped; none of our members has client URLs, so it was not.
pub(crate) async fn serve_members(
    req: HttpRequest,
    members: web::Data<MembersJson>,
) -> HttpResponse {
    if req.method() != actix_web::http::Method::GET {
        return HttpResponse::MethodNotAllowed()
            .insert_header((header::ALLOW, "GET"))
            .body("Method Not Allowed\n");
    }
    HttpResponse::Ok()
        .insert_header(("X-Etcd-Cluster-ID", members.cluster_id.clone()))
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .body(members.body.clone())
}

/// `[{"id":<decimal>,"peerURLs":[...],"name":"..."}]` and a newline, as
/// Go's `json.Encoder` writes etcd's `membership.Member`.
pub(crate) fn members_json(cluster: &InitialCluster) -> String {
    let members: Vec<String> = cluster
        .members
        .iter()
        .map(|m| {
            let urls: Vec<String> = m.peer_urls.iter().map(|u| json_string(u)).collect();
            format!(
                "{{\"id\":{},\"peerURLs\":[{}],\"name\":{}}}",
                m.id.0,
                urls.join(","),
                json_string(&m.name)
            )
        })
        .collect();
    format!("[{}]\n", members.join(","))
}

pub(crate) fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use rafthttp_pipeline::membership::InitialCluster;

    use super::{json_string, members_json};

    #[test]
    fn members_json_is_what_etcd_decodes() {
        let cluster =
            InitialCluster::parse("a=http://127.0.0.1:2380,b=http://127.0.0.1:2390", "tok")
                .unwrap();
        let json = members_json(&cluster);
        assert!(json.ends_with("]\n"));
        let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
        let ids: Vec<u64> = parsed
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_u64().unwrap())
            .collect();
        assert_eq!(ids, [0x71405583d3e2d5ce, 0xff9d11e786a34662]);
        assert_eq!(parsed[0]["peerURLs"][0], "http://127.0.0.1:2380");
        assert_eq!(json_string("a\"b\\\n"), "\"a\\\"b\\\\\\u000a\"");
    }
}
