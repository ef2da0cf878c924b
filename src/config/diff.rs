//! Which keys differ between two configurations, by dotted name (`server.max_locate_items`,
//! `access.users.bob.enabled`), found generically from the serialized sections so that a
//! key added to a section is compared without anyone listing it. Arrays (`tls.crls`,
//! `[[audit.sinks]]`) and optional tables that appear or vanish (`[mirror]`) count as one
//! key. Only names come out, never values (some are paths to secrets).

use super::Config;
use serde_json::Value;

/// The dotted keys whose values differ between `old` and `new`, sorted.
pub fn changed_keys(old: &Config, new: &Config) -> Vec<String> {
    let (old, new) = (as_value(old), as_value(new));
    let mut keys = Vec::new();
    collect(&old, &new, "", &mut keys);
    keys.sort();
    keys
}

fn as_value(config: &Config) -> Value {
    // Serializing plain data to a JSON value cannot fail (no map has non-string keys).
    serde_json::to_value(config).unwrap_or(Value::Null)
}

/// Adds to `out` the keys under `prefix` where `old` and `new` differ: tables are compared
/// key by key (a key present on one side only is a change), anything else whole.
fn collect(old: &Value, new: &Value, prefix: &str, out: &mut Vec<String>) {
    match (old, new) {
        (Value::Object(a), Value::Object(b)) => {
            let mut names: Vec<&String> = a.keys().chain(b.keys()).collect();
            names.sort();
            names.dedup();
            for name in names {
                let key = if prefix.is_empty() {
                    name.clone()
                } else {
                    format!("{prefix}.{name}")
                };
                let missing = Value::Null;
                collect(
                    a.get(name).unwrap_or(&missing),
                    b.get(name).unwrap_or(&missing),
                    &key,
                    out,
                );
            }
        }
        (a, b) if a != b => out.push(prefix.to_owned()),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn parse(text: &str) -> Config {
        Config::parse(text, Path::new("/etc/akm/akm.toml")).unwrap()
    }

    #[test]
    fn every_changed_key_is_named_once_and_equal_configs_name_none() {
        let old = parse("");
        assert!(changed_keys(&old, &parse("")).is_empty());
        let new = parse(
            "[server]\nmax_locate_items = 5\n[access.users.bob]\nenabled = false\n\
             [tls]\ncrls = [\"a.crl\", \"b.crl\"]\n[[audit.sinks]]\ntransport = \"udp\"\n\
             address = \"127.0.0.1:514\"\n",
        );
        assert_eq!(
            changed_keys(&old, &new),
            [
                "access.users.bob",
                "audit.sinks",
                "server.max_locate_items",
                "tls.crls"
            ]
        );
        let more = parse("[access.users.bob]\nenabled = true\n");
        assert_eq!(
            changed_keys(&new, &more)
                .into_iter()
                .filter(|k| k.starts_with("access"))
                .collect::<Vec<_>>(),
            ["access.users.bob.enabled"]
        );
    }
}
