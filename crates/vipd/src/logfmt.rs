//! `--log-format json`: one flat JSON object per line — `timestamp`, `level`, `message`, every
//! field of the event at the top level (numbers as numbers, booleans as booleans), and the
//! `router_id` of this node on every line, so lines from several hosts can be merged.
//! tracing-subscriber's own JSON nests spans and cannot add a constant field: this is the
//! small part it does not do (docs/architecture.md).

use std::fmt;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The event formatter.
#[derive(Debug, Clone)]
pub struct FlatJson {
    router_id: std::sync::Arc<std::sync::RwLock<String>>,
}

impl FlatJson {
    /// Lines of the node `router_id`.
    pub fn new(router_id: impl Into<String>) -> FlatJson {
        FlatJson {
            router_id: std::sync::Arc::new(std::sync::RwLock::new(router_id.into())),
        }
    }

    /// A handle that changes the router id of the lines written from then on (the
    /// configuration, which may set it, is read after logging starts).
    pub fn router_id_handle(&self) -> std::sync::Arc<std::sync::RwLock<String>> {
        std::sync::Arc::clone(&self.router_id)
    }
}

/// Fields that hold lists: logged as `a,b` (tracing has no list values; text lines read
/// them so), written as JSON arrays.
pub const LIST_FIELDS: [&str; 2] = ["instances", "trackers"];

fn value(field: &Field, text: String) -> Value {
    if LIST_FIELDS.contains(&field.name()) {
        Value::Array(
            text.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(Value::from)
                .collect(),
        )
    } else {
        Value::from(text)
    }
}

struct Fields<'a>(&'a mut Map<String, Value>);

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, v: &str) {
        self.0
            .insert(field.name().to_owned(), value(field, v.to_owned()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_owned(), Value::from(value));
    }
    fn record_debug(&mut self, field: &Field, v: &dyn fmt::Debug) {
        // `%x` fields arrive here too, their Debug being their Display.
        self.0
            .insert(field.name().to_owned(), value(field, format!("{v:?}")));
    }
}

/// One event as the map [`FlatJson`] writes (without the timestamp).
pub fn event_map(router_id: &str, event: &Event<'_>) -> Map<String, Value> {
    let mut map = Map::new();
    map.insert(
        "level".into(),
        Value::from(event.metadata().level().as_str()),
    );
    map.insert("router_id".into(), Value::from(router_id));
    event.record(&mut Fields(&mut map));
    map
}

impl<S, N> FormatEvent<S, N> for FlatJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut ts = String::new();
        SystemTime.format_time(&mut Writer::new(&mut ts))?;
        let mut map = Map::new();
        map.insert("timestamp".into(), Value::from(ts));
        let id = self.router_id.read().map(|s| s.clone()).unwrap_or_default();
        map.extend(event_map(&id, event));
        let line = serde_json::to_string(&Value::Object(map)).map_err(|_| fmt::Error)?;
        writeln!(writer, "{line}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn one_flat_object_per_line_with_the_router_id() {
        let buf = Buf::default();
        let out = buf.clone();
        let sub = tracing_subscriber::fmt()
            .event_format(FlatJson::new("lb1"))
            .with_writer(move || out.clone())
            .finish();
        tracing::subscriber::with_default(sub, || {
            let names = ["VI_1", "VI_2"].join(",");
            tracing::info!(instance = "VI_1", vrid = 51u8, up = true, peer = %"10.0.0.12",
                           instances = %names, "VI_1: MASTER -> BACKUP: 10.0.0.12 advertises 255 > 150");
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let line = text.lines().next().unwrap();
        let v: Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["router_id"], "lb1");
        assert_eq!(v["level"], "INFO");
        assert_eq!(v["instance"], "VI_1");
        assert_eq!(v["vrid"], 51);
        assert_eq!(v["up"], true);
        assert_eq!(v["peer"], "10.0.0.12");
        assert_eq!(v["instances"], serde_json::json!(["VI_1", "VI_2"]));
        assert_eq!(
            v["message"],
            "VI_1: MASTER -> BACKUP: 10.0.0.12 advertises 255 > 150"
        );
        assert!(v["timestamp"].as_str().unwrap().starts_with("20"));
        assert!(v.get("fields").is_none() && v.get("span").is_none());
        assert_eq!(text.lines().count(), 1);
    }
}
