//! VRRP raw sockets and the AF_PACKET frame sender between namespaces.
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] fns
mod common;

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::mpsc;
use std::time::Duration;

use common::{Capture, Host, Lan};
use vipd::net::vrrp_socket::{VRRP_GROUP_V4, VRRP_GROUP_V6};
use vipd::net::{FrameSender, RecvMeta, RecvMetaV4, VrrpSocketV4, VrrpSocketV6};

const PAYLOAD: &[u8] = b"\x31\x07\x64\x01\x00\x64\xab\xcdvipd-test-payload";
const T: Duration = Duration::from_secs(3);

/// Opens a v4 socket on `rx` (in its namespace), then lets `tx` send once it is ready;
/// returns what `rx` received and whether `tx` heard its own packet.
fn exchange_v4(
    tx: &Host,
    rx: &Host,
    multicast: bool,
    dst: Ipv4Addr,
) -> (Vec<u8>, RecvMetaV4, bool) {
    let (ready_tx, ready_rx) = mpsc::channel();
    let (rx_ns, rx_if, rx_idx, rx_v4) = (rx.ns.clone(), rx.ifname.clone(), rx.ifindex, rx.v4);
    let receiver = std::thread::spawn(move || {
        rx_ns
            .run_async(|| async move {
                let s = VrrpSocketV4::open(&rx_if, rx_idx, rx_v4, multicast).unwrap();
                ready_tx.send(()).unwrap();
                let mut buf = [0u8; 1500];
                let m = tokio::time::timeout(T, s.recv(&mut buf))
                    .await
                    .expect("timeout")
                    .unwrap();
                (buf[..m.len].to_vec(), m)
            })
            .unwrap()
    });
    ready_rx.recv_timeout(T).unwrap();
    let heard_self = tx
        .run_async(|| async {
            let s = VrrpSocketV4::open(&tx.ifname, tx.ifindex, tx.v4, multicast).unwrap();
            assert_eq!(s.local(), tx.v4);
            s.send_to(PAYLOAD, dst).await.unwrap();
            let mut buf = [0u8; 1500];
            tokio::time::timeout(Duration::from_millis(200), s.recv(&mut buf))
                .await
                .is_ok()
        })
        .unwrap();
    let (bytes, meta) = receiver.join().unwrap();
    (bytes, meta, heard_self)
}

/// The kernel's receive time came with the datagram and is recent.
fn received_just_now(t: Option<std::time::SystemTime>) -> bool {
    t.and_then(|t| std::time::SystemTime::now().duration_since(t).ok())
        .is_some_and(|age| age < std::time::Duration::from_secs(10))
}

fn check_v4(bytes: &[u8], meta: RecvMetaV4, src: Ipv4Addr, dst: Ipv4Addr) {
    check_v4_payload(bytes, meta, src, dst, PAYLOAD);
}

fn check_v4_payload(bytes: &[u8], meta: RecvMetaV4, src: Ipv4Addr, dst: Ipv4Addr, payload: &[u8]) {
    assert_eq!(meta.src, src);
    assert!(received_just_now(meta.received), "SO_TIMESTAMPNS: {meta:?}");
    assert_eq!(bytes[0] >> 4, 4, "IPv4 header delivered");
    let ihl = usize::from(bytes[0] & 0xf) * 4;
    assert_eq!(bytes[1], 0xc0, "TOS");
    assert_eq!(bytes[8], 255, "TTL");
    assert_eq!(bytes[9], 112, "protocol");
    assert_eq!(
        Ipv4Addr::new(bytes[12], bytes[13], bytes[14], bytes[15]),
        src
    );
    assert_eq!(
        Ipv4Addr::new(bytes[16], bytes[17], bytes[18], bytes[19]),
        dst
    );
    assert_eq!(&bytes[ihl..], payload);
    assert_eq!(meta.len, ihl + payload.len());
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn vrrp_v4_multicast_and_unicast() {
    let lan = Lan::new("sock_v4", 2).unwrap();
    let (h0, h1) = (lan.host(0), lan.host(1));
    let (bytes, meta, heard_self) = exchange_v4(h0, h1, true, VRRP_GROUP_V4);
    check_v4(&bytes, meta, h0.v4, VRRP_GROUP_V4);
    assert!(!heard_self, "multicast loop must be off");
    let (bytes, meta, _) = exchange_v4(h1, h0, false, h0.v4);
    check_v4(&bytes, meta, h1.v4, h0.v4);
}

/// A receive buffer too small for a burst: the kernel drops, and the next datagram read
/// says how many (SO_RXQ_OVFL); a larger buffer takes the same burst whole.
#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn kernel_drops_for_want_of_buffer_are_reported() {
    let lan = Lan::new("sock_ovfl", 2).unwrap();
    let (h0, h1) = (lan.host(0), lan.host(1));
    for (bytes, expect_drops) in [(4096usize, true), (1 << 20, false)] {
        let (ready_tx, ready_rx) = mpsc::channel();
        let (go_tx, go_rx) = mpsc::channel::<()>();
        let (drained_tx, drained_rx) = mpsc::channel::<()>();
        let (rx_ns, rx_if, rx_idx, rx_v4) = (h1.ns.clone(), h1.ifname.clone(), h1.ifindex, h1.v4);
        let receiver = std::thread::spawn(move || {
            rx_ns
                .run_async(|| async move {
                    let s = VrrpSocketV4::open(&rx_if, rx_idx, rx_v4, false).unwrap();
                    let got = s.set_receive_buffer(bytes).unwrap();
                    assert!(got >= bytes, "asked {bytes}, got {got}");
                    ready_tx.send(()).unwrap();
                    go_rx.recv().unwrap();
                    let mut buf = [0u8; 1500];
                    let (mut n, mut last) = (0usize, None);
                    while let Ok(Ok(m)) =
                        tokio::time::timeout(Duration::from_millis(300), s.recv(&mut buf)).await
                    {
                        n += 1;
                        last = m.overflows.or(last);
                    }
                    // The count rides on datagrams queued after the drops: one more.
                    drained_tx.send(()).unwrap();
                    if let Ok(Ok(m)) = tokio::time::timeout(T, s.recv(&mut buf)).await {
                        last = m.overflows.or(last);
                    }
                    (n, last)
                })
                .unwrap()
        });
        ready_rx.recv_timeout(T).unwrap();
        h0.run_async(|| async {
            let s = VrrpSocketV4::open(&h0.ifname, h0.ifindex, h0.v4, false).unwrap();
            for _ in 0..500 {
                s.send_to(PAYLOAD, h1.v4).await.unwrap();
            }
        })
        .unwrap();
        go_tx.send(()).unwrap();
        drained_rx.recv_timeout(T).unwrap();
        h0.run_async(|| async {
            let s = VrrpSocketV4::open(&h0.ifname, h0.ifindex, h0.v4, false).unwrap();
            s.send_to(PAYLOAD, h1.v4).await.unwrap();
        })
        .unwrap();
        let (n, dropped) = receiver.join().unwrap();
        let dropped = dropped.unwrap_or(0) as usize;
        eprintln!("rcvbuf {bytes}: read {n}, the kernel dropped {dropped}");
        if expect_drops {
            assert!(
                dropped > 0,
                "no drop reported with a {bytes}-byte buffer (read {n})"
            );
            assert_eq!(n + dropped, 500, "read + dropped = sent");
        } else {
            assert_eq!((n, dropped), (500, 0));
        }
    }
}

fn exchange_v6(tx: &Host, rx: &Host, multicast: bool, dst: Ipv6Addr) -> (Vec<u8>, RecvMeta, bool) {
    let (ready_tx, ready_rx) = mpsc::channel();
    let (rx_ns, rx_if, rx_idx, rx_ll) = (rx.ns.clone(), rx.ifname.clone(), rx.ifindex, rx.ll);
    let receiver = std::thread::spawn(move || {
        rx_ns
            .run_async(|| async move {
                let s = VrrpSocketV6::open(&rx_if, rx_idx, rx_ll, multicast).unwrap();
                ready_tx.send(()).unwrap();
                let mut buf = [0u8; 1500];
                let m = tokio::time::timeout(T, s.recv(&mut buf))
                    .await
                    .expect("timeout")
                    .unwrap();
                (buf[..m.len].to_vec(), m)
            })
            .unwrap()
    });
    ready_rx.recv_timeout(T).unwrap();
    let heard_self = tx
        .run_async(|| async {
            let s = VrrpSocketV6::open(&tx.ifname, tx.ifindex, tx.ll, multicast).unwrap();
            s.send_to(PAYLOAD, dst).await.unwrap();
            let mut buf = [0u8; 1500];
            tokio::time::timeout(Duration::from_millis(200), s.recv(&mut buf))
                .await
                .is_ok()
        })
        .unwrap();
    let (bytes, meta) = receiver.join().unwrap();
    (bytes, meta, heard_self)
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn vrrp_v6_multicast_and_unicast() {
    let lan = Lan::new("sock_v6", 2).unwrap();
    let (h0, h1) = (lan.host(0), lan.host(1));
    let (bytes, meta, heard_self) = exchange_v6(h0, h1, true, VRRP_GROUP_V6);
    assert_eq!(bytes, PAYLOAD);
    assert_eq!(
        meta,
        RecvMeta {
            len: PAYLOAD.len(),
            src: h0.ll,
            dst: VRRP_GROUP_V6,
            hop_limit: 255,
            ifindex: h1.ifindex,
            received: meta.received,
            overflows: None,
        }
    );
    assert!(received_just_now(meta.received), "SO_TIMESTAMPNS: {meta:?}");
    assert!(!heard_self, "multicast loop must be off");
    // Unicast to a link-local peer, and to a global address of the peer.
    let (bytes, meta, _) = exchange_v6(h1, h0, false, h0.ll);
    assert_eq!(bytes, PAYLOAD);
    assert_eq!((meta.src, meta.dst, meta.hop_limit), (h1.ll, h0.ll, 255));
    let (_, meta, _) = exchange_v6(h1, h0, false, h0.v6);
    assert_eq!((meta.src, meta.dst, meta.hop_limit), (h1.ll, h0.v6, 255));
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn vrrp_v6_tshark_sees_hop_limit_and_tos() {
    let lan = Lan::new("sock_v6_cap", 2).unwrap();
    let (h0, h1) = (lan.host(0), lan.host(1));
    let mut cap = Capture::start(h1, "eth0", "ip proto 112 or ip6 proto 112").unwrap();
    h0.run_async(|| async {
        let s4 = VrrpSocketV4::open("eth0", h0.ifindex, h0.v4, true).unwrap();
        s4.send_to(PAYLOAD, VRRP_GROUP_V4).await.unwrap();
        let s6 = VrrpSocketV6::open("eth0", h0.ifindex, h0.ll, true).unwrap();
        s6.send_to(PAYLOAD, VRRP_GROUP_V6).await.unwrap();
    })
    .unwrap();
    let pkts = cap.stop().unwrap();
    assert_eq!(pkts.len(), 2, "{pkts:#?}");
    assert_eq!(pkts[0].src, Some(h0.v4.into()));
    assert_eq!(pkts[0].dst, Some(VRRP_GROUP_V4.into()));
    assert_eq!(pkts[0].ttl, Some(255));
    assert_eq!(pkts[0].eth_dst, "01:00:5e:00:00:12");
    assert_eq!(pkts[1].src, Some(h0.ll.into()));
    assert_eq!(pkts[1].dst, Some(VRRP_GROUP_V6.into()));
    assert_eq!(pkts[1].ttl, Some(255));
    assert_eq!(pkts[1].eth_dst, "33:33:00:00:00:12");
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn truncated_datagram_is_an_error_and_socket_survives() {
    let lan = Lan::new("sock_trunc", 2).unwrap();
    let (h0, h1) = (lan.host(0), lan.host(1));
    let (ready_tx, ready_rx) = mpsc::channel();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let ns1 = h1.ns.clone();
    let (idx1, ll1) = (h1.ifindex, h1.ll);
    let r = std::thread::spawn(move || {
        ns1.run_async(|| async move {
            let s = VrrpSocketV6::open("eth0", idx1, ll1, true).unwrap();
            ready_tx.send(()).unwrap();
            let mut small = [0u8; 8];
            let e = tokio::time::timeout(T, s.recv(&mut small))
                .await
                .unwrap()
                .unwrap_err();
            go_tx.send(()).unwrap();
            let mut buf = [0u8; 1500];
            let m = tokio::time::timeout(T, s.recv(&mut buf))
                .await
                .unwrap()
                .unwrap();
            (e.kind(), m.len)
        })
        .unwrap()
    });
    ready_rx.recv_timeout(T).unwrap();
    h0.run_async(move || async move {
        let s = VrrpSocketV6::open("eth0", h0.ifindex, h0.ll, true).unwrap();
        s.send_to(PAYLOAD, VRRP_GROUP_V6).await.unwrap();
        go_rx.recv_timeout(T).unwrap();
        s.send_to(PAYLOAD, VRRP_GROUP_V6).await.unwrap();
    })
    .unwrap();
    let (kind, len) = r.join().unwrap();
    assert_eq!(kind, std::io::ErrorKind::InvalidData);
    assert_eq!(len, PAYLOAD.len());
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn frame_sender_frames_arrive_verbatim() {
    let lan = Lan::new("sock_frame", 2).unwrap();
    let (h0, h1) = (lan.host(0), lan.host(1));
    let mut frame = vec![0xff; 6];
    frame.extend_from_slice(&h0.mac);
    frame.extend_from_slice(&[0x88, 0xb5]); // local experimental EtherType
    frame.extend_from_slice(b"vipd frame sender test, padded to the minimum..");
    let mut cap = Capture::start(h1, "eth0", "ether proto 0x88b5").unwrap();
    h0.run_async(|| async {
        let f = FrameSender::open(h0.ifindex).unwrap();
        assert_eq!(f.ifindex(), h0.ifindex);
        f.send(&frame).await.unwrap();
        assert!(f.send(&frame[..10]).await.is_err());
    })
    .unwrap();
    let pkts = cap.stop().unwrap();
    assert_eq!(pkts.len(), 1, "{pkts:#?}");
    assert_eq!(pkts[0].bytes, frame);
    assert_eq!(pkts[0].eth_dst, "ff:ff:ff:ff:ff:ff");
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn open_errors_are_errors() {
    let lan = Lan::new("sock_err", 1).unwrap();
    let h = lan.host(0);
    // Outside a runtime: error, not panic.
    h.run(|| {
        assert!(VrrpSocketV4::open("eth0", h.ifindex, h.v4, true).is_err());
        assert!(FrameSender::open(h.ifindex).is_err());
    })
    .unwrap();
    h.run_async(|| async {
        assert!(VrrpSocketV4::open("nosuch0", 77, h.v4, true).is_err());
        assert!(VrrpSocketV6::open("nosuch0", 77, h.ll, true).is_err());
        assert!(FrameSender::open(777).is_err());
    })
    .unwrap();
}

/// `send_batch` (one `sendmmsg` for the adverts due at one wake-up): 64 payloads, each
/// different, to the multicast group and to a unicast peer alternately, all arrive, in order,
/// with the header fields of single sends (TTL 255, our source); IPv6 likewise.
#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn send_batch_delivers_every_advert_in_order() {
    // One sendmmsg's worth that the receiver's default socket buffer holds at once, whatever
    // the load (a burst beyond it is dropped by the receiving kernel, batch or not).
    const N: usize = 64;
    let lan = Lan::new("sock_batch", 2).unwrap();
    let (h0, h1) = (lan.host(0), lan.host(1));
    // Resolve the unicast peer first: packets queued behind an unresolved neighbour are
    // bounded by the kernel (unres_qlen), batch or not.
    assert!(h0.ping(std::net::IpAddr::V4(h1.v4)).unwrap());
    assert!(h0.ping(std::net::IpAddr::V6(h1.v6)).unwrap());
    let payload = |i: usize| {
        let mut p = PAYLOAD.to_vec();
        p.extend_from_slice(&(i as u32).to_be_bytes());
        p
    };
    // IPv4.
    let (ready_tx, ready_rx) = mpsc::channel();
    let (ns, ifname, idx, v4) = (h1.ns.clone(), h1.ifname.clone(), h1.ifindex, h1.v4);
    let receiver = std::thread::spawn(move || {
        ns.run_async(|| async move {
            let s = VrrpSocketV4::open(&ifname, idx, v4, true).unwrap();
            ready_tx.send(()).unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 1500];
            while got.len() < N {
                let m = tokio::time::timeout(T, s.recv(&mut buf))
                    .await
                    .expect("timeout")
                    .unwrap();
                got.push((buf[..m.len].to_vec(), m));
            }
            got
        })
        .unwrap()
    });
    ready_rx.recv_timeout(T).unwrap();
    let peer = h1.v4;
    let sent = h0
        .run_async(|| async {
            let s = VrrpSocketV4::open(&h0.ifname, h0.ifindex, h0.v4, true).unwrap();
            let bodies: Vec<Vec<u8>> = (0..N).map(payload).collect();
            let msgs: Vec<(&[u8], Ipv4Addr)> = bodies
                .iter()
                .enumerate()
                .map(|(i, b)| {
                    let dst = if i % 2 == 0 { VRRP_GROUP_V4 } else { peer };
                    (b.as_slice(), dst)
                })
                .collect();
            s.send_batch(&msgs).await
        })
        .unwrap();
    assert_eq!(sent.len(), N);
    assert!(sent.iter().all(Result::is_ok), "{sent:?}");
    let got = receiver.join().unwrap();
    for (i, (bytes, meta)) in got.iter().enumerate() {
        let dst = if i % 2 == 0 { VRRP_GROUP_V4 } else { peer };
        check_v4_payload(bytes, *meta, h0.v4, dst, &payload(i));
    }
    // IPv6.
    let (ready_tx, ready_rx) = mpsc::channel();
    let (ns, ifname, idx, ll) = (h1.ns.clone(), h1.ifname.clone(), h1.ifindex, h1.ll);
    let receiver = std::thread::spawn(move || {
        ns.run_async(|| async move {
            let s = VrrpSocketV6::open(&ifname, idx, ll, true).unwrap();
            ready_tx.send(()).unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 1500];
            while got.len() < N {
                let m = tokio::time::timeout(T, s.recv(&mut buf))
                    .await
                    .expect("timeout")
                    .unwrap();
                got.push((buf[..m.len].to_vec(), m));
            }
            got
        })
        .unwrap()
    });
    ready_rx.recv_timeout(T).unwrap();
    let peer6 = h1.v6;
    let sent = h0
        .run_async(|| async {
            let s = VrrpSocketV6::open(&h0.ifname, h0.ifindex, h0.ll, true).unwrap();
            let bodies: Vec<Vec<u8>> = (0..N).map(payload).collect();
            let msgs: Vec<(&[u8], Ipv6Addr)> = bodies
                .iter()
                .enumerate()
                .map(|(i, b)| {
                    let dst = if i % 2 == 0 { VRRP_GROUP_V6 } else { peer6 };
                    (b.as_slice(), dst)
                })
                .collect();
            s.send_batch(&msgs).await
        })
        .unwrap();
    assert!(sent.iter().all(Result::is_ok), "{sent:?}");
    let got = receiver.join().unwrap();
    for (i, (bytes, meta)) in got.iter().enumerate() {
        let dst = if i % 2 == 0 { VRRP_GROUP_V6 } else { peer6 };
        assert_eq!(bytes, &payload(i), "v6 message {i}");
        assert_eq!(
            (meta.src, meta.dst, meta.hop_limit),
            (h0.ll, dst, 255),
            "v6 message {i}"
        );
    }
}
