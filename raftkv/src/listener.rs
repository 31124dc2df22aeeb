//! The HTTP API's listener: at most so many connections open at once, and
//! each closed once it has been idle too long, so that clients which open
//! connections and then stall (a slowloris, a hung client, a leak) can
//! neither run the process out of file descriptors nor hold its slots for
//! ever.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::{Instant, Sleep};

/// A [`TcpListener`] for `axum::serve` that admits at most `max`
/// connections at a time (the next ones wait in the kernel's backlog until
/// one closes) and closes a connection that moved no byte either way for
/// `idle`.
pub struct GuardedListener {
    inner: TcpListener,
    slots: Arc<Semaphore>,
    idle: Duration,
}

impl GuardedListener {
    /// Guards `inner`. `max` is at least 1.
    pub fn new(inner: TcpListener, max: usize, idle: Duration) -> Self {
        Self { inner, slots: Arc::new(Semaphore::new(max.max(1))), idle }
    }
}

impl axum::serve::Listener for GuardedListener {
    type Io = GuardedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        // The semaphore is never closed, so this always gets a permit.
        let permit = self.slots.clone().acquire_owned().await.ok();
        // axum's own accept retries (and backs off) on accept errors.
        let (stream, addr) = axum::serve::Listener::accept(&mut self.inner).await;
        (GuardedStream::new(stream, permit, self.idle), addr)
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// One admitted connection: holds its slot until dropped, and fails its
/// pending read or write once nothing has moved for the idle time.
pub struct GuardedStream {
    stream: TcpStream,
    _slot: Option<OwnedSemaphorePermit>,
    idle: Duration,
    last_progress: Instant,
    timer: Pin<Box<Sleep>>,
}

impl GuardedStream {
    fn new(stream: TcpStream, slot: Option<OwnedSemaphorePermit>, idle: Duration) -> Self {
        let now = Instant::now();
        Self {
            stream,
            _slot: slot,
            idle,
            last_progress: now,
            timer: Box::pin(tokio::time::sleep_until(now + idle)),
        }
    }

    /// Called when an operation is pending: an error once the connection
    /// has been idle for `idle`, else arms the timer to wake the task then.
    fn poll_idle(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        let deadline = self.last_progress + self.idle;
        if self.timer.deadline() != deadline {
            // Progress was made since the timer was set: move it (only
            // now, not on every read, which keeps the busy path cheap).
            self.timer.as_mut().reset(deadline);
        }
        ready!(self.timer.as_mut().poll(cx));
        Poll::Ready(io::Error::new(io::ErrorKind::TimedOut, "HTTP connection idle for too long"))
    }

    /// Notes a write's progress; a pending one (a client that never reads
    /// its answers stalls it) counts towards the idle time.
    fn after_write(
        &mut self,
        cx: &mut Context<'_>,
        written: Poll<io::Result<usize>>,
    ) -> Poll<io::Result<usize>> {
        match written {
            Poll::Ready(result) => {
                if matches!(result, Ok(n) if n > 0) {
                    self.last_progress = Instant::now();
                }
                Poll::Ready(result)
            }
            Poll::Pending => self.poll_idle(cx).map(Err),
        }
    }
}

impl AsyncRead for GuardedStream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.stream).poll_read(cx, buf) {
            Poll::Ready(result) => {
                if buf.filled().len() > before {
                    this.last_progress = Instant::now();
                }
                Poll::Ready(result)
            }
            Poll::Pending => this.poll_idle(cx).map(Err),
        }
    }
}

impl AsyncWrite for GuardedStream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.stream).poll_write(cx, data);
        this.after_write(cx, written)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        this.after_write(cx, written)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const DEADLINE: Duration = Duration::from_secs(10);

    /// A server answering `GET /` with `ok` behind a guarded listener.
    async fn server(max: usize, idle: Duration) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let app = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
        tokio::spawn(async move { axum::serve(GuardedListener::new(listener, max, idle), app).await });
        addr
    }

    /// Sends one request on `stream` and reads its whole answer.
    async fn get(stream: &mut TcpStream) -> io::Result<String> {
        stream.write_all(b"GET / HTTP/1.1\r\nhost: test\r\n\r\n").await?;
        let mut answer = Vec::new();
        let mut chunk = [0u8; 512];
        while !answer.ends_with(b"\r\n\r\nok") {
            let n = stream.read(&mut chunk).await?;
            if n == 0 {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            answer.extend_from_slice(&chunk[..n]);
        }
        Ok(String::from_utf8_lossy(&answer).into_owned())
    }

    /// Reads until the server closes the connection (or `DEADLINE`).
    async fn closed_by_server(stream: &mut TcpStream) -> bool {
        let mut chunk = [0u8; 64];
        tokio::time::timeout(DEADLINE, async {
            loop {
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await
        .is_ok()
    }

    #[tokio::test]
    async fn a_connection_that_sends_nothing_is_closed_after_the_idle_time() {
        let addr = server(8, Duration::from_millis(300)).await;
        let started = Instant::now();
        let mut silent = TcpStream::connect(addr).await.expect("connect");
        assert!(closed_by_server(&mut silent).await, "a silent connection stayed open");
        assert!(started.elapsed() >= Duration::from_millis(300), "closed before the idle time");
        // Half a request is no better than none.
        let mut half = TcpStream::connect(addr).await.expect("connect");
        half.write_all(b"GET / HTTP/1.1\r\nhost:").await.expect("write");
        assert!(closed_by_server(&mut half).await, "a half-sent request held its connection");
    }

    #[tokio::test]
    async fn idle_counts_from_the_last_byte_not_from_the_connect() {
        // Five requests 200 ms apart span a second, three idle times of
        // 300 ms: a timer from the connect would have cut the connection.
        let addr = server(8, Duration::from_millis(300)).await;
        let mut stream = TcpStream::connect(addr).await.expect("connect");
        let started = Instant::now();
        for _ in 0..5 {
            get(&mut stream).await.expect("each request answered on the same connection");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        assert!(started.elapsed() > Duration::from_millis(900));
    }

    #[tokio::test]
    async fn connections_past_the_limit_wait_for_a_slot() {
        let addr = server(1, Duration::from_secs(60)).await;
        let mut first = TcpStream::connect(addr).await.expect("connect");
        get(&mut first).await.expect("the first connection is served");
        let mut second = TcpStream::connect(addr).await.expect("connect");
        let waiting = tokio::spawn(async move { get(&mut second).await });
        // Not proof of a negative, but a served second connection would
        // have been answered in well under this.
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!waiting.is_finished(), "a connection past the limit was served");
        drop(first);
        let answer = tokio::time::timeout(DEADLINE, waiting).await.expect("served once a slot freed");
        assert!(answer.expect("task").expect("answer").starts_with("HTTP/1.1 200"));
    }
}
