//! The loopback actix-web server under every test server: one worker, no
//! signal handling, an ephemeral port unless a test asks for one.

use std::any::Any;
use std::net::SocketAddr;

use actix_web::dev::{Extensions, ServerHandle};
use actix_web::web::ServiceConfig;
use actix_web::{App, HttpServer};

/// Serves the routes `app` configures on `127.0.0.1:port` (`0` for an
/// ephemeral port) with one worker, so that concurrency within a worker is
/// what the tests see. `on_connect` runs for every accepted connection
/// before its first request is read.
pub fn serve<A, C>(app: A, port: u16, on_connect: C) -> (SocketAddr, ServerHandle)
where
    A: Fn(&mut ServiceConfig) + Clone + Send + 'static,
    C: Fn(&dyn Any, &mut Extensions) + Send + Sync + 'static,
{
    let server = HttpServer::new(move || App::new().configure(app.clone()))
        .workers(1)
        .disable_signals()
        .on_connect(on_connect)
        .bind(("127.0.0.1", port))
        .expect("bind a loopback port");
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    actix_rt::spawn(server);
    (addr, handle)
}

/// An `on_connect` hook that does nothing.
pub fn no_hook(_: &dyn Any, _: &mut Extensions) {}
