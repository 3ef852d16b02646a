//! `/version`: etcd's `versionHandler`
//! (`etcdserver/api/etcdhttp/base.go:58-84`), which etcd members query on
//! a peer URL to learn the peer's server and cluster versions.

use actix_web::http::{header, Method};
use actix_web::{HttpRequest, HttpResponse};

use super::answer::{go_style, method_not_allowed};
use crate::version::{CLUSTER_VERSION, SERVER_VERSION};

/// `GET` only; 200 with etcd's version JSON.
pub(crate) async fn serve(req: HttpRequest) -> HttpResponse {
    if req.method() != Method::GET {
        return method_not_allowed("GET");
    }
    go_style(
        HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, "application/json"))
            .body(format!(
                "{{\"etcdserver\":\"{SERVER_VERSION}\",\"etcdcluster\":\"{CLUSTER_VERSION}\"}}"
            )),
    )
}
