//! `GET /metrics`: the user's registry in Prometheus' text format, as etcd
//! serves it (client_golang's `promhttp`).

use actix_web::http::header::ContentType;
use actix_web::{web, HttpResponse};
use prometheus::{Encoder, Registry, TextEncoder};

/// Where etcd serves its metrics (etcdhttp/metrics.go `PathMetrics`).
pub const METRICS_PATH: &str = "/metrics";

/// The text format's content type, as client_golang sends it
/// (prometheus/common expfmt `FmtText`).
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Mounts `GET` [`METRICS_PATH`] serving `registry` in an actix-web `App`
/// (`App::new().configure(metrics::http::configure(registry.clone()))`);
/// other methods get 405.
pub fn configure(registry: Registry) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.service(web::resource(METRICS_PATH).route(web::get().to(move || {
            let registry = registry.clone();
            async move { render(&registry) }
        })));
    }
}

/// `registry` in the text format: 200 with [`TEXT_CONTENT_TYPE`], or 500
/// with the reason if a collector produced something the format cannot
/// carry. For a route of your own.
pub fn render(registry: &Registry) -> HttpResponse {
    let mut body = Vec::new();
    match TextEncoder::new().encode(&registry.gather(), &mut body) {
        Ok(()) => HttpResponse::Ok()
            .insert_header(("Content-Type", TEXT_CONTENT_TYPE))
            .body(body),
        Err(e) => HttpResponse::InternalServerError()
            .insert_header(ContentType::plaintext())
            .body(format!("error encoding metrics: {e}\n")),
    }
}
