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
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSyncGroup {
    pub(crate) name: Option<S<String>>,
    pub(crate) instances: Option<S<Vec<S<String>>>>,
}
