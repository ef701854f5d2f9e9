//! `lambdagate`: one binary for the invoker sidecar (`serve`) and the
//! operator's commands. It only parses arguments and wires the crates
//! together: `lambdagate-sidecar` (the gRPC server), `lambdagate-local`
//! (function processes for `local` endpoints), `lambdagate-render` (API
//! definitions into configs, OpenAPI and the portal), `lambdagate-usage`
//! (API keys: `keys`).

// mimalloc: the invoker allocates per request (gRPC frames, the SDK's
// request, the event); glibc malloc/free was ~12 of ~66 us of its CPU per
// call in bench/run. See bench/RESULTS.md.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod check;
mod cli;
mod demo;
mod keys;

fn main() -> std::process::ExitCode {
    cli::main()
}
