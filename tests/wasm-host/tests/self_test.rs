//! Self-tests of the host with small hand-written WAT modules.

// Test code: a failed unwrap is a failed test (clippy exempts only `#[test]`
// functions, not these helpers).
#![allow(clippy::unwrap_used)]

use lambdagate_wasm_host::{Action, GrpcDispatch, Host, LogLevel, TrapKind, status};

/// Imports every module below may use (unused imports are fine in wasm).
const IMPORTS: &str = r#"
  (import "env" "proxy_log" (func $log (param i32 i32 i32) (result i32)))
  (import "env" "proxy_get_header_map_value" (func $get_header (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_add_header_map_value" (func $add_header (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_replace_header_map_value" (func $replace_header (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_remove_header_map_value" (func $remove_header (param i32 i32 i32) (result i32)))
  (import "env" "proxy_send_local_response" (func $send (param i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_buffer_bytes" (func $get_buffer (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_buffer_bytes" (func $set_buffer (param i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_grpc_call" (func $grpc_call (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_set_effective_context" (func $set_effective (param i32) (result i32)))
  (import "env" "proxy_get_status" (func $get_status (param i32 i32 i32) (result i32)))
  (import "env" "proxy_get_property" (func $get_property (param i32 i32 i32 i32) (result i32)))
  (import "env" "proxy_get_current_time_nanoseconds" (func $now (param i32) (result i32)))
  (import "env" "proxy_continue_stream" (func $continue (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
"#;

/// Memory, a bump allocator and the ABI marker every module needs.
/// Layout: 0..64 out-pointer slots, 64..1024 scratch, 1024.. constants,
/// 65536.. heap.
const RUNTIME: &str = r#"
  (memory (export "memory") 2)
  (global $heap (mut i32) (i32.const 65536))
  (func (export "proxy_on_memory_allocate") (param $size i32) (result i32)
    (local $p i32)
    (local.set $p (global.get $heap))
    (global.set $heap (i32.add (global.get $heap) (local.get $size)))
    (block $fits
      (br_if $fits (i32.le_u (global.get $heap) (i32.mul (memory.size) (i32.const 65536))))
      (drop (memory.grow (i32.add (i32.shr_u (i32.sub (global.get $heap)
        (i32.mul (memory.size) (i32.const 65536))) (i32.const 16)) (i32.const 1)))))
    (local.get $p))
  (func (export "proxy_abi_version_0_2_1"))
"#;

fn module(body: &str) -> Host {
    let text = format!("(module {IMPORTS} {RUNTIME} {body})");
    Host::from_bytes(text.as_bytes()).unwrap()
}

fn configured(body: &str) -> Host {
    let mut host = module(body);
    assert!(host.configure("{}").unwrap().ok);
    host
}

fn get(path: &str) -> Vec<(String, String)> {
    [
        (":method", "GET"),
        (":path", path),
        (":authority", "api.example.com"),
        (":scheme", "https"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

// ---------------------------------------------------------------------------
// Headers and local responses.

const LOCAL_RESPONSE_FROM_PATH: &str = r#"
  (data (i32.const 1024) ":path")
  (data (i32.const 1040) "path seen")
  (data (i32.const 1056) "\01\00\00\00\07\00\00\00\02\00\00\00x-Route\00p1\00")
  (data (i32.const 1100) "saw path")
  (func (export "proxy_on_request_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    (if (call $get_header (i32.const 0) (i32.const 1024) (i32.const 5) (i32.const 0) (i32.const 4))
      (then (return (i32.const 0))))
    (drop (call $log (i32.const 2) (i32.const 1100) (i32.const 8)))
    (drop (call $send (i32.const 403) (i32.const 1040) (i32.const 9)
      (i32.load (i32.const 0)) (i32.load (i32.const 4)) (i32.const 1056) (i32.const 23) (i32.const -1)))
    (i32.const 1))
"#;

#[test]
fn reads_path_and_sends_local_response() {
    let mut host = configured(LOCAL_RESPONSE_FROM_PATH);
    let stream = host.new_stream().unwrap();
    let action = host.request_headers(stream, get("/hello"), true).unwrap();
    assert_eq!(action, Action::Pause);

    let responses = host.local_responses(stream);
    assert_eq!(responses.len(), 1);
    let response = &responses[0];
    assert_eq!(response.status, 403);
    assert_eq!(response.body, b"/hello");
    assert_eq!(
        response.details, "path_seen",
        "Envoy replaces whitespace in details"
    );
    assert_eq!(
        response.headers,
        vec![("x-route".to_owned(), "p1".to_owned())]
    );
    assert_eq!(response.header("X-Route"), Some("p1"));
    assert_eq!(response.grpc_status, None);

    let line = host.logs().last().unwrap();
    assert_eq!(
        (line.level, line.message.as_str()),
        (LogLevel::Info, "saw path")
    );
    assert_eq!(line.context_id, stream.context_id());

    host.end_stream(stream).unwrap();
    assert!(host.stream(stream).ended);
}

const HEADER_EDITS: &str = r#"
  (data (i32.const 1024) ":path")
  (data (i32.const 1032) "/new")
  (data (i32.const 1040) "x-added")
  (data (i32.const 1048) "yes")
  (data (i32.const 1056) "x-drop")
  (data (i32.const 1064) "X-Pause")
  (data (i32.const 1080) "headers gone")
  (data (i32.const 1100) "headers here")
  (func (export "proxy_on_request_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    (drop (call $add_header (i32.const 0) (i32.const 1040) (i32.const 7) (i32.const 1048) (i32.const 3)))
    (drop (call $replace_header (i32.const 0) (i32.const 1024) (i32.const 5) (i32.const 1032) (i32.const 4)))
    (drop (call $remove_header (i32.const 0) (i32.const 1056) (i32.const 6)))
    (i32.eqz (call $get_header (i32.const 0) (i32.const 1064) (i32.const 7) (i32.const 0) (i32.const 4))))
  (func (export "proxy_on_request_body") (param $ctx i32) (param $size i32) (param $eos i32) (result i32)
    (local $status i32)
    (local.set $status (call $get_header (i32.const 0) (i32.const 1024) (i32.const 5) (i32.const 0) (i32.const 4)))
    (if (i32.eq (local.get $status) (i32.const 2))
      (then (drop (call $log (i32.const 3) (i32.const 1080) (i32.const 12)))))
    (if (i32.eqz (local.get $status))
      (then (drop (call $log (i32.const 2) (i32.const 1100) (i32.const 12)))))
    (i32.const 0))
  (func (export "proxy_on_log") (param $ctx i32)
    (if (i32.eqz (call $get_header (i32.const 0) (i32.const 1024) (i32.const 5) (i32.const 0) (i32.const 4)))
      (then (drop (call $log (i32.const 2) (i32.load (i32.const 0)) (i32.load (i32.const 4)))))))
  (func (export "proxy_on_done") (param $ctx i32) (result i32)
    (if (i32.eq (call $get_header (i32.const 0) (i32.const 1024) (i32.const 5) (i32.const 0) (i32.const 4)) (i32.const 2))
      (then (drop (call $log (i32.const 3) (i32.const 1080) (i32.const 12)))))
    (i32.const 1))
"#;

#[test]
fn header_edits_and_availability() {
    let mut host = configured(HEADER_EDITS);

    // Continue on headers: Envoy drops the header map, later reads are BadArgument.
    let stream = host.new_stream().unwrap();
    let mut headers = get("/old");
    headers.push(("X-Drop".to_owned(), "1".to_owned()));
    assert_eq!(
        host.request_headers(stream, headers, false).unwrap(),
        Action::Continue
    );
    let record = host.stream(stream);
    assert_eq!(record.request_header(":path"), Some("/new"));
    assert_eq!(record.request_header("x-added"), Some("yes"));
    assert_eq!(record.request_header("x-drop"), None);
    host.request_body(stream, b"x", true).unwrap();
    assert_eq!(host.logs().last().unwrap().message, "headers gone");

    // Stream end: readable again in proxy_on_log (access log), gone in on_done.
    host.end_stream(stream).unwrap();
    let logged: Vec<&str> = host
        .logs()
        .iter()
        .rev()
        .take(2)
        .map(|l| l.message.as_str())
        .collect();
    assert_eq!(logged, ["headers gone", "/new"]);

    // Pause on headers: still readable in the body callback.
    let stream = host.new_stream().unwrap();
    let mut headers = get("/old");
    headers.push(("x-pause".to_owned(), "1".to_owned()));
    assert_eq!(
        host.request_headers(stream, headers, false).unwrap(),
        Action::Pause
    );
    host.request_body(stream, b"x", true).unwrap();
    assert_eq!(host.logs().last().unwrap().message, "headers here");
}

// ---------------------------------------------------------------------------
// Request body buffering.

const ECHO_BODY: &str = r#"
  (data (i32.const 1200) "replaced")
  (func (export "proxy_on_request_body") (param $ctx i32) (param $size i32) (param $eos i32) (result i32)
    (if (i32.eqz (local.get $eos)) (then (return (i32.const 1))))
    (drop (call $get_buffer (i32.const 0) (i32.const 0) (local.get $size) (i32.const 0) (i32.const 4)))
    (drop (call $send (i32.const 200) (i32.const 0) (i32.const 0)
      (i32.load (i32.const 0)) (i32.load (i32.const 4)) (i32.const 0) (i32.const 0) (i32.const -1)))
    (drop (call $set_buffer (i32.const 0) (i32.const 0) (local.get $size) (i32.const 1200) (i32.const 8)))
    (i32.const 1))
"#;

#[test]
fn body_chunks_accumulate_while_paused() {
    let mut host = configured(ECHO_BODY);
    let stream = host.new_stream().unwrap();
    host.request_headers(stream, get("/upload"), false).unwrap();
    assert_eq!(
        host.request_body(stream, b"ab", false).unwrap(),
        Action::Pause
    );
    assert_eq!(
        host.request_body(stream, b"cd", false).unwrap(),
        Action::Pause
    );
    assert_eq!(
        host.request_body(stream, b"ef", true).unwrap(),
        Action::Pause
    );
    assert_eq!(host.local_responses(stream)[0].body, b"abcdef");
    assert_eq!(
        host.stream(stream).request_body,
        b"replaced",
        "set_buffer_bytes replaced the body"
    );
}

// ---------------------------------------------------------------------------
// Configuration.

const CONFIG_ECHO: &str = r#"
  (data (i32.const 1024) "empty config")
  (data (i32.const 1040) "no config now")
  (func (export "proxy_on_vm_start") (param $root i32) (param $size i32) (result i32) (i32.const 1))
  (func (export "proxy_on_configure") (param $root i32) (param $size i32) (result i32)
    (if (i32.eqz (local.get $size)) (then
      (drop (call $log (i32.const 4) (i32.const 1024) (i32.const 12)))
      (return (i32.const 0))))
    (drop (call $get_buffer (i32.const 7) (i32.const 0) (local.get $size) (i32.const 0) (i32.const 4)))
    (drop (call $log (i32.const 2) (i32.load (i32.const 0)) (i32.load (i32.const 4))))
    (i32.const 1))
  (func (export "proxy_on_request_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    (if (i32.eq (call $get_buffer (i32.const 7) (i32.const 0) (i32.const 100) (i32.const 0) (i32.const 4)) (i32.const 1))
      (then (drop (call $log (i32.const 2) (i32.const 1040) (i32.const 13)))))
    (i32.const 0))
"#;

#[test]
fn configure_serves_plugin_configuration() {
    let mut host = module(CONFIG_ECHO);
    let outcome = host.configure(r#"{"routes":[]}"#).unwrap();
    assert!(outcome.ok);
    assert_eq!(outcome.logs.len(), 1);
    assert_eq!(outcome.logs[0].message, r#"{"routes":[]}"#);
    assert_eq!(outcome.logs[0].context_id, host.root_context_id());

    let outcome = host.configure("").unwrap();
    assert!(!outcome.ok);
    assert_eq!(outcome.logs[0].level, LogLevel::Error);

    // Outside proxy_on_configure the buffer does not exist (NotFound).
    let stream = host.new_stream().unwrap();
    host.request_headers(stream, get("/"), true).unwrap();
    assert_eq!(host.logs().last().unwrap().message, "no config now");
}

// ---------------------------------------------------------------------------
// Properties and time.

const PROPERTIES: &str = r#"
  (data (i32.const 1024) "source\00address")
  (data (i32.const 1040) "request\00id")
  (data (i32.const 1056) "foo\00bar")
  (data (i32.const 1072) "not found")
  (func $log_property (param $ptr i32) (param $len i32)
    (if (call $get_property (local.get $ptr) (local.get $len) (i32.const 0) (i32.const 4))
      (then (drop (call $log (i32.const 2) (i32.const 1072) (i32.const 9))))
      (else (drop (call $log (i32.const 2) (i32.load (i32.const 0)) (i32.load (i32.const 4)))))))
  (func (export "proxy_on_request_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    (call $log_property (i32.const 1024) (i32.const 14))
    (call $log_property (i32.const 1040) (i32.const 10))
    (call $log_property (i32.const 1056) (i32.const 7))
    (drop (call $now (i32.const 16)))
    (drop (call $send (i32.const 200) (i32.const 0) (i32.const 0)
      (i32.const 16) (i32.const 8) (i32.const 0) (i32.const 0) (i32.const -1)))
    (i32.const 1))
"#;

#[test]
fn properties_and_clock() {
    let mut host = configured(PROPERTIES);
    host.set_property("source.address", "10.1.2.3:4567");
    host.set_time(1_700_000_000_123_456_789);
    let stream = host.new_stream().unwrap();
    let mut headers = get("/");
    headers.push(("x-request-id".to_owned(), "req-42".to_owned()));
    host.request_headers(stream, headers, true).unwrap();

    let logged: Vec<&str> = host
        .logs()
        .iter()
        .map(|line| line.message.as_str())
        .collect();
    assert_eq!(logged, ["10.1.2.3:4567", "req-42", "not found"]);
    let body = &host.local_responses(stream)[0].body;
    assert_eq!(
        u64::from_le_bytes(body[..].try_into().unwrap()),
        1_700_000_000_123_456_789
    );
}

// ---------------------------------------------------------------------------
// gRPC.

const GRPC: &str = r#"
  (global $stream (mut i32) (i32.const 0))
  (data (i32.const 1024) "lambdagate_invoker")
  (data (i32.const 1048) "lambdagate.v1.Invoker")
  (data (i32.const 1072) "Invoke")
  (data (i32.const 1080) "\01\00\00\00\03\00\00\00\01\00\00\00x-k\00v\00")
  (data (i32.const 1100) "req-bytes")
  (data (i32.const 1120) "no cluster")
  (data (i32.const 1140) "reply arrived")
  (func (export "proxy_on_request_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    (global.set $stream (local.get $ctx))
    (if (call $grpc_call (i32.const 1024) (i32.const 18) (i32.const 1048) (i32.const 21)
          (i32.const 1072) (i32.const 6) (i32.const 1080) (i32.const 18) (i32.const 1100) (i32.const 9)
          (i32.const 5000) (i32.const 8))
      (then (drop (call $send (i32.const 503) (i32.const 1120) (i32.const 10)
        (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const -1)))))
    (i32.const 1))
  (func (export "proxy_on_grpc_receive") (param $root i32) (param $token i32) (param $size i32)
    (drop (call $log (i32.const 1) (i32.const 1140) (i32.const 13)))
    (if (call $set_effective (global.get $stream)) (then (return)))
    (drop (call $get_buffer (i32.const 5) (i32.const 0) (local.get $size) (i32.const 0) (i32.const 4)))
    (drop (call $send (i32.const 200) (i32.const 0) (i32.const 0)
      (i32.load (i32.const 0)) (i32.load (i32.const 4)) (i32.const 0) (i32.const 0) (i32.const -1)))
    (drop (call $continue (i32.const 0))))
  (func (export "proxy_on_grpc_close") (param $root i32) (param $token i32) (param $code i32)
    ;; Status read on the root context, then on the HTTP context.
    (drop (call $get_status (i32.const 16) (i32.const 20) (i32.const 24)))
    (if (call $set_effective (global.get $stream)) (then (return)))
    (drop (call $get_status (i32.const 28) (i32.const 32) (i32.const 36)))
    (drop (call $send (i32.add (i32.const 500) (i32.load (i32.const 16))) (i32.const 0) (i32.const 0)
      (i32.load (i32.const 20)) (i32.load (i32.const 24)) (i32.const 0) (i32.const 0) (i32.load (i32.const 28)))))
"#;

#[test]
fn grpc_call_is_recorded_and_reply_delivered_on_root() {
    let mut host = configured(GRPC);
    let stream = host.new_stream().unwrap();
    assert_eq!(
        host.request_headers(stream, get("/fn"), true).unwrap(),
        Action::Pause
    );

    let call = host.grpc_calls()[0].clone();
    assert_eq!(call.token, Some(1));
    assert_eq!(call.status, status::OK);
    assert_eq!(call.stream, Some(stream));
    assert_eq!(call.context_id, stream.context_id());
    assert_eq!(call.cluster, "lambdagate_invoker");
    assert_eq!(call.service, "lambdagate.v1.Invoker");
    assert_eq!(call.method, "Invoke");
    assert_eq!(
        call.initial_metadata,
        vec![("x-k".to_owned(), b"v".to_vec())]
    );
    assert_eq!(call.message, b"req-bytes");
    assert_eq!(call.timeout_ms, 5000);
    assert!(host.local_responses(stream).is_empty());

    host.grpc_receive(1, b"reply").unwrap();
    let line = host.logs().last().unwrap();
    assert_eq!(line.message, "reply arrived");
    assert_eq!(
        line.context_id,
        host.root_context_id(),
        "replies arrive on the root context"
    );
    assert_eq!(host.local_responses(stream)[0].body, b"reply");
    assert_eq!(host.stream(stream).continue_requests, 1);
}

#[test]
fn grpc_close_status_is_readable_from_both_contexts() {
    let mut host = configured(GRPC);
    let stream = host.new_stream().unwrap();
    host.request_headers(stream, get("/fn"), true).unwrap();
    let token = host.grpc_calls()[0].token.unwrap();
    host.grpc_close(token, 14, "unavailable").unwrap();
    let response = &host.local_responses(stream)[0];
    assert_eq!(response.status, 514, "root context saw code 14");
    assert_eq!(
        response.body, b"unavailable",
        "root context saw the message"
    );
    assert_eq!(
        response.grpc_status,
        Some(14),
        "the HTTP context reads the root context's status, as in Envoy"
    );
}

#[test]
fn grpc_dispatch_failure_modes() {
    let mut host = configured(GRPC);
    host.set_grpc_dispatch(GrpcDispatch::Fail(status::PARSE_FAILURE));
    let stream = host.new_stream().unwrap();
    host.request_headers(stream, get("/fn"), true).unwrap();
    assert_eq!(host.local_responses(stream)[0].status, 503);
    let call = host.grpc_calls().last().unwrap();
    assert_eq!((call.token, call.status), (None, status::PARSE_FAILURE));

    host.set_grpc_dispatch(GrpcDispatch::Clusters(vec!["other".to_owned()]));
    let stream = host.new_stream().unwrap();
    host.request_headers(stream, get("/fn"), true).unwrap();
    assert_eq!(
        host.grpc_calls().last().unwrap().status,
        status::PARSE_FAILURE
    );
    assert_eq!(host.local_responses(stream)[0].status, 503);

    host.set_grpc_dispatch(GrpcDispatch::Clusters(vec![
        "lambdagate_invoker".to_owned(),
    ]));
    let stream = host.new_stream().unwrap();
    host.request_headers(stream, get("/fn"), true).unwrap();
    assert_eq!(host.grpc_calls().last().unwrap().token, Some(1));
    assert!(host.local_responses(stream).is_empty());
}

#[test]
fn late_and_unknown_tokens_can_be_delivered() {
    let mut host = configured(GRPC);
    let stream = host.new_stream().unwrap();
    host.request_headers(stream, get("/fn"), true).unwrap();
    let token = host.grpc_calls()[0].token.unwrap();
    host.end_stream(stream).unwrap();

    // The stream's context is gone: set_effective_context answers BadArgument
    // and this module gives up; nothing traps, nothing is answered.
    host.grpc_receive(token, b"late").unwrap();
    host.grpc_close(999, 4, "unknown").unwrap();
    assert!(host.local_responses(stream).is_empty());
}

// ---------------------------------------------------------------------------
// Traps and runaway code.

const PANICS: &str = r#"
  (data (i32.const 64) "\18\04\00\00\0c\00\00\00")
  (data (i32.const 1024) "panicked at boom")
  (data (i32.const 1048) "stderr text\n")
  (func (export "proxy_on_request_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    (drop (call $log (i32.const 5) (i32.const 1024) (i32.const 16)))
    (drop (call $fd_write (i32.const 2) (i32.const 64) (i32.const 1) (i32.const 72)))
    (unreachable))
"#;

#[test]
fn unreachable_is_a_trap_and_kills_the_vm() {
    let mut host = configured(PANICS);
    let stream = host.new_stream().unwrap();
    let trap = host.request_headers(stream, get("/"), true).unwrap_err();
    assert_eq!(trap.kind, TrapKind::Unreachable);
    assert_eq!(trap.callback, "proxy_on_request_headers");
    assert_eq!(trap.panic_message.as_deref(), Some("panicked at boom"));
    assert_eq!(trap.stderr, "stderr text\n");
    let shown = trap.to_string();
    assert!(
        shown.contains("panicked at boom") && shown.contains("unreachable"),
        "{shown}"
    );
    assert_eq!(host.stderr(), "stderr text\n");
    assert!(
        host.logs()
            .iter()
            .any(|line| line.level == LogLevel::Error && line.message == "stderr text"),
        "Envoy logs stderr writes at error level"
    );

    let again = host.new_stream().unwrap_err();
    assert_eq!(again.kind, TrapKind::VmFailed);
    assert_eq!(again.panic_message.as_deref(), Some("panicked at boom"));
}

const LOOPS: &str = r#"
  (func (export "proxy_on_request_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    (loop $forever (br $forever))
    (i32.const 0))
"#;

#[test]
fn endless_loop_runs_out_of_fuel() {
    let mut host = configured(LOOPS);
    host.set_fuel_per_call(50_000_000);
    let stream = host.new_stream().unwrap();
    let started = std::time::Instant::now();
    let trap = host.request_headers(stream, get("/"), true).unwrap_err();
    assert_eq!(trap.kind, TrapKind::OutOfFuel, "{trap}");
    assert!(started.elapsed().as_secs() < 10);
}

const EXITS: &str = r#"
  (func (export "proxy_on_request_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    (call $proc_exit (i32.const 3))
    (i32.const 0))
"#;

#[test]
fn proc_exit_is_a_trap() {
    let mut host = configured(EXITS);
    let stream = host.new_stream().unwrap();
    let trap = host.request_headers(stream, get("/"), true).unwrap_err();
    assert_eq!(trap.kind, TrapKind::ProcExit(3));
}

// ---------------------------------------------------------------------------
// Loading.

#[test]
fn imports_envoy_lacks_are_a_load_error() {
    let text = format!(
        r#"(module
          (import "env" "proxy_continue_request" (func (result i32)))
          (import "wasi_snapshot_preview1" "sched_yield" (func (result i32)))
          {RUNTIME})"#
    );
    let error = Host::from_bytes(text.as_bytes()).err().unwrap();
    assert!(
        error.message.contains("env.proxy_continue_request"),
        "{error}"
    );
    assert!(
        error.message.contains("wasi_snapshot_preview1.sched_yield"),
        "{error}"
    );
}

#[test]
fn modules_without_abi_marker_or_allocator_are_refused() {
    let no_abi = r#"(module (memory (export "memory") 1) (func (export "malloc") (param i32) (result i32) (i32.const 0)))"#;
    let error = Host::from_bytes(no_abi.as_bytes()).err().unwrap();
    assert!(error.message.contains("proxy_abi_version"), "{error}");

    let no_malloc =
        r#"(module (memory (export "memory") 1) (func (export "proxy_abi_version_0_2_1")))"#;
    let error = Host::from_bytes(no_malloc.as_bytes()).err().unwrap();
    assert!(error.message.contains("malloc"), "{error}");

    assert!(Host::from_bytes(b"\0asm garbage").is_err());
    assert!(Host::load("/nonexistent/filter.wasm").is_err());
}
