//! Child processes of the tests.

use std::sync::{Arc, Mutex};

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;

/// Collects everything the child writes to stdout and stderr (both must be
/// piped), line by line, into a shared string.
pub fn capture_output(child: &mut Child) -> Arc<Mutex<String>> {
    let output = Arc::new(Mutex::new(String::new()));
    let pipes = [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Unpin + Send>),
    ];
    for pipe in pipes.into_iter().flatten() {
        let output = output.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(pipe).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let mut o = output.lock().unwrap();
                o.push_str(&line);
                o.push('\n');
            }
        });
    }
    output
}
