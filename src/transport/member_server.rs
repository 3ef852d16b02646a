//! A member's HTTP server: the listeners it binds (and the advertised URLs
//! they give), the receiver's configuration each worker gets, and the
//! server itself, with the stream routes and TLS when the member has them.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpServer};

use crate::local_member::LocalMember;
use crate::receiver::{self, ReceiverConfig};
use crate::stream::{stream_routes, StreamRoutes};

/// The listeners, their addresses, and the member with its advertised
/// URLs defaulted from them.
pub(super) struct Bound {
    pub(super) listeners: Vec<TcpListener>,
    pub(super) addrs: Vec<SocketAddr>,
    pub(super) local: LocalMember,
}

impl Bound {
    pub(super) fn listen(
        bind: &[SocketAddr],
        mut local: LocalMember,
        scheme: &str,
    ) -> io::Result<Self> {
        let loopback = [SocketAddr::from(([127, 0, 0, 1], 0))];
        let bind = if bind.is_empty() { &loopback[..] } else { bind };
        let listeners = bind
            .iter()
            .map(TcpListener::bind)
            .collect::<io::Result<Vec<_>>>()?;
        let addrs = listeners
            .iter()
            .map(TcpListener::local_addr)
            .collect::<io::Result<Vec<_>>>()?;
        if local.peer_urls.is_empty() {
            local.peer_urls = addrs.iter().map(|a| format!("{scheme}://{a}")).collect();
        }
        Ok(Bound {
            listeners,
            addrs,
            local,
        })
    }
}

/// A receiver configuration made once, by the first HTTP worker that asks,
/// and cloned for any worker after it (actix-server restarts a worker that
/// panicked).
pub(super) struct Once<F> {
    state: Mutex<OnceState<F>>,
}

enum OnceState<F> {
    Pending(F),
    Made(ReceiverConfig),
    Taken,
}

impl<F: FnOnce() -> ReceiverConfig + Send + 'static> Once<F> {
    pub(super) fn new(make: F) -> Arc<Self> {
        Arc::new(Once {
            state: Mutex::new(OnceState::Pending(make)),
        })
    }

    pub(super) fn get(&self) -> ReceiverConfig {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let OnceState::Made(config) = &*state {
            return config.clone();
        }
        let OnceState::Pending(make) = std::mem::replace(&mut *state, OnceState::Taken) else {
            unreachable!("a worker panicked while making the receiver's configuration");
        };
        let config = make();
        *state = OnceState::Made(config.clone());
        config
    }
}

/// How the member's server runs.
pub(super) struct ServerSettings {
    pub(super) streams: Option<StreamRoutes>,
    pub(super) workers: Option<usize>,
    pub(super) shutdown_timeout: Duration,
    /// The server's side of [`MemberBuilder::tls`].
    #[cfg(feature = "tls")]
    pub(super) tls: Option<rustls::ServerConfig>,
}

/// Serves the receiver on `listeners`, with the configuration `receiver`
/// gives on each worker, and returns the server's handle.
pub(super) fn serve(
    listeners: Vec<TcpListener>,
    receiver: impl Fn() -> ReceiverConfig + Send + Clone + 'static,
    settings: ServerSettings,
) -> io::Result<ServerHandle> {
    let timeout = settings.shutdown_timeout;
    let secs = timeout.as_secs() + u64::from(timeout.subsec_nanos() > 0);
    let streams = settings.streams;
    let mut server = HttpServer::new(move || {
        let app = App::new();
        let app = match &streams {
            Some(routes) => app.configure(stream_routes(routes.clone())),
            None => app,
        };
        app.configure(receiver::configure(receiver()))
    })
    .on_connect(crate::nodelay::on_connect)
    .disable_signals()
    .shutdown_timeout(secs);
    if let Some(workers) = settings.workers {
        server = server.workers(workers);
    }
    for listener in listeners {
        #[cfg(feature = "tls")]
        if let Some(tls) = &settings.tls {
            server = server.listen_rustls_0_23(listener, tls.clone())?;
            continue;
        }
        server = server.listen(listener)?;
    }
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    Ok(handle)
}
