//! Compiles the .proto files with protox (pure Rust, no `protoc` needed),
//! and lists `ErrorKind`'s values from the compiled descriptor, so that
//! `ErrorKind::all()` covers every kind the .proto defines.
use std::fmt::Write as _;
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "proto/lambdagate/v1/invoker.proto";
    println!("cargo:rerun-if-changed={proto}");
    let fds = protox::compile([proto], ["proto"])?;
    let grpc = std::env::var_os("CARGO_FEATURE_GRPC").is_some();
    let out = PathBuf::from(std::env::var("OUT_DIR")?);

    let kinds: Vec<i32> = fds
        .file
        .iter()
        .flat_map(|file| &file.enum_type)
        .filter(|e| e.name() == "ErrorKind")
        .flat_map(|e| &e.value)
        .map(|v| v.number())
        .collect();
    if kinds.is_empty() {
        return Err("invoker.proto defines no ErrorKind values".into());
    }
    let mut list =
        String::from("/// The numbers of every `ErrorKind` value in invoker.proto (generated).\n");
    writeln!(
        list,
        "pub(crate) const ERROR_KIND_VALUES: [i32; {}] = {kinds:?};",
        kinds.len()
    )?;
    std::fs::write(out.join("error_kinds.rs"), list)?;

    tonic_prost_build::configure()
        .build_server(grpc)
        .build_client(grpc)
        // A streamed body passes through the invoker without copies.
        .bytes(".lambdagate.v1.HttpBodyChunk.data")
        // A request body is decoded without a copy (a slice of the frame).
        .bytes(".lambdagate.v1.InvokeRequest.payload")
        .out_dir(out)
        .compile_fds(fds)?;
    Ok(())
}
