//! `lambdagate check` and `lambdagate functions`: what an operator runs
//! before deploying (the seed's "You will get an error message if you have
//! not set the Access Method properly", and its "select or type ARN").

use std::io::Write;

use aws_sdk_lambda::types::FunctionConfiguration;
use lambdagate_core::LambdaArn;

use lambdagate_sidecar::aws::EndpointAws;
use lambdagate_sidecar::config::{Access, Config, ConfigError, Endpoint, LocalFunctionSpec};
use lambdagate_sidecar::error::{CallContext, classify};
use lambdagate_sidecar::metrics::Metrics;

/// Offline checks (and live ones with `live`). Returns whether everything
/// passed; warnings do not fail the check.
pub async fn check(
    config: &Config,
    file: &str,
    live: bool,
    out: &mut impl Write,
) -> Result<bool, ConfigError> {
    let metrics = Metrics::new();
    let _ = writeln!(
        out,
        "{file}: config OK ({} endpoint(s))",
        config.endpoints.len()
    );
    let mut ok = true;
    for endpoint in config.endpoints.values() {
        if let Access::Local { functions } = &endpoint.access {
            let _ = writeln!(out, "  endpoint {}: {}", endpoint.name, describe(endpoint));
            for (i, f) in functions.iter().enumerate() {
                if let Err(m) = check_program(f) {
                    return Err(ConfigError {
                        file: file.to_owned(),
                        field: format!("endpoints.{}.functions[{i}].command", endpoint.name),
                        message: m,
                    });
                }
                let _ = writeln!(
                    out,
                    "  endpoint {}: function {} runs `{}`",
                    endpoint.name,
                    f.arn(&endpoint.region),
                    f.command.join(" ")
                );
            }
            continue;
        }
        // Resolving secrets is part of the offline check: a missing env var
        // or unreadable file is the most common deploy mistake.
        let aws = EndpointAws::new(endpoint, &metrics)
            .await
            .map_err(|(field, message)| ConfigError {
                file: file.to_owned(),
                field: format!("endpoints.{}.{field}", endpoint.name),
                message,
            })?;
        let _ = writeln!(out, "  endpoint {}: {}", endpoint.name, describe(endpoint));
        if live {
            ok &= check_live(endpoint, &aws, out).await;
        }
    }
    if !live {
        let _ = writeln!(
            out,
            "(offline check; add --live to call AWS STS and Lambda GetFunction)"
        );
    }
    Ok(ok)
}

fn describe(endpoint: &Endpoint) -> String {
    let mut text = format!(
        "access method {}, region {}",
        endpoint.access.name(),
        endpoint.region
    );
    if let Some(role) = &endpoint.assume_role {
        text.push_str(&format!(
            ", assumes {} (session {}, STS region {})",
            role.role_arn, role.session_name, role.region
        ));
    }
    if let Some(url) = &endpoint.endpoint_url {
        text.push_str(&format!(", AWS endpoint {url}"));
    }
    text
}

/// A local function's program must exist (relative to its working_dir,
/// or on PATH) for `check` to pass.
fn check_program(f: &LocalFunctionSpec) -> Result<(), String> {
    let Some(program) = f.command.first() else {
        return Err("empty command".into());
    };
    let path = std::path::Path::new(program);
    let found = if program.contains('/') {
        path.is_file()
    } else {
        std::env::var_os("PATH")
            .map(|paths| std::env::split_paths(&paths).any(|d| d.join(program).is_file()))
            .unwrap_or(false)
    };
    if found {
        Ok(())
    } else {
        Err(format!(
            "program `{program}` of local function `{}` was not found (relative paths are resolved from the invoker's working directory); build it or fix the path",
            f.name
        ))
    }
}

/// True when the identity ARN is an account's root user.
pub fn is_root_identity(arn: &str) -> bool {
    arn.starts_with("arn:") && arn.ends_with(":root")
}

async fn check_live(endpoint: &Endpoint, aws: &EndpointAws, out: &mut impl Write) -> bool {
    let name = &endpoint.name;
    let mut ok = true;
    match aws.base_sts().get_caller_identity().send().await {
        Ok(who) => {
            let arn = who.arn().unwrap_or("?");
            let _ = writeln!(
                out,
                "  endpoint {name}: credentials OK: {arn} (account {})",
                who.account().unwrap_or("?")
            );
            if is_root_identity(arn) {
                let _ = writeln!(
                    out,
                    "  WARNING: endpoint {name} uses the AWS account ROOT user's credentials ({arn}). AWS advises against this: create an IAM user or role with only the Lambda permissions the gateway needs (lambda:InvokeFunction; lambda:GetFunction and lambda:ListFunctions for check/functions) and give its keys instead."
                );
                tracing::warn!(endpoint = %name, "endpoint uses the AWS account root user's credentials");
            }
        }
        Err(e) => {
            let f = classify(&e, &ctx("STS GetCallerIdentity", "", name));
            let _ = writeln!(out, "  endpoint {name}: credentials FAILED: {f}");
            return false;
        }
    }
    if let Some(role) = &endpoint.assume_role {
        match aws.sts().get_caller_identity().send().await {
            Ok(who) => {
                let _ = writeln!(
                    out,
                    "  endpoint {name}: assume role OK: {} (account {})",
                    who.arn().unwrap_or("?"),
                    who.account().unwrap_or("?")
                );
            }
            Err(e) => {
                let f = classify(&e, &ctx("STS AssumeRole", &role.role_arn, name));
                let _ = writeln!(out, "  endpoint {name}: assume role FAILED: {f}");
                return false;
            }
        }
    }
    for entry in endpoint.allow.exact_entries() {
        let Ok(arn) = LambdaArn::parse(entry) else {
            continue;
        };
        let client = aws.lambda_control(arn.region());
        let result = client
            .get_function()
            .function_name(arn.unqualified())
            .set_qualifier(arn.qualifier().map(str::to_owned))
            .send()
            .await;
        match result {
            Ok(found) => {
                let (runtime, modified) = found
                    .configuration()
                    .map(runtime_and_modified)
                    .unwrap_or_default();
                let _ = writeln!(
                    out,
                    "  endpoint {name}: function {arn}: OK ({runtime}, last modified {modified})"
                );
            }
            Err(e) => {
                let target = arn.to_string();
                let f = classify(&e, &ctx("Lambda GetFunction", &target, name));
                let _ = writeln!(out, "  endpoint {name}: function {arn}: FAILED: {f}");
                ok = false;
            }
        }
    }
    ok
}

fn ctx<'a>(operation: &'a str, target: &'a str, endpoint: &'a str) -> CallContext<'a> {
    CallContext {
        operation,
        target,
        endpoint,
        timeout: None,
    }
}

fn runtime_and_modified(f: &FunctionConfiguration) -> (String, String) {
    let runtime = f
        .runtime()
        .map(|r| r.as_str().to_owned())
        .or_else(|| f.package_type().map(|p| p.as_str().to_owned()))
        .unwrap_or_else(|| "-".to_owned());
    (runtime, f.last_modified().unwrap_or("-").to_owned())
}

/// One row of `lambdagate functions`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionRow {
    pub name: String,
    pub arn: String,
    pub runtime: String,
    pub last_modified: String,
    pub allowed: bool,
}

/// Lists the functions the endpoint's credentials can see in `region`.
pub async fn list_functions(endpoint: &Endpoint, region: &str) -> Result<Vec<FunctionRow>, String> {
    if let Access::Local { functions } = &endpoint.access {
        let mut rows: Vec<FunctionRow> = functions
            .iter()
            .map(|f| FunctionRow {
                name: f.name.clone(),
                arn: f.arn(&endpoint.region),
                runtime: "local".to_owned(),
                last_modified: "-".to_owned(),
                allowed: LambdaArn::parse(&f.arn(&endpoint.region))
                    .is_ok_and(|a| endpoint.allow.allows(&a)),
            })
            .collect();
        rows.sort_by(|a, b| a.name.cmp(&b.name));
        return Ok(rows);
    }
    let metrics = Metrics::new();
    let aws = EndpointAws::new(endpoint, &metrics)
        .await
        .map_err(|(field, message)| format!("endpoints.{}.{field}: {message}", endpoint.name))?;
    let client = aws.lambda_control(region);
    let mut rows = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = client
            .list_functions()
            .set_marker(marker.take())
            .send()
            .await
            .map_err(|e| {
                classify(&e, &ctx("Lambda ListFunctions", "", &endpoint.name)).to_string()
            })?;
        for f in page.functions() {
            let arn = f.function_arn().unwrap_or_default().to_owned();
            let allowed = LambdaArn::parse(&arn).is_ok_and(|a| endpoint.allow.allows(&a));
            let (runtime, last_modified) = runtime_and_modified(f);
            rows.push(FunctionRow {
                name: f.function_name().unwrap_or_default().to_owned(),
                arn,
                runtime,
                last_modified,
                allowed,
            });
        }
        match page.next_marker() {
            Some(m) if !m.is_empty() => marker = Some(m.to_owned()),
            _ => break,
        }
    }
    rows.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(rows)
}

/// Renders rows as an aligned table.
pub fn format_functions(rows: &[FunctionRow]) -> String {
    let header = ["NAME", "RUNTIME", "LAST MODIFIED", "ALLOWED", "ARN"];
    let cells: Vec<[String; 5]> = rows
        .iter()
        .map(|r| {
            [
                r.name.clone(),
                r.runtime.clone(),
                r.last_modified.clone(),
                if r.allowed { "yes" } else { "no" }.to_owned(),
                r.arn.clone(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row.iter()) {
            *w = (*w).max(c.len());
        }
    }
    let mut text = String::new();
    let mut line = |cols: [&str; 5]| {
        let mut l = String::new();
        for (i, (c, w)) in cols.iter().zip(widths.iter()).enumerate() {
            if i + 1 == cols.len() {
                l.push_str(c);
            } else {
                l.push_str(&format!("{c:<w$}  "));
            }
        }
        text.push_str(l.trim_end());
        text.push('\n');
    };
    line(header);
    for row in &cells {
        line([&row[0], &row[1], &row[2], &row[3], &row[4]]);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_identities() {
        assert!(is_root_identity("arn:aws:iam::123456789012:root"));
        assert!(!is_root_identity("arn:aws:iam::123456789012:user/gateway"));
        assert!(!is_root_identity(
            "arn:aws:sts::123456789012:assumed-role/r/root"
        ));
    }

    #[test]
    fn table_is_aligned() {
        let rows = vec![FunctionRow {
            name: "get-user".into(),
            arn: "arn:aws:lambda:us-east-1:123456789012:function:get-user".into(),
            runtime: "python3.12".into(),
            last_modified: "2026-01-01".into(),
            allowed: true,
        }];
        let text = format_functions(&rows);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].find("ARN"), lines[1].find("arn:"));
    }
}
