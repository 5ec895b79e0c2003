//! `vipd --check` over several files: the weight arithmetic between peers.
//!
//! keepalived's most common misconfiguration is a tracker weight that cannot move the VIP:
//! the preferred master's priority minus the weight is still at least the best backup's
//! priority, so the master keeps the VIP while its load balancer is down. One file does not
//! know its peers' priorities; given every peer's file, [`cross_check`] does the arithmetic for
//! instances that share a (vrid, address family) and warns at the weight.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::diag::{Diagnostic, Severity};
use super::types::{Family, Instance, Loaded, TrackKind, TrackRef, WeightSite};

fn eff(p: i64) -> i64 {
    p.clamp(1, 254)
}

/// Sum of positive weights of polled/binary trackers (file trackers depend on the value).
fn pos(i: &Instance) -> i64 {
    i.track
        .iter()
        .filter(|t| t.weight > 0 && t.kind != TrackKind::File)
        .map(|t| i64::from(t.weight))
        .sum()
}

fn neg(i: &Instance) -> i64 {
    i.track
        .iter()
        .filter(|t| t.weight < 0 && t.kind != TrackKind::File)
        .map(|t| i64::from(t.weight))
        .sum()
}

/// "150" or "150 + 20".
fn healthy_expr(i: &Instance) -> String {
    let p = pos(i);
    if p == 0 {
        i.priority.to_string()
    } else {
        format!("{} + {p}", i.priority)
    }
}

fn site<'a>(sites: &'a [WeightSite], inst: &str, t: &TrackRef) -> Option<&'a WeightSite> {
    sites
        .iter()
        .find(|s| s.instance == inst && s.kind == t.kind && s.tracker == t.name)
}

fn diag(file: &Path, s: Option<&WeightSite>, message: String, hint: String) -> Diagnostic {
    match s {
        Some(s) if s.line > 0 => Diagnostic {
            severity: Severity::Warning,
            file: file.to_path_buf(),
            line: s.line,
            column: s.column,
            message,
            hint: Some(hint),
            source_line: s.source_line.clone(),
            width: s.width,
        },
        _ => {
            let mut d = Diagnostic::whole_file(Severity::Warning, file, message);
            d.hint = Some(hint);
            d
        }
    }
}

/// Cross-checks the tracker weights of instances that share a (vrid, family) across `files`
/// (each file's path and loaded configuration). Returns warnings, located at the weights.
pub fn cross_check(files: &[(PathBuf, Loaded)]) -> Vec<Diagnostic> {
    let mut by_vr: BTreeMap<(u8, u8), Vec<(usize, &Instance)>> = BTreeMap::new();
    for (fi, (_, l)) in files.iter().enumerate() {
        // Active-active instances run no VRRP: no master, no weights to compare.
        for i in l.config.instances.iter().filter(|i| !i.is_anycast()) {
            let fam = match i.family {
                Family::Ipv4 => 4,
                Family::Ipv6 => 6,
            };
            by_vr.entry((i.vrid, fam)).or_default().push((fi, i));
        }
    }
    let mut out = Vec::new();
    for members in by_vr.values() {
        let files_in: std::collections::BTreeSet<usize> = members.iter().map(|m| m.0).collect();
        if files_in.len() < 2 {
            continue;
        }
        // The preferred master: the highest base priority, if unique.
        let Some(top) = members.iter().map(|m| m.1.priority).max() else {
            continue;
        };
        let masters: Vec<&(usize, &Instance)> =
            members.iter().filter(|m| m.1.priority == top).collect();
        let [(mf, m)] = masters
            .as_slice()
            .iter()
            .map(|x| (x.0, x.1))
            .collect::<Vec<_>>()[..]
        else {
            continue;
        };
        if m.is_owner() {
            continue;
        }
        let Some(&(bf, b)) = members
            .iter()
            .filter(|x| x.0 != mf)
            .max_by_key(|x| eff(i64::from(x.1.priority) + pos(x.1)))
        else {
            continue;
        };
        let (mpath, _) = &files[mf];
        let (bpath, _) = &files[bf];
        let msites = &files[mf].1.weight_sites;
        let b_best = eff(i64::from(b.priority) + pos(b));
        let b_expr = if pos(b) == 0 {
            b.priority.to_string()
        } else {
            format!("{} = {b_best}", healthy_expr(b))
        };
        let m_pos = pos(m);
        let m_healthy = eff(i64::from(m.priority) + m_pos);
        let bname = bpath.display();
        for t in &m.track {
            if t.weight == 0 || t.kind == TrackKind::File {
                continue;
            }
            let w = i64::from(t.weight);
            let failing = if w > 0 {
                eff(i64::from(m.priority) + m_pos - w)
            } else {
                eff(i64::from(m.priority) + m_pos + w)
            };
            if failing < b_best {
                if !b.preempt {
                    // The arithmetic works, but the backup never acts on it: a backup without
                    // preempt accepts a lower master's adverts and takes over only when the
                    // master stops advertising.
                    out.push(diag(
                        mpath,
                        site(msites, &m.name, t),
                        format!(
                            "{} `{}` failing lowers `{}` to {failing} < {b_best} on {bname}, but `{}` there has preempt = false: a backup without preempt does not take over from a master whose priority dropped, so the VIP never moves",
                            t.kind, t.name, m.name, b.name
                        ),
                        "set preempt = true on the backup (add preempt_delay to damp flapping), or weight = 0 here (FAULT while failing hands over whatever the backup's preempt)".into(),
                    ));
                }
                continue;
            }
            let expr = if w > 0 {
                format!("{} - {w}", healthy_expr(m))
            } else {
                format!("{} - {}", healthy_expr(m), -w)
            };
            // The smallest magnitude that takes the master below the backup.
            let need = m_healthy - b_best + 1;
            let hint = if need > 254 {
                format!(
                    "no weight can do it: lower `{}`'s priority or raise the backup's, or use weight = 0 (FAULT while failing)",
                    m.name
                )
            } else if w > 0 {
                format!("use weight = {need} or more (or weight = 0: FAULT while failing)")
            } else {
                format!("use weight = -{need} or lower (or weight = 0: FAULT while failing)")
            };
            out.push(diag(
                mpath,
                site(msites, &m.name, t),
                format!(
                    "{expr} = {failing} >= {b_expr} on {bname} (instance `{}`, vrid {}): the VIP never moves when {} `{}` fails",
                    b.name, m.vrid, t.kind, t.name
                ),
                hint,
            ));
        }
        // Positive weights on the backup that cannot lift it above the master even when every
        // one of the master's trackers fails (only meaningful when the master has trackers).
        let m_weighted = m
            .track
            .iter()
            .any(|t| t.weight != 0 && t.kind != TrackKind::File);
        let m_worst = eff(i64::from(m.priority) + neg(m));
        for &(xf, x) in members.iter().filter(|x| x.0 != mf) {
            if !m_weighted || pos(x) == 0 {
                continue;
            }
            let x_best = eff(i64::from(x.priority) + pos(x));
            if x_best > m_worst {
                continue;
            }
            let Some(t) = x
                .track
                .iter()
                .find(|t| t.weight > 0 && t.kind != TrackKind::File)
            else {
                continue;
            };
            let (xpath, xl) = &files[xf];
            let m_expr = if neg(m) == 0 {
                m.priority.to_string()
            } else {
                format!("{} - {} = {m_worst}", m.priority, -neg(m))
            };
            out.push(diag(
                xpath,
                site(&xl.weight_sites, &x.name, t),
                format!(
                    "{} = {x_best} <= {m_expr} on {} (instance `{}`, vrid {}, every tracker failing): these positive weights never lift `{}` above the master",
                    healthy_expr(x),
                    mpath.display(),
                    m.name,
                    m.vrid,
                    x.name
                ),
                format!(
                    "raise the weights so that {} + weights > {m_worst}, or give the master larger negative weights",
                    x.priority
                ),
            ));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The pair linter: what two routers of one virtual router must agree on.

/// "lb2.toml:7" for `key` of `inst` in file `f` (the instance's header when the key is not
/// written there).
fn at(f: &(PathBuf, Loaded), inst: &str, key: crate::keys::Key) -> String {
    let sites = &f.1.key_sites;
    let line = sites
        .iter()
        .find(|s| s.instance == inst && s.key == key)
        .or_else(|| {
            sites
                .iter()
                .find(|s| s.instance == inst && s.key == crate::keys::instance::name)
        })
        .map_or(0, |s| s.site.line);
    if line == 0 {
        f.0.display().to_string()
    } else {
        format!("{}:{line}", f.0.display())
    }
}

/// A finding at `key` of `inst` in file `f`.
fn finding(
    f: &(PathBuf, Loaded),
    inst: &str,
    key: crate::keys::Key,
    message: String,
    hint: &str,
) -> Diagnostic {
    let site =
        f.1.key_sites
            .iter()
            .find(|s| s.instance == inst && s.key == key)
            .or_else(|| {
                f.1.key_sites
                    .iter()
                    .find(|s| s.instance == inst && s.key == crate::keys::instance::name)
            });
    let mut d = Diagnostic::whole_file(Severity::Warning, &f.0, message);
    if let Some(s) = site {
        d.line = s.site.line;
        d.column = s.site.column;
        d.width = s.site.width;
        d.source_line = s.site.source_line.clone();
    }
    d.hint = Some(hint.to_string());
    d
}

fn addrs(v: &[crate::Vip]) -> Vec<std::net::IpAddr> {
    let mut a: Vec<_> = v.iter().map(|x| x.addr).collect();
    a.sort_unstable();
    a
}

fn list(a: &[std::net::IpAddr]) -> String {
    if a.is_empty() {
        return "none".into();
    }
    a.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why `a` (file `fa`) and `b` (file `fb`) are taken for two routers of one virtual router,
/// if they are: the same VRID and family, a shared VIP, or the same name.
fn same_router(a: &Instance, b: &Instance) -> Option<String> {
    if a.family != b.family {
        return None;
    }
    if let Some(v) = a
        .vips
        .iter()
        .find(|v| b.vips.iter().any(|w| w.addr == v.addr))
    {
        return Some(format!("shares VIP {}", v.addr));
    }
    if a.vrid == b.vrid {
        return Some(format!("vrid {}", a.vrid));
    }
    (a.name == b.name).then(|| "has the same name".to_string())
}

/// Compares every pair of instances, in different files, that look like two routers of one
/// virtual router (same VRID and family, a shared VIP, or the same name): everything the two
/// must agree on, each finding located in the first file and naming the line in the second.
pub fn pair_check(files: &[(PathBuf, Loaded)]) -> Vec<Diagnostic> {
    use crate::keys::instance as k;
    let mut out = Vec::new();
    for (fi, fa) in files.iter().enumerate() {
        for fb in files.iter().skip(fi + 1) {
            for a in &fa.1.config.instances {
                for b in &fb.1.config.instances {
                    let Some(why) = same_router(a, b) else {
                        continue;
                    };
                    let them = format!("`{}` on {{}} ({why})", b.name);
                    let there = |key| them.replace("{}", &at(fb, &b.name, key));
                    let mut push = |key, message: String, hint: &str| {
                        out.push(finding(fa, &a.name, key, message, hint));
                    };
                    // BGP announcement: both nodes must place the VIP the same way.
                    let policy = |i: &Instance| i.announce.as_ref().map(|x| x.policy.as_str());
                    let placement = |i: &Instance| {
                        policy(i).map_or("holds its VIPs on the link".into(), |p| {
                            format!("announces by BGP ({p})")
                        })
                    };
                    if policy(a) != policy(b) {
                        push(
                            k::announce,
                            format!(
                                "`{}` {}, {} {}: the VIP is placed two different ways",
                                a.name,
                                placement(a),
                                there(k::announce),
                                placement(b)
                            ),
                            "give every node of the service the same [instance.announce] (docs/bgp.md)",
                        );
                        continue;
                    }
                    if a.is_anycast() {
                        // Active-active: no VRRP to agree on; every node announces the same VIPs.
                        if addrs(&a.vips) != addrs(&b.vips) {
                            push(
                                k::vips,
                                format!(
                                    "`{}` announces {}, {} announces {}",
                                    a.name,
                                    list(&addrs(&a.vips)),
                                    there(k::vips),
                                    list(&addrs(&b.vips))
                                ),
                                "announce the same VIPs on every node of an active-active service, or traffic for the others reaches only some",
                            );
                        }
                        continue;
                    }
                    if a.vrid != b.vrid {
                        push(
                            k::vrid,
                            format!(
                                "`{}` has vrid {}, {} has vrid {}: they never hear each other, so both become MASTER",
                                a.name,
                                a.vrid,
                                there(k::vrid),
                                b.vrid
                            ),
                            "use the same vrid on every router of a virtual router",
                        );
                        // Different virtual routers from here on: nothing else to compare.
                        continue;
                    }
                    if a.version != b.version {
                        push(
                            k::version,
                            format!(
                                "`{}` speaks {}, {} speaks {}: each drops the other's adverts (version_mismatch), so both become MASTER",
                                a.name,
                                a.version,
                                there(k::version),
                                b.version
                            ),
                            "use the same version on both (VRRPv3 unless a VRRPv2-only peer remains)",
                        );
                        continue;
                    }
                    if a.advert_interval != b.advert_interval {
                        let (m, hint) = if a.version == crate::Version::V2 {
                            (
                                "VRRPv2 drops adverts with another interval (interval_mismatch), so both become MASTER",
                                "use the same advert_interval on both",
                            )
                        } else {
                            (
                                "a VRRPv3 backup adopts its master's interval, so failover timing depends on which one is master",
                                "use the same advert_interval on both",
                            )
                        };
                        push(
                            k::advert_interval,
                            format!(
                                "`{}` advertises every {}, {} every {}: {m}",
                                a.name,
                                crate::duration::format_duration(a.advert_interval),
                                there(k::advert_interval),
                                crate::duration::format_duration(b.advert_interval)
                            ),
                            hint,
                        );
                    }
                    match (&a.auth_pass, &b.auth_pass) {
                        (Some(x), Some(y)) if x != y => push(
                            k::auth_pass,
                            format!(
                                "`{}`'s auth_pass differs from that of {}: each drops the other's adverts (auth_mismatch), so both become MASTER",
                                a.name,
                                there(k::auth_pass)
                            ),
                            "use the same password on both",
                        ),
                        (Some(_), None) | (None, Some(_)) => push(
                            k::auth_pass,
                            format!(
                                "`{}` {} an auth_pass, {} {}: each drops the other's adverts (auth_mismatch), so both become MASTER",
                                a.name,
                                if a.auth_pass.is_some() {
                                    "has"
                                } else {
                                    "has no"
                                },
                                there(k::auth_pass),
                                if b.auth_pass.is_some() {
                                    "has one"
                                } else {
                                    "has none"
                                }
                            ),
                            "set the same auth_pass on both, or on neither",
                        ),
                        _ => {}
                    }
                    match (&a.auth_ah, &b.auth_ah) {
                        (Some(x), Some(y)) if x != y => push(
                            k::auth_ah,
                            format!(
                                "`{}`'s auth_ah password differs from that of {}: each drops the other's adverts (ah_bad), so both become MASTER",
                                a.name,
                                there(k::auth_ah)
                            ),
                            "use the same auth_ah password on both",
                        ),
                        (Some(_), None) | (None, Some(_)) => push(
                            k::auth_ah,
                            format!(
                                "`{}` {} IPsec AH, {} {}: each drops the other's adverts, so both become MASTER",
                                a.name,
                                if a.auth_ah.is_some() {
                                    "uses"
                                } else {
                                    "does not use"
                                },
                                there(k::auth_ah),
                                if b.auth_ah.is_some() {
                                    "does"
                                } else {
                                    "does not"
                                }
                            ),
                            "set the same auth_ah on both, or on neither",
                        ),
                        _ => {}
                    }
                    if !a.is_unicast() && !b.is_unicast() && a.multicast_group != b.multicast_group
                    {
                        push(
                            k::multicast_group,
                            format!(
                                "`{}` sends its adverts to {}, {} to {}: they never hear each other, so both become MASTER",
                                a.name,
                                a.multicast_group,
                                there(k::multicast_group),
                                b.multicast_group
                            ),
                            "use the same multicast group (multicast_group, [global] multicast_group_v4/_v6) on both",
                        );
                    }
                    if a.vmac.is_some() != b.vmac.is_some() {
                        push(
                            k::vmac,
                            format!(
                                "`{}` {} the virtual MAC, {} {}: a takeover changes the VIP's MAC in the clients' ARP caches one way but not the other",
                                a.name,
                                if a.vmac.is_some() {
                                    "uses"
                                } else {
                                    "does not use"
                                },
                                there(k::vmac),
                                if b.vmac.is_some() { "does" } else { "does not" }
                            ),
                            "set vmac the same on both",
                        );
                    }
                    pair_hmac(a, b, &there(k::auth_hmac), &mut push);
                    if a.family == crate::Family::Ipv4
                        && a.version == crate::Version::V3
                        && a.checksum != b.checksum
                    {
                        push(
                            k::checksum,
                            format!(
                                "`{}` sends checksums {}, {} {}: vipd accepts both and raises a checksum_form alarm; other implementations may drop them",
                                a.name,
                                a.checksum,
                                there(k::checksum),
                                b.checksum
                            ),
                            "use the same checksum form on both",
                        );
                    }
                    let (va, vb) = (addrs(&a.vips), addrs(&b.vips));
                    if va != vb {
                        push(
                            k::vips,
                            format!(
                                "`{}`'s VIPs ({}) differ from those of {} ({}): whichever is master serves a different set",
                                a.name,
                                list(&va),
                                there(k::vips),
                                list(&vb)
                            ),
                            "list the same VIPs on every router of a virtual router",
                        );
                    }
                    pair_unicast(a, b, &there(k::unicast_peers), &mut push);
                    if a.priority == b.priority && !a.is_owner() {
                        push(
                            k::priority,
                            format!(
                                "`{}` and {} both have priority {}: which one is master is left to the higher IP address, and a restart of either can move the VIP",
                                a.name,
                                there(k::priority),
                                a.priority
                            ),
                            "give the preferred master a higher priority (e.g. 150 and 100)",
                        );
                    }
                }
            }
        }
    }
    out
}

fn pair_hmac(
    a: &Instance,
    b: &Instance,
    there: &str,
    push: &mut impl FnMut(crate::keys::Key, String, &str),
) {
    use crate::keys::instance as k;
    use vipd_proto::auth::Mode;
    match (&a.auth_hmac, &b.auth_hmac) {
        (Some(x), None) | (None, Some(x)) if x.mode == Mode::Enforce => push(
            k::auth_hmac,
            format!(
                "only one of `{}` and {there} has auth_hmac, in enforce mode: it drops the other's unsigned adverts (hmac_missing), so both become MASTER",
                a.name
            ),
            "roll auth_hmac out with mode = \"receive-only\", then \"permissive\", then \"enforce\" on both (docs/security.md)",
        ),
        (Some(x), Some(y)) => {
            for (signer, verifier, who) in [(x, y, "this one"), (y, x, "the other")] {
                if signer.mode.signs() && !verifier.keys.iter().any(|key| key.id == signer.active) {
                    push(
                        k::auth_hmac,
                        format!(
                            "`{}` and {there}: {who} signs with key {}, which the other does not have: its adverts are dropped (hmac_unknown_key)",
                            a.name, signer.active
                        ),
                        "add the key to both before making it active (docs/security.md, key rotation)",
                    );
                }
            }
        }
        _ => {}
    }
}

fn pair_unicast(
    a: &Instance,
    b: &Instance,
    there: &str,
    push: &mut impl FnMut(crate::keys::Key, String, &str),
) {
    use crate::keys::instance as k;
    match (a.is_unicast(), b.is_unicast()) {
        (true, false) | (false, true) => push(
            k::unicast_peers,
            format!(
                "`{}` {} unicast_peers, {there} {}: the unicast one never hears the multicast one, so both become MASTER",
                a.name,
                if a.is_unicast() { "has" } else { "has no" },
                if b.is_unicast() {
                    "has them"
                } else {
                    "has none"
                }
            ),
            "use unicast_peers on both (each listing the other's source_address), or on neither",
        ),
        (true, true) => {
            for (x, y, which) in [(a, b, "this one"), (b, a, "the other")] {
                if let Some(src) = y.source_address
                    && !x.unicast_peers.contains(&src)
                {
                    push(
                        k::unicast_peers,
                        format!(
                            "`{}` and {there}: {which} lists unicast peers {}, not the other's source_address {src}: it drops the other's adverts (unknown_peer), so both become MASTER",
                            a.name,
                            list(&x.unicast_peers)
                        ),
                        "list each router's source_address in the other's unicast_peers",
                    );
                }
            }
        }
        (false, false) => {}
    }
}
