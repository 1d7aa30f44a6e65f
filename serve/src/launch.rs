//! A manifest made ready to run, as `spin up` does at start: application
//! variables from the values given or their defaults (every required one
//! must have a value), component variables and `allowed_outbound_hosts`
//! expanded, each trigger's component composed with its dependency.
//!
//! The same path serves the manifests built into the binary (the repository's
//! `spin.toml` and `spin-redis.toml`, with the components built beside this
//! crate) and a manifest read from disk (`--app`), so that what `serve` runs
//! cannot drift from what Spin reads.

use std::collections::BTreeMap;
use std::path::Path;

use crate::manifest::{Component, Manifest};
use crate::outbound::AllowList;
use crate::outbound_redis::RedisAllowList;
use crate::route::Route;
use crate::variables::Variables;
use crate::{
    RedisTrigger, ServeError, SpinAppBuilder, SpinHttpApp, HTTP_COMPONENT, REDIS_COMPONENT,
};

/// The repository's `spin.toml`: the HTTP app.
pub const BUILT_IN_HTTP_MANIFEST: &str = include_str!("../../spin.toml");

/// The repository's `spin-redis.toml`: the Redis-triggered app.
pub const BUILT_IN_REDIS_MANIFEST: &str = include_str!("../../spin-redis.toml");

/// Where a manifest's Wasm comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sources {
    /// The files the manifest names (`spin build`'s or `cargo build`'s
    /// output).
    Files,
    /// The components built into this binary, whatever the paths say.
    BuiltIn,
}

/// A manifest to run, and where its Wasm comes from.
#[derive(Debug, Clone)]
pub struct App {
    /// The manifest.
    pub manifest: Manifest,
    /// Its components' Wasm.
    pub sources: Sources,
}

impl App {
    /// The manifest at `path`, with the files it names.
    ///
    /// Errors: [`ServeError::Manifest`] when it cannot be read or run.
    pub fn from_file(path: &Path) -> Result<App, ServeError> {
        Ok(App {
            manifest: Manifest::read(path)?,
            sources: Sources::Files,
        })
    }

    /// A built-in manifest ([`BUILT_IN_HTTP_MANIFEST`] or
    /// [`BUILT_IN_REDIS_MANIFEST`]) with the built-in components.
    ///
    /// Errors: [`ServeError::Manifest`] if it does not parse (a build defect).
    pub fn built_in(text: &str) -> Result<App, ServeError> {
        Ok(App {
            manifest: Manifest::parse(text, Path::new("."))
                .map_err(|e| ServeError::Manifest(format!("the built-in manifest: {e}")))?,
            sources: Sources::BuiltIn,
        })
    }
}

/// What the command line changes in the apps it runs (`serve`'s flags).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// Replaces every component's `tcp://` allowed outbound hosts.
    pub allow: Option<AllowList>,
    /// Replaces every Redis trigger's server address.
    pub redis_address: Option<String>,
    /// Replaces every Redis trigger's channel.
    pub redis_channel: Option<String>,
    /// Replaces the HTTP triggers' component Wasm.
    pub http_component: Option<Vec<u8>>,
    /// Replaces the dependencies' (the mailer's) Wasm.
    pub mailer_component: Option<Vec<u8>>,
}

/// The triggers of the apps, ready to serve.
pub struct Launched {
    /// Each HTTP route and the app that answers it.
    pub http: Vec<(Route, SpinHttpApp)>,
    /// Each Redis subscription.
    pub redis: Vec<RedisTrigger>,
}

/// Resolves, composes and compiles every trigger of `apps`. `given` holds
/// the application variables' values (the environment's
/// `SPIN_VARIABLE_<NAME>`, a file); `base` the memory limit, deadline and
/// cache shared by every store.
///
/// Errors: [`ServeError::Variables`] naming every required variable without
/// a value, or a template naming an undeclared one;
/// [`ServeError::Outbound`] for an allowed outbound host serve cannot honour
/// (with the template it came from); [`ServeError::Manifest`] for a missing
/// file; composition and compilation errors.
pub fn launch(
    apps: &[App],
    given: &Variables,
    overrides: &Overrides,
    base: &SpinAppBuilder,
) -> Result<Launched, ServeError> {
    let mut launched = Launched {
        http: Vec::new(),
        redis: Vec::new(),
    };
    for app in apps {
        let values = application_values(&app.manifest, given)?;
        for trigger in &app.manifest.http_triggers {
            let builder = component_builder(app, &trigger.component, &values, overrides, base)?;
            let builder = match &overrides.http_component {
                Some(wasm) => builder.app_component(wasm.clone()),
                None => builder,
            };
            let route = Route::parse(&trigger.route)?;
            launched.http.push((route, builder.build_http()?));
        }
        for trigger in &app.manifest.redis_triggers {
            let builder = component_builder(app, &trigger.component, &values, overrides, base)?;
            let address = match (&overrides.redis_address, &trigger.address) {
                (Some(address), _) => address.clone(),
                (None, Some(own)) => expand(own, &values)?,
                (None, None) => match &app.manifest.redis_address {
                    Some(template) => expand(template, &values)?,
                    None => {
                        return Err(ServeError::Manifest(format!(
                            "the Redis trigger of {} has no address: set \
                             [application.trigger.redis] address",
                            trigger.component
                        )))
                    }
                },
            };
            launched.redis.push(RedisTrigger {
                app: builder.build_redis()?,
                address,
                channel: overrides
                    .redis_channel
                    .clone()
                    .unwrap_or_else(|| trigger.channel.clone()),
            });
        }
    }
    Ok(launched)
}

/// Each declared application variable's value: the one given, else its
/// default. Spin refuses to start while a required variable has none, and
/// so does this, naming all of them.
fn application_values(
    manifest: &Manifest,
    given: &Variables,
) -> Result<BTreeMap<String, String>, ServeError> {
    let mut values = BTreeMap::new();
    let mut missing = Vec::new();
    for (name, declared) in &manifest.variables {
        match given.get(name).or(declared.default.as_deref()) {
            Some(value) => {
                values.insert(name.clone(), value.to_string());
            }
            None => missing.push(format!(
                "{name} (SPIN_VARIABLE_{})",
                name.to_ascii_uppercase()
            )),
        }
    }
    if missing.is_empty() {
        Ok(values)
    } else {
        Err(ServeError::Variables(format!(
            "required variables have no value: {}",
            missing.join(", ")
        )))
    }
}

/// `template` with each `{{ name }}` replaced by the application variable's
/// value.
///
/// Errors: [`ServeError::Variables`] for an undeclared name or an unclosed
/// `{{`.
pub(crate) fn expand(
    template: &str,
    values: &BTreeMap<String, String>,
) -> Result<String, ServeError> {
    let mut out = String::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| ServeError::Variables(format!("{template:?}: a {{{{ is not closed")))?;
        let name = after[..end].trim();
        let value = values.get(name).ok_or_else(|| {
            ServeError::Variables(format!(
                "{template:?} names {name:?}, which is not an application variable"
            ))
        })?;
        out.push_str(value);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The builder of `id`'s composition: its Wasm and its dependency's, its
/// variables, and the TCP destinations its dependency may reach.
fn component_builder(
    app: &App,
    id: &str,
    values: &BTreeMap<String, String>,
    overrides: &Overrides,
    base: &SpinAppBuilder,
) -> Result<SpinAppBuilder, ServeError> {
    let component = app.manifest.component(id)?;
    let mailer = component.dependencies.values().next().ok_or_else(|| {
        ServeError::Manifest(format!(
            "component {id} has no dependency: serve composes it with the mailer \
             (\"smtp-mailer:mailer\" = {{ path = ... }})"
        ))
    })?;
    if component.dependencies.len() > 1 {
        return Err(ServeError::Manifest(format!(
            "component {id}: serve composes one dependency (the mailer), not {}",
            component.dependencies.len()
        )));
    }
    let mut variables = Variables::new();
    for (name, template) in &component.variables {
        variables.set(name, expand(template, values)?)?;
    }
    let (tcp, redis) = allow_lists(id, component, values)?;
    let allow = match &overrides.allow {
        Some(allow) => allow.clone(),
        None => tcp,
    };
    // The mailer opens the connections; without inheriting the parent's
    // allowed hosts it may open none (Spin's rule for dependencies).
    let allow = if mailer.inherits_outbound_hosts {
        allow
    } else {
        AllowList::default()
    };
    let (app_wasm, mailer_wasm) = match app.sources {
        Sources::BuiltIn => (built_in(id)?.to_vec(), smtp_mailer_host::COMPONENT.to_vec()),
        Sources::Files => (read(&component.source)?, read(&mailer.path)?),
    };
    let mailer_wasm = overrides.mailer_component.clone().unwrap_or(mailer_wasm);
    Ok(base
        .clone()
        .app_component(app_wasm)
        .mailer_component(mailer_wasm)
        .variables(variables)
        .allow(allow)
        .redis_allow(redis))
}

/// The component's allowed outbound hosts, expanded: the `tcp://` entries
/// (sockets) and the `redis://` ones (Spin's outbound Redis). Other schemes
/// cannot be honoured by serve and are refused.
fn allow_lists(
    id: &str,
    component: &Component,
    values: &BTreeMap<String, String>,
) -> Result<(AllowList, RedisAllowList), ServeError> {
    let mut tcp = Vec::new();
    let mut redis = Vec::new();
    for template in &component.allowed_outbound_hosts {
        let entry = expand(template, values)?;
        let named = |e: ServeError| {
            ServeError::Outbound(format!("{e} (component {id}, from {template:?})"))
        };
        if entry.starts_with("tcp://") {
            tcp.push(entry.parse().map_err(named)?);
        } else if entry.starts_with("redis://") {
            RedisAllowList::parse(std::slice::from_ref(&entry)).map_err(named)?;
            redis.push(entry);
        } else {
            return Err(ServeError::Outbound(format!(
                "{entry:?} (component {id}): serve supports tcp:// and redis:// entries"
            )));
        }
    }
    Ok((AllowList::from_rules(tcp), RedisAllowList::parse(&redis)?))
}

/// The built-in Wasm of the repository's component `id`.
fn built_in(id: &str) -> Result<&'static [u8], ServeError> {
    match id {
        "send-http" => Ok(HTTP_COMPONENT),
        "send-redis" => Ok(REDIS_COMPONENT),
        other => Err(ServeError::Manifest(format!(
            "no built-in component {other:?}"
        ))),
    }
}

fn read(path: &Path) -> Result<Vec<u8>, ServeError> {
    std::fs::read(path).map_err(|e| {
        ServeError::Manifest(format!(
            "{}: {e} (build the components first: cargo build --release)",
            path.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn templates_expand_declared_variables_only() {
        let v = values(&[("host", "192.0.2.1"), ("port", "587")]);
        assert_eq!(
            expand("tcp://{{ host }}:{{port}}", &v).unwrap(),
            "tcp://192.0.2.1:587"
        );
        assert_eq!(expand("plain", &v).unwrap(), "plain");
        assert!(expand("{{ nope }}", &v).is_err());
        assert!(expand("{{ host", &v).is_err());
    }

    #[test]
    fn defaults_apply_and_required_ones_are_named() {
        let m = Manifest::parse(BUILT_IN_HTTP_MANIFEST, Path::new(".")).unwrap();
        let e = application_values(&m, &Variables::new())
            .unwrap_err()
            .to_string();
        assert!(e.contains("smtp_host (SPIN_VARIABLE_SMTP_HOST)"), "{e}");
        assert!(e.contains("api_key"), "{e}");
        let mut given = Variables::new();
        for name in ["smtp_host", "smtp_connect_address", "api_key"] {
            given.set(name, "x").unwrap();
        }
        let v = application_values(&m, &given).unwrap();
        assert_eq!(v["smtp_port"], "587");
    }

    #[test]
    fn both_built_in_manifests_declare_the_same_shared_variables() {
        let http = Manifest::parse(BUILT_IN_HTTP_MANIFEST, Path::new(".")).unwrap();
        let redis = Manifest::parse(BUILT_IN_REDIS_MANIFEST, Path::new(".")).unwrap();
        for (name, declared) in &redis.variables {
            if let Some(other) = http.variables.get(name) {
                assert_eq!(declared, other, "{name} differs between the manifests");
            }
        }
        assert!(http.redis_triggers.is_empty(), "HTTP must not need Redis");
        assert!(redis.http_triggers.is_empty());
    }

    #[test]
    fn an_empty_port_is_refused_naming_the_template() {
        let m = Manifest::parse(BUILT_IN_HTTP_MANIFEST, Path::new(".")).unwrap();
        let mut v = values(&[("smtp_connect_address", "192.0.2.1"), ("smtp_port", "")]);
        for name in m.variables.keys() {
            v.entry(name.clone()).or_default();
        }
        let e = allow_lists("send-http", &m.components["send-http"], &v)
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(e.contains("smtp_port"), "{e}");
    }
}
