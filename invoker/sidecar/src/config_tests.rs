use super::*;

#[test]
fn clear_text_is_refused_off_loopback_only() {
    for url in [
        "http://127.0.0.1:5000",
        "http://127.3.4.5/prefix",
        "http://localhost:4566",
        "http://LOCALHOST",
        "http://[::1]:4566/lambda-proxy",
        "http://[::ffff:127.0.0.1]:80",
        "https://lambda.example.com",
        "https://10.0.0.1:443/x",
    ] {
        assert!(!is_clear_text_off_host(url), "{url}");
    }
    for url in [
        "http://10.0.0.1:4566",
        "http://lambda.internal",
        "http://localhost.example.com",
        "http://[2001:db8::1]:80",
        "http://128.0.0.1",
    ] {
        assert!(is_clear_text_off_host(url), "{url}");
    }
}

#[test]
fn values_under_credentials_are_not_quoted_back() {
    let yaml = "endpoints:\n  main:\n    access_method: stored\n    region: us-east-1\n    credentials: \"AKIAPASTEDKEY0000001 wJalrXUtnFEMI/K7MDENG\"\n    allow: [\"arn:aws:lambda:us-east-1:123456789012:function:f\"]\n";
    let err = Config::parse(yaml, "invoker.yaml").unwrap_err().to_string();
    assert!(!err.contains("AKIAPASTEDKEY"), "{err}");
    assert!(!err.contains("wJalr"), "{err}");
    assert!(
        err.starts_with("invoker.yaml: endpoints.main.credentials: "),
        "{err}"
    );
    assert!(
        err.contains(
            "invalid type: string (not repeated here), expected struct FileStoredCredentials"
        ),
        "{err}"
    );
    // Elsewhere the value helps and is kept.
    let err = Config::parse("endpoints: \"abc\"\n", "f")
        .unwrap_err()
        .to_string();
    assert!(err.contains("invalid type: string \"abc\""), "{err}");
    assert_eq!(
        without_quoted_values(r#"invalid type: string "a\"b", expected x"#),
        "invalid type: string (not repeated here), expected x"
    );
}

#[test]
fn endpoint_url_prefixes_are_plain_paths() {
    for good in [
        "http://127.0.0.1:4566",
        "http://127.0.0.1:4566/",
        "https://proxy.example.com/lambda-proxy",
        "https://proxy.example.com/a/b/",
        "https://proxy.example.com/caf%C3%A9",
    ] {
        assert_eq!(validate_url(good), Ok(()), "{good}");
    }
    for bad in [
        "https://proxy.example.com//lambda",
        "https://proxy.example.com/a/../b",
        "https://proxy.example.com/./b",
        "https://proxy.example.com/a?x=1",
        "https://user:pw@proxy.example.com/a",
        "ftp://proxy.example.com",
        "http:///path",
        "https://proxy.example.com/café",
        "https://proxy.example.com/a|b",
        "https://proxy.example.com/{x}",
    ] {
        assert!(validate_url(bad).is_err(), "{bad}");
    }
}

#[test]
fn socket_modes() {
    let mode = |text: &str| parse_socket_mode(&serde_yaml::Value::String(text.into()));
    assert_eq!(mode("0660"), Ok(0o660));
    assert_eq!(mode("600"), Ok(0o600));
    assert_eq!(mode("0o640"), Ok(0o640));
    for bad in ["0666", "0777", "0460", "0060", "abc", "0", "06600", "0990"] {
        assert!(mode(bad).is_err(), "{bad}");
    }
    let number = parse_socket_mode(&serde_yaml::Value::Number(660.into())).unwrap_err();
    assert!(number.contains("quoted"), "{number}");
}

#[test]
fn max_inflight_bytes_defaults_to_256_mib_and_must_fit_one_maximum_size_call() {
    let endpoints = "endpoints:\n  main:\n    access_method: role\n    region: us-east-1\n    allow: [\"arn:aws:lambda:us-east-1:123456789012:function:f\"]\n";
    let config = Config::parse(endpoints, "invoker.yaml").unwrap();
    assert_eq!(config.max_inflight_bytes, 268_435_456);
    let config = Config::parse(
        &format!("max_inflight_bytes: 67108864\n{endpoints}"),
        "invoker.yaml",
    )
    .unwrap();
    assert_eq!(config.max_inflight_bytes, 64 << 20);
    let err = Config::parse(
        &format!("max_inflight_bytes: 1048576\n{endpoints}"),
        "invoker.yaml",
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("invoker.yaml: max_inflight_bytes: 1048576 is less than the largest request message the invoker accepts (6356992 bytes"),
        "{err}"
    );
    let err = Config::parse(
        &format!("max_inflight_bytes: 256MiB\n{endpoints}"),
        "invoker.yaml",
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.starts_with("invoker.yaml: max_inflight_bytes: "),
        "{err}"
    );
}
