use std::os::unix::fs::PermissionsExt as _;

use super::*;

fn key(byte: u8) -> StaticSecret {
    StaticSecret::from_bytes([byte; 32])
}

fn mode_of(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn write_text(path: &Path, text: &[u8], mode: u32) {
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn a_written_key_reads_back_identically() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("client.key");

    write_secret_key(&path, &key(7), false).unwrap();
    let read = read_secret_key(&path).unwrap();

    assert_eq!(read.as_bytes(), key(7).as_bytes());
}

#[test]
fn a_written_key_file_is_one_base64_line_with_mode_0600() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("client.key");

    write_secret_key(&path, &key(7), false).unwrap();

    assert_eq!(mode_of(&path), 0o600);
    let text = fs::read_to_string(&path).unwrap();
    assert_eq!(text, format!("{}\n", key(7).to_base64().as_str()));
}

#[test]
fn writing_leaves_no_temporary_file_behind() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("client.key");

    write_secret_key(&path, &key(1), false).unwrap();
    write_secret_key(&path, &key(2), true).unwrap();
    let _ = write_secret_key(&path, &key(3), false);

    let names: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("client.key")]);
}

#[test]
fn an_existing_key_file_is_not_overwritten_without_permission() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("client.key");
    write_secret_key(&path, &key(1), false).unwrap();

    let err = write_secret_key(&path, &key(2), false).unwrap_err();

    assert!(matches!(err, KeyFileError::Exists { .. }), "{err:?}");
    assert!(err.to_string().contains("--force"), "{err}");
    assert_eq!(
        read_secret_key(&path).unwrap().as_bytes(),
        key(1).as_bytes()
    );
}

#[test]
fn overwrite_replaces_an_existing_key_file_and_keeps_mode_0600() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("client.key");
    write_text(&path, b"old", 0o644);

    write_secret_key(&path, &key(2), true).unwrap();

    assert_eq!(
        read_secret_key(&path).unwrap().as_bytes(),
        key(2).as_bytes()
    );
    assert_eq!(mode_of(&path), 0o600);
}

#[test]
fn writing_into_a_missing_directory_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nope").join("client.key");

    let err = write_secret_key(&path, &key(1), false).unwrap_err();

    assert!(matches!(err, KeyFileError::Write { .. }), "{err:?}");
    assert!(err.to_string().contains("client.key"), "{err}");
}

#[test]
fn a_key_file_readable_by_others_is_refused_with_the_chmod_fix() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("client.key");
    for mode in [0o644, 0o640, 0o604, 0o620, 0o602] {
        write_text(&path, key(1).to_base64().as_bytes(), mode);

        let err = read_secret_key(&path).unwrap_err();

        assert!(
            matches!(err, KeyFileError::TooOpen { .. }),
            "{mode:o}: {err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains(&format!("chmod 600 {}", path.display())),
            "{msg}"
        );
    }
}

#[test]
fn a_key_file_readable_only_by_its_owner_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("client.key");
    write_text(&path, key(3).to_base64().as_bytes(), 0o400);

    let read = read_secret_key(&path).unwrap();

    assert_eq!(read.as_bytes(), key(3).as_bytes());
}

#[test]
fn a_missing_key_file_suggests_genkey() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("absent.key");

    let err = read_secret_key(&path).unwrap_err();

    assert!(matches!(err, KeyFileError::NotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("jvpn genkey -o"), "{err}");
}

#[test]
fn malformed_key_files_are_refused_without_echoing_their_content() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("client.key");
    let secretish = "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I!";
    let cases: [(&[u8], KeyProblem); 4] = [
        (secretish.as_bytes(), KeyProblem::NotBase64),
        (b"c2hvcnQ=\n", KeyProblem::WrongLength { got: 5 }),
        (&[0xff, 0xfe, 0x00], KeyProblem::NotBase64),
        (&[b'A'; 2000], KeyProblem::TooLong),
    ];
    for (content, problem) in cases {
        write_text(&path, content, 0o600);

        let err = read_secret_key(&path).unwrap_err();

        let KeyFileError::Malformed { problem: got, .. } = &err else {
            panic!("expected Malformed, got {err:?}");
        };
        assert_eq!(*got, problem);
        let msg = err.to_string();
        assert!(
            !msg.contains(secretish) && !msg.contains("c2hvcnQ"),
            "{msg}"
        );
        assert!(msg.contains("jvpn genkey"), "{msg}");
    }
}

#[test]
fn public_keys_parse_from_text_and_files_of_any_mode() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("server.pub");
    let public = key(9).public_key();
    write_text(&path, format!("{}\n", public.to_base64()).as_bytes(), 0o644);

    assert_eq!(read_public_key(&path).unwrap(), public);
    assert_eq!(parse_public_key(&format!(" {public}\n")).unwrap(), public);
}

#[test]
fn invalid_key_text_gets_a_typed_error_without_the_text() {
    let err = parse_public_key("not a key").unwrap_err();
    assert!(
        matches!(err, KeyFileError::InvalidPublicKey { .. }),
        "{err:?}"
    );
    assert!(!err.to_string().contains("not a key"), "{err}");

    let err = parse_secret_key("AAAA").unwrap_err();
    assert!(
        matches!(
            err,
            KeyFileError::InvalidSecretKey {
                problem: KeyProblem::WrongLength { got: 3 }
            }
        ),
        "{err:?}"
    );
}

#[test]
fn secret_key_text_round_trips_through_parse() {
    let text = key(5).to_base64();

    let parsed = parse_secret_key(&format!("{}\n", text.as_str())).unwrap();

    assert_eq!(parsed.as_bytes(), key(5).as_bytes());
}
