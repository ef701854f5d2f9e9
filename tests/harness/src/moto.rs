//! moto server, the AWS emulator for STS, IAM and Lambda, started per test
//! on its own port, and set up by `tests/moto/fixture.py`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;

use crate::{free_port, repo_root, venv};

#[derive(Clone, Copy, Debug, Default)]
pub struct MotoOptions {
    /// moto's docker mode: unknown functions give a real 404, known ones
    /// answer with a Handled function error (there is no docker here).
    pub lambda_docker: bool,
    /// Switch IAM checks on after setup.
    pub enforce_iam: bool,
    /// Serve HTTPS only, with a self-signed certificate for `localhost` and
    /// 127.0.0.1 made for this server (`Moto::tls_cert`); `url` is then
    /// `https://localhost:PORT`. Plain-HTTP helpers (`queue_results`) do
    /// not work then.
    pub tls: bool,
    /// Serve AWS under this URL path prefix too (`tests/moto/prefixed_server.py`),
    /// as behind a path-based reverse proxy; `url` stays the root (for
    /// setup), the prefixed URL is `url` + prefix. Not with `tls`.
    pub path_prefix: Option<&'static str>,
    /// With `path_prefix`: moto checks signatures against the path as
    /// received, prefix included, and can then no longer name the
    /// operation (see prefixed_server.py).
    pub signed_path_as_received: bool,
}

#[derive(Clone, Debug, Deserialize)]
pub struct AccessKey {
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// What `fixture.py` created.
#[derive(Clone, Debug, Deserialize)]
pub struct Fixture {
    pub url: String,
    pub region: String,
    pub users: HashMap<String, AccessKey>,
    pub functions: HashMap<String, String>,
    pub roles: HashMap<String, String>,
}

impl Fixture {
    pub fn user(&self, name: &str) -> &AccessKey {
        self.users.get(name).expect("fixture user")
    }
    pub fn function(&self, name: &str) -> &str {
        self.functions.get(name).expect("fixture function")
    }
    pub fn role(&self, name: &str) -> &str {
        self.roles.get(name).expect("fixture role")
    }
}

pub struct Moto {
    child: Child,
    pub url: String,
    pub addr: String,
    pub fixture: Fixture,
    /// With `MotoOptions::tls`: the server's certificate (PEM), which a
    /// client must trust; its key lies beside it in a temp dir.
    pub tls_cert: Option<PathBuf>,
    _tls_dir: Option<tempfile::TempDir>,
}

impl Moto {
    pub async fn start(options: MotoOptions) -> Moto {
        let venv = venv();
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let mut command = match options.path_prefix {
            None => {
                let mut c = Command::new(venv.join("bin/moto_server"));
                c.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
                c
            }
            Some(prefix) => prefixed_server(&port.to_string(), prefix, options),
        };
        let (url, tls_dir, tls_cert) = if options.tls {
            let dir = tempfile::tempdir().expect("temp dir");
            let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
            let made = Command::new(venv.join("bin/python"))
                .arg(repo_root().join("tests/moto/tls_cert.py"))
                .args([&cert, &key])
                .output()
                .expect("run tls_cert.py");
            assert!(
                made.status.success(),
                "tls_cert.py failed: {}",
                String::from_utf8_lossy(&made.stderr)
            );
            command.arg("-c").arg(&cert).arg("-k").arg(&key);
            (format!("https://localhost:{port}"), Some(dir), Some(cert))
        } else {
            (format!("http://{addr}"), None, None)
        };
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto_server from the virtualenv");
        let mut moto = Moto {
            child,
            url: url.clone(),
            addr: addr.clone(),
            fixture: Fixture {
                url: url.clone(),
                region: String::new(),
                users: HashMap::new(),
                functions: HashMap::new(),
                roles: HashMap::new(),
            },
            tls_cert,
            _tls_dir: tls_dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            // Over TLS (the harness speaks plain HTTP only) a listening
            // socket has to do; fixture.py's first request then checks more.
            let ready = if options.tls {
                tokio::net::TcpStream::connect(&addr).await.is_ok()
            } else {
                matches!(
                    crate::http::request(&addr, "GET", "/moto-api/", &[], b"").await,
                    Ok((200, _))
                )
            };
            if ready {
                break;
            }
            if let Ok(Some(status)) = moto.child.try_wait() {
                panic!("moto_server exited early: {status}");
            }
            assert!(
                Instant::now() < deadline,
                "moto_server did not start on {addr}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut args = vec![
            repo_root()
                .join("tests/moto/fixture.py")
                .display()
                .to_string(),
            url.clone(),
        ];
        if options.lambda_docker {
            args.push("--lambda-docker".into());
        }
        if options.enforce_iam {
            args.push("--enforce-iam".into());
        }
        if let Some(cert) = &moto.tls_cert {
            args.push("--ca-cert".into());
            args.push(cert.display().to_string());
        }
        let output = tokio::process::Command::new(venv.join("bin/python"))
            .args(&args)
            .output()
            .await
            .expect("run fixture.py");
        assert!(
            output.status.success(),
            "fixture.py failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        moto.fixture = serde_json::from_slice(&output.stdout).expect("fixture JSON");
        moto
    }
}

/// moto under a path prefix (see `MotoOptions::path_prefix`).
fn prefixed_server(port: &str, prefix: &str, options: MotoOptions) -> Command {
    let mut command = Command::new(venv().join("bin/python"));
    command
        .arg(repo_root().join("tests/moto/prefixed_server.py"))
        .args(["127.0.0.1", port, prefix]);
    if options.signed_path_as_received {
        command.arg("--signed-path-as-received");
    }
    command
}

impl Moto {
    /// Queues payloads that moto's Lambda (without docker) returns, in
    /// order, for the next invocations in the first account; after the
    /// queue is empty it echoes the event again.
    pub async fn queue_results(&self, results: &[String]) {
        let body = serde_json::json!({
            "results": results,
            "region": "us-east-1",
            "account_id": "123456789012",
        })
        .to_string();
        let (status, text) = crate::http::request(
            &self.addr,
            "POST",
            "/moto-api/static/lambda-simple/response",
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        )
        .await
        .expect("queue moto results");
        assert_eq!(status, 201, "{text}");
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
