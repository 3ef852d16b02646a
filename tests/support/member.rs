//! A receiving member on loopback: our receiver, served on an ephemeral
//! port, handing what it accepts to a [`Recording`] raft actor.

use std::net::SocketAddr;

use actix_web::dev::ServerHandle;
use actix_web::web::ServiceConfig;
use rafthttp_pipeline::receiver::{self, ReceiverConfig};
use rafthttp_pipeline::Id;
use rafthttp_pipeline::LocalMember;

use super::raft::Recording;
use super::server;

/// A receiving member and its raft actor.
pub struct Member {
    /// Where it listens.
    pub addr: SocketAddr,
    /// `http://<addr>`, its peer URL.
    pub url: String,
    /// Its raft actor.
    pub raft: Recording,
    config: ReceiverConfig,
    server: ServerHandle,
}

impl Member {
    /// Starts member `local` of `cluster`, handing messages to `raft`, with
    /// the receiver's configuration adjusted by `tune`.
    pub fn start(
        raft: Recording,
        local: Id,
        cluster: Id,
        tune: impl FnOnce(ReceiverConfig) -> ReceiverConfig,
    ) -> Member {
        let config = tune(ReceiverConfig::new(
            &LocalMember::new(local, cluster),
            raft.inbound(),
        ));
        let (addr, server) = serve(config.clone(), 0);
        Member {
            addr,
            url: format!("http://{addr}"),
            raft,
            config,
            server,
        }
    }

    /// Stops serving, letting requests in flight finish; the member can
    /// [`serve_again`](Member::serve_again).
    pub async fn stop_serving(&self) {
        self.server.stop(true).await;
    }

    /// Serves again on the same port, with the same raft actor.
    pub fn serve_again(&mut self) {
        let (addr, server) = serve(self.config.clone(), self.addr.port());
        assert_eq!(addr, self.addr, "the same address");
        self.server = server;
    }

    /// Stops the server at once, dropping requests in flight.
    pub async fn stop(self) {
        self.server.stop(false).await;
    }
}

/// Serves `config`'s routes on `127.0.0.1:port`.
fn serve(config: ReceiverConfig, port: u16) -> (SocketAddr, ServerHandle) {
    server::serve(routes(config), port, server::no_hook)
}

/// The receiver's routes for `config`, for [`server::serve`].
pub fn routes(config: ReceiverConfig) -> impl Fn(&mut ServiceConfig) + Clone + Send + 'static {
    move |cfg| receiver::configure(config.clone())(cfg)
}
