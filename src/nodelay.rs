//! `TCP_NODELAY` on both ends of every pipeline connection.
//!
//! A large request goes out in several writes, the last of them a few
//! bytes. With Nagle's algorithm on, the kernel holds that last write until
//! the peer's delayed ACK comes back, and every large message stalls for
//! it. Go sets `TCP_NODELAY` on every TCP connection by default, so etcd's
//! peers never wait; this module does the same for the crate:
//!
//! - The senders' client opens every connection with `TCP_NODELAY` set.
//! - [`on_connect`] is for the server that hosts the
//!   [`receiver`](crate::receiver): the crate does not build the
//!   `HttpServer`, so pass it to `HttpServer::on_connect` before `bind`.
//!   (actix-web 4.13 and later also offer `HttpServer::tcp_nodelay(true)`,
//!   which does the same.)
//!
//! ```no_run
//! # use actix_web::{App, HttpServer};
//! # use rafthttp_pipeline::{nodelay, receiver::{self, ReceiverConfig}};
//! # async fn run(config: ReceiverConfig) -> std::io::Result<()> {
//! HttpServer::new(move || App::new().configure(receiver::configure(config.clone())))
//!     .on_connect(nodelay::on_connect)
//!     .bind(("127.0.0.1", 2380))?
//!     .run()
//!     .await
//! # }
//! ```

use std::any::Any;

use actix_service::{Service, ServiceExt as _};
use actix_tls::connect::{ConnectError, ConnectInfo, Connection, Connector, Resolver};
use actix_web::dev::Extensions;
use actix_web::rt::net::TcpStream;
use awc::http::Uri;

/// The TCP connector for `awc::Connector::connector`: resolves and
/// connects as awc's default connector does, then sets `TCP_NODELAY` on
/// the new stream. awc's own connect timeout still bounds it.
pub(crate) fn connector(
) -> impl Service<ConnectInfo<Uri>, Response = Connection<Uri, TcpStream>, Error = ConnectError> + Clone
{
    Connector::new(Resolver::default())
        .service()
        .map(|connection: Connection<Uri, TcpStream>| {
            set_nodelay(connection.io_ref());
            connection
        })
}

/// A hook for `HttpServer::on_connect`: sets `TCP_NODELAY` on each TCP
/// connection the server accepts, plain or, with the `tls` feature, under
/// rustls 0.23 (`bind_rustls_0_23`).
pub fn on_connect(connection: &dyn Any, _: &mut Extensions) {
    if let Some(stream) = connection.downcast_ref::<TcpStream>() {
        set_nodelay(stream);
    }
    #[cfg(feature = "tls")]
    if let Some(stream) =
        connection.downcast_ref::<actix_tls::accept::rustls_0_23::TlsStream<TcpStream>>()
    {
        set_nodelay(stream.get_ref().0);
    }
}

/// Sets the option; a failure costs speed only, so it is logged, not
/// fatal (Go ignores it too).
fn set_nodelay(stream: &TcpStream) {
    if let Err(err) = stream.set_nodelay(true) {
        log::warn!("cannot set TCP_NODELAY: {err}");
    }
}

#[cfg(test)]
mod tests {
    use actix_service::Service as _;
    use actix_tls::connect::{ConnectInfo, Connector, Resolver};
    use awc::http::Uri;

    #[actix_rt::test]
    async fn the_senders_connector_sets_nodelay_and_awcs_default_does_not() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("bound");
        let uri: Uri = format!("http://{addr}/raft").parse().expect("uri");
        let ours = super::connector()
            .call(ConnectInfo::new(uri.clone()))
            .await
            .expect("connect");
        assert!(ours.io_ref().nodelay().expect("readable"));
        let default = Connector::new(Resolver::default())
            .service()
            .call(ConnectInfo::new(uri))
            .await
            .expect("connect");
        assert!(!default.io_ref().nodelay().expect("readable"));
    }
}
