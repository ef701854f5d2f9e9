//! The invoker's configuration file: named endpoints (access methods) and
//! where to listen. Parsed strictly (unknown fields are errors) and
//! validated once, so `lambdagate check` and `lambdagate serve` refuse the
//! same files with the same words.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use lambdagate_core::LambdaArn;
use lambdagate_core::config::arn::is_region;
use lambdagate_proto::MAX_GRPC_MESSAGE_BYTES;
use serde::Deserialize;

use crate::allow::AllowList;
use crate::budget::checked_max_inflight_bytes;
use crate::secret::SecretRef;

/// The default gRPC address: loopback, so only the local Envoy can call.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:50051";

/// The unix socket's default permissions: the invoker's user and group
/// (Envoy runs in the group), nobody else.
pub const DEFAULT_SOCKET_MODE: u32 = 0o660;

/// A configuration error: which file, which field, what is allowed.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {field}: {message}")]
pub struct ConfigError {
    pub file: String,
    pub field: String,
    pub message: String,
}

// ---- the file as written ------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    listen: Option<String>,
    #[serde(default)]
    allow_non_loopback: bool,
    #[serde(default)]
    admin_listen: Option<String>,
    /// The developer portal's files (`lambdagate render` writes them): the
    /// admin server serves them at `/portal/`.
    #[serde(default)]
    portal_dir: Option<PathBuf>,
    /// Permissions of the unix socket (`listen: unix:...`), octal.
    #[serde(default)]
    socket_mode: Option<serde_yaml::Value>,
    /// Request bytes held by calls at once (budget.rs); default 256 MiB.
    #[serde(default)]
    max_inflight_bytes: Option<u64>,
    #[serde(default)]
    default_endpoint: Option<String>,
    #[serde(default)]
    endpoints: BTreeMap<String, FileEndpoint>,
    /// API keys and usage plans: then the invoker is also Envoy's rate-limit service.
    #[serde(default)]
    usage: Option<lambdagate_usage::UsageConfig>,
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AccessMethodName {
    Role,
    Stored,
    Local,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileEndpoint {
    access_method: AccessMethodName,
    region: String,
    #[serde(default)]
    credentials: Option<FileStoredCredentials>,
    #[serde(default)]
    assume_role: Option<FileAssumeRole>,
    #[serde(default)]
    endpoint_url: Option<String>,
    /// Permits an `http://` `endpoint_url` on a host other than loopback
    /// (the session token and signed payloads then cross the network in
    /// clear text).
    #[serde(default)]
    allow_insecure_http: bool,
    #[serde(default)]
    allow: Vec<String>,
    /// `local` only: the function programs the invoker runs itself.
    #[serde(default)]
    functions: Vec<LocalFunctionSpec>,
}

/// A function run on this machine (access method `local`): any program
/// built on a Lambda runtime client, served the Lambda Runtime API by the
/// invoker.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct LocalFunctionSpec {
    /// Function name; its ARN is `arn:aws:lambda:<region>:000000000000:function:<name>`
    /// unless `arn` says otherwise.
    pub name: String,
    #[serde(default)]
    pub arn: Option<String>,
    /// Program and arguments, e.g. [target/debug/hello-rust] or
    /// [.venv/bin/python, -m, awslambdaric, app.handler].
    pub command: Vec<String>,
    /// `_HANDLER` for runtimes that read it.
    #[serde(default)]
    pub handler: Option<String>,
    /// Working directory (`LAMBDA_TASK_ROOT`); default: the invoker's.
    #[serde(default)]
    pub working_dir: Option<PathBuf>,
    #[serde(default)]
    pub environment: BTreeMap<String, String>,
    #[serde(default = "default_memory_mb")]
    pub memory_mb: u32,
    /// The function's own timeout; the route timeout applies when shorter.
    #[serde(default = "default_function_timeout")]
    pub timeout_seconds: u32,
    /// Processes run at most at once; more concurrent calls are throttled.
    #[serde(default = "default_max_concurrency")]
    pub max_concurrency: u32,
}

fn default_memory_mb() -> u32 {
    128
}
fn default_function_timeout() -> u32 {
    30
}
fn default_max_concurrency() -> u32 {
    4
}

/// Placeholder account of local functions' ARNs.
pub const LOCAL_ACCOUNT: &str = "000000000000";

impl LocalFunctionSpec {
    pub fn arn(&self, region: &str) -> String {
        self.arn.clone().unwrap_or_else(|| {
            format!(
                "arn:aws:lambda:{region}:{LOCAL_ACCOUNT}:function:{}",
                self.name
            )
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileStoredCredentials {
    access_key_id: Option<SecretRef>,
    secret_access_key: Option<SecretRef>,
    #[serde(default)]
    session_token: Option<SecretRef>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileAssumeRole {
    role_arn: String,
    #[serde(default)]
    session_name: Option<String>,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    external_id: Option<String>,
    #[serde(default)]
    duration_seconds: Option<u32>,
}

// ---- the validated model ------------------------------------------------

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListenAddr {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Tcp(a) => write!(f, "{a}"),
            ListenAddr::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    pub listen: ListenAddr,
    pub allow_non_loopback: bool,
    pub admin_listen: Option<SocketAddr>,
    /// The developer portal's folder, served by the admin server at
    /// `/portal/` (files are read per request, so a re-render shows at
    /// once). Relative to the config file's folder when read by
    /// [`Config::load`].
    pub portal_dir: Option<PathBuf>,
    /// Permissions given to the unix socket, whatever the umask.
    pub socket_mode: u32,
    /// The in-flight byte budget (budget.rs), read at start-up only.
    pub max_inflight_bytes: u64,
    pub default_endpoint: Option<String>,
    pub endpoints: BTreeMap<String, Endpoint>,
    /// Read at start-up only; a relative store folder is the config file's (`load`).
    pub usage: Option<lambdagate_usage::UsageConfig>,
}

#[derive(Clone, Debug)]
pub struct Endpoint {
    pub name: String,
    pub access: Access,
    pub region: String,
    pub assume_role: Option<AssumeRole>,
    pub endpoint_url: Option<String>,
    pub allow: AllowList,
}

#[derive(Clone, Debug)]
pub enum Access {
    /// AWS's default provider chain: environment, profile, web identity,
    /// ECS container credentials, EC2 instance metadata (IMDSv2).
    Role,
    /// An access key given by reference.
    Stored {
        access_key_id: SecretRef,
        secret_access_key: SecretRef,
        session_token: Option<SecretRef>,
    },
    /// Function programs run by the invoker itself; no AWS account.
    Local { functions: Vec<LocalFunctionSpec> },
}

impl Access {
    pub fn name(&self) -> &'static str {
        match self {
            Access::Role => "role",
            Access::Stored { .. } => "stored",
            Access::Local { .. } => "local",
        }
    }
}

#[derive(Clone, Debug)]
pub struct AssumeRole {
    pub role_arn: String,
    pub session_name: String,
    pub region: String,
    pub external_id: Option<String>,
    pub duration_seconds: Option<u32>,
}

pub const DEFAULT_SESSION_NAME: &str = "lambdagate";

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.display().to_string(),
            field: "(file)".into(),
            message: format!("cannot read the config file: {e}"),
        })?;
        let mut config = Config::parse(&text, &path.display().to_string())?;
        if let Some(dir) = &config.portal_dir {
            let dir = match path.parent() {
                Some(base) if dir.is_relative() => base.join(dir),
                _ => dir.clone(),
            };
            if !dir.is_dir() {
                return Err(ConfigError {
                    file: path.display().to_string(),
                    field: "portal_dir".into(),
                    message: format!(
                        "{} is not a directory: give the folder `lambdagate render` wrote the portal into (its `portal/`), or remove `portal_dir`",
                        dir.display()
                    ),
                });
            }
            config.portal_dir = Some(dir);
        }
        if let (Some(usage), Some(base)) = (&mut config.usage, path.parent()) {
            usage.store_relative_to(base);
        }
        Ok(config)
    }

    /// Parses and validates config text; `file` names it in errors.
    pub fn parse(text: &str, file: &str) -> Result<Config, ConfigError> {
        let deserializer = serde_yaml::Deserializer::from_str(text);
        let raw: FileConfig = serde_path_to_error::deserialize(deserializer).map_err(|e| {
            let path = e.path().to_string();
            let message = e.into_inner().to_string();
            // Secret references parse without quoting values (secret.rs);
            // anything else written where credentials belong (a key pasted
            // in as `credentials: AKIA...`) is not quoted back either.
            let (path, message) = if path.split('.').any(|part| part == "credentials") {
                (
                    credentials_path(&path),
                    without_quoted_values(&without_unknown_name(&message)),
                )
            } else {
                (path, message)
            };
            ConfigError {
                file: file.to_owned(),
                // `` is an unknown top-level key that is itself empty.
                field: if path == "." || path.is_empty() {
                    "(top level)".into()
                } else {
                    path
                },
                message,
            }
        })?;
        raw.validate(file)
    }

    pub fn endpoint(&self, name: &str) -> Option<&Endpoint> {
        let name = if name.is_empty() {
            self.default_endpoint.as_deref()?
        } else {
            name
        };
        self.endpoints.get(name)
    }

    pub fn endpoint_names(&self) -> Vec<&str> {
        self.endpoints.keys().map(String::as_str).collect()
    }
}

impl FileConfig {
    fn validate(self, file: &str) -> Result<Config, ConfigError> {
        let err = |field: &str, message: String| ConfigError {
            file: file.to_owned(),
            field: field.to_owned(),
            message,
        };
        let listen = parse_listen(
            self.listen.as_deref().unwrap_or(DEFAULT_LISTEN),
            self.allow_non_loopback,
        )
        .map_err(|m| err("listen", m))?;
        let admin_listen = match &self.admin_listen {
            None => None,
            Some(text) => match parse_listen(text, self.allow_non_loopback) {
                Ok(ListenAddr::Tcp(addr)) => Some(addr),
                Ok(ListenAddr::Unix(_)) => {
                    return Err(err(
                        "admin_listen",
                        "must be an IP address and port such as 127.0.0.1:9902".into(),
                    ));
                }
                Err(m) => return Err(err("admin_listen", m)),
            },
        };
        if let Some(dir) = &self.portal_dir {
            if admin_listen.is_none() {
                return Err(err(
                    "portal_dir",
                    "the portal is served by the admin server: set `admin_listen` too (e.g. 127.0.0.1:9902)".into(),
                ));
            }
            if dir.as_os_str().is_empty() {
                return Err(err(
                    "portal_dir",
                    "empty: give the folder `lambdagate render` wrote the portal into".into(),
                ));
            }
        }
        let socket_mode = match &self.socket_mode {
            None => DEFAULT_SOCKET_MODE,
            Some(value) => parse_socket_mode(value).map_err(|m| err("socket_mode", m))?,
        };
        let max_inflight_bytes =
            checked_max_inflight_bytes(self.max_inflight_bytes, MAX_GRPC_MESSAGE_BYTES as u64)
                .map_err(|m| err("max_inflight_bytes", m))?;
        if let Some(Err(e)) = self.usage.as_ref().map(|u| u.compile().map(|_| ())) {
            return Err(err(&format!("usage.{}", e.field), e.message));
        }
        if self.endpoints.is_empty() {
            return Err(err(
                "endpoints",
                "at least one endpoint is required: a name mapping to an access method (`role` or `stored`), a region and an `allow` list".into(),
            ));
        }
        let mut endpoints = BTreeMap::new();
        for (name, raw) in self.endpoints {
            let endpoint = raw
                .validate(&name)
                .map_err(|(field, message)| err(&format!("endpoints.{name}.{field}"), message))?;
            endpoints.insert(name, endpoint);
        }
        if let Some(default) = &self.default_endpoint
            && !endpoints.contains_key(default)
        {
            return Err(err(
                "default_endpoint",
                format!(
                    "endpoint `{default}` is not defined under `endpoints` (defined: {})",
                    endpoints.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        Ok(Config {
            listen,
            allow_non_loopback: self.allow_non_loopback,
            admin_listen,
            portal_dir: self.portal_dir,
            socket_mode,
            max_inflight_bytes,
            default_endpoint: self.default_endpoint,
            endpoints,
            usage: self.usage,
        })
    }
}

impl FileEndpoint {
    /// Errors are `(field relative to the endpoint, message)`.
    fn validate(self, name: &str) -> Result<Endpoint, (String, String)> {
        let e = |field: &str, message: String| (field.to_owned(), message);
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(e(
                "(name)",
                "endpoint names are letters, digits, `-` and `_`".into(),
            ));
        }
        if !is_region(&self.region) {
            return Err(e(
                "region",
                format!(
                    "`{}` is not an AWS region name such as us-east-1 or eu-west-2",
                    self.region
                ),
            ));
        }
        if self.access_method != AccessMethodName::Local && !self.functions.is_empty() {
            return Err(e(
                "functions",
                "only for access_method `local` (functions run on this machine); an AWS endpoint lists ARNs under `allow`".into(),
            ));
        }
        let access = match (self.access_method, self.credentials) {
            (AccessMethodName::Local, Some(_)) => {
                return Err(e(
                    "credentials",
                    "not used with access_method `local`: local functions need no AWS credentials"
                        .into(),
                ));
            }
            (AccessMethodName::Local, None) => {
                validate_local_functions(&self.functions, &self.region)
                    .map_err(|(f, m)| (format!("functions{f}"), m))?;
                Access::Local {
                    functions: self.functions.clone(),
                }
            }
            (AccessMethodName::Role, None) => Access::Role,
            (AccessMethodName::Role, Some(_)) => {
                return Err(e(
                    "credentials",
                    "not allowed with access_method `role`: role credentials come from the environment, a profile, web identity, ECS or the EC2 instance role; remove `credentials` or use access_method `stored`".into(),
                ));
            }
            (AccessMethodName::Stored, None) => {
                return Err(e(
                    "credentials",
                    "required with access_method `stored`: give `access_key_id` and `secret_access_key`, each as {env: VARIABLE} or {file: PATH}".into(),
                ));
            }
            (AccessMethodName::Stored, Some(c)) => {
                let access_key_id = c.access_key_id.ok_or_else(|| {
                    e(
                        "credentials.access_key_id",
                        "required with access_method `stored`: {env: VARIABLE} or {file: PATH}"
                            .into(),
                    )
                })?;
                access_key_id
                    .validate()
                    .map_err(|m| e("credentials.access_key_id", m))?;
                let secret_access_key = c.secret_access_key.ok_or_else(|| {
                    e(
                        "credentials.secret_access_key",
                        "required with access_method `stored`: {env: VARIABLE} or {file: PATH}"
                            .into(),
                    )
                })?;
                secret_access_key
                    .validate()
                    .map_err(|m| e("credentials.secret_access_key", m))?;
                if let Some(token) = &c.session_token {
                    token
                        .validate()
                        .map_err(|m| e("credentials.session_token", m))?;
                }
                Access::Stored {
                    access_key_id,
                    secret_access_key,
                    session_token: c.session_token,
                }
            }
        };
        let assume_role = match self.assume_role {
            None => None,
            Some(raw) => Some(
                raw.validate(&self.region)
                    .map_err(|(f, m)| (format!("assume_role.{f}"), m))?,
            ),
        };
        if let Some(url) = &self.endpoint_url {
            validate_url(url).map_err(|m| e("endpoint_url", m))?;
            if !self.allow_insecure_http && is_clear_text_off_host(url) {
                return Err(e(
                    "endpoint_url",
                    format!(
                        "`{url}` is plain http:// to a host that is not loopback: credentials (the session token) and payloads would cross the network unencrypted; use https://, or set `allow_insecure_http: true` on this endpoint if the network is trusted"
                    ),
                ));
            }
        }
        let mut allow_entries = self.allow.clone();
        if let Access::Local { functions } = &access {
            if assume_role.is_some() || self.endpoint_url.is_some() {
                return Err(e(
                    "access_method",
                    "`local` endpoints take no `assume_role` or `endpoint_url`".into(),
                ));
            }
            // A local endpoint may invoke exactly its own functions.
            if allow_entries.is_empty() {
                allow_entries = functions.iter().map(|f| f.arn(&self.region)).collect();
            }
        }
        if allow_entries.is_empty() {
            return Err(e(
                "allow",
                "list the function ARNs this endpoint may invoke (globs with `*` allowed, e.g. arn:aws:lambda:us-east-1:123456789012:function:orders-*)".into(),
            ));
        }
        let allow =
            AllowList::new(&allow_entries).map_err(|(i, m)| e(&format!("allow[{i}]"), m))?;
        Ok(Endpoint {
            name: name.to_owned(),
            access,
            region: self.region,
            assume_role,
            endpoint_url: self.endpoint_url,
            allow,
        })
    }
}

impl FileAssumeRole {
    fn validate(self, endpoint_region: &str) -> Result<AssumeRole, (String, String)> {
        let e = |field: &str, message: String| (field.to_owned(), message);
        validate_role_arn(&self.role_arn).map_err(|m| e("role_arn", m))?;
        let session_name = self
            .session_name
            .unwrap_or_else(|| DEFAULT_SESSION_NAME.to_owned());
        if !(2..=64).contains(&session_name.len())
            || !session_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
        {
            return Err(e(
                "session_name",
                "2-64 characters: letters, digits and _+=,.@-".into(),
            ));
        }
        let region = self.region.unwrap_or_else(|| endpoint_region.to_owned());
        if !is_region(&region) {
            return Err(e(
                "region",
                format!(
                    "`{region}` is not an AWS region name (the STS endpoint's region, e.g. us-east-1)"
                ),
            ));
        }
        if let Some(id) = &self.external_id
            && (!(2..=1224).contains(&id.len())
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_+=,.@:/-".contains(c)))
        {
            return Err(e(
                "external_id",
                "2-1224 characters: letters, digits and _+=,.@:/-".into(),
            ));
        }
        if let Some(d) = self.duration_seconds
            && !(900..=43200).contains(&d)
        {
            return Err(e(
                "duration_seconds",
                format!(
                    "{d} is out of range: STS sessions last 900 to 43200 seconds (and at most the role's maximum session duration)"
                ),
            ));
        }
        Ok(AssumeRole {
            role_arn: self.role_arn,
            session_name,
            region,
            external_id: self.external_id,
            duration_seconds: self.duration_seconds,
        })
    }
}

/// Errors are `(suffix like "[0].command", message)`.
fn validate_local_functions(
    functions: &[LocalFunctionSpec],
    region: &str,
) -> Result<(), (String, String)> {
    if functions.is_empty() {
        return Err((
            String::new(),
            "list the functions to run: name and command (e.g. [target/debug/hello-rust])".into(),
        ));
    }
    let mut names = std::collections::BTreeSet::new();
    for (i, f) in functions.iter().enumerate() {
        let at = |field: &str| format!("[{i}].{field}");
        if f.name.is_empty()
            || f.name.len() > 64
            || !f
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err((at("name"), "1-64 letters, digits, `-` or `_`".into()));
        }
        if !names.insert(f.name.clone()) {
            return Err((at("name"), format!("`{}` is listed twice", f.name)));
        }
        if let Err(m) = LambdaArn::parse(&f.arn(region)) {
            return Err((at("arn"), m.to_string()));
        }
        if f.command.first().is_none_or(|c| c.is_empty()) {
            return Err((
                at("command"),
                "the program to run and its arguments, e.g. [target/debug/hello-rust]".into(),
            ));
        }
        if !(128..=10240).contains(&f.memory_mb) {
            return Err((
                at("memory_mb"),
                format!("{} is out of range: 128 to 10240 (MB)", f.memory_mb),
            ));
        }
        if !(1..=900).contains(&f.timeout_seconds) {
            return Err((
                at("timeout_seconds"),
                format!("{} is out of range: 1 to 900 seconds", f.timeout_seconds),
            ));
        }
        if !(1..=64).contains(&f.max_concurrency) {
            return Err((
                at("max_concurrency"),
                format!("{} is out of range: 1 to 64 processes", f.max_concurrency),
            ));
        }
    }
    Ok(())
}

/// `arn:<partition>:iam::<12-digit account>:role/<optional path/>name`.
pub fn validate_role_arn(arn: &str) -> Result<(), String> {
    let shape = "expected arn:aws:iam::<12-digit account>:role/<name>";
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let ok = match parts.as_slice() {
        ["arn", partition, "iam", "", account, resource] => {
            partition.starts_with("aws")
                && account.len() == 12
                && account.bytes().all(|b| b.is_ascii_digit())
                && resource
                    .strip_prefix("role/")
                    .and_then(|name| name.rsplit('/').next())
                    .is_some_and(|name| {
                        !name.is_empty()
                            && name.len() <= 64
                            && name
                                .chars()
                                .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
                    })
        }
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("`{arn}` is not an IAM role ARN: {shape}"))
    }
}

fn validate_url(url: &str) -> Result<(), String> {
    if url.contains('@') {
        // Not quoted: user information may hold a password (with a raw
        // `/` in it, so the authority cannot be told apart reliably).
        return Err(
            "the URL holds user information (`user:password@`; not repeated here): credentials in the URL are not supported, the endpoint's access method supplies them"
                .to_owned(),
        );
    }
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    let shape = format!(
        "`{url}` is not an http:// or https:// URL (e.g. http://127.0.0.1:5000 for a local AWS emulator, or https://proxy.example.com/lambda with a path prefix)"
    );
    let Some(rest) = rest else {
        return Err(shape);
    };
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() {
        return Err(shape);
    }
    let prefix = rest[authority.len()..].trim_end_matches('/');
    if prefix
        .split('/')
        .skip(1)
        .any(|segment| segment.is_empty() || segment == "." || segment == "..")
    {
        return Err(format!(
            "`{url}`: the path prefix has an empty, `.` or `..` segment; it is signed as written, so write it plainly (e.g. /lambda-proxy)"
        ));
    }
    if rest
        .chars()
        .any(|c| c == '?' || c == '#' || c.is_whitespace() || c.is_control())
    {
        return Err(format!(
            "`{url}`: an endpoint URL is a scheme, host, optional port and optional path prefix, without query, fragment or spaces"
        ));
    }
    // What an HTTP request line can carry as written (it is signed as
    // written): anything else is percent-encoded by the operator.
    if let Some(bad) = rest
        .chars()
        .find(|c| !c.is_ascii_graphic() || "\"<>\\^`{|}".contains(*c))
    {
        return Err(format!(
            "`{url}`: `{bad}` cannot stand in a URL as written; percent-encode it (e.g. %20)"
        ));
    }
    Ok(())
}

/// The path of an error under `credentials`, cut after the last segment
/// that is a field name: a secret written as a YAML key (`credentials:
/// {AKIA...: wJalr...}`) would otherwise be part of the path.
fn credentials_path(path: &str) -> String {
    const FIELDS: &[&str] = &["access_key_id", "secret_access_key", "session_token"];
    let mut kept: Vec<&str> = Vec::new();
    let mut parts = path.split('.');
    for part in parts.by_ref() {
        kept.push(part);
        if part == "credentials" {
            break;
        }
    }
    if let Some(field) = parts.next().filter(|p| FIELDS.contains(p)) {
        kept.push(field);
        if let Some(reference) = parts.next().filter(|p| *p == "env" || *p == "file") {
            kept.push(reference);
        }
    }
    kept.join(".")
}

/// ``unknown field `AKIA...`, expected one of ...`` → the name is not
/// repeated (it may be a secret written as a key); the allowed names stay.
fn without_unknown_name(message: &str) -> String {
    let mut out = message.to_owned();
    for lead in ["unknown field `", "unknown variant `"] {
        if let Some(start) = out.find(lead).map(|i| i + lead.len())
            && let Some(len) = out[start..].find('`')
        {
            out.replace_range(start - 1..start + len + 1, "(not repeated here)");
        }
    }
    out
}

/// `invalid type: string "AKIA..."` → `invalid type: string (not repeated
/// here)`: serde quotes the offending value in double quotes.
fn without_quoted_values(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(start) = rest.find('"') {
        out.push_str(&rest[..start]);
        out.push_str("(not repeated here)");
        rest = match rest[start + 1..].rfind('"') {
            Some(end) => &rest[start + 1 + end + 1..],
            None => "",
        };
    }
    out.push_str(rest);
    out
}

/// The host of an http(s) URL: `[::1]` without brackets, no port.
fn url_host(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or_default();
    match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.split(':').next().unwrap_or_default(),
    }
}

/// Plain `http://` to anything but loopback (`127.0.0.0/8`, `::1`,
/// `localhost`).
fn is_clear_text_off_host(url: &str) -> bool {
    if !url.starts_with("http://") {
        return false;
    }
    let host = url_host(url);
    if host.eq_ignore_ascii_case("localhost") {
        return false;
    }
    match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => {
            !(v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()))
        }
        Ok(ip) => !ip.is_loopback(),
        Err(_) => true,
    }
}

/// `socket_mode: "0660"`: an octal mode that lets the owner read and
/// write (the invoker replaces its own stale socket) and never lets other
/// users write (connect), since the invoker holds AWS credentials.
/// Only a string is accepted (`0660` unquoted is one for serde_yaml):
/// YAML reads `660` as decimal and `0o660` as a number, and guessing which
/// the operator meant is how sockets end up world-writable.
fn parse_socket_mode(value: &serde_yaml::Value) -> Result<u32, String> {
    let allowed = "a quoted octal mode such as \"0660\" (owner and group read and write) or \"0600\" (owner only); other users may not have write access";
    let Some(text) = value.as_str() else {
        return Err(format!(
            "write the mode as a quoted string, e.g. socket_mode: \"0660\": {allowed}"
        ));
    };
    let digits = text.strip_prefix("0o").unwrap_or(text);
    let mode = match u32::from_str_radix(digits, 8) {
        Ok(m) if (3..=4).contains(&digits.len()) && m <= 0o777 => m,
        _ => return Err(format!("`{text}` is not {allowed}")),
    };
    if mode & 0o600 != 0o600 {
        return Err(format!(
            "`{text}` does not let the owner read and write the socket: {allowed}"
        ));
    }
    if mode & 0o002 != 0 {
        return Err(format!(
            "`{text}` lets every local user call the invoker, which holds AWS credentials: {allowed}"
        ));
    }
    Ok(mode)
}

/// `127.0.0.1:50051`, `[::1]:50051` or `unix:/path/to.sock`. Any other IP
/// than loopback needs `allow_non_loopback: true` (or `--allow-non-loopback`):
/// the invoker holds AWS credentials and should only hear its own Envoy.
pub fn parse_listen(text: &str, allow_non_loopback: bool) -> Result<ListenAddr, String> {
    if let Some(path) = text.strip_prefix("unix:") {
        if path.is_empty() {
            return Err(
                "`unix:` needs a socket path, e.g. unix:/run/lambdagate/invoker.sock".into(),
            );
        }
        return Ok(ListenAddr::Unix(PathBuf::from(path)));
    }
    let addr: SocketAddr = text.parse().map_err(|_| {
        format!(
            "`{text}` is not an IP address and port (e.g. 127.0.0.1:50051) or unix:/path/to.sock"
        )
    })?;
    if !addr.ip().is_loopback() && !allow_non_loopback {
        return Err(format!(
            "`{text}` is not a loopback address; the invoker holds AWS credentials and listens on loopback or a unix socket only, unless `allow_non_loopback: true` (or --allow-non-loopback) says otherwise"
        ));
    }
    Ok(ListenAddr::Tcp(addr))
}

#[cfg(test)]
#[path = "config_tests.rs"]
mod tests;
