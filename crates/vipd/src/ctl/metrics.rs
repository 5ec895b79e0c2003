//! Prometheus metrics: rendered with prometheus-client from the status snapshot the daemon
//! publishes every second, served over a minimal HTTP/1.1 endpoint (GET /metrics) on a
//! configured address, with a connection cap and one deadline per connection.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tracing::{debug, info, warn};

use super::Status;
use crate::ratelimit::{LogEvery, held_note};

type Labels = Vec<(String, String)>;

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

const STATES: [&str; 4] = ["MASTER", "BACKUP", "FAULT", "INIT"];

/// Renders the Prometheus text exposition of a status snapshot.
pub fn render(status: &Status) -> Result<String, std::fmt::Error> {
    let mut reg = Registry::with_prefix("vipd");
    let state = Family::<Labels, Gauge>::default();
    let priority = Family::<Labels, Gauge>::default();
    let transitions = Family::<Labels, Counter>::default();
    let sent = Family::<Labels, Counter>::default();
    let received = Family::<Labels, Counter>::default();
    let lower = Family::<Labels, Counter>::default();
    let drops = Family::<Labels, Counter>::default();
    let iface_drops = Family::<Labels, Counter>::default();
    let tracker_up = Family::<Labels, Gauge>::default();
    let tracker_contrib = Family::<Labels, Gauge>::default();
    let vip_present = Family::<Labels, Gauge>::default();
    let failover = Family::<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    let alarm = Family::<Labels, Gauge>::default();
    let master = Family::<Labels, Gauge>::default();
    let master_changes = Family::<Labels, Counter>::default();
    let became_master = Family::<Labels, Counter>::default();
    let master_since = Family::<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    let announced = Family::<Labels, Gauge>::default();
    let announce_since = Family::<Labels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    for i in &status.instances {
        let vrid = i.vrid.to_string();
        // `vrrp_instance`, not `instance`: Prometheus sets `instance` to the scraped target.
        let base = [
            ("vrrp_instance", i.name.as_str()),
            ("vrid", vrid.as_str()),
            ("interface", i.interface.as_str()),
        ];
        for s in STATES {
            let mut l = base.to_vec();
            l.push(("state", s));
            state
                .get_or_create(&labels(&l))
                .set(i64::from(i.state == s));
        }
        let mut l = base.to_vec();
        l.push(("kind", "base"));
        priority
            .get_or_create(&labels(&l))
            .set(i64::from(i.base_priority));
        let mut l = base.to_vec();
        l.push(("kind", "effective"));
        priority
            .get_or_create(&labels(&l))
            .set(i64::from(i.effective_priority));
        transitions
            .get_or_create(&labels(&base))
            .inc_by(i.counters.transitions);
        sent.get_or_create(&labels(&base))
            .inc_by(i.counters.adverts_sent);
        received
            .get_or_create(&labels(&base))
            .inc_by(i.counters.adverts_received);
        lower
            .get_or_create(&labels(&base))
            .inc_by(i.counters.lower_priority_received);
        master_changes
            .get_or_create(&labels(&base))
            .inc_by(i.counters.master_changes);
        became_master
            .get_or_create(&labels(&base))
            .inc_by(i.counters.became_master);
        if let Some(t) = i.master_since_unix_ms {
            master_since
                .get_or_create(&labels(&base))
                .set(t as f64 / 1e3);
        }
        if let Some(m) = &i.master {
            let mut l = base.to_vec();
            l.push(("address", m.address.as_str()));
            master.get_or_create(&labels(&l)).set(i64::from(m.priority));
        }
        for (reason, n) in &i.counters.drops {
            let mut l = base.to_vec();
            l.push(("reason", reason.as_str()));
            drops.get_or_create(&labels(&l)).inc_by(*n);
        }
        for t in &i.trackers {
            let mut l = base.to_vec();
            l.push(("tracker", t.name.as_str()));
            l.push(("kind", t.kind.as_str()));
            tracker_up.get_or_create(&labels(&l)).set(i64::from(t.up));
            tracker_contrib
                .get_or_create(&labels(&l))
                .set(i64::from(t.contribution));
        }
        for v in &i.vips {
            let mut l = base.to_vec();
            l.push(("address", v.address.as_str()));
            vip_present
                .get_or_create(&labels(&l))
                .set(i64::from(v.present));
        }
        for a in &i.alarms {
            let mut l = base.to_vec();
            l.push(("alarm", a.kind.as_str()));
            l.push(("peer", a.peer.as_str()));
            alarm.get_or_create(&labels(&l)).set(1);
        }
        if let Some(a) = &i.announce {
            let mut l = base.to_vec();
            l.push(("policy", a.policy.as_str()));
            announced
                .get_or_create(&labels(&l))
                .set(i64::from(a.announced));
            announce_since
                .get_or_create(&labels(&l))
                .set(a.since_unix_ms as f64 / 1e3);
        }
        if let Some(total) = i.last_drill.as_ref().and_then(|d| d.total_ms) {
            failover.get_or_create(&labels(&base)).set(total / 1e3);
        }
    }
    for (ifname, reasons) in &status.interface_drops {
        for (reason, n) in reasons {
            iface_drops
                .get_or_create(&labels(&[("interface", ifname), ("reason", reason)]))
                .inc_by(*n);
        }
    }
    reg.register(
        "instance_state",
        "1 for the state the instance is in",
        state,
    );
    reg.register("priority", "Base and effective VRRP priority", priority);
    reg.register("transitions", "State transitions", transitions);
    reg.register("adverts_sent", "VRRP advertisements sent", sent);
    reg.register("adverts_received", "VRRP advertisements accepted", received);
    reg.register(
        "lower_priority_received",
        "As master, adverts of another router that believed it was master (answered, VIPs re-announced)",
        lower,
    );
    reg.register(
        "master",
        "The master this node knows of (address: its address, this node's own when master); the value is its priority",
        master,
    );
    reg.register(
        "master_changes",
        "Times the master this node knows of changed",
        master_changes,
    );
    reg.register(
        "became_master",
        "Times this node became MASTER (takeovers, drills included)",
        became_master,
    );
    reg.register(
        "master_change_timestamp_seconds",
        "When the master this node knows of last changed (Unix time)",
        master_since,
    );
    reg.register(
        "announced",
        "[instance.announce]: 1 while the VIPs are announced to the BGP daemon",
        announced,
    );
    reg.register(
        "announce_change_timestamp_seconds",
        "[instance.announce]: when the announcement last changed (Unix time)",
        announce_since,
    );
    reg.register("drops", "Dropped VRRP packets by reason", drops);
    reg.register(
        "interface_drops",
        "Dropped VRRP packets not attributable to an instance",
        iface_drops,
    );
    reg.register("tracker_up", "1 while the tracker is healthy", tracker_up);
    reg.register(
        "tracker_contribution",
        "What the tracker adds to the priority now",
        tracker_contrib,
    );
    reg.register(
        "vip_present",
        "1 while the VIP is on the interface",
        vip_present,
    );
    reg.register(
        "alarm",
        "1 while a peer's adverts disagree with our configuration (alarm: the kind; peer: who)",
        alarm,
    );
    reg.register(
        "last_failover_seconds",
        "Duration of the last failover drill (start to the new master's gratuitous ARP/NA)",
        failover,
    );
    let queue = Counter::<u64>::default();
    queue.inc_by(status.queue_full_drops);
    reg.register(
        "receive_queue_full",
        "Packets dropped because the receive queue was full",
        queue,
    );
    let mut out = String::new();
    encode(&mut out, &reg)?;
    Ok(out)
}

/// Largest HTTP request head read.
const MAX_REQUEST: usize = 8192;
/// Connections served at once; more are closed at once (a scraper retries). Bounded so that
/// no number of idle clients can take vipd's descriptors.
pub const MAX_CONNECTIONS: usize = 8;
/// One deadline for a connection's request and response together.
pub const CONNECTION_DEADLINE: Duration = Duration::from_secs(5);
/// How often the daemon publishes the snapshot scrapes are served from.
pub const SNAPSHOT_EVERY: Duration = Duration::from_secs(1);

/// The latest status snapshot, published by the daemon's loop every [`SNAPSHOT_EVERY`]:
/// scrapes read it and never reach the loop.
pub type Snapshot = watch::Receiver<Option<Arc<Status>>>;

/// Serves GET /metrics on `addr` from `snapshot`.
pub async fn serve(addr: SocketAddr, snapshot: Snapshot) -> io::Result<()> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| io::Error::new(e.kind(), format!("bind metrics address {addr}: {e}")))?;
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::spawn(async move {
        let mut refused = LogEvery::new(Duration::from_secs(60));
        let mut accept_failed = LogEvery::new(Duration::from_secs(60));
        loop {
            let (stream, peer) = match listener.accept().await {
                Ok(c) => c,
                Err(e) => {
                    super::accept_failed(&mut accept_failed, "metrics endpoint", &e).await;
                    continue;
                }
            };
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                if let Some(held) = refused.check(std::time::Instant::now()) {
                    warn!(peer = %peer,
                          "metrics endpoint: {MAX_CONNECTIONS} connections already open; closed the one from {peer}{}",
                          held_note(held));
                }
                drop(stream);
                continue;
            };
            let snapshot = snapshot.borrow().clone();
            tokio::spawn(async move {
                let _slot = slot;
                if tokio::time::timeout(CONNECTION_DEADLINE, exchange(stream, snapshot))
                    .await
                    .is_err()
                {
                    debug!(peer = %peer, "metrics client closed after the {} deadline", vipd_config::format_duration(CONNECTION_DEADLINE));
                }
            });
        }
    });
    info!(%addr, "serving Prometheus metrics");
    Ok(())
}

/// Reads one request head and answers it from `snapshot`.
async fn exchange(mut stream: tokio::net::TcpStream, snapshot: Option<Arc<Status>>) {
    let mut head = vec![0u8; MAX_REQUEST];
    let mut len = 0;
    while len < head.len() {
        let n = match stream.read(&mut head[len..]).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        len += n;
        if head[..len].windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let first = head[..len].split(|b| *b == b'\n').next().unwrap_or(&[]);
    // HEAD: the same answer without its body (load balancers' and monitors' probes).
    let head_only = first.starts_with(b"HEAD ");
    let (code, body, ctype) =
        if first.starts_with(b"GET /metrics ") || first.starts_with(b"HEAD /metrics ") {
            match snapshot.map(|s| render(&s)) {
                Some(Ok(text)) => (
                    "200 OK",
                    text,
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
                _ => (
                    "503 Service Unavailable",
                    "vipd is starting or stopping\n".into(),
                    "text/plain",
                ),
            }
        } else {
            ("404 Not Found", "try /metrics\n".into(), "text/plain")
        };
    let resp = format!(
        "HTTP/1.1 {code}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        body.len(),
        if head_only { "" } else { body.as_str() }
    );
    if let Err(e) = stream.write_all(resp.as_bytes()).await {
        debug!(error = %e, "metrics client went away");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ctl::{Counters, InstanceStatus, TrackerStatus, VipStatus};

    #[test]
    fn renders_instances() {
        let mut counters = Counters {
            adverts_sent: 5,
            ..Counters::default()
        };
        counters.drops.insert("ttl_not_255".into(), 2);
        let s = Status {
            instances: vec![InstanceStatus {
                name: "VI_1".into(),
                vrid: 51,
                interface: "eth0".into(),
                state: "MASTER".into(),
                base_priority: 150,
                effective_priority: 130,
                trackers: vec![TrackerStatus {
                    name: "chk".into(),
                    kind: "script".into(),
                    up: false,
                    weight: -20,
                    contribution: -20,
                    ..TrackerStatus::default()
                }],
                vips: vec![VipStatus {
                    address: "10.0.0.100/24".into(),
                    present: true,
                    interface: None,
                    excluded: false,
                }],
                counters,
                alarms: vec![crate::ctl::AlarmStatus {
                    kind: "checksum_form".into(),
                    peer: "10.0.0.12".into(),
                    ..Default::default()
                }],
                ..InstanceStatus::default()
            }],
            ..Status::default()
        };
        let text = render(&s).unwrap();
        assert!(text.contains(r#"vipd_instance_state{vrrp_instance="VI_1",vrid="51",interface="eth0",state="MASTER"} 1"#), "{text}");
        assert!(text.contains(
            r#"vipd_priority{vrrp_instance="VI_1",vrid="51",interface="eth0",kind="effective"} 130"#
        ));
        assert!(text.contains(
            r#"vipd_drops_total{vrrp_instance="VI_1",vrid="51",interface="eth0",reason="ttl_not_255"} 2"#
        ));
        assert!(text.contains(
            r#"vipd_adverts_sent_total{vrrp_instance="VI_1",vrid="51",interface="eth0"} 5"#
        ));
        assert!(text.contains("vipd_tracker_contribution"));
        assert!(
            text.contains(r#"vipd_alarm{vrrp_instance="VI_1",vrid="51",interface="eth0",alarm="checksum_form",peer="10.0.0.12"} 1"#),
            "{text}"
        );
        assert!(
            !text.contains("{instance="),
            "`instance` is Prometheus's target label: {text}"
        );
        assert!(text.ends_with("# EOF\n"));
    }
}
