//! The `lambdagate` command line.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use crate::check;
use lambdagate_sidecar::config::{self, Config};

#[derive(Parser, Debug)]
#[command(
    name = "lambdagate",
    version,
    about = "Put AWS Lambda functions behind Envoy: the invoker sidecar and operator CLI"
)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Log filter (tracing EnvFilter syntax), e.g. `info` or `lambdagate_invoker=debug`.
    #[arg(long, global = true, env = "LAMBDAGATE_LOG", default_value = "info")]
    log: String,
    /// Log line format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the invoker sidecar: a gRPC server that Envoy's lambdagate filter calls.
    Serve {
        /// Invoker config file (YAML).
        #[arg(long, short)]
        config: PathBuf,
        /// Override `listen`: 127.0.0.1:PORT, [::1]:PORT or unix:/path.sock.
        #[arg(long)]
        listen: Option<String>,
        /// Override `admin_listen` (serves /metrics and /healthz).
        #[arg(long)]
        admin_listen: Option<String>,
        /// Permit listening on a non-loopback address.
        #[arg(long)]
        allow_non_loopback: bool,
        /// Tokio worker threads. One beat two on a 2-core machine with Envoy
        /// beside it (see NOTES); raise it on bigger hosts.
        #[arg(long, default_value_t = 1)]
        worker_threads: usize,
    },
    /// Validate an invoker config (--config) or API definitions (--api,
    /// as `render` would, the filter file included); with --live, also
    /// call AWS for the invoker config.
    Check {
        #[arg(long, short, required_unless_present = "api")]
        config: Option<PathBuf>,
        /// API definition files.
        #[arg(long)]
        api: Vec<PathBuf>,
        /// The filter's .wasm for --api (as `render --filter`).
        #[arg(long)]
        filter: Option<PathBuf>,
        /// Call STS GetCallerIdentity per endpoint and Lambda GetFunction
        /// per allowed ARN without a wildcard.
        #[arg(long)]
        live: bool,
    },
    /// Render API definitions into the Envoy bootstrap, the filter config
    /// (hot-deployed through a watched file) and the invoker config.
    Render {
        /// API definition files (see examples/api.yaml).
        #[arg(required = true)]
        apis: Vec<PathBuf>,
        /// Output directory; Envoy and the invoker watch the files in it.
        #[arg(long, short)]
        out: PathBuf,
        /// When the invoker config changes on a redeploy, wait this long
        /// before switching Envoy, so the invoker already allows new ARNs
        /// (it checks its file every second).
        #[arg(long, default_value_t = 2500)]
        settle_ms: u64,
        /// The filter's .wasm (default: `gateway.wasm`, else the one beside
        /// this binary or in its cargo target folder).
        #[arg(long)]
        filter: Option<PathBuf>,
    },
    /// Run the whole stack locally: Envoy, the invoker and two sample
    /// functions (examples/demo/api.yaml); Ctrl-C stops it all.
    Demo {
        /// The API to serve.
        #[arg(long, default_value = "examples/demo/api.yaml")]
        api: PathBuf,
        /// Envoy's listener port (127.0.0.1).
        #[arg(long, default_value_t = 8080)]
        port: u16,
        /// Envoy's admin port.
        #[arg(long, default_value_t = 9901)]
        admin_port: u16,
        /// The invoker's gRPC port.
        #[arg(long, default_value_t = 50051)]
        invoker_port: u16,
        /// The invoker's admin port (/metrics and the developer portal,
        /// which Envoy serves at /portal/).
        #[arg(long, default_value_t = 9902)]
        invoker_admin_port: u16,
        /// Envoy binary (default: .venv/bin/envoy, then PATH).
        #[arg(long)]
        envoy: Option<PathBuf>,
        /// The filter (default: the one beside this binary or in its cargo
        /// target folder).
        #[arg(long)]
        wasm: Option<PathBuf>,
    },
    /// Write the OpenAPI 3 document of an API (for a developer portal).
    Openapi {
        /// API definition file.
        api: PathBuf,
        /// Output file (default: standard output).
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
    /// API keys of usage plans, in the store the invoker config names
    /// (`usage.store`): `create` prints a new key once, `list` shows ids,
    /// plans and states (never keys), `revoke` stops a key.
    Keys {
        #[command(subcommand)]
        action: KeysCommand,
    },
    /// List the Lambda functions an endpoint's credentials can see.
    Functions {
        #[arg(long, short)]
        config: PathBuf,
        /// Endpoint name from the config.
        #[arg(long, short)]
        endpoint: String,
        /// Region to list (default: the endpoint's region).
        #[arg(long)]
        region: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum KeysCommand {
    /// A new key for one or more plans, printed once on standard output.
    Create {
        #[arg(long, short)]
        config: PathBuf,
        /// A usage plan of `usage.plans` (repeat for several).
        #[arg(long = "plan", required = true)]
        plans: Vec<String>,
        /// A name for people, shown by `list` (not secret).
        #[arg(long, default_value = "")]
        name: String,
    },
    /// Every key's id, state, creation time, plans and name.
    List {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Refuse a key from now on (within `usage.keys_refresh_ms`).
    Revoke {
        #[arg(long, short)]
        config: PathBuf,
        /// The key's id (from `create` or `list`) or its name.
        id: String,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(&cli.log, cli.log_format);
    let workers = match &cli.command {
        Command::Serve { worker_threads, .. } => (*worker_threads).max(1),
        _ => 1,
    };
    // One worker: a current-thread runtime, with no work-stealing or
    // cross-thread wake-ups (measured in bench/run).
    let runtime = if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_all()
            .build()
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(cli.command))
}

fn init_logging(filter: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn load(path: &std::path::Path) -> Result<Config, ExitCode> {
    Config::load(path).map_err(|e| {
        eprintln!("error: {e}");
        ExitCode::FAILURE
    })
}

async fn run(command: Command) -> ExitCode {
    match command {
        Command::Serve {
            config,
            listen,
            admin_listen,
            allow_non_loopback,
            ..
        } => {
            let mut cfg = match load(&config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let allow = allow_non_loopback || cfg.allow_non_loopback;
            if let Some(text) = listen {
                match config::parse_listen(&text, allow) {
                    Ok(addr) => cfg.listen = addr,
                    Err(m) => {
                        eprintln!("error: --listen: {m}");
                        return ExitCode::FAILURE;
                    }
                }
            }
            if let Some(text) = admin_listen {
                match config::parse_listen(&text, allow) {
                    Ok(config::ListenAddr::Tcp(addr)) => cfg.admin_listen = Some(addr),
                    Ok(config::ListenAddr::Unix(_)) => {
                        eprintln!(
                            "error: --admin-listen: must be an IP address and port such as 127.0.0.1:9902"
                        );
                        return ExitCode::FAILURE;
                    }
                    Err(m) => {
                        eprintln!("error: --admin-listen: {m}");
                        return ExitCode::FAILURE;
                    }
                }
            }
            match lambdagate_sidecar::server::serve(
                cfg,
                &config,
                std::sync::Arc::new(lambdagate_local::LocalFunctions),
            )
            .await
            {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Check {
            config,
            api,
            filter,
            live,
        } => {
            if live && config.is_none() {
                eprintln!(
                    "error: --live calls AWS with an invoker config's credentials: give --config too"
                );
                return ExitCode::FAILURE;
            }
            if !api.is_empty() {
                let code = check_apis(&api, filter.as_deref());
                if config.is_none() || code != ExitCode::SUCCESS {
                    return code;
                }
            }
            let Some(config) = config else {
                return ExitCode::SUCCESS;
            };
            let file = config.display().to_string();
            let cfg = match load(&config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let mut out = std::io::stdout();
            match check::check(&cfg, &file, live, &mut out).await {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => {
                    eprintln!("error: live check failed (see above)");
                    ExitCode::FAILURE
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Render {
            apis,
            out,
            settle_ms,
            filter,
        } => render(&apis, &out, settle_ms, filter.as_deref()).await,
        Command::Demo {
            api,
            port,
            admin_port,
            invoker_port,
            invoker_admin_port,
            envoy,
            wasm,
        } => {
            let options = crate::demo::DemoOptions {
                api,
                port,
                admin_port,
                invoker_port,
                invoker_admin_port,
                envoy,
                wasm,
            };
            match crate::demo::run(options).await {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Openapi { api, out } => {
            let definition = match lambdagate_render::ApiDefinition::load(&api) {
                Ok(d) => d,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let gateway = definition.gateway.clone().unwrap_or_default();
            let document = lambdagate_render::openapi::document(&definition, &gateway);
            let text = match serde_json::to_string_pretty(&document) {
                Ok(t) => t + "\n",
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match out {
                None => {
                    print!("{text}");
                    ExitCode::SUCCESS
                }
                Some(path) => match lambdagate_render::write_atomically(&path, &text) {
                    Ok(_) => {
                        eprintln!("wrote {}", path.display());
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("error: cannot write {}: {e}", path.display());
                        ExitCode::FAILURE
                    }
                },
            }
        }
        Command::Keys { action } => {
            let (config, action) = match action {
                KeysCommand::Create {
                    config,
                    plans,
                    name,
                } => (config, crate::keys::KeysAction::Create { plans, name }),
                KeysCommand::List { config } => (config, crate::keys::KeysAction::List),
                KeysCommand::Revoke { config, id } => {
                    (config, crate::keys::KeysAction::Revoke { id })
                }
            };
            let cfg = match load(&config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            crate::keys::run(&config, &cfg, action).await
        }
        Command::Functions {
            config,
            endpoint,
            region,
        } => {
            let cfg = match load(&config) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let Some(ep) = cfg.endpoints.get(&endpoint) else {
                eprintln!(
                    "error: --endpoint: `{endpoint}` is not defined in {} (defined: {})",
                    config.display(),
                    cfg.endpoint_names().join(", ")
                );
                return ExitCode::FAILURE;
            };
            let region = region.unwrap_or_else(|| ep.region.clone());
            if !lambdagate_core::config::arn::is_region(&region) {
                eprintln!(
                    "error: --region: `{region}` is not an AWS region name such as us-east-1"
                );
                return ExitCode::FAILURE;
            }
            match check::list_functions(ep, &region).await {
                Ok(rows) => {
                    print!("{}", check::format_functions(&rows));
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// Loads and validates API definitions; the first error is printed.
fn load_definitions(apis: &[PathBuf]) -> Result<Vec<lambdagate_render::ApiDefinition>, ExitCode> {
    apis.iter()
        .map(|path| {
            lambdagate_render::ApiDefinition::load(path).map_err(|e| {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            })
        })
        .collect()
}

/// `check --api`: everything `render` checks, without writing anything.
fn check_apis(apis: &[PathBuf], filter: Option<&std::path::Path>) -> ExitCode {
    let definitions = match load_definitions(apis) {
        Ok(d) => d,
        Err(code) => return code,
    };
    let out = std::env::temp_dir().join("lambdagate-check");
    match lambdagate_render::render(&definitions, &out, filter) {
        Ok(rendered) => {
            for d in &definitions {
                println!("{}: ok (API {} {})", d.file, d.api.name, d.api.version);
            }
            println!("filter: {}", rendered.filter.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn render(
    apis: &[PathBuf],
    out: &std::path::Path,
    settle_ms: u64,
    filter: Option<&std::path::Path>,
) -> ExitCode {
    use lambdagate_render::{ECDS_DIR, ECDS_FILE, write_atomically};
    let definitions = match load_definitions(apis) {
        Ok(d) => d,
        Err(code) => return code,
    };
    if let Err(e) = std::fs::create_dir_all(out.join(ECDS_DIR)) {
        eprintln!("error: cannot create {}: {e}", out.display());
        return ExitCode::FAILURE;
    }
    let out = match out.canonicalize() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {}: {e}", out.display());
            return ExitCode::FAILURE;
        }
    };
    let rendered = match lambdagate_render::render(&definitions, &out, filter) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    eprintln!("filter: {}", rendered.filter.display());
    let ecds_path = out.join(ECDS_DIR).join(ECDS_FILE);
    let redeploy = ecds_path.exists();
    // The portal first: the invoker config names its folder, and the
    // invoker refuses a config whose portal folder is missing.
    if let Some(files) = &rendered.portal {
        let dir = out.join(lambdagate_render::portal::DIR);
        match lambdagate_render::portal::write(&dir, files) {
            Ok(changed) => eprintln!(
                "{} developer portal: {}",
                if changed > 0 { "wrote" } else { "unchanged" },
                dir.display()
            ),
            Err(e) => {
                eprintln!("error: cannot write the portal into {}: {e}", dir.display());
                return ExitCode::FAILURE;
            }
        }
    }
    // Order matters on a redeploy: the invoker must allow new ARNs before
    // Envoy routes to them.
    let steps: [(&str, std::path::PathBuf, &str); 3] = [
        (
            "invoker config",
            out.join("invoker.yaml"),
            &rendered.invoker,
        ),
        ("filter config (ECDS)", ecds_path, &rendered.ecds),
        (
            "Envoy bootstrap",
            out.join("envoy.yaml"),
            &rendered.envoy_bootstrap,
        ),
    ];
    for (i, (what, path, text)) in steps.iter().enumerate() {
        match write_atomically(path, text) {
            Ok(changed) => {
                eprintln!(
                    "{} {what}: {}",
                    if changed { "wrote" } else { "unchanged" },
                    path.display()
                );
                if i == 0 && changed && redeploy && settle_ms > 0 {
                    tokio::time::sleep(std::time::Duration::from_millis(settle_ms)).await;
                }
            }
            Err(e) => {
                eprintln!("error: cannot write {}: {e}", path.display());
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}
