//! Polled trackers: scripts, HTTP GET, TCP connect. Each runs in its own task, once per
//! `interval` (measured from the start of a run; runs never overlap), and reports every result.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::exec::{self, RunAs};
use super::{OUTPUT_CAP, Observation, TrackerUpdate};
use crate::ratelimit::{LogEvery, held_note};
use vipd_config::{HttpUrl, Probe, TrackHttp, TrackScript, TrackTcp};

/// Most bytes of an HTTP response read (the status line must be in them).
pub const HTTP_READ_CAP: usize = 4096;

fn ticker(probe: &Probe) -> tokio::time::Interval {
    let mut tick = tokio::time::interval(probe.interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick
}

/// At most one "could not run" warning per tracker in this period.
const STARVED_LOG_EVERY: Duration = Duration::from_secs(30);

/// A run that could not start for vipd's own lack of resources: no result is reported
/// (the tracker keeps its last state); a rate-limited warning says so.
fn skipped(limit: &mut LogEvery, kind: &str, name: &str, error: &str) {
    if let Some(held) = limit.check(std::time::Instant::now()) {
        warn!(tracker = %name, error = %error,
              "{kind} {name}: could not run the check ({error}): vipd is out of descriptors, memory or processes; the tracker keeps its last state{}",
              held_note(held));
    }
}

/// A probe's failure: an answer about the target, or vipd's own lack of resources.
enum ProbeError {
    Target(String),
    OwnLimit(String),
}

impl ProbeError {
    fn connect(e: &std::io::Error) -> ProbeError {
        if crate::sys::is_own_limit(e) {
            ProbeError::OwnLimit(e.to_string())
        } else {
            ProbeError::Target(format!("connect: {e}"))
        }
    }
}

async fn report(tx: &mpsc::Sender<TrackerUpdate>, idx: usize, ok: bool, detail: String) -> bool {
    tx.send(TrackerUpdate {
        tracker: idx,
        obs: Observation::Check { ok, detail },
    })
    .await
    .is_ok()
}

/// Runs a `[[track_script]]` forever.
pub async fn script_loop(
    idx: usize,
    s: TrackScript,
    run_as: Option<RunAs>,
    tx: mpsc::Sender<TrackerUpdate>,
) {
    let probe = s.probe;
    let mut last_ok: Option<bool> = None;
    let mut tick = ticker(&probe);
    let mut starved = LogEvery::new(STARVED_LOG_EVERY);
    loop {
        tick.tick().await;
        let o = exec::run(&s.argv, run_as.as_ref(), probe.timeout, OUTPUT_CAP).await;
        if let exec::Ended::NoResources(e) = &o.ended {
            skipped(&mut starved, "track_script", &s.name, e);
            continue;
        }
        let ok = o.success();
        let what = o.describe(probe.timeout);
        debug!(tracker = %s.name, result = %what, elapsed_ms = o.elapsed.as_millis() as u64,
               discarded = o.discarded, output = %o.output, "track script ran");
        if !ok && last_ok != Some(false) {
            warn!(tracker = %s.name, result = %what, output = %o.first_line(), "track script failed");
        }
        last_ok = Some(ok);
        let line = o.first_line();
        let detail = if line.is_empty() {
            what
        } else {
            format!("{what}: {line}")
        };
        if !report(&tx, idx, ok, detail).await {
            return;
        }
    }
}

/// One HTTP/1.1 GET: the status code.
pub async fn http_get_status(url: &HttpUrl, timeout: Duration) -> Result<u16, String> {
    http_get(url, timeout).await.map_err(|e| match e {
        ProbeError::Target(m) | ProbeError::OwnLimit(m) => m,
    })
}

async fn http_get(url: &HttpUrl, timeout: Duration) -> Result<u16, ProbeError> {
    // One deadline for the connect and the exchange together.
    let deadline = tokio::time::Instant::now() + timeout;
    let stream =
        match tokio::time::timeout_at(deadline, TcpStream::connect((url.host.as_str(), url.port)))
            .await
        {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => return Err(ProbeError::connect(&e)),
            Err(_) => return Err(ProbeError::Target(format!("timed out after {timeout:?}"))),
        };
    match tokio::time::timeout_at(deadline, http_exchange(stream, url)).await {
        Ok(r) => r.map_err(ProbeError::Target),
        Err(_) => Err(ProbeError::Target(format!("timed out after {timeout:?}"))),
    }
}

async fn http_exchange(mut stream: TcpStream, url: &HttpUrl) -> Result<u16, String> {
    {
        let host = if url.host.contains(':') {
            format!("[{}]", url.host)
        } else {
            url.host.clone()
        };
        let host = if url.port == 80 {
            host
        } else {
            format!("{host}:{}", url.port)
        };
        let req = format!(
            "GET {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: vipd/{}\r\nAccept: */*\r\nConnection: close\r\n\r\n",
            url.path,
            env!("CARGO_PKG_VERSION")
        );
        stream
            .write_all(req.as_bytes())
            .await
            .map_err(|e| format!("send: {e}"))?;
        let mut buf = vec![0u8; HTTP_READ_CAP];
        let mut len = 0;
        loop {
            if let Some(line_end) = buf
                .get(..len)
                .and_then(|b| b.windows(2).position(|w| w == b"\r\n"))
            {
                let line = String::from_utf8_lossy(buf.get(..line_end).unwrap_or(&[])).into_owned();
                return parse_status_line(&line);
            }
            let Some(rest) = buf.get_mut(len..) else {
                return Err("status line longer than 4 KiB".to_string());
            };
            if rest.is_empty() {
                return Err("status line longer than 4 KiB".to_string());
            }
            let n = stream
                .read(rest)
                .await
                .map_err(|e| format!("receive: {e}"))?;
            if n == 0 {
                return Err("connection closed before a status line".to_string());
            }
            len += n;
        }
    }
}

/// `HTTP/1.1 200 OK` → 200.
pub fn parse_status_line(line: &str) -> Result<u16, String> {
    let mut parts = line.split(' ');
    let version = parts.next().unwrap_or("");
    if !version.starts_with("HTTP/1.") {
        return Err(format!("not an HTTP/1.x response: {:?}", truncate(line)));
    }
    let code = parts.next().unwrap_or("");
    match code.parse::<u16>() {
        Ok(c) if (100..=599).contains(&c) && code.len() == 3 => Ok(c),
        _ => Err(format!("bad status line: {:?}", truncate(line))),
    }
}

fn truncate(s: &str) -> String {
    s.chars().take(80).collect()
}

/// Runs a `[[track_http]]` forever.
pub async fn http_loop(idx: usize, h: TrackHttp, tx: mpsc::Sender<TrackerUpdate>) {
    let probe = h.probe;
    let mut tick = ticker(&probe);
    let mut starved = LogEvery::new(STARVED_LOG_EVERY);
    loop {
        tick.tick().await;
        let (ok, detail) = match http_get(&h.url, probe.timeout).await {
            Ok(code) if h.expect_status.contains(&code) => (true, format!("HTTP {code}")),
            Ok(code) => (
                false,
                format!("HTTP {code} (expected {:?})", h.expect_status),
            ),
            Err(ProbeError::Target(e)) => (false, e),
            Err(ProbeError::OwnLimit(e)) => {
                skipped(&mut starved, "track_http", &h.name, &e);
                continue;
            }
        };
        if !report(&tx, idx, ok, detail).await {
            return;
        }
    }
}

/// Runs a `[[track_tcp]]` forever.
pub async fn tcp_loop(idx: usize, t: TrackTcp, tx: mpsc::Sender<TrackerUpdate>) {
    let probe = t.probe;
    let mut tick = ticker(&probe);
    let mut starved = LogEvery::new(STARVED_LOG_EVERY);
    loop {
        tick.tick().await;
        let (ok, detail) =
            match tokio::time::timeout(probe.timeout, TcpStream::connect(t.address.as_str())).await
            {
                Ok(Ok(_)) => (true, "connected".to_string()),
                Ok(Err(e)) => match ProbeError::connect(&e) {
                    ProbeError::Target(m) => (false, m),
                    ProbeError::OwnLimit(m) => {
                        skipped(&mut starved, "track_tcp", &t.name, &m);
                        continue;
                    }
                },
                Err(_) => (
                    false,
                    format!("connect timed out after {:?}", probe.timeout),
                ),
            };
        if !report(&tx, idx, ok, detail).await {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines() {
        assert_eq!(parse_status_line("HTTP/1.1 200 OK"), Ok(200));
        assert_eq!(
            parse_status_line("HTTP/1.0 503 Service Unavailable"),
            Ok(503)
        );
        assert!(parse_status_line("HTTP/2 200").is_err());
        assert!(parse_status_line("SSH-2.0-OpenSSH").is_err());
        assert!(parse_status_line("HTTP/1.1 2000 x").is_err());
    }

    #[test]
    fn get_against_a_local_server() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = l.local_addr().unwrap().port();
            tokio::spawn(async move {
                for code in [204u16, 500] {
                    let (mut s, _) = l.accept().await.unwrap();
                    let mut buf = [0u8; 1024];
                    let n = s.read(&mut buf).await.unwrap();
                    let req = String::from_utf8_lossy(&buf[..n]).to_string();
                    assert!(req.starts_with("GET /h?x=1 HTTP/1.1\r\n"), "{req}");
                    assert!(
                        req.contains(&format!("Host: 127.0.0.1:{port}\r\n")),
                        "{req}"
                    );
                    assert!(req.contains("Connection: close\r\n"), "{req}");
                    s.write_all(format!("HTTP/1.1 {code} X\r\n\r\n").as_bytes())
                        .await
                        .unwrap();
                }
            });
            let url = HttpUrl {
                host: "127.0.0.1".into(),
                port,
                path: "/h?x=1".into(),
            };
            assert_eq!(http_get_status(&url, Duration::from_secs(2)).await, Ok(204));
            assert_eq!(http_get_status(&url, Duration::from_secs(2)).await, Ok(500));
            // Nobody listening any more: refused, quickly.
            let r = http_get_status(&url, Duration::from_secs(2)).await;
            assert!(r.is_err(), "{r:?}");
        });
    }
}
