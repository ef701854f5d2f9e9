//! A small proxy-wasm host on wasmtime, to test the **compiled** lambdagate
//! filter (`lambdagate_filter.wasm`) natively, the way Envoy runs it.
//!
//! ```no_run
//! use lambdagate_wasm_host::{Action, Host, filter_wasm_path};
//!
//! let mut host = Host::load(filter_wasm_path()).unwrap();
//! assert!(host.configure(r#"{"routes": []}"#).unwrap().ok);
//! let stream = host.new_stream().unwrap();
//! let action = host
//!     .request_headers(stream, [(":method", "GET"), (":path", "/x"), (":authority", "a"), (":scheme", "http")], true)
//!     .unwrap();
//! assert_eq!(action, Action::Pause);
//! let call = host.grpc_calls().last().unwrap().clone();
//! host.grpc_receive(call.token.unwrap(), b"reply bytes").unwrap();
//! println!("{:?}", host.local_responses(stream));
//! host.end_stream(stream).unwrap();
//! ```
//!
//! # What it mirrors
//!
//! Envoy's proxy-wasm host (proxy-wasm-cpp-host + Envoy's `Context`), ABI
//! 0.2.0/0.2.1, for an HTTP filter on the request path:
//!
//! * **Imports**: exactly the set the current proxy-wasm-cpp-host offers —
//!   all `env.proxy_*` hostcalls of the ABI, `env.pthread_equal`,
//!   `env.emscripten_notify_memory_growth`, and the WASI subset (`fd_write`,
//!   `fd_read`, `fd_seek`, `fd_close`, `fd_fdstat_get`, `environ_get`,
//!   `environ_sizes_get`, `args_get`, `args_sizes_get`, `clock_time_get`,
//!   `random_get`, `proc_exit`, `path_open`, `fd_prestat_get`,
//!   `fd_prestat_dir_name`) under `wasi_snapshot_preview1` and
//!   `wasi_unstable`. WASI is implemented by hand (no `wasmtime-wasi`): it
//!   is tiny and must match Envoy, not a full WASI (stdout/stderr go to the
//!   log, no files, empty environment, the host clock, deterministic
//!   randomness, `proc_exit` traps). A module importing
//!   anything else fails [`Host::load`] with a [`LoadError`] naming the
//!   imports — it would fail to load in Envoy too. ABI 0.1.0-only calls
//!   such as `proxy_continue_request` are therefore refused for 0.2.x
//!   modules; resuming is `proxy_continue_stream(HttpRequest)`.
//! * **Call sequence**: `_initialize` (else `_start` / `__wasm_call_ctors`),
//!   `proxy_on_context_create(root, 0)`, `proxy_on_vm_start`,
//!   `proxy_on_configure(root, size)`; per stream `proxy_on_context_create
//!   (stream, root)`, `proxy_on_request_headers`, `proxy_on_request_body`,
//!   `proxy_on_request_trailers`;
//!   gRPC replies on the **root** context (`proxy_on_grpc_receive(root,
//!   token, size)` / `proxy_on_grpc_close(root, token, code)`) since Envoy's
//!   calls belong to it; stream end `proxy_on_log`, `proxy_on_done`,
//!   `proxy_on_delete` (Envoy's order). Missing callbacks are skipped.
//! * **Effective context**: `proxy_set_effective_context` switches the
//!   context later hostcalls act on until the callback returns, so a local
//!   response or `resume_http_request` from a gRPC callback lands on the
//!   stream the SDK switched to.
//! * **Availability**: request headers and body are readable only while the
//!   filter holds the request (Envoy drops them on `Continue` or
//!   `proxy_continue_stream`); then header reads answer `BadArgument` (the
//!   SDK panics), body reads are empty. The plugin configuration buffer
//!   exists only during `proxy_on_configure`, the gRPC receive buffer only
//!   during `proxy_on_grpc_receive`.
//! * **Statuses** follow Envoy, including its quirks (`proxy_done` is
//!   NotFound, `proxy_continue_stream(Upstream)` is Unimplemented). Remember
//!   the Rust SDK panics on most statuses it does not expect.
//!
//! # Hostcalls
//!
//! Implemented: `proxy_log`, `proxy_get_log_level`,
//! `proxy_get_current_time_nanoseconds`, `proxy_set_tick_period_milliseconds`,
//! `proxy_get_buffer_status`, `proxy_get_buffer_bytes`, `proxy_set_buffer_bytes`
//! (request body, plugin/VM configuration, gRPC receive buffer),
//! `proxy_get_header_map_pairs`, `proxy_set_header_map_pairs`,
//! `proxy_get_header_map_value`, `proxy_add_header_map_value`,
//! `proxy_replace_header_map_value`, `proxy_remove_header_map_value`,
//! `proxy_get_header_map_size` (request headers and trailers; other maps do
//! not exist),
//! `proxy_get_property`, `proxy_set_property`, `proxy_send_local_response`,
//! `proxy_grpc_call`, `proxy_grpc_cancel`, `proxy_grpc_close` (cancels a call),
//! `proxy_get_status`, `proxy_continue_stream`, `proxy_close_stream`,
//! `proxy_set_effective_context`, `proxy_get_shared_data`,
//! `proxy_set_shared_data`, `proxy_define_metric`, `proxy_increment_metric`,
//! `proxy_record_metric`, `proxy_get_metric`, `proxy_done` (NotFound, as
//! Envoy outside shutdown), `proxy_call_foreign_function` (NotFound: none
//! registered).
//!
//! Not modelled, answering `Unimplemented` (12): `proxy_http_call`,
//! `proxy_grpc_stream`, `proxy_grpc_send`, the shared-queue calls, and
//! `proxy_continue_stream(Upstream)` (Envoy's own answer).
//!
//! # Traps and runaway code
//!
//! Every call into the module returns `Result<_, `[`Trap`]`>`. A trap (a
//! Rust panic under `panic = "abort"` is an `unreachable` trap, see
//! [`TrapKind`]) carries wasmtime's message with the wasm backtrace, the
//! panic text the SDK's panic hook logged, and any stderr output. Each call
//! gets a fuel budget ([`Host::set_fuel_per_call`]), so an endless loop
//! traps with [`TrapKind::OutOfFuel`] instead of hanging the test. As in
//! Envoy without `FAIL_RELOAD`, a trapped VM stays dead: later calls fail
//! with [`TrapKind::VmFailed`]; load a new [`Host`].

// Test-support code: a test misusing the host (unknown stream, calls before
// configure) is a bug in that test, so the host panics loudly there.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod abi;
mod host;
mod imports;
mod pairs;
mod state;
mod trap;

use std::path::{Path, PathBuf};

pub use abi::{Action, LogLevel, status};
pub use host::{ConfigureOutcome, DEFAULT_FUEL_PER_CALL, Host};
pub use state::{GrpcCall, GrpcDispatch, LocalResponse, LogLine, Stream, StreamId};
pub use trap::{LoadError, Trap, TrapKind};

/// The command that builds the filter for [`filter_wasm_path`].
/// (The `wasm` profile is the one Envoy gets: small, `panic = "abort"`.)
pub const FILTER_BUILD_COMMAND: &str =
    "cargo build -p lambdagate-filter --target wasm32-wasip1 --profile wasm";

/// Path of the compiled filter, `target/wasm32-wasip1/wasm/lambdagate_filter.wasm`
/// under the workspace root (or under an absolute `CARGO_TARGET_DIR`).
/// If a `--release` build (`target/wasm32-wasip1/release/…`) also exists,
/// the newer of the two is returned. `LAMBDAGATE_FILTER_WASM` overrides
/// the path.
///
/// Panics with the build command when no filter has been built, or when
/// the build is older than one of the sources it was built from (cargo's
/// dep-info file next to it lists them): the tests using it need an
/// up-to-date `.wasm`, which `cargo test` does not build, and testing a
/// stale one would test code that no longer exists.
pub fn filter_wasm_path() -> PathBuf {
    if let Some(path) = std::env::var_os("LAMBDAGATE_FILTER_WASM") {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "LAMBDAGATE_FILTER_WASM={} does not exist (unset it to use the filter built by:\n    {FILTER_BUILD_COMMAND})",
            path.display()
        );
        return path;
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .expect("tests/wasm-host lies two levels below the workspace root");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .filter(|dir| dir.is_absolute())
        .unwrap_or_else(|| workspace.join("target"));
    let candidates = ["wasm", "release"].map(|profile| {
        target
            .join("wasm32-wasip1")
            .join(profile)
            .join("lambdagate_filter.wasm")
    });
    let (built, path) = candidates
        .iter()
        .filter_map(|path| Some((path.metadata().ok()?.modified().ok()?, path)))
        .max()
        .unwrap_or_else(|| {
            panic!(
                "the compiled filter is missing ({}).\nBuild it first:\n    {FILTER_BUILD_COMMAND}",
                candidates[0].display()
            )
        });
    if let Some(source) = newer_source(path, built) {
        panic!(
            "the compiled filter {} is older than {}.\nRebuild it:\n    {FILTER_BUILD_COMMAND}",
            path.display(),
            source.display()
        );
    }
    path.clone()
}

/// A source file listed in the dep-info file cargo wrote next to `wasm`
/// (`lambdagate_filter.d`, Makefile syntax) that changed after `built`, or
/// no longer exists.
fn newer_source(wasm: &Path, built: std::time::SystemTime) -> Option<PathBuf> {
    let dep_info = std::fs::read_to_string(wasm.with_extension("d")).ok()?;
    let (_, sources) = dep_info.lines().next()?.split_once(": ")?;
    // Paths are separated by spaces; a space inside a path is `\ `.
    let sources = sources.replace("\\ ", "\0");
    sources
        .split(' ')
        .filter(|source| !source.is_empty())
        .map(|source| PathBuf::from(source.replace('\0', " ")))
        .find(|source| {
            source
                .metadata()
                .and_then(|meta| meta.modified())
                .map_or(true, |modified| modified > built)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    #[test]
    fn a_source_newer_than_the_build_is_found() {
        let dir = std::env::temp_dir().join(format!("wasm-host-dep-info-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let wasm = dir.join("f.wasm");
        let (old, spaced) = (dir.join("old.rs"), dir.join("with space.rs"));
        let built = SystemTime::now() - Duration::from_secs(100);
        for (path, modified) in [
            (&wasm, built),
            (&old, built - Duration::from_secs(10)),
            (&spaced, built - Duration::from_secs(10)),
        ] {
            let file = std::fs::File::create(path).unwrap();
            file.set_modified(modified).unwrap();
        }
        let escaped = spaced.display().to_string().replace(' ', "\\ ");
        std::fs::write(
            wasm.with_extension("d"),
            format!("{}: {} {escaped}\n", wasm.display(), old.display()),
        )
        .unwrap();
        assert_eq!(newer_source(&wasm, built), None);

        std::fs::File::options()
            .write(true)
            .open(&spaced)
            .unwrap()
            .set_modified(built + Duration::from_secs(1))
            .unwrap();
        assert_eq!(newer_source(&wasm, built), Some(spaced.clone()));

        std::fs::remove_file(&spaced).unwrap();
        assert_eq!(newer_source(&wasm, built), Some(spaced), "a deleted source");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
