//! Spin's application manifest (`spin.toml`, manifest version 2), read the
//! way `spin up` reads it: the application variables with their defaults,
//! the triggers, and each component's source, variables, allowed outbound
//! hosts and dependencies. Only what `smtp-mailer serve` can run is
//! accepted: HTTP and Redis triggers, local sources and dependencies, `tcp://`
//! and `redis://` outbound hosts; anything else is refused when read, with the
//! reason, rather than ignored.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::ServeError;

/// A manifest as written: paths are relative to [`Manifest::dir`], values
/// may hold `{{ variable }}` templates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// The folder the manifest's paths are relative to.
    pub dir: PathBuf,
    /// The application variables, by name.
    pub variables: BTreeMap<String, Declared>,
    /// `[application.trigger.redis] address`: every Redis trigger's server
    /// unless the trigger names its own.
    pub redis_address: Option<String>,
    /// The `[[trigger.http]]` entries, in order.
    pub http_triggers: Vec<HttpTriggerEntry>,
    /// The `[[trigger.redis]]` entries, in order.
    pub redis_triggers: Vec<RedisTriggerEntry>,
    /// The components, by id.
    pub components: BTreeMap<String, Component>,
}

/// An application variable's declaration.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Declared {
    /// Used when no value is given (Spin applies it whenever the variable is
    /// not set, even when a template would rather have another default).
    pub default: Option<String>,
    /// `spin up` refuses to start without a value.
    pub required: bool,
    /// A secret: its value is never shown.
    pub secret: bool,
}

/// A `[[trigger.http]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTriggerEntry {
    /// The route: `/path` exactly, or `/prefix/...` for everything below.
    pub route: String,
    /// The component that answers.
    pub component: String,
}

/// A `[[trigger.redis]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisTriggerEntry {
    /// The channel to subscribe to.
    pub channel: String,
    /// The component each message goes to.
    pub component: String,
    /// The Redis server (`redis://host:port`, may be a template), when the
    /// trigger names its own.
    pub address: Option<String>,
}

/// A `[component.<id>]` table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    /// The component's Wasm file.
    pub source: PathBuf,
    /// `allowed_outbound_hosts`, as written (templates unexpanded).
    pub allowed_outbound_hosts: Vec<String>,
    /// The component's variables: each a template over the application
    /// variables.
    pub variables: BTreeMap<String, String>,
    /// The dependencies, by the import they satisfy (`smtp-mailer:mailer`).
    pub dependencies: BTreeMap<String, Dependency>,
}

/// A local component dependency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    /// The dependency's Wasm file.
    pub path: PathBuf,
    /// Whether the dependency may use the parent's `allowed_outbound_hosts`:
    /// Spin 4's `inherit_configuration = true` or a list naming it, or
    /// Spin 3's (and 4's) component-wide `dependencies_inherit_configuration
    /// = true`. Without it the dependency has no network.
    pub inherits_outbound_hosts: bool,
}

impl Manifest {
    /// Reads and checks the manifest at `path`.
    ///
    /// Errors: [`ServeError::Manifest`] naming the file and what is wrong.
    pub fn read(path: &Path) -> Result<Manifest, ServeError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ServeError::Manifest(format!("{}: {e}", path.display())))?;
        let dir = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        Manifest::parse(&text, &dir)
            .map_err(|e| ServeError::Manifest(format!("{}: {e}", path.display())))
    }

    /// Parses manifest text whose paths are relative to `dir`.
    ///
    /// Errors: a line saying what is malformed or not supported.
    pub fn parse(text: &str, dir: &Path) -> Result<Manifest, String> {
        let raw: raw::Manifest = toml::from_str(text).map_err(|e| e.to_string())?;
        if raw.spin_manifest_version != 2 {
            return Err(format!(
                "spin_manifest_version {} is not supported (2 is)",
                raw.spin_manifest_version
            ));
        }
        let mut variables = BTreeMap::new();
        for (name, v) in raw.variables {
            check_variable_name(&name)?;
            if v.required && v.default.is_some() {
                return Err(format!(
                    "variable {name}: a required variable cannot have a default"
                ));
            }
            if !v.required && v.default.is_none() {
                return Err(format!(
                    "variable {name}: give it a default or mark it required"
                ));
            }
            variables.insert(
                name,
                Declared {
                    default: v.default,
                    required: v.required,
                    secret: v.secret,
                },
            );
        }
        let mut components = BTreeMap::new();
        for (id, c) in raw.component {
            let inherit_all = c.dependencies_inherit_configuration.unwrap_or(false);
            let mut dependencies = BTreeMap::new();
            for (name, d) in c.dependencies {
                let inherits = match d.inherit_configuration {
                    None => inherit_all,
                    Some(raw::Inherit::All(all)) => all || inherit_all,
                    Some(raw::Inherit::Some(list)) => {
                        inherit_all || list.iter().any(|k| k == "allowed_outbound_hosts")
                    }
                };
                let path = d.path.ok_or_else(|| {
                    format!(
                        "component {id}: dependency {name:?} must be a local `path` \
                         (registry and URL dependencies are not supported by serve)"
                    )
                })?;
                dependencies.insert(
                    name,
                    Dependency {
                        path: dir.join(path),
                        inherits_outbound_hosts: inherits,
                    },
                );
            }
            let source = match c.source {
                raw::Source::Path(path) => dir.join(path),
                raw::Source::Other(_) => {
                    return Err(format!(
                        "component {id}: only a local `source` file is supported by serve"
                    ))
                }
            };
            components.insert(
                id,
                Component {
                    source,
                    allowed_outbound_hosts: c.allowed_outbound_hosts,
                    variables: c.variables,
                    dependencies,
                },
            );
        }
        let mut http_triggers = Vec::new();
        let mut redis_triggers = Vec::new();
        for (kind, entries) in raw.trigger {
            for entry in entries {
                let component = entry.component.ok_or_else(|| {
                    format!("a [[trigger.{kind}]] has no component (inline components are not supported)")
                })?;
                if !components.contains_key(&component) {
                    return Err(format!(
                        "[[trigger.{kind}]] names the component {component:?}, which is not defined"
                    ));
                }
                match kind.as_str() {
                    "http" => {
                        let route = entry.route.ok_or_else(|| {
                            format!("the HTTP trigger of {component} has no route")
                        })?;
                        if !route.starts_with('/') {
                            return Err(format!("route {route:?} must start with /"));
                        }
                        http_triggers.push(HttpTriggerEntry { route, component });
                    }
                    "redis" => {
                        let channel = entry.channel.ok_or_else(|| {
                            format!("the Redis trigger of {component} has no channel")
                        })?;
                        redis_triggers.push(RedisTriggerEntry {
                            channel,
                            component,
                            address: entry.address,
                        });
                    }
                    other => {
                        return Err(format!(
                            "trigger type {other:?} is not supported by serve (http and redis are)"
                        ))
                    }
                }
            }
        }
        let redis_address = raw
            .application
            .trigger
            .and_then(|t| t.redis)
            .and_then(|r| r.address);
        Ok(Manifest {
            dir: dir.to_path_buf(),
            variables,
            redis_address,
            http_triggers,
            redis_triggers,
            components,
        })
    }

    /// The component `id`.
    ///
    /// Errors: [`ServeError::Manifest`] when it is not defined.
    pub fn component(&self, id: &str) -> Result<&Component, ServeError> {
        self.components
            .get(id)
            .ok_or_else(|| ServeError::Manifest(format!("no component {id:?}")))
    }
}

/// Spin's variable names: lowercase letters, digits and `_`, starting with
/// a letter.
pub(crate) fn check_variable_name(name: &str) -> Result<(), String> {
    let valid = name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "{name:?} is not a variable name (lowercase letters, digits and _)"
        ))
    }
}

/// The manifest's TOML, as serde reads it.
mod raw {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    #[derive(Deserialize)]
    pub struct Manifest {
        pub spin_manifest_version: u32,
        #[serde(default)]
        pub application: Application,
        #[serde(default)]
        pub variables: BTreeMap<String, Variable>,
        #[serde(default)]
        pub trigger: BTreeMap<String, Vec<Trigger>>,
        #[serde(default)]
        pub component: BTreeMap<String, Component>,
    }

    #[derive(Deserialize, Default)]
    pub struct Application {
        #[serde(default)]
        pub trigger: Option<ApplicationTriggers>,
    }

    #[derive(Deserialize, Default)]
    pub struct ApplicationTriggers {
        #[serde(default)]
        pub redis: Option<ApplicationRedis>,
    }

    #[derive(Deserialize, Default)]
    pub struct ApplicationRedis {
        pub address: Option<String>,
    }

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    pub struct Variable {
        pub default: Option<String>,
        #[serde(default)]
        pub required: bool,
        #[serde(default)]
        pub secret: bool,
    }

    #[derive(Deserialize)]
    pub struct Trigger {
        pub component: Option<String>,
        pub route: Option<String>,
        pub channel: Option<String>,
        pub address: Option<String>,
    }

    #[derive(Deserialize)]
    pub struct Component {
        pub source: Source,
        #[serde(default)]
        pub allowed_outbound_hosts: Vec<String>,
        #[serde(default)]
        pub variables: BTreeMap<String, String>,
        pub dependencies_inherit_configuration: Option<bool>,
        #[serde(default)]
        pub dependencies: BTreeMap<String, Dependency>,
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    pub enum Source {
        Path(String),
        Other(serde::de::IgnoredAny),
    }

    #[derive(Deserialize)]
    pub struct Dependency {
        pub path: Option<String>,
        pub inherit_configuration: Option<Inherit>,
    }

    #[derive(Deserialize)]
    #[serde(untagged)]
    pub enum Inherit {
        All(bool),
        Some(Vec<String>),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const APP: &str = r#"
spin_manifest_version = 2
[application]
name = "t"
[application.trigger.redis]
address = "{{ redis_address }}"
[variables]
host = { required = true }
port = { default = "587" }
redis_address = { default = "redis://127.0.0.1:6379" }
[[trigger.http]]
route = "/..."
component = "web"
[[trigger.redis]]
channel = "c"
component = "web"
[component.web]
source = "web.wasm"
allowed_outbound_hosts = ["tcp://{{ host }}:{{ port }}"]
dependencies_inherit_configuration = true
[component.web.variables]
host = "{{ host }}"
[component.web.dependencies]
"smtp-mailer:mailer" = { path = "mailer.wasm" }
[component.web.build]
command = "cargo build"
"#;

    #[test]
    fn reads_what_serve_runs() {
        let m = Manifest::parse(APP, Path::new("/app")).unwrap();
        assert_eq!(m.variables["port"].default.as_deref(), Some("587"));
        assert!(m.variables["host"].required);
        assert_eq!(m.redis_address.as_deref(), Some("{{ redis_address }}"));
        assert_eq!(m.http_triggers[0].route, "/...");
        assert_eq!(m.redis_triggers[0].channel, "c");
        let web = &m.components["web"];
        assert_eq!(web.source, Path::new("/app/web.wasm"));
        let mailer = &web.dependencies["smtp-mailer:mailer"];
        assert_eq!(mailer.path, Path::new("/app/mailer.wasm"));
        assert!(mailer.inherits_outbound_hosts);
    }

    #[test]
    fn spin_4_inheritance_and_none() {
        let list = APP
            .replace("dependencies_inherit_configuration = true\n", "")
            .replace(
                "{ path = \"mailer.wasm\" }",
                "{ path = \"mailer.wasm\", inherit_configuration = [\"allowed_outbound_hosts\"] }",
            );
        let m = Manifest::parse(&list, Path::new(".")).unwrap();
        assert!(m.components["web"].dependencies["smtp-mailer:mailer"].inherits_outbound_hosts);
        let none = APP.replace("dependencies_inherit_configuration = true\n", "");
        let m = Manifest::parse(&none, Path::new(".")).unwrap();
        assert!(!m.components["web"].dependencies["smtp-mailer:mailer"].inherits_outbound_hosts);
    }

    #[test]
    fn refuses_what_it_cannot_run() {
        let cases = [
            (APP.replace("= 2", "= 1"), "not supported"),
            (
                APP.replace("{ default = \"587\" }", "{ }"),
                "give it a default",
            ),
            (
                APP.replace(
                    "component = \"web\"\n[[trigger.redis]]",
                    "component = \"nope\"\n[[trigger.redis]]",
                ),
                "not defined",
            ),
            (
                APP.replace("{ path = \"mailer.wasm\" }", "{ version = \"1\" }"),
                "local `path`",
            ),
            (
                APP.replace("[[trigger.http]]", "[[trigger.cron]]"),
                "not supported by serve",
            ),
        ];
        for (text, reason) in cases {
            let e = Manifest::parse(&text, Path::new(".")).unwrap_err();
            assert!(e.contains(reason), "{e}");
        }
    }
}
