//! Writing vipd.toml from the lab (the drill, the keepalived comparison, the benchmark):
//! every key is a [`vipd_config::keys`] constant, generated from the configuration types, so
//! renaming a key there is a compile error here; values are encoded by the `toml` crate.

use std::fmt::Write as _;

use vipd_config::keys::Key;

/// A vipd.toml being written, table by table.
#[derive(Debug, Default)]
pub struct Doc {
    out: String,
}

impl Doc {
    /// An empty file.
    pub fn new() -> Doc {
        Doc::default()
    }

    /// A `# comment` line.
    pub fn comment(&mut self, text: &str) -> &mut Doc {
        let _ = writeln!(self.out, "# {text}");
        self
    }

    /// Starts `[name]`.
    pub fn table(&mut self, name: Key) -> &mut Doc {
        self.gap();
        let _ = writeln!(self.out, "[{name}]");
        self
    }

    /// Starts a new `[[name]]` entry.
    pub fn array_table(&mut self, name: Key) -> &mut Doc {
        self.gap();
        let _ = writeln!(self.out, "[[{name}]]");
        self
    }

    /// `key = value` in the current table.
    pub fn set(&mut self, key: Key, value: impl Into<toml::Value>) -> &mut Doc {
        let _ = writeln!(self.out, "{key} = {}", value.into());
        self
    }

    /// `key = [values]` in the current table.
    pub fn list<V: Into<toml::Value>>(
        &mut self,
        key: Key,
        values: impl IntoIterator<Item = V>,
    ) -> &mut Doc {
        let items: Vec<toml::Value> = values.into_iter().map(Into::into).collect();
        self.set(key, toml::Value::Array(items))
    }

    /// The file's text.
    pub fn finish(&mut self) -> String {
        std::mem::take(&mut self.out)
    }

    fn gap(&mut self) {
        if !self.out.is_empty() && !self.out.ends_with("\n\n") {
            self.out.push('\n');
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vipd_config::keys;

    #[test]
    #[allow(clippy::unwrap_used)]
    fn writes_a_file_vipd_accepts() {
        let text = Doc::new()
            .comment("test")
            .table(keys::file::global)
            .set(keys::global::router_id, "lab \"1\"")
            .array_table(keys::file::instance)
            .set(keys::instance::name, "VI_1")
            .set(keys::instance::interface, "eth0")
            .set(keys::instance::vrid, 51)
            .list(keys::instance::vips, ["10.0.0.100/24"])
            .finish();
        assert!(
            text.starts_with("# test\n\n[global]\nrouter_id = "),
            "{text}"
        );
        let l = vipd_config::parse_str(&text, std::path::Path::new("t.toml")).unwrap();
        assert_eq!(l.config.instances[0].vrid, 51);
        assert_eq!(l.config.global.router_id.as_deref(), Some("lab \"1\""));
    }
}
