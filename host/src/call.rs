//! One call into the component: its two layers of result (a trap, then the
//! component's own error) made into one [`Error`].

use crate::error::Error;

/// Turns a call's two layers of result (trap, then the component's own
/// error) into one.
pub(crate) fn finish<T, E: Into<Error>>(call: wasmtime::Result<Result<T, E>>) -> Result<T, Error> {
    match call {
        Ok(result) => result.map_err(Into::into),
        Err(trap) => Err(Error::runtime(describe_trap(&trap))),
    }
}

/// One line for a trap: what the sandbox stopped, without the backtrace.
fn describe_trap(error: &wasmtime::Error) -> String {
    match error.downcast_ref::<wasmtime::Trap>() {
        Some(wasmtime::Trap::Interrupt) => {
            "interrupted at the call deadline (epoch interruption): the call ran too long".into()
        }
        Some(wasmtime::Trap::UnreachableCodeReached) => {
            "the component aborted (wasm `unreachable`): \
             a panic, or an allocation refused at the memory limit"
                .into()
        }
        Some(trap) => format!("the component trapped: {trap}"),
        None => error
            .to_string()
            .lines()
            .next()
            .unwrap_or_default()
            .to_string(),
    }
}

/// An export the host needs is missing from the component.
pub(crate) fn load_error(e: wasmtime::Error) -> Error {
    Error::runtime(format!(
        "the component lacks an export this host uses: {e:#}"
    ))
}
