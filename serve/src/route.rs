//! Spin's HTTP routes: `/path` matches that path exactly, `/prefix/...`
//! matches the prefix and everything below it (`/...` matches every path).
//! The most specific route wins, as in Spin.

use crate::ServeError;

/// One `[[trigger.http]]` route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Exactly this path.
    Exact(String),
    /// This prefix (without the trailing `/...`) and every path below it.
    Wildcard(String),
}

impl Route {
    /// Parses a route as spin.toml writes it.
    ///
    /// Errors: [`ServeError::Manifest`] for a route that does not start
    /// with `/`.
    pub fn parse(route: &str) -> Result<Route, ServeError> {
        if !route.starts_with('/') {
            return Err(ServeError::Manifest(format!(
                "route {route:?} must start with /"
            )));
        }
        Ok(match route.strip_suffix("/...") {
            Some(prefix) => Route::Wildcard(prefix.to_string()),
            None => Route::Exact(route.trim_end_matches('/').to_string()),
        })
    }

    /// How specifically the route matches `path` (longer is more specific),
    /// or `None` when it does not.
    pub fn matches(&self, path: &str) -> Option<usize> {
        let path = path.trim_end_matches('/');
        match self {
            Route::Exact(exact) => (path == exact).then(|| exact.len() + 1),
            Route::Wildcard(prefix) => {
                let below = path
                    .strip_prefix(prefix.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'));
                below.then_some(prefix.len())
            }
        }
    }
}

/// The index of the route in `routes` that answers `path`, if any.
pub fn pick<'a, T>(routes: &'a [(Route, T)], path: &str) -> Option<&'a T> {
    routes
        .iter()
        .filter_map(|(route, app)| route.matches(path).map(|score| (score, app)))
        .max_by_key(|(score, _)| *score)
        .map(|(_, app)| app)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_most_specific_route_wins() {
        let routes = vec![
            (Route::parse("/...").unwrap(), "all"),
            (Route::parse("/api/...").unwrap(), "api"),
            (Route::parse("/api/health").unwrap(), "health"),
        ];
        assert_eq!(pick(&routes, "/send"), Some(&"all"));
        assert_eq!(pick(&routes, "/"), Some(&"all"));
        assert_eq!(pick(&routes, "/api"), Some(&"api"));
        assert_eq!(pick(&routes, "/api/x/y"), Some(&"api"));
        assert_eq!(pick(&routes, "/apix"), Some(&"all"));
        assert_eq!(pick(&routes, "/api/health"), Some(&"health"));
        let only = vec![(Route::parse("/send").unwrap(), "send")];
        assert_eq!(pick(&only, "/other"), None);
        assert!(Route::parse("send").is_err());
    }
}
