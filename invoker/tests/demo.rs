//! `lambdagate demo`, the README's first command, started the way a
//! newcomer runs it: it answers a curl for each resource it prints, and
//! Ctrl-C (SIGINT) stops everything it started.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)] // test code: a panic is a failed test

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::BIN;
use lambdagate_harness::{filter_wasm, free_port, hello_rust, repo_root};

fn children_of(pid: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Ok(stat) = std::fs::read_to_string(format!("/proc/{child}/stat")) {
            // The fields after the command name: state, ppid, ...
            let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
            let mut fields = after.split_whitespace();
            let state = fields.next();
            if fields.next().and_then(|p| p.parse::<u32>().ok()) == Some(pid) && state != Some("Z")
            {
                found.push(child);
            }
        }
    }
    found
}

/// What `sh -c COMMAND` prints.
async fn sh(command: &str) -> String {
    let out = tokio::process::Command::new("sh")
        .args(["-c", command])
        .output()
        .await
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn the_demo_serves_its_curl_lines_and_stops_cleanly_on_ctrl_c() {
    filter_wasm();
    hello_rust();
    let (port, admin, invoker, invoker_admin) =
        (free_port(), free_port(), free_port(), free_port());
    let mut demo = tokio::process::Command::new(BIN)
        .args([
            "demo",
            "--port",
            &port.to_string(),
            "--admin-port",
            &admin.to_string(),
        ])
        .args(["--invoker-port", &invoker.to_string()])
        .args(["--invoker-admin-port", &invoker_admin.to_string()])
        .current_dir(repo_root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let output = lambdagate_harness::process::capture_output(&mut demo);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !output.lock().unwrap().contains("Press Ctrl-C to stop.") {
        assert!(
            Instant::now() < deadline,
            "demo did not come up:\n{}",
            output.lock().unwrap()
        );
        assert!(
            demo.try_wait().unwrap().is_none(),
            "demo exited:\n{}",
            output.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let text = output.lock().unwrap().clone();
    let curls: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with("curl "))
        .map(str::to_owned)
        .collect();
    assert_eq!(curls.len(), 7, "{text}");
    assert!(
        text.contains("Without its Authorization header the protected resource answers 401"),
        "{text}"
    );
    for line in &curls {
        assert!(
            line.contains(&format!("http://127.0.0.1:{port}/demo/")),
            "{line}"
        );
        // Run the printed line as a user would paste it.
        let answer = sh(&format!("{line} -w ' HTTP=%{{http_code}}'")).await;
        assert!(
            answer.ends_with(" HTTP=200"),
            "{line}\n{answer}\n{}",
            output.lock().unwrap()
        );
        if line.contains("/private/") {
            // Protected by the demo's authorizer: the line carries the
            // token; without it the answer is 401.
            assert!(
                line.contains("-H 'Authorization: Bearer demo-token'"),
                "{line}"
            );
            let bare = line.replace(" -H 'Authorization: Bearer demo-token'", "");
            let refused = sh(&format!("{bare} -w ' HTTP=%{{http_code}}'")).await;
            assert!(refused.ends_with(" HTTP=401"), "{bare}\n{refused}");
            // The demo exposes errors: the reason is in the body.
            assert!(refused.contains("is missing"), "{refused}");
        }
        if line.contains("/keyed/") {
            // Needs the demo's key: without it 403; 100 requests in a
            // second pass the demo plan's rate (10/s, burst 20): 429s.
            let key_header = line
                .split(" -H ")
                .find(|h| h.contains("x-api-key"))
                .unwrap_or_else(|| panic!("{line}"));
            let bare = line.replace(&format!(" -H {key_header}"), "");
            let refused = sh(&format!("{bare} -w ' HTTP=%{{http_code}}'")).await;
            assert!(refused.ends_with(" HTTP=403"), "{bare}\n{refused}");
            assert!(refused.contains("\"message\":\"Forbidden\""), "{refused}");
            let burst =
                format!("for i in $(seq 1 100); do {line} -o /dev/null -w '%{{http_code}} '; done");
            let codes = sh(&burst).await;
            assert!(codes.contains("429"), "{codes}");
            assert!(codes.starts_with("200 "), "{codes}");
        }
        if line.contains("/stream") {
            // The streaming sample: curl -N, ten lines.
            assert!(line.starts_with("curl -sN "), "{line}");
            assert!(answer.starts_with("line 1 of 10\n"), "{answer}");
            assert!(answer.contains("line 10 of 10\n"), "{answer}");
            continue;
        }
        assert!(answer.contains("\"runtime\""), "{answer}");
        if line.contains("/hello/") {
            assert!(answer.contains("Hello, World!"), "{answer}");
        } else {
            assert!(
                answer.contains("\"message\": \"Hello, World!\"")
                    || answer.contains("\"message\":\"Hello, World!\""),
                "{answer}"
            );
        }
    }

    // The developer portal it prints lists the demo API, through Envoy.
    let portal = text
        .lines()
        .find_map(|l| l.split_once("Developer portal (try the API in a browser): "))
        .map(|(_, url)| url.trim().to_owned())
        .unwrap_or_else(|| panic!("no portal URL printed:\n{text}"));
    assert_eq!(portal, format!("http://127.0.0.1:{port}/portal/"));
    let out = tokio::process::Command::new("curl")
        .args(["-s", "-w", " HTTP=%{http_code}", &portal])
        .output()
        .await
        .unwrap();
    let page = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(page.ends_with(" HTTP=200"), "{page}");
    assert!(page.contains("data-api=\"demo\""), "{page}");
    assert!(page.contains("stream sends a line every 100 ms"), "{page}");

    let pid = demo.id().unwrap();
    let children = children_of(pid);
    assert!(
        children.len() >= 4,
        "Envoy and three function processes: {children:?}"
    );
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exit = tokio::time::timeout(Duration::from_secs(20), demo.wait())
        .await
        .expect("demo did not stop")
        .unwrap();
    assert!(exit.success(), "{exit:?}\n{}", output.lock().unwrap());
    tokio::time::sleep(Duration::from_millis(300)).await;
    for child in children {
        let alive = std::fs::read_to_string(format!("/proc/{child}/stat"))
            .map(|s| !s.contains(") Z "))
            .unwrap_or(false);
        assert!(!alive, "process {child} was left behind");
    }
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err(),
        "Envoy still listening"
    );
}

#[tokio::test]
async fn the_demo_says_clearly_when_a_port_is_taken() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let out = tokio::process::Command::new(BIN)
        .args(["demo", "--port", &port.to_string()])
        .current_dir(repo_root())
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "port {port} on 127.0.0.1 is in use; pick another with --port"
        )),
        "{stderr}"
    );
}
