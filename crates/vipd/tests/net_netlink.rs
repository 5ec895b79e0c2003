//! crate::net::netlink against a real kernel, inside throw-away namespaces.
#![allow(clippy::unwrap_used, clippy::expect_used)] // helpers outside #[test] fns
mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use common::Lan;
use vipd::net::{AddrSpec, NetEvent, NetEvents, Netlink, RtNetlink, Scope, subscribe};

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn link_lookup() {
    let lan = Lan::new("nl_link", 1).unwrap();
    let h = lan.host(0);
    let (info, lo, none, by_index) = h
        .run_async(|| async {
            let nl = RtNetlink::new().unwrap();
            let info = nl.link_by_name("eth0").await.unwrap().unwrap();
            let lo = nl.link_by_name("lo").await.unwrap().unwrap();
            let none = nl.link_by_name("nosuchif0").await.unwrap();
            let by_index = nl.link_by_index(info.index).await.unwrap();
            (info, lo, none, by_index)
        })
        .unwrap();
    assert_eq!(info.index, h.ifindex);
    assert_eq!(info.name, "eth0");
    assert_eq!(info.mac, Some(h.mac));
    assert!(info.up);
    assert_eq!(info.mtu, 1500);
    assert!(lo.up && lo.index == 1);
    assert_eq!(none, None);
    assert_eq!(by_index, Some(info.clone()));
    // Carrier loss: admin up, but not "up" for us.
    lan.link_down(0).unwrap();
    let down = h
        .run_async(|| async {
            RtNetlink::new()
                .unwrap()
                .link_by_name("eth0")
                .await
                .unwrap()
                .unwrap()
        })
        .unwrap();
    assert!(!down.up);
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn add_list_delete_vips() {
    let lan = Lan::new("nl_addr", 1).unwrap();
    let h = lan.host(0);
    let v4: IpAddr = lan.addr_v4(200).into();
    let v6: IpAddr = lan.addr_v6(0x200).into();
    let v4b: IpAddr = lan.addr_v4(201).into();
    let idx = h.ifindex;
    let listed = h
        .run_async(|| async {
            let nl = RtNetlink::new().unwrap();
            let spec4 = AddrSpec {
                addr: v4,
                prefix_len: 32,
                label: Some("eth0:vip1".into()),
                scope: Scope::Global,
                nodad: false,
            };
            let spec6 = AddrSpec::vip(v6, 64);
            // keepalived's (and OpenShift's) bare label: the kernel takes any label of up to
            // 15 bytes; only iproute2 insists on the "<dev>:" prefix.
            let bare = AddrSpec {
                addr: v4b,
                prefix_len: 32,
                label: Some("vip".into()),
                scope: Scope::Global,
                nodad: false,
            };
            nl.add_addr(idx, &bare).await.unwrap();
            nl.add_addr(idx, &spec4).await.unwrap();
            nl.add_addr(idx, &spec4).await.unwrap(); // idempotent
            nl.add_addr(idx, &spec6).await.unwrap();
            nl.add_addr(idx, &spec6).await.unwrap();
            nl.addrs(idx).await.unwrap()
        })
        .unwrap();
    assert!(listed.contains(&(v4, 32)), "{listed:?}");
    assert!(listed.contains(&(v6, 64)), "{listed:?}");
    assert!(listed.contains(&(IpAddr::V4(h.v4), 24)), "{listed:?}");
    assert!(listed.contains(&(IpAddr::V6(h.ll), 64)), "{listed:?}");

    let addrs = h.addrs_on("eth0").unwrap();
    let a4 = addrs.iter().find(|a| a.addr == v4).unwrap();
    assert_eq!(a4.label.as_deref(), Some("eth0:vip1"));
    let b4 = addrs.iter().find(|a| a.addr == v4b).unwrap();
    assert_eq!(b4.label.as_deref(), Some("vip"));
    assert_eq!(a4.scope, "global");
    let a6 = addrs.iter().find(|a| a.addr == v6).unwrap();
    assert!(!a6.tentative(), "{a6:?}");
    assert!(a6.has_flag("nodad"), "{a6:?}");
    let text = h
        .exec_ok(&["ip", "-6", "addr", "show", "dev", "eth0"])
        .unwrap();
    assert!(!text.contains("tentative"), "{text}");

    // A VIP is reachable from the other side of the LAN... (from the host itself here).
    assert!(h.ping(v4).unwrap());
    assert!(h.ping(v6).unwrap());

    let (after, bad) = h
        .run_async(|| async {
            let nl = RtNetlink::new().unwrap();
            nl.del_addr(idx, v4, 32).await.unwrap();
            nl.del_addr(idx, v4, 32).await.unwrap(); // idempotent
            nl.del_addr(idx, v6, 64).await.unwrap();
            nl.del_addr(idx, v6, 64).await.unwrap();
            let bad = nl.add_addr(9999, &AddrSpec::vip(v4, 32)).await;
            // Deleting from an interface that is gone: nothing left to delete.
            nl.del_addr(9999, v4, 32).await.unwrap();
            (nl.addrs(idx).await.unwrap(), bad)
        })
        .unwrap();
    assert!(
        !after.iter().any(|(a, _)| *a == v4 || *a == v6),
        "{after:?}"
    );
    assert!(bad.is_err());
    assert!(!h.has_addr("eth0", v4).unwrap() && !h.has_addr("eth0", v6).unwrap());
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn scope_is_applied() {
    let lan = Lan::new("nl_scope", 1).unwrap();
    let h = lan.host(0);
    let idx = h.ifindex;
    let a: IpAddr = Ipv4Addr::new(10, 98, 0, 1).into();
    h.run_async(|| async {
        let nl = RtNetlink::new().unwrap();
        let mut spec = AddrSpec::vip(a, 32);
        spec.scope = Scope::Link;
        nl.add_addr(idx, &spec).await.unwrap();
    })
    .unwrap();
    let info = h
        .addrs_on("eth0")
        .unwrap()
        .into_iter()
        .find(|x| x.addr == a)
        .unwrap();
    assert_eq!(info.scope, "link");
}

async fn next_matching(
    ev: &mut NetEvents,
    mut pred: impl FnMut(&NetEvent) -> bool,
) -> Option<NetEvent> {
    tokio::time::timeout(Duration::from_secs(3), async {
        while let Some(e) = ev.recv().await {
            if pred(&e) {
                return Some(e);
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
}

#[test]
#[cfg_attr(
    not(vipd_root),
    ignore = "needs root: network namespaces (run scripts/test.sh as root)"
)]
fn events_link_and_addr() {
    let lan = Lan::new("nl_events", 1).unwrap();
    let h = lan.host(0);
    let idx = h.ifindex;
    let vip: IpAddr = lan.addr_v4(201).into();
    let vip6: IpAddr = lan.addr_v6(0x201).into();
    h.run_async(|| async {
        let mut ev = subscribe().unwrap();
        // Carrier loss (switch side down) -> Link{up: false}; back -> up: true.
        lan.link_down(0).unwrap();
        let e = next_matching(
            &mut ev,
            |e| matches!(e, NetEvent::Link(l) if l.index == idx && !l.up),
        )
        .await;
        assert!(e.is_some(), "no link-down event");
        lan.link_up(0).unwrap();
        let e = next_matching(
            &mut ev,
            |e| matches!(e, NetEvent::Link(l) if l.index == idx && l.up),
        )
        .await;
        assert!(e.is_some(), "no link-up event");

        // Addresses added/removed behind our back (by `ip`), both families.
        for (a, p) in [(vip, 32u8), (vip6, 128u8)] {
            let s = format!("{a}/{p}");
            h.exec_ok(
                &["ip", "addr", "add", &s, "dev", "eth0", "nodad"]
                    [..if a.is_ipv6() { 7 } else { 6 }],
            )
            .unwrap();
            let e = next_matching(&mut ev, |e| {
                *e == NetEvent::AddrAdded {
                    index: idx,
                    addr: a,
                    prefix_len: p,
                }
            })
            .await;
            assert!(e.is_some(), "no AddrAdded for {s}");
            h.exec_ok(&["ip", "addr", "del", &s, "dev", "eth0"])
                .unwrap();
            let e = next_matching(&mut ev, |e| {
                *e == NetEvent::AddrRemoved {
                    index: idx,
                    addr: a,
                    prefix_len: p,
                }
            })
            .await;
            assert!(e.is_some(), "no AddrRemoved for {s}");
        }

        // Link removal: a dummy-less kernel may lack `dummy`; use a veth pair.
        h.exec_ok(&[
            "ip", "link", "add", "tmp0", "type", "veth", "peer", "name", "tmp1",
        ])
        .unwrap();
        let e = next_matching(
            &mut ev,
            |e| matches!(e, NetEvent::Link(l) if l.name == "tmp0"),
        )
        .await;
        let Some(NetEvent::Link(l)) = e else {
            panic!("no new-link event")
        };
        h.exec_ok(&["ip", "link", "del", "tmp0"]).unwrap();
        let e = next_matching(&mut ev, |e| *e == NetEvent::LinkRemoved { index: l.index }).await;
        assert!(e.is_some(), "no LinkRemoved");
    })
    .unwrap();
}

#[test]
fn outside_runtime_is_an_error_not_a_panic() {
    assert!(RtNetlink::new().is_err());
    assert!(subscribe().is_err());
}
