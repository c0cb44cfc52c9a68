use super::*;

fn sample_status() -> TunnelStatus {
    TunnelStatus {
        schema_version: STATUS_SCHEMA_VERSION,
        role: "client".into(),
        tun: None,
        sessions: Vec::new(),
        unknown_destination_drops: 3,
        source_not_allowed_drops: 0,
        reconnects: 1,
        endpoint: None,
    }
}

/// Sends raw bytes and returns the whole answer.
async fn exchange(path: &Path, request: &[u8]) -> String {
    let mut stream = UnixStream::connect(path).await.expect("the server listens");
    stream.write_all(request).await.expect("request sent");
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .await
        .expect("answer read");
    answer
}

/// Sends raw bytes, closes the sending side, and returns the whole answer.
async fn exchange_then_close(path: &Path, request: &[u8]) -> String {
    let mut stream = UnixStream::connect(path).await.expect("the server listens");
    stream.write_all(request).await.expect("request sent");
    stream.shutdown().await.expect("write side closed");
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .await
        .expect("answer read");
    answer
}

#[tokio::test]
async fn status_request_returns_the_sources_status() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("client.sock");
    let _server = serve(&path, StatusSource::fixed(sample_status()))
        .await
        .unwrap();

    let status = query_status(&path).await.unwrap();

    assert_eq!(status, sample_status());
}

#[tokio::test]
async fn socket_is_private_and_removed_on_drop() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sock");
    let server = serve(&path, StatusSource::fixed(sample_status()))
        .await
        .unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;

    drop(server);

    assert_eq!(mode, 0o600);
    assert!(!path.exists());
}

#[tokio::test]
async fn unknown_command_is_answered_with_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sock");
    let _server = serve(&path, StatusSource::fixed(sample_status()))
        .await
        .unwrap();

    let answer = exchange(&path, b"{\"cmd\":\"stop\"}\n").await;

    let value: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(value["ok"], false);
    assert!(
        value["error"]
            .as_str()
            .unwrap()
            .starts_with("unknown command \"stop\""),
        "{answer}"
    );
}

#[tokio::test]
async fn malformed_request_is_answered_with_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sock");
    let _server = serve(&path, StatusSource::fixed(sample_status()))
        .await
        .unwrap();

    let answer = exchange(&path, b"status please\n").await;

    let value: serde_json::Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(value["ok"], false);
    assert!(value["error"].as_str().unwrap().contains("bad request"));
}

#[tokio::test]
async fn oversized_request_is_refused_without_reading_it_all() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sock");
    let _server = serve(&path, StatusSource::fixed(sample_status()))
        .await
        .unwrap();
    // One byte over the limit, then end of input: the server stops reading at the limit.
    let huge = vec![b'x'; MAX_REQUEST_LEN + 1];

    let answer = exchange_then_close(&path, &huge).await;

    assert!(answer.contains("longer than 4096 bytes"), "{answer}");
}

#[tokio::test]
async fn a_live_socket_is_not_taken_over() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sock");
    let _first = serve(&path, StatusSource::fixed(sample_status()))
        .await
        .unwrap();

    let second = serve(&path, StatusSource::fixed(sample_status())).await;

    assert!(matches!(second, Err(ControlError::InUse { .. })));
}

#[tokio::test]
async fn a_stale_socket_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sock");
    // A socket file nobody listens on, as left by a killed process.
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());

    let _server = serve(&path, StatusSource::fixed(sample_status()))
        .await
        .unwrap();

    assert_eq!(query_status(&path).await.unwrap(), sample_status());
}

#[tokio::test]
async fn a_regular_file_at_the_path_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("precious.txt");
    std::fs::write(&path, "keep me").unwrap();

    let result = serve(&path, StatusSource::fixed(sample_status())).await;

    assert!(matches!(result, Err(ControlError::NotASocket { .. })));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "keep me");
}

#[tokio::test]
async fn querying_a_missing_socket_says_nothing_runs_there() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("none.sock");

    let error = query_status(&path).await.unwrap_err();

    assert!(matches!(error, ControlError::NotRunning { .. }));
    assert!(error.to_string().contains("no jvpn running at"));
}

#[test]
fn a_status_with_another_schema_version_is_refused() {
    let line = br#"{"ok":true,"status":{"schema_version":99,"role":"client"}}"#;

    let error = parse_response(Path::new("/x.sock"), line).unwrap_err();

    assert!(error.to_string().contains("schema version 99"), "{error}");
}

#[test]
fn default_socket_is_under_run_for_root_and_the_runtime_dir_otherwise() {
    let run = Path::new("/run/user/1000");

    assert_eq!(
        default_socket_for(Role::Server, Some(0), Some(run)),
        PathBuf::from("/run/jvpn/server.sock")
    );
    assert_eq!(
        default_socket_for(Role::Client, Some(1000), Some(run)),
        PathBuf::from("/run/user/1000/jvpn-client.sock")
    );
    assert!(default_socket_for(Role::Client, Some(1000), None).ends_with("jvpn-1000-client.sock"));
}

#[test]
fn effective_uid_is_the_second_uid_field() {
    let status = "Name:\tjvpn\nUid:\t1000\t0\t0\t0\nGid:\t0\t0\t0\t0\n";

    assert_eq!(effective_uid(status), Some(0));
    assert_eq!(effective_uid("Name: x\n"), None);
}
