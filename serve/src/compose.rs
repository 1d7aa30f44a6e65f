//! Composition, as Spin does it for `[component.x.dependencies]`: the
//! mailer's exports are plugged into the app component's imports of the
//! same names (`smtp-mailer:mailer/sender` and its types); every other
//! import (WASI, `fermyon:spin/variables`) is left for the host, and the
//! app's exports are the composition's. The mailer is used as it is,
//! instantiated once inside the composition, never linked into the app.

use wac_graph::types::Package;
use wac_graph::{plug, CompositionGraph, EncodeOptions};

use crate::ServeError;

/// The composition of `app` (a Spin component importing the mailer's
/// `sender`) with `mailer` (the mailer component), as one component.
///
/// Errors: [`ServeError::Compose`] when either is not a component, or
/// the mailer exports nothing that `app` imports.
pub fn compose(app: &[u8], mailer: &[u8]) -> Result<Vec<u8>, ServeError> {
    let fail = |what: &str, e: &dyn std::fmt::Display| ServeError::Compose(format!("{what}: {e}"));
    let mut graph = CompositionGraph::new();
    let app = Package::from_bytes(
        "smtp-mailer:spin-app",
        None,
        app.to_vec(),
        graph.types_mut(),
    )
    .map_err(|e| fail("the app component", &format!("{e:#}")))?;
    let app = graph
        .register_package(app)
        .map_err(|e| fail("the app component", &e))?;
    let mailer = Package::from_bytes(
        "smtp-mailer:mailer",
        None,
        mailer.to_vec(),
        graph.types_mut(),
    )
    .map_err(|e| fail("the mailer component", &format!("{e:#}")))?;
    let mailer = graph
        .register_package(mailer)
        .map_err(|e| fail("the mailer component", &e))?;
    plug(&mut graph, vec![mailer], app)
        .map_err(|e| fail("plugging the mailer into the app", &e))?;
    graph
        .encode(EncodeOptions::default())
        .map_err(|e| fail("encoding the composition", &e))
}

/// The names a component imports and exports (interfaces such as
/// `wasi:sockets/tcp@0.2.6`, or plain names), each list sorted.
///
/// Errors: [`ServeError::Compose`] when `wasm` is not a component.
pub fn imports_and_exports(wasm: &[u8]) -> Result<(Vec<String>, Vec<String>), ServeError> {
    let mut graph = CompositionGraph::new();
    let package = Package::from_bytes(
        "inspected:component",
        None,
        wasm.to_vec(),
        graph.types_mut(),
    )
    .map_err(|e| ServeError::Compose(format!("not a component: {e:#}")))?;
    let world = &graph.types()[package.ty()];
    let mut imports: Vec<String> = world.imports.keys().cloned().collect();
    let mut exports: Vec<String> = world.exports.keys().cloned().collect();
    imports.sort();
    exports.sort();
    Ok((imports, exports))
}
