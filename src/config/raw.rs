//! Serde mirror of the file: every value keeps its span; nothing is validated yet.
//!
//! Every field is optional so that missing keys are reported by validation (pointing at the
//! table header) rather than by serde; numbers are `i64` so range errors get our own wording.

use serde::Deserialize;
use toml::Spanned;

pub(crate) type S<T> = Spanned<T>;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    pub(crate) global: Option<S<RawGlobal>>,
    #[serde(default)]
    pub(crate) instance: Vec<S<RawInstance>>,
    #[serde(default)]
    pub(crate) sync_group: Vec<S<RawSyncGroup>>,
    #[serde(default)]
    pub(crate) track_script: Vec<S<RawTrackScript>>,
    #[serde(default)]
    pub(crate) track_http: Vec<S<RawTrackHttp>>,
    #[serde(default)]
    pub(crate) track_tcp: Vec<S<RawTrackTcp>>,
    #[serde(default)]
    pub(crate) track_file: Vec<S<RawTrackFile>>,
    #[serde(default)]
    pub(crate) track_process: Vec<S<RawTrackProcess>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGlobal {
    pub(crate) router_id: Option<S<String>>,
    pub(crate) control_socket: Option<S<String>>,
    pub(crate) control_group: Option<S<String>>,
    pub(crate) metrics_listen: Option<S<String>>,
    pub(crate) vrrp_version: Option<S<i64>>,
    pub(crate) checksum: Option<S<String>>,
    pub(crate) garp_master_delay: Option<S<String>>,
    pub(crate) garp_master_repeat: Option<S<i64>>,
    pub(crate) garp_master_refresh: Option<S<String>>,
    pub(crate) garp_master_refresh_repeat: Option<S<i64>>,
    pub(crate) garp_interval: Option<S<String>>,
    pub(crate) script_user: Option<S<String>>,
    pub(crate) enable_script_security: Option<S<bool>>,
    pub(crate) events_socket: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawVip {
    pub(crate) address: Option<S<String>>,
    pub(crate) label: Option<S<String>>,
    pub(crate) scope: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawInstance {
    pub(crate) name: Option<S<String>>,
    pub(crate) interface: Option<S<String>>,
    pub(crate) vrid: Option<S<i64>>,
    pub(crate) version: Option<S<i64>>,
    pub(crate) priority: Option<S<i64>>,
    pub(crate) advert_interval: Option<S<String>>,
    pub(crate) preempt: Option<S<bool>>,
    pub(crate) preempt_delay: Option<S<String>>,
    pub(crate) accept: Option<S<bool>>,
    pub(crate) vips: Option<S<Vec<S<String>>>>,
    #[serde(default)]
    pub(crate) vip: Vec<S<RawVip>>,
    pub(crate) source_address: Option<S<String>>,
    pub(crate) unicast_peers: Option<S<Vec<S<String>>>>,
    pub(crate) auth_pass: Option<S<String>>,
    pub(crate) checksum: Option<S<String>>,
    pub(crate) garp_master_delay: Option<S<String>>,
    pub(crate) garp_master_repeat: Option<S<i64>>,
    pub(crate) garp_master_refresh: Option<S<String>>,
    pub(crate) garp_master_refresh_repeat: Option<S<i64>>,
    pub(crate) garp_interval: Option<S<String>>,
    pub(crate) track_scripts: Option<S<Vec<S<RawTrackRef>>>>,
    pub(crate) track_http: Option<S<Vec<S<RawTrackRef>>>>,
    pub(crate) track_tcp: Option<S<Vec<S<RawTrackRef>>>>,
    pub(crate) track_files: Option<S<Vec<S<RawTrackRef>>>>,
    pub(crate) track_processes: Option<S<Vec<S<RawTrackRef>>>>,
    pub(crate) track_interfaces: Option<S<Vec<S<RawTrackRef>>>>,
    // Notification keys (also in sync groups).
    pub(crate) notify_master: Option<S<RawCommand>>,
    pub(crate) notify_backup: Option<S<RawCommand>>,
    pub(crate) notify_fault: Option<S<RawCommand>>,
    pub(crate) notify_stop: Option<S<RawCommand>>,
    pub(crate) notify: Option<S<RawCommand>>,
    pub(crate) notify_timeout: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSyncGroup {
    pub(crate) name: Option<S<String>>,
    pub(crate) instances: Option<S<Vec<S<String>>>>,
    // Notification keys (as in instances).
    pub(crate) notify_master: Option<S<RawCommand>>,
    pub(crate) notify_backup: Option<S<RawCommand>>,
    pub(crate) notify_fault: Option<S<RawCommand>>,
    pub(crate) notify_stop: Option<S<RawCommand>>,
    pub(crate) notify: Option<S<RawCommand>>,
    pub(crate) notify_timeout: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTrackScript {
    pub(crate) name: Option<S<String>>,
    pub(crate) command: Option<S<Vec<S<String>>>>,
    pub(crate) shell: Option<S<String>>,
    pub(crate) interval: Option<S<String>>,
    pub(crate) timeout: Option<S<String>>,
    pub(crate) rise: Option<S<i64>>,
    pub(crate) fall: Option<S<i64>>,
    pub(crate) weight: Option<S<i64>>,
    pub(crate) user: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTrackHttp {
    pub(crate) name: Option<S<String>>,
    pub(crate) url: Option<S<String>>,
    pub(crate) expect_status: Option<S<RawStatuses>>,
    pub(crate) interval: Option<S<String>>,
    pub(crate) timeout: Option<S<String>>,
    pub(crate) rise: Option<S<i64>>,
    pub(crate) fall: Option<S<i64>>,
    pub(crate) weight: Option<S<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTrackTcp {
    pub(crate) name: Option<S<String>>,
    pub(crate) address: Option<S<String>>,
    pub(crate) interval: Option<S<String>>,
    pub(crate) timeout: Option<S<String>>,
    pub(crate) rise: Option<S<i64>>,
    pub(crate) fall: Option<S<i64>>,
    pub(crate) weight: Option<S<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTrackFile {
    pub(crate) name: Option<S<String>>,
    pub(crate) path: Option<S<String>>,
    pub(crate) weight: Option<S<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTrackProcess {
    pub(crate) name: Option<S<String>>,
    pub(crate) process: Option<S<String>>,
    pub(crate) min: Option<S<i64>>,
    pub(crate) weight: Option<S<i64>>,
}

/// A `track_*` list entry: `"name"` or `{ name = "...", weight = N }`.
#[derive(Debug, Default)]
pub(crate) struct RawTrackRef {
    /// Set for the short form (its span is the entry's).
    pub(crate) short: Option<String>,
    pub(crate) name: Option<S<String>>,
    pub(crate) weight: Option<S<i64>>,
}

impl<'de> Deserialize<'de> for RawTrackRef {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RawTrackRef;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a name or { name = \"...\", weight = N }")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<RawTrackRef, E> {
                Ok(RawTrackRef {
                    short: Some(s.to_string()),
                    ..RawTrackRef::default()
                })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<RawTrackRef, A::Error> {
                let mut out = RawTrackRef::default();
                while let Some(key) = map.next_key::<String>()? {
                    match key.as_str() {
                        "name" => out.name = Some(map.next_value()?),
                        "weight" => out.weight = Some(map.next_value()?),
                        other => {
                            return Err(serde::de::Error::unknown_field(
                                other,
                                &["name", "weight"],
                            ));
                        }
                    }
                }
                Ok(out)
            }
        }
        d.deserialize_any(V)
    }
}

/// A program: `"/path/prog arg"` (split on whitespace) or `["/path/prog", "arg"]`.
#[derive(Debug)]
pub(crate) enum RawCommand {
    Line(String),
    Argv(Vec<String>),
}

impl<'de> Deserialize<'de> for RawCommand {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RawCommand;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a program path or a list of strings")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<RawCommand, E> {
                Ok(RawCommand::Line(s.to_string()))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<RawCommand, A::Error> {
                let mut v = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    v.push(s);
                }
                Ok(RawCommand::Argv(v))
            }
        }
        d.deserialize_any(V)
    }
}

/// `expect_status = 200` or `expect_status = [200, 204]`.
#[derive(Debug)]
pub(crate) struct RawStatuses(pub(crate) Vec<i64>);

impl<'de> Deserialize<'de> for RawStatuses {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = RawStatuses;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a status code or a list of them")
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<RawStatuses, E> {
                Ok(RawStatuses(vec![n]))
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<RawStatuses, E> {
                Ok(RawStatuses(vec![i64::try_from(n).unwrap_or(i64::MAX)]))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<RawStatuses, A::Error> {
                let mut v = Vec::new();
                while let Some(n) = seq.next_element::<i64>()? {
                    v.push(n);
                }
                Ok(RawStatuses(v))
            }
        }
        d.deserialize_any(V)
    }
}
