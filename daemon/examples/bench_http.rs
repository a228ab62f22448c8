//! HTTP keep-alive load on `POST /v1/preflight/exec` (architecture spec §8, issue 3).
//!
//! `--connections` connections, each owned by one task that sends its requests back to back
//! on that one keep-alive connection, for `--seconds` (after `--warmup` seconds that are not
//! counted) → requests/s and p50/p90/p99 latency. Every response must be `200` and say
//! `"allowed":true` (the standard profile allows `git status`); anything else is counted.
//!
//! Two clients:
//! * `raw` (default): a minimal HTTP/1.1 client on tokio `TcpStream` (one pre-built request,
//!   `Content-Length` framed responses). It costs a few µs of CPU per request, so on a small
//!   machine shared with the daemon it leaves as much CPU as possible to the server.
//! * `reqwest`: one `reqwest::Client` per connection (`pool_max_idle_per_host(1)`), as an
//!   agent framework would call the API; heavier on the client side.
//!
//! ```text
//! cargo run --release -p rampart-daemon --example bench_http -- \
//!     --addr 127.0.0.1:9090 [--token-file "$RAMPART_HOME/token"] [--connections 32] \
//!     [--seconds 5] [--client raw|reqwest] [--json]
//! ```

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const DEFAULT_BODY: &str = r#"{"agent":"bench","session":"s","params":{"command":"git status"}}"#;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Client {
    Raw,
    Reqwest,
}

#[derive(Parser, Debug, Clone)]
#[command(about = "rampart daemon HTTP benchmark (keep-alive, fixed duration)")]
struct Args {
    /// The daemon's HTTP address.
    #[arg(long, default_value = "127.0.0.1:9090")]
    addr: SocketAddr,
    /// Admin token [default: $RAMPART_TOKEN, else the contents of --token-file].
    #[arg(long)]
    token: Option<String>,
    /// File holding the admin token [default: $RAMPART_HOME/token, else ~/.rampart/token].
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Request path.
    #[arg(long, default_value = "/v1/preflight/exec")]
    path: String,
    /// Request body (JSON).
    #[arg(long, default_value = DEFAULT_BODY)]
    body: String,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// Measured duration in seconds.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Unmeasured warm-up in seconds (connections are opened and used first).
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// HTTP client implementation.
    #[arg(long, value_enum, default_value = "raw")]
    client: Client,
    /// tokio worker threads of the load generator.
    #[arg(long, default_value_t = 1)]
    client_threads: usize,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Default)]
struct Tally {
    ok: u64,
    bad_status: u64,
    not_allowed: u64,
    errors: u64,
    reconnects: u64,
    /// Every response, warm-up included (for CPU-per-request figures).
    all: u64,
    first_error: Option<String>,
    /// Nanoseconds per measured response.
    lat: Vec<u64>,
}

impl Tally {
    fn note(&mut self, e: String) {
        if self.first_error.is_none() {
            self.first_error = Some(e);
        }
    }

    fn merge(&mut self, o: Tally) {
        self.ok += o.ok;
        self.bad_status += o.bad_status;
        self.not_allowed += o.not_allowed;
        self.errors += o.errors;
        self.reconnects += o.reconnects;
        self.all += o.all;
        if self.first_error.is_none() {
            self.first_error = o.first_error;
        }
        self.lat.extend(o.lat);
    }

    fn count(&mut self, measuring: bool, start: Instant, status: u16, body: &[u8]) {
        self.all += 1;
        if !measuring {
            return;
        }
        self.lat.push(start.elapsed().as_nanos() as u64);
        if status != 200 {
            self.bad_status += 1;
            self.note(format!(
                "HTTP {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            ));
        } else if !contains(body, b"\"allowed\":true") {
            self.not_allowed += 1;
            self.note(format!(
                "not allowed: {}",
                String::from_utf8_lossy(&body[..body.len().min(200)])
            ));
        } else {
            self.ok += 1;
        }
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Phases shared by all connections: warm-up, measuring, stop.
struct Clock {
    measuring: AtomicBool,
    stop: AtomicBool,
}

// ---------------------------------------------------------------------------------------------
// raw HTTP/1.1 client
// ---------------------------------------------------------------------------------------------

/// Reads one `Content-Length` framed response from `s`; `buf` carries bytes read past the
/// previous response (there are none with one request in flight, but be exact).
async fn read_response(
    s: &mut TcpStream,
    buf: &mut Vec<u8>,
    body: &mut Vec<u8>,
) -> std::io::Result<(u16, bool)> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed by the server",
            ));
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| bad("non-UTF-8 head"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| bad("bad status line"))?;
    let mut len = None;
    let mut close = status_line.starts_with("HTTP/1.0");
    for line in lines {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let v = v.trim();
        if k.eq_ignore_ascii_case("content-length") {
            len = v.parse::<usize>().ok();
        } else if k.eq_ignore_ascii_case("connection") {
            close = v.eq_ignore_ascii_case("close");
        } else if k.eq_ignore_ascii_case("transfer-encoding") {
            return Err(bad("chunked responses are not supported by the raw client"));
        }
    }
    let len = len.ok_or_else(|| bad("response without Content-Length"))?;
    while buf.len() < head_end + len {
        let n = s.read(&mut chunk).await?;
        if n == 0 {
            return Err(bad("connection closed in the body"));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    body.clear();
    body.extend_from_slice(&buf[head_end..head_end + len]);
    buf.drain(..head_end + len);
    Ok((status, close))
}

async fn connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let s = TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    Ok(s)
}

async fn raw_conn(addr: SocketAddr, request: Arc<Vec<u8>>, clock: Arc<Clock>) -> Tally {
    let mut t = Tally {
        lat: Vec::with_capacity(1 << 15),
        ..Tally::default()
    };
    let mut stream = None;
    let (mut buf, mut body) = (Vec::with_capacity(8192), Vec::with_capacity(4096));
    while !clock.stop.load(Ordering::Relaxed) {
        let measuring = clock.measuring.load(Ordering::Relaxed);
        let start = Instant::now();
        if stream.is_none() {
            match connect(addr).await {
                Ok(s) => stream = Some(s),
                Err(e) => {
                    t.errors += 1;
                    t.note(format!("connect: {e}"));
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            }
            buf.clear();
        }
        let s = stream.as_mut().expect("connected above");
        let res = async {
            s.write_all(&request).await?;
            read_response(s, &mut buf, &mut body).await
        }
        .await;
        match res {
            Ok((status, close)) => {
                t.count(measuring, start, status, &body);
                if close {
                    stream = None;
                    t.reconnects += 1;
                }
            }
            Err(e) => {
                t.errors += 1;
                t.note(e.to_string());
                stream = None;
                t.reconnects += 1;
            }
        }
    }
    t
}

// ---------------------------------------------------------------------------------------------
// reqwest client
// ---------------------------------------------------------------------------------------------

async fn reqwest_conn(args: Arc<Args>, token: Arc<String>, clock: Arc<Clock>) -> Tally {
    let mut t = Tally {
        lat: Vec::with_capacity(1 << 15),
        ..Tally::default()
    };
    let client = match reqwest::Client::builder()
        .pool_max_idle_per_host(1)
        .tcp_nodelay(true)
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            t.errors += 1;
            t.note(format!("reqwest client: {e}"));
            return t;
        }
    };
    let url = format!("http://{}{}", args.addr, args.path);
    let auth = format!("Bearer {token}");
    while !clock.stop.load(Ordering::Relaxed) {
        let measuring = clock.measuring.load(Ordering::Relaxed);
        let start = Instant::now();
        let res = client
            .post(&url)
            .header("authorization", &auth)
            .header("content-type", "application/json")
            .body(args.body.clone())
            .send()
            .await;
        match res {
            Ok(r) => {
                let status = r.status().as_u16();
                match r.bytes().await {
                    Ok(b) => t.count(measuring, start, status, &b),
                    Err(e) => {
                        t.errors += 1;
                        t.note(e.to_string());
                    }
                }
            }
            Err(e) => {
                t.errors += 1;
                t.note(e.to_string());
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    t
}

// ---------------------------------------------------------------------------------------------

fn token(args: &Args) -> Result<String, String> {
    if let Some(t) = &args.token {
        return Ok(t.trim().to_string());
    }
    if let Ok(t) = std::env::var("RAMPART_TOKEN")
        && !t.trim().is_empty()
    {
        return Ok(t.trim().to_string());
    }
    let path = args.token_file.clone().unwrap_or_else(|| {
        std::env::var_os("RAMPART_HOME")
            .filter(|h| !h.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(std::env::var_os("HOME").unwrap_or_else(|| ".".into()))
                    .join(".rampart")
            })
            .join("token")
    });
    std::fs::read_to_string(&path)
        .map(|t| t.trim().to_string())
        .map_err(|e| format!("cannot read the token from {}: {e}", path.display()))
}

fn pct(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

async fn run(args: Args, token: String) -> Result<(), String> {
    let args = Arc::new(args);
    let token = Arc::new(token);
    let request = Arc::new(
        format!(
            "POST {} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
            args.path,
            args.addr,
            token,
            args.body.len(),
            args.body
        )
        .into_bytes(),
    );
    // One probe first: a wrong token or an unexpected decision fails fast with the reason.
    {
        let mut s = connect(args.addr)
            .await
            .map_err(|e| format!("cannot connect to {}: {e}", args.addr))?;
        s.write_all(&request).await.map_err(|e| e.to_string())?;
        let (mut buf, mut body) = (Vec::new(), Vec::new());
        let (status, _) = read_response(&mut s, &mut buf, &mut body)
            .await
            .map_err(|e| format!("probe: {e}"))?;
        if status != 200 || !contains(&body, b"\"allowed\":true") {
            return Err(format!(
                "probe got HTTP {status}: {}",
                String::from_utf8_lossy(&body)
            ));
        }
    }

    let clock = Arc::new(Clock {
        measuring: AtomicBool::new(false),
        stop: AtomicBool::new(false),
    });
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..args.connections {
        match args.client {
            Client::Raw => tasks.spawn(raw_conn(args.addr, request.clone(), clock.clone())),
            Client::Reqwest => {
                tasks.spawn(reqwest_conn(args.clone(), token.clone(), clock.clone()))
            }
        };
    }
    tokio::time::sleep(Duration::from_secs_f64(args.warmup)).await;
    clock.measuring.store(true, Ordering::Relaxed);
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(args.seconds)).await;
    clock.measuring.store(false, Ordering::Relaxed);
    let wall = start.elapsed().as_secs_f64();
    clock.stop.store(true, Ordering::Relaxed);
    let mut total = Tally::default();
    while let Some(t) = tasks.join_next().await {
        total.merge(t.map_err(|e| e.to_string())?);
    }
    total.lat.sort_unstable();
    let measured = total.lat.len() as f64;
    let rate = measured / wall;
    let (p50, p90, p99, max) = (
        pct(&total.lat, 0.5),
        pct(&total.lat, 0.9),
        pct(&total.lat, 0.99),
        pct(&total.lat, 1.0),
    );
    let client = format!("{:?}", args.client).to_lowercase();
    if args.json {
        println!(
            "{}",
            json!({
                "bench": "http", "path": args.path, "client": client,
                "connections": args.connections, "client_threads": args.client_threads,
                "seconds": wall, "responses": total.lat.len(), "ok": total.ok,
                "bad_status": total.bad_status, "not_allowed": total.not_allowed,
                "errors": total.errors, "reconnects": total.reconnects,
                "first_error": total.first_error, "rate_per_s": rate,
                "all_responses": total.all + 1, "ok_per_s": total.ok as f64 / wall,
                "p50_us": p50, "p90_us": p90, "p99_us": p99, "max_us": max,
            })
        );
    } else {
        println!(
            "http {} ({client} client, {} keep-alive connections, {:.1} s): {:.0} requests/s ({} ok); latency p50 {:.1} µs  p90 {:.1} µs  p99 {:.1} µs  max {:.1} µs",
            args.path, args.connections, wall, rate, total.ok, p50, p90, p99, max
        );
        if total.errors + total.bad_status + total.not_allowed + total.reconnects > 0 {
            println!(
                "  {} errors, {} non-200, {} not allowed, {} reconnects; first: {}",
                total.errors,
                total.bad_status,
                total.not_allowed,
                total.reconnects,
                total.first_error.as_deref().unwrap_or("?")
            );
        }
    }
    Ok(())
}

fn main() {
    let args = Args::parse();
    let token = match token(&args) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("bench_http: {e}");
            std::process::exit(1);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.client_threads.max(1))
        .enable_all()
        .build()
        .expect("tokio runtime");
    if let Err(e) = rt.block_on(run(args, token)) {
        eprintln!("bench_http: {e}");
        std::process::exit(1);
    }
}
