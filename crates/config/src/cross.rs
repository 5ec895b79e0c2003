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
        for i in &l.config.instances {
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
