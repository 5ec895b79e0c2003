//! State kept across restarts and reboots: the instances an operator put in maintenance
//! (`vipctl maintenance on`), so a drained node does not take its VIPs back when vipd or the
//! host restarts. One small versioned JSON file, written atomically; a file that is corrupt,
//! truncated or of another format version is ignored with a warning (normal start), never
//! trusted.

use std::collections::BTreeSet;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tracing::{info, warn};

/// The file, inside the state directory.
pub const FILE: &str = "maintenance.json";
/// Its format version.
pub const FORMAT: u32 = 1;
/// Largest file read (a hostile or broken file cannot make vipd allocate without bound).
const MAX_LEN: u64 = 1 << 20;

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
struct File {
    format: u32,
    /// Names of the instances in maintenance.
    maintenance: BTreeSet<String>,
}

/// Where state is kept: `state_directory` from the configuration, else systemd's
/// `$STATE_DIRECTORY` (the unit's `StateDirectory=vipd`), else nowhere.
pub fn dir(configured: Option<&Path>) -> Option<PathBuf> {
    configured.map(Path::to_path_buf).or_else(|| {
        std::env::var_os("STATE_DIRECTORY")
            // systemd may list several, separated by ':'; ours is the first.
            .and_then(|v| {
                v.to_str()
                    .and_then(|s| s.split(':').next())
                    .map(PathBuf::from)
            })
            .filter(|p| p.is_absolute())
    })
}

/// The instances in maintenance recorded in `dir` (empty when there is no usable file).
pub fn load(dir: &Path) -> BTreeSet<String> {
    let path = dir.join(FILE);
    let text = match read_capped(&path) {
        Ok(Some(t)) => t,
        Ok(None) => return BTreeSet::new(),
        Err(e) => {
            warn!(file = %path.display(), error = %e, "cannot read the state file; starting without it");
            return BTreeSet::new();
        }
    };
    match serde_json::from_str::<File>(&text) {
        Ok(f) if f.format == FORMAT => {
            if !f.maintenance.is_empty() {
                info!(file = %path.display(), instances = %join(&f.maintenance),
                      "instances kept in maintenance across the restart");
            }
            f.maintenance
        }
        Ok(f) => {
            warn!(file = %path.display(), format = f.format, expected = FORMAT,
                  "state file of another format version ignored; starting without it");
            BTreeSet::new()
        }
        Err(e) => {
            warn!(file = %path.display(), error = %e,
                  "state file is corrupt or truncated and was ignored; starting without it");
            BTreeSet::new()
        }
    }
}

/// Records `maintenance` in `dir`, atomically (a crash leaves the old file or the new one).
pub fn save(dir: &Path, maintenance: &BTreeSet<String>) -> io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let path = dir.join(FILE);
    let tmp = dir.join(format!(".{FILE}.tmp"));
    let text = serde_json::to_string_pretty(&File {
        format: FORMAT,
        maintenance: maintenance.clone(),
    })
    .map_err(io::Error::other)?;
    std::fs::write(&tmp, text + "\n")?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, &path)
}

fn read_capped(path: &Path) -> io::Result<Option<String>> {
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut text = String::new();
    f.take(MAX_LEN).read_to_string(&mut text)?;
    Ok(Some(text))
}

fn join(names: &BTreeSet<String>) -> String {
    names
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("vipd-state-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    #[allow(clippy::unwrap_used)]
    fn round_trip_and_bad_files_are_ignored() {
        let d = tmp("rt");
        assert!(load(&d).is_empty(), "no file: nothing");
        let set: BTreeSet<String> = ["VI_1".to_string(), "VI_2".to_string()].into();
        save(&d, &set).unwrap();
        assert_eq!(load(&d), set);
        for bad in [
            "",
            "{",
            "{\"format\":1,\"maintenance\":[\"VI_1\"",
            "{\"format\":2,\"maintenance\":[\"VI_1\"]}",
            "{\"format\":1,\"maintenance\":\"VI_1\"}",
            "{\"format\":1,\"maintenance\":[],\"extra\":1}",
            "\u{0}\u{1}binary",
        ] {
            std::fs::write(d.join(FILE), bad).unwrap();
            assert!(load(&d).is_empty(), "{bad:?} must be ignored");
        }
        // A huge file is read only up to the cap (and then fails to parse).
        std::fs::write(d.join(FILE), vec![b'['; (MAX_LEN + 10) as usize]).unwrap();
        assert!(load(&d).is_empty());
        save(&d, &BTreeSet::new()).unwrap();
        assert!(load(&d).is_empty());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn directory_from_config_or_systemd() {
        assert_eq!(dir(Some(Path::new("/x/y"))), Some(PathBuf::from("/x/y")));
    }
}
