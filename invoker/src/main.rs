fn main() -> std::process::ExitCode {
    lambdagate_invoker::cli::main()
}
