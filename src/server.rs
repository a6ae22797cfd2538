//! [`Server::bind`]: the listening socket and the acceptor thread.

use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, Sender};

use crate::admission::{address_key, Admission, Refusal, Verdict};
use crate::connection::{Accepted, Connection, Context, Handler, HandlerError, Lifeline};
use crate::handle::{Handle, Shared, Threads};
#[cfg(feature = "redis")]
use crate::hub::Backplane;
use crate::hub::{outbox, EventSink, Registry};
use crate::log_limit::{more, Throttle};
use crate::stats::{bump, Counters};
use crate::threads::{Started, Workers};
use crate::tls::Reloader;
use crate::wait::{wait_readable, Waker};
use crate::{Config, ConnectionId, Error, Event};

/// A running WSS server: its threads are started by [`Server::bind`].
///
/// Read what happens from [`events`](Server::events); act through a [`Handle`]. Dropping
/// the `Server` shuts it down (see [`Handle::shutdown`]).
///
/// ```no_run
/// let config = tinywss::Config::builder()
///     .bind("127.0.0.1:0")
///     .tls_pem_files("certs/server.pem", "certs/server.key")
///     .build()?;
/// let server = tinywss::Server::bind(config)?;
/// println!("listening on wss://localhost:{}/", server.local_addr().port());
/// # Ok::<(), tinywss::Error>(())
/// ```
#[derive(Debug)]
pub struct Server {
    handle: Handle,
    events: Receiver<Event>,
}

impl Server {
    /// Binds the listening socket and starts the acceptor thread.
    ///
    /// # Errors
    ///
    /// [`Error::Bind`] when an address cannot be bound; [`Error::Io`] when a thread or
    /// a waker cannot be created.
    pub fn bind(config: Config) -> Result<Server, Error> {
        Server::start(config, None)
    }

    /// Binds the listening socket and serves each client with `handler`, on the client's
    /// own thread (handler mode).
    ///
    /// The handler gets a [`Connection`]: straight-line, blocking code with the
    /// connection's state on its own stack, and no thread between the socket and the code
    /// that answers it (the fastest way to serve a request/response protocol). Messages
    /// from other threads still reach the client through the [`Handle`]: `send`,
    /// `broadcast`, rooms. When the handler returns, a connection still open is closed
    /// with 1000; an error or a panic closes it with 1011 (logged, counted in
    /// [`Stats::handler_errors`](crate::Stats::handler_errors) or
    /// [`Stats::panics`](crate::Stats::panics)); the server carries on.
    ///
    /// Use [`bind`](Server::bind) (events mode) when the application owns its state in
    /// one place (a game loop, a chat room); use this when each client's work stands on
    /// its own (an echo, a request/response API, a per-client stream). In handler mode
    /// [`events`](Server::events) carries nothing: the handler sees each connection's
    /// whole life.
    ///
    /// ```no_run
    /// let config = tinywss::Config::builder()
    ///     .tls_pem_files("certs/server.pem", "certs/server.key")
    ///     .build()?;
    /// let server = tinywss::Server::serve(config, |conn| {
    ///     while let Some(message) = conn.recv() {
    ///         conn.send(message)?;
    ///     }
    ///     Ok(())
    /// })?;
    /// # Ok::<(), tinywss::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`bind`](Server::bind).
    pub fn serve<F>(config: Config, handler: F) -> Result<Server, Error>
    where
        F: Fn(&mut Connection<'_>) -> Result<(), HandlerError> + Send + Sync + 'static,
    {
        Server::start(config, Some(Handler(Arc::new(handler))))
    }

    fn start(config: Config, handler: Option<Handler>) -> Result<Server, Error> {
        let Config {
            bind,
            tls,
            limits,
            policy,
            #[cfg(feature = "redis")]
            redis,
        } = config;
        let scheme = if tls.is_plain() { "ws" } else { "wss" };
        let listeners = bind.bind()?;
        let local_addrs = listeners.iter().map(TcpListener::local_addr).collect::<Result<Vec<_>, _>>()?;
        let local_addr = *local_addrs.first().ok_or_else(|| Error::Config("no address to listen on".into()))?;

        let stats = Arc::new(Counters::default());
        let (events_tx, events) = bounded(limits.events_capacity);
        let registry = Arc::new(Registry::new(Arc::clone(&stats), &limits));
        #[cfg(feature = "redis")]
        if let Some(redis) = redis {
            let backplane = Backplane::start(redis, &registry, &stats, limits.max_message_size, local_addr.port())?;
            registry.attach_relay(backplane);
        }
        let (shutdown_signal, shutdown) = bounded(0);
        let (alive, alive_rx) = bounded(0);
        let shutdown_timeout = limits.shutdown_timeout;
        let events_sink = EventSink::new(events_tx, shutdown, Arc::clone(&stats), &limits);
        let context = Arc::new(
            Context::new(limits, policy, tls.server_config, events_sink, Arc::clone(&registry), Arc::clone(&stats))
                .in_handler_mode(handler.is_some()),
        );

        let waker = Arc::new(Waker::new()?);
        let started = Arc::new(Started::new(Arc::clone(&waker)));
        let acceptor = Acceptor {
            admission: Admission::new(&context.limits),
            turned_away: Throttle::default(),
            listeners,
            waker,
            stop: Arc::new(AtomicBool::new(false)),
            workers: Workers::new(&context.limits, Arc::clone(&started), alive.clone()),
            context,
            alive,
            started: Arc::clone(&started),
            next_id: 1,
            reloader: tls.reloader.clone(),
            handler,
        };
        let (acceptor_waker, stop) = (Arc::clone(&acceptor.waker), Arc::clone(&acceptor.stop));
        let acceptor = spawn("tinywss-accept", move || acceptor.run())?;
        for addr in &local_addrs {
            log::info!("listening on {addr} ({scheme}://)");
        }
        if scheme == "ws" {
            log::warn!(
                "serving plain ws:// without TLS on {local_addr}: safe only behind a reverse proxy that \
                 terminates TLS, on a local or private network"
            );
        }

        let threads = Threads { acceptor, started, shutdown_signal, alive: alive_rx };
        let shared = Shared {
            registry,
            stats,
            local_addr,
            local_addrs,
            acceptor_waker,
            stop,
            threads: Mutex::new(Some(threads)),
            shutdown_timeout,
            tls_reloader: tls.reloader,
        };
        Ok(Server { handle: Handle::new(shared), events })
    }

    /// The address the server listens on (with the real port when bound to port 0): the
    /// first, when it listens on several.
    pub fn local_addr(&self) -> SocketAddr {
        self.handle.local_addr()
    }

    /// Every address the server listens on, in the order configured, with the real
    /// ports: `127.0.0.1:8443` and `[::1]:8443` by default (see
    /// [`ConfigBuilder::bind`](crate::ConfigBuilder::bind)).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        self.handle.local_addrs()
    }

    /// The events of every connection, in order per connection.
    ///
    /// A crossbeam [`Receiver`]: iterate it, `recv_timeout` it, or `select!` it together
    /// with the application's own channels. It disconnects (iteration ends) once the
    /// server has shut down and every connection thread has finished.
    pub fn events(&self) -> Receiver<Event> {
        self.events.clone()
    }

    /// A handle to send, broadcast, close and shut down, from any thread.
    pub fn handle(&self) -> Handle {
        self.handle.clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Err(e) = self.handle.shutdown() {
            log::warn!("{e}");
        }
    }
}

fn spawn<T: Send + 'static>(name: &str, body: impl FnOnce() -> T + Send + 'static) -> Result<JoinHandle<T>, Error> {
    Ok(thread::Builder::new().name(name.into()).spawn(body)?)
}

/// The acceptor thread: takes new clients, lets in those `admission` has room for,
/// starts their threads.
struct Acceptor {
    /// One per address, all served alike.
    listeners: Vec<TcpListener>,
    admission: Admission,
    /// Keeps the warnings about refused and shed clients from flooding the log.
    turned_away: Throttle,
    waker: Arc<Waker>,
    stop: Arc<AtomicBool>,
    context: Arc<Context>,
    /// Cloned into every connection thread; the receiver sees it disconnect when all end.
    alive: Sender<()>,
    /// The handshake workers, which start each WebSocket's thread.
    workers: Workers,
    /// The threads started so far, joined as they end.
    started: Arc<Started>,
    next_id: u64,
    /// Checks the certificate files for renewal between accepts.
    reloader: Option<Arc<Reloader>>,
    /// The application's code for each client, in handler mode.
    handler: Option<Handler>,
}

impl Acceptor {
    /// Accepts until stopped. The threads still running are the shutdown's to join.
    fn run(mut self) {
        let mut reaped = 0;
        while !self.stop.load(Ordering::SeqCst) {
            let next_check = self.reloader.as_ref().and_then(|r| r.next_check());
            // A thread that said it ended may still be exiting: look again shortly.
            let reap_soon = (self.started.ended() > reaped).then(|| Instant::now() + REAP_RETRY);
            let deadline = [next_check, reap_soon].into_iter().flatten().min();
            match wait_readable(&self.listeners, &self.waker, deadline) {
                Ok(true) => self.waker.reset(),
                Ok(false) => {}
                Err(e) => {
                    log::error!("acceptor: poll failed, no longer accepting: {e}");
                    break;
                }
            }
            self.accept_ready();
            if let Some(reloader) = &self.reloader {
                reloader.tick(Instant::now());
            }
            reaped += self.started.reap();
        }
        log::debug!("acceptor: stopped");
    }

    fn accept_ready(&mut self) {
        for i in 0..self.listeners.len() {
            self.accept_from(i);
        }
    }

    fn accept_from(&mut self, listener: usize) {
        loop {
            match self.listeners[listener].accept() {
                Ok((socket, peer)) => self.admit(socket, peer),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionAborted => continue,
                Err(e) => {
                    // Typically EMFILE (out of file descriptors). The listener stays
                    // readable, so pause briefly instead of spinning on the error.
                    log::warn!("accept failed: {e}; pausing accepts for 100 ms");
                    thread::sleep(Duration::from_millis(100));
                    return;
                }
            }
        }
    }

    /// Hands a new client to a handshake worker, or refuses it cheaply (before any TLS
    /// work).
    fn admit(&mut self, socket: TcpStream, peer: SocketAddr) {
        let address = address_key(peer.ip());
        let shed = match self.admission.decide(address) {
            Verdict::Admit => None,
            Verdict::AdmitShedding(shed) => Some(shed),
            Verdict::Refuse(refusal) => return self.refused(peer, refusal),
        };
        let id = ConnectionId(self.next_id);
        self.next_id += 1;
        if let Some(shed) = shed {
            bump(&self.context.stats.handshakes_shed);
            self.turned_away(format_args!(
                "{shed}: handshake shed, the oldest unfinished, to make way for {id} from {peer} \
                 (max_handshakes or max_connections reached)"
            ));
        }
        if let Err(e) = self.start(id, socket, peer, address) {
            bump(&self.context.stats.refused);
            self.turned_away(format_args!("{id}: cannot serve {peer}: {e}"));
        }
    }

    fn refused(&self, peer: SocketAddr, refusal: Refusal) {
        bump(&self.context.stats.refused);
        if refusal.per_ip() {
            bump(&self.context.stats.refused_per_ip);
        }
        self.turned_away(format_args!("refused {peer}: {} reached", refusal.limit()));
    }

    /// Logs a refused or shed client: at `warn`, but at most one line per 10 s (with a
    /// count of the others, logged at `debug`), since a flood makes one per connection.
    fn turned_away(&self, what: std::fmt::Arguments<'_>) {
        match self.turned_away.admit() {
            Some(held_back) => log::warn!("{what}{}", more(held_back)),
            None => log::debug!("{what}"),
        }
    }

    fn start(&mut self, id: ConnectionId, socket: TcpStream, peer: SocketAddr, address: IpAddr) -> std::io::Result<()> {
        socket.set_nonblocking(true)?;
        // Small WebSocket messages must leave at once, not wait for Nagle's algorithm.
        socket.set_nodelay(true)?;
        let (sender, outbox) = outbox(Waker::new()?);
        // Counted in before a worker has it: if none can, its slot counts it out.
        let slot = self.admission.admitted(id, address, sender.control());
        let accepted = Accepted {
            id,
            peer,
            socket,
            accepted_at: Instant::now(),
            outbox,
            context: Arc::clone(&self.context),
            slot,
            handler: self.handler.clone(),
            lifeline: Lifeline::new(Arc::clone(&self.context.stats), self.alive.clone()),
        };
        // Registered before a worker runs it, so its unregistering can never come first.
        self.context.registry.register(id, sender);
        self.workers.submit(accepted)?;
        bump(&self.context.stats.accepted);
        log::debug!("{id}: accepted {peer}");
        Ok(())
    }
}

/// How soon the acceptor looks again for a thread that said it ended but was still exiting.
const REAP_RETRY: Duration = Duration::from_millis(20);
