//! `lambdagate keys create|list|revoke`: API keys in the usage store the
//! invoker config names (`usage.store`). A new key is printed once, on
//! standard output; the store keeps its hash. Running invokers see a
//! change within `usage.keys_refresh_ms`.

use std::path::Path;
use std::process::ExitCode;

use lambdagate_sidecar::config::Config;
use lambdagate_usage::KeyAdmin;

/// What `keys` was asked to do.
pub enum KeysAction {
    Create { plans: Vec<String>, name: String },
    List,
    Revoke { id: String },
}

fn fail(message: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::FAILURE
}

pub async fn run(config_path: &Path, config: &Config, action: KeysAction) -> ExitCode {
    let Some(usage) = &config.usage else {
        return fail(format!(
            "{}: no `usage` section: keys need usage plans (render writes the section from `gateway.usage`)",
            config_path.display()
        ));
    };
    let rules = match usage.compile() {
        Ok(rules) => rules,
        Err(e) => return fail(format!("{}: {e}", config_path.display())),
    };
    let admin = match KeyAdmin::open(&rules.store) {
        Ok(admin) => admin,
        Err(e) => return fail(e),
    };
    match action {
        KeysAction::Create { plans, name } => {
            let known: Vec<&str> = rules.plans.iter().map(|p| p.name.as_str()).collect();
            if let Some(unknown) = plans.iter().find(|p| !known.contains(&p.as_str())) {
                return fail(format!(
                    "--plan: `{unknown}` is not a usage plan in {} (plans: {})",
                    config_path.display(),
                    if known.is_empty() {
                        "none".to_owned()
                    } else {
                        known.join(", ")
                    }
                ));
            }
            match admin.create(&name, plans).await {
                Ok(new) => {
                    eprintln!(
                        "key {} created for {}; it is shown only now, keep it:",
                        new.record.id,
                        new.record.plans.join(", ")
                    );
                    println!("{}", new.key);
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        KeysAction::List => match admin.list().await {
            Ok(keys) => {
                println!(
                    "{:<10}  {:<8}  {:<20}  {:<24}  name",
                    "id", "state", "created", "plans"
                );
                for key in keys {
                    println!(
                        "{:<10}  {:<8}  {:<20}  {:<24}  {}",
                        key.id,
                        if key.revoked { "revoked" } else { "active" },
                        utc_minute(key.created),
                        key.plans.join(","),
                        key.name
                    );
                }
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        },
        KeysAction::Revoke { id } => match admin.revoke(&id).await {
            Ok(record) => {
                println!(
                    "key {} revoked; invokers refuse it within {} ms",
                    record.id, usage.keys_refresh_ms
                );
                ExitCode::SUCCESS
            }
            Err(e) => fail(e),
        },
    }
}

/// `2026-12-05 20:30` (UTC).
fn utc_minute(seconds: u64) -> String {
    let days = i64::try_from(seconds / 86_400).unwrap_or(0);
    let (year, month, day) = lambdagate_core::time::civil_from_days(days);
    let rem = seconds % 86_400;
    format!(
        "{year}-{month:02}-{day:02} {:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60
    )
}
