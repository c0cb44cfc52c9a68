//! `jvpn genkey`, `jvpn pubkey`, `--version` and `--help`, run as the built binary.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};

fn jvpn(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_jvpn"))
        .args(args)
        .output()
        .expect("the jvpn binary runs")
}

fn jvpn_with_stdin(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_jvpn"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the jvpn binary runs");
    child
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(stdin)
        .expect("stdin accepts the input");
    child.wait_with_output().expect("jvpn finishes")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("utf-8 output")
}

fn mode_of(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn is_key_line(s: &str) -> bool {
    s.len() == 45
        && s.ends_with('\n')
        && s[..44]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
}

#[test]
fn genkey_prints_one_base64_key_line() {
    let out = jvpn(&["genkey"]);

    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(is_key_line(&text(&out.stdout)), "{:?}", text(&out.stdout));
}

#[test]
fn two_generated_keys_differ() {
    let first = jvpn(&["genkey"]).stdout;
    let second = jvpn(&["genkey"]).stdout;

    assert_ne!(first, second);
}

#[test]
fn genkey_then_pubkey_gives_a_public_key_deterministically() {
    let secret = jvpn(&["genkey"]).stdout;

    let first = jvpn_with_stdin(&["pubkey"], &secret);
    let second = jvpn_with_stdin(&["pubkey"], &secret);

    assert!(first.status.success(), "{}", text(&first.stderr));
    assert!(is_key_line(&text(&first.stdout)));
    assert_eq!(first.stdout, second.stdout);
    assert_ne!(first.stdout, secret, "the public key is not the secret key");
}

#[test]
fn pubkey_matches_the_library_derivation() {
    let secret = jvpn_wire::keys::StaticSecret::from_bytes([42; 32]);
    let input = format!("{}\n", secret.to_base64().as_str());

    let out = jvpn_with_stdin(&["pubkey"], input.as_bytes());

    assert_eq!(text(&out.stdout), format!("{}\n", secret.public_key()));
}

#[test]
fn genkey_output_file_is_created_with_mode_0600() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("client.key");

    let out = jvpn(&["genkey", "-o", path.to_str().unwrap()]);

    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stdout.is_empty(), "the key is not printed");
    assert_eq!(mode_of(&path), 0o600);
    assert!(is_key_line(&fs::read_to_string(&path).unwrap()));
}

#[test]
fn genkey_refuses_to_overwrite_a_key_file_without_force() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("client.key");
    let path_arg = path.to_str().unwrap();
    assert!(jvpn(&["genkey", "-o", path_arg]).status.success());
    let original = fs::read(&path).unwrap();

    let refused = jvpn(&["genkey", "-o", path_arg]);
    let kept = fs::read(&path).unwrap();
    let forced = jvpn(&["genkey", "-o", path_arg, "--force"]);

    assert_eq!(refused.status.code(), Some(1));
    let stderr = text(&refused.stderr);
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(stderr.contains("--force"), "{stderr}");
    assert_eq!(kept, original);
    assert!(forced.status.success(), "{}", text(&forced.stderr));
    assert_ne!(fs::read(&path).unwrap(), original);
    assert_eq!(mode_of(&path), 0o600);
}

#[test]
fn genkey_redirected_to_a_file_restricts_it_to_0600_first() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("client.key");
    let file = fs::File::create(&path).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();

    let status = Command::new(env!("CARGO_BIN_EXE_jvpn"))
        .arg("genkey")
        .stdout(file)
        .status()
        .unwrap();

    assert!(status.success());
    assert_eq!(mode_of(&path), 0o600);
    assert!(is_key_line(&fs::read_to_string(&path).unwrap()));
}

#[test]
fn a_generated_key_file_is_accepted_by_pubkey() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("client.key");
    assert!(
        jvpn(&["genkey", "-o", path.to_str().unwrap()])
            .status
            .success()
    );

    let out = Command::new(env!("CARGO_BIN_EXE_jvpn"))
        .arg("pubkey")
        .stdin(fs::File::open(&path).unwrap())
        .output()
        .unwrap();

    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(is_key_line(&text(&out.stdout)));
}

#[test]
fn malformed_stdin_fails_with_exit_1_and_no_key_material() {
    let almost = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I!";
    let short = "c2hvcnQ=";
    for input in [
        almost.as_bytes(),
        short.as_bytes(),
        b"",
        &[0xff, 0x00, 0x80],
    ] {
        let out = jvpn_with_stdin(&["pubkey"], input);

        assert_eq!(out.status.code(), Some(1));
        assert!(out.stdout.is_empty());
        let stderr = text(&out.stderr);
        assert!(stderr.starts_with("error: "), "{stderr}");
        assert!(
            !stderr.contains(almost) && !stderr.contains(short),
            "{stderr}"
        );
    }
}

#[test]
fn genkey_into_a_missing_directory_fails_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("missing").join("client.key");

    let out = jvpn(&["genkey", "-o", path.to_str().unwrap()]);

    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("client.key"));
}

#[test]
fn version_prints_the_package_version() {
    let out = jvpn(&["--version"]);

    assert!(out.status.success());
    assert_eq!(
        text(&out.stdout),
        format!("jvpn {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn help_describes_jvpn_and_lists_the_key_commands() {
    let out = jvpn(&["--help"]);

    assert!(out.status.success());
    let help = text(&out.stdout);
    assert!(
        help.contains("a VPN session that survives transport changes"),
        "{help}"
    );
    assert!(help.contains("genkey") && help.contains("pubkey"), "{help}");
}

#[test]
fn subcommand_help_shows_examples() {
    let out = jvpn(&["genkey", "--help"]);

    assert!(out.status.success());
    assert!(text(&out.stdout).contains("jvpn genkey -o client.key"));
}

#[test]
fn usage_errors_exit_with_2() {
    assert_eq!(jvpn(&["no-such-command"]).status.code(), Some(2));
    assert_eq!(jvpn(&["genkey", "--force"]).status.code(), Some(2));
}
