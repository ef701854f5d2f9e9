//! Compiles the .proto files with protox (pure Rust, no `protoc` needed).
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/lambdagate/v1/invoker.proto";
    println!("cargo:rerun-if-changed={proto}");
    let fds = protox::compile([proto], ["proto"])?;
    let grpc = std::env::var_os("CARGO_FEATURE_GRPC").is_some();
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    tonic_prost_build::configure()
        .build_server(grpc)
        .build_client(grpc)
        // A streamed body passes through the invoker without copies.
        .bytes(".lambdagate.v1.HttpBodyChunk.data")
        .out_dir(out)
        .compile_fds(fds)?;
    Ok(())
}
