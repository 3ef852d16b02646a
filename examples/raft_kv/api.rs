//! The node's small HTTP API for clients:
//!
//! | request | answer |
//! |---|---|
//! | `PUT /kv/{key}` (body: value) | 204 once applied on this node (the leader); 503 with `X-Raft-Leader` elsewhere |
//! | `GET /kv/{key}` | 200 and the value, or 404 |
//! | `GET /kv` | 200 and the whole map as JSON |
//! | `GET /status` | 200 and the node's status as JSON |
//! | `PUT /members/{id}` (body: peer URL) | 204 once the member is added |
//! | `DELETE /members/{id}` | 204 once the member is removed |

use std::io;

use actix::prelude::*;
use actix_web::dev::ServerHandle;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::json;

use crate::node::{ChangeMember, Dump, Get, GetStatus, Node, NotApplied, Propose};

/// The header that names the leader on a 503.
pub const LEADER_HEADER: &str = "X-Raft-Leader";

/// Serves the API for `node` on a free loopback port; returns its URL.
pub fn serve(node: Addr<Node>) -> io::Result<(String, ServerHandle)> {
    let server = HttpServer::new(move || {
        App::new()
            .app_data(web::Data::new(node.clone()))
            .route("/kv/{key}", web::put().to(put))
            .route("/kv/{key}", web::get().to(get))
            .route("/kv", web::get().to(all))
            .route("/status", web::get().to(status))
            .route("/members/{id}", web::put().to(add_member))
            .route("/members/{id}", web::delete().to(remove_member))
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .bind(("127.0.0.1", 0))?;
    let url = format!("http://{}", server.addrs()[0]);
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    Ok((url, handle))
}

type NodeData = web::Data<Addr<Node>>;

fn param(req: &HttpRequest, name: &str) -> String {
    req.match_info().get(name).unwrap_or_default().to_owned()
}

/// The answer to a proposal: 204 once applied, 503 if not.
fn applied(answer: Result<Result<u64, NotApplied>, MailboxError>) -> HttpResponse {
    match answer {
        Ok(Ok(index)) => HttpResponse::NoContent()
            .insert_header(("X-Raft-Index", index.to_string()))
            .finish(),
        Ok(Err(NotApplied::NotLeader(leader))) => HttpResponse::ServiceUnavailable()
            .insert_header((LEADER_HEADER, leader.to_string()))
            .finish(),
        Ok(Err(NotApplied::Retry)) => HttpResponse::ServiceUnavailable().finish(),
        Err(_) => HttpResponse::InternalServerError().finish(),
    }
}

async fn put(req: HttpRequest, body: web::Bytes, node: NodeData) -> HttpResponse {
    let Ok(value) = String::from_utf8(body.to_vec()) else {
        return HttpResponse::BadRequest().body("value must be UTF-8");
    };
    let key = param(&req, "key");
    applied(node.send(Propose { key, value }).await)
}

async fn get(req: HttpRequest, node: NodeData) -> HttpResponse {
    match node.send(Get(param(&req, "key"))).await {
        Ok(Some(value)) => HttpResponse::Ok().body(value),
        Ok(None) => HttpResponse::NotFound().finish(),
        Err(_) => HttpResponse::InternalServerError().finish(),
    }
}

async fn all(node: NodeData) -> HttpResponse {
    match node.send(Dump).await {
        Ok(map) => HttpResponse::Ok()
            .content_type("application/json")
            .body(json!(map).to_string()),
        Err(_) => HttpResponse::InternalServerError().finish(),
    }
}

async fn status(node: NodeData) -> HttpResponse {
    let Ok(s) = node.send(GetStatus).await else {
        return HttpResponse::InternalServerError().finish();
    };
    let body = json!({
        "id": s.id, "leader": s.leader, "term": s.term, "commit": s.commit,
        "applied": s.applied, "keys": s.keys,
        "snapshots_received": s.snapshots_received, "snapshots_sent": s.snapshots_sent,
    });
    HttpResponse::Ok()
        .content_type("application/json")
        .body(body.to_string())
}

async fn add_member(req: HttpRequest, body: web::Bytes, node: NodeData) -> HttpResponse {
    change_member(
        &req,
        Some(String::from_utf8_lossy(&body).into_owned()),
        node,
    )
    .await
}

async fn remove_member(req: HttpRequest, node: NodeData) -> HttpResponse {
    change_member(&req, None, node).await
}

async fn change_member(req: &HttpRequest, url: Option<String>, node: NodeData) -> HttpResponse {
    let Ok(id) = param(req, "id").parse() else {
        return HttpResponse::BadRequest().body("member ids are decimal");
    };
    applied(node.send(ChangeMember { id, url }).await)
}
