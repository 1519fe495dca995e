//! The server's connections: accepting them, HTTP/1.1 on each (over TLS when configured), and
//! the deadlines and caps that keep slow or idle clients from holding the server (issue 17, M2
//! and I2).
//!
//! * **Header deadline** ([`HEADER_DEADLINE`]): a request's headers must arrive within it. The
//!   same clock runs while a keep-alive connection is idle between requests, so it is also the
//!   keep-alive idle deadline.
//! * **Body rate** ([`MIN_BODY_RATE`] after [`BODY_GRACE`]): once a handler reads a body, the
//!   bytes must keep arriving at that rate on average, else the request ends with 408.
//! * **TLS handshake**: [`crate::tls::HANDSHAKE_TIMEOUT`].
//! * **Open connections**: at most [`max_connections`] (1024, or fewer when the process may open
//!   fewer files). At the cap, a new connection evicts the connection that has been idle (no
//!   request in flight) the longest, so idle or slowloris sockets can't lock everyone out; when
//!   every connection has a request in flight, new ones wait in the listen backlog.
//! * **HTTP/1.1 only**: no cleartext HTTP/2 (h2c), which multiplied requests per connection and
//!   had no use here (Terraform and OpenTofu speak HTTP/1.1 to a `backend "http"`); TLS
//!   negotiates `http/1.1` by ALPN.
//!
//! Each request carries its client address ([`ClientAddr`]) for throttling and logs.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::Request;
use axum::Router;
use bytes::Bytes;
use http_body::{Body as HttpBody, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};

use crate::App;

/// Longest a client may take to send a request's headers, and to stay idle between requests.
pub const HEADER_DEADLINE: Duration = Duration::from_secs(10);
/// Time a body may take before [`MIN_BODY_RATE`] applies.
pub const BODY_GRACE: Duration = Duration::from_secs(10);
/// Slowest accepted body, in bytes per second, on average since the handler started reading.
pub const MIN_BODY_RATE: u64 = 16 * 1024;
/// Most open connections, when the file limit allows.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// File descriptors kept free for the storage, logs and the listener.
pub const RESERVED_FILES: u64 = 64;

/// The cap on open connections: [`DEFAULT_MAX_CONNECTIONS`], or the process's open-file limit
/// less [`RESERVED_FILES`] when that is lower (`ulimit -n 256`: 192).
pub fn max_connections() -> usize {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
    match limit {
        Some(n) => {
            let room = usize::try_from(n.saturating_sub(RESERVED_FILES)).unwrap_or(usize::MAX);
            room.clamp(1, DEFAULT_MAX_CONNECTIONS)
        }
        None => DEFAULT_MAX_CONNECTIONS,
    }
}

/// The address a request came from (`None` for requests that did not come over a socket, such
/// as tests driving the router directly).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ClientAddr(pub Option<SocketAddr>);

impl ClientAddr {
    pub fn ip(&self) -> Option<IpAddr> {
        self.0.map(|a| a.ip())
    }
}

impl std::fmt::Display for ClientAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(a) => write!(f, "{a}"),
            None => f.write_str("(no address)"),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(parts
            .extensions
            .get::<ClientAddr>()
            .copied()
            .unwrap_or_default())
    }
}

/// A request body that must keep arriving at [`MIN_BODY_RATE`] once read.
pub struct MinRate {
    inner: Incoming,
    started: Option<Instant>,
    received: u64,
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

/// The body arrived slower than [`MIN_BODY_RATE`] (answered with 408).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the request body arrived slower than {MIN_BODY_RATE} bytes per second")]
pub struct BodyTooSlow;

impl MinRate {
    pub fn new(inner: Incoming) -> MinRate {
        MinRate {
            inner,
            started: None,
            received: 0,
            deadline: None,
        }
    }
}

/// When `received` bytes must have arrived by, for a body first read at `started`.
pub fn body_deadline(started: Instant, received: u64) -> Instant {
    started + BODY_GRACE + Duration::from_secs_f64(received as f64 / MIN_BODY_RATE as f64)
}

impl HttpBody for MinRate {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        let started = *this.started.get_or_insert_with(Instant::now);
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(d) = frame.data_ref() {
                    this.received += d.len() as u64;
                }
                if let Some(sleep) = this.deadline.as_mut() {
                    sleep
                        .as_mut()
                        .reset(body_deadline(started, this.received).into());
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => {
                let received = this.received;
                let sleep = this.deadline.get_or_insert_with(|| {
                    Box::pin(tokio::time::sleep_until(
                        body_deadline(started, received).into(),
                    ))
                });
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTooSlow)))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// One open connection, as the registry sees it.
struct Conn {
    in_flight: AtomicUsize,
    idle_since: Mutex<Instant>,
    evicted: AtomicBool,
    evict: Notify,
}

/// The open connections and the permits that cap them.
struct Registry {
    next_id: AtomicU64,
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
    slots: Arc<Semaphore>,
    max: usize,
}

impl Registry {
    fn new(max: usize) -> Registry {
        Registry {
            next_id: AtomicU64::new(0),
            conns: Mutex::default(),
            slots: Arc::new(Semaphore::new(max)),
            max,
        }
    }

    /// A permit for one more connection: at once when under the cap, else after evicting the
    /// connection idle the longest (or, when all are busy, once one closes).
    async fn admit(&self) -> OwnedSemaphorePermit {
        if let Ok(p) = self.slots.clone().try_acquire_owned() {
            return p;
        }
        self.evict_longest_idle();
        self.slots
            .clone()
            .acquire_owned()
            .await
            .expect("the semaphore is never closed")
    }

    fn evict_longest_idle(&self) {
        let conns = self.conns.lock().unwrap_or_else(|p| p.into_inner());
        let victim = conns
            .values()
            .filter(|c| {
                c.in_flight.load(Ordering::SeqCst) == 0 && !c.evicted.load(Ordering::SeqCst)
            })
            .min_by_key(|c| *c.idle_since.lock().unwrap_or_else(|p| p.into_inner()));
        if let Some(v) = victim {
            v.evicted.store(true, Ordering::SeqCst);
            v.evict.notify_one();
        }
    }
}

/// Removes a connection from the registry and frees its permit when it ends.
struct Leave {
    registry: Arc<Registry>,
    id: u64,
    _permit: OwnedSemaphorePermit,
}

impl Drop for Leave {
    fn drop(&mut self) {
        self.registry
            .conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.id);
    }
}

/// Marks a request in flight on its connection until dropped.
struct InFlight(Arc<Conn>);

impl InFlight {
    fn start(conn: Arc<Conn>) -> InFlight {
        conn.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(conn)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        *self.0.idle_since.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Serves `app` on `listener` (over TLS when configured) until `shutdown` completes; then stops
/// accepting, lets the requests in flight finish, and returns once every connection closed.
pub async fn serve(
    listener: TcpListener,
    app: Arc<App>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let router = crate::router(app.clone());
    let tls = app.tls.clone().map(|t| t.0);
    let registry = Arc::new(Registry::new(max_connections()));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, addr) = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            p = registry.admit() => p,
        };
        let _ = stream.set_nodelay(true);
        let conn = Arc::new(Conn {
            in_flight: AtomicUsize::new(0),
            idle_since: Mutex::new(Instant::now()),
            evicted: AtomicBool::new(false),
            evict: Notify::new(),
        });
        let id = registry.next_id.fetch_add(1, Ordering::Relaxed);
        registry
            .conns
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, conn.clone());
        let leave = Leave {
            registry: registry.clone(),
            id,
            _permit: permit,
        };
        let (router, tls, stop) = (router.clone(), tls.clone(), stop_rx.clone());
        tokio::spawn(async move {
            let _leave = leave;
            match tls {
                None => http(stream, addr, router, conn, stop).await,
                Some(acceptor) => {
                    let handshake = tokio::select! {
                        r = tokio::time::timeout(crate::tls::HANDSHAKE_TIMEOUT, acceptor.accept(stream)) => r,
                        _ = conn.evict.notified() => return,
                    };
                    match handshake {
                        Ok(Ok(tls)) => http(tls, addr, router, conn, stop).await,
                        Ok(Err(e)) => tracing::info!(%addr, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::info!(%addr, "TLS handshake timed out"),
                    }
                }
            }
        });
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let all = u32::try_from(registry.max).unwrap_or(u32::MAX);
    let _ = registry.slots.acquire_many(all).await;
    Ok(())
}

/// HTTP/1.1 on one connection, with the header deadline, until the client closes, a deadline
/// passes, the connection is evicted (while idle), or the server stops (gracefully).
async fn http<I>(
    io: I,
    addr: SocketAddr,
    router: Router,
    conn: Arc<Conn>,
    mut stop: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let client = ClientAddr(Some(addr));
    let tracked = conn.clone();
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        let mut router = router.clone();
        let in_flight = InFlight::start(tracked.clone());
        let mut req = req.map(|b| Body::new(MinRate::new(b)));
        req.extensions_mut().insert(client);
        async move {
            let answer = tower_service::Service::call(&mut router, req).await;
            drop(in_flight);
            answer
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_DEADLINE)
        .keep_alive(true);
    let served = builder.serve_connection(TokioIo::new(io), service);
    let mut served = std::pin::pin!(served);
    loop {
        tokio::select! {
            r = served.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(%addr, error = %e, "connection closed");
                }
                return;
            }
            _ = conn.evict.notified() => {
                if conn.in_flight.load(Ordering::SeqCst) == 0 {
                    tracing::debug!(%addr, "idle connection evicted: the connection cap was reached");
                    return;
                }
                conn.evicted.store(false, Ordering::SeqCst);
            }
            () = async { drop(stop.wait_for(|s| *s).await) } => {
                served.as_mut().graceful_shutdown();
                let _ = served.as_mut().await;
                return;
            }
        }
    }
}
