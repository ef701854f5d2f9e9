// mimalloc: the invoker allocates per request (gRPC frames, the SDK's
// request, the event); glibc malloc/free was ~12 of ~66 us of its CPU per
// call in bench/run. See bench/RESULTS.md.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    lambdagate_invoker::cli::main()
}
