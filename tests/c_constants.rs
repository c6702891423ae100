//! `include/quorumkit-constants.json`: every `QK_` constant of the C header
//! (value and doc line) and every status code (number, name, message), in a
//! form an FFI layer (Go, Node, Java, Python ctypes) maps without parsing C.
//! Generated from the header itself, so the two cannot disagree; this test
//! fails when the committed file is stale (`make header` rewrites it, as it
//! rewrites the header: `QK_BLESS=1 cargo test --test c_constants`).

use std::ffi::CStr;
use std::path::PathBuf;

use serde_json::{Map, Value, json};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `(name, value, doc)` of every `#define QK_*` after the version block, in
/// header order; the doc is the first line of the comment above it.
fn defines(header: &str) -> Vec<(String, Value, String)> {
    let lines: Vec<&str> = header.lines().collect();
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let Some(rest) = line.strip_prefix("#define QK_") else {
            continue;
        };
        let (name, value) = rest.split_once(' ').expect("#define NAME VALUE");
        let name = format!("QK_{name}");
        let value = value.trim();
        let value = if let Some(s) = value.strip_prefix('"') {
            Value::String(s.trim_end_matches('"').to_owned())
        } else if value == "UINT64_MAX" {
            json!(u64::MAX)
        } else if let Ok(n) = value.parse::<u64>() {
            json!(n)
        } else {
            json!(
                value
                    .parse::<i64>()
                    .unwrap_or_else(|_| panic!("{name} = {value}"))
            )
        };
        // The comment block right above: "/**", " * text", " */".
        let mut doc = String::new();
        let mut j = i;
        while j > 0 && lines[j - 1].trim() != "/**" && lines[j - 1].trim_start().starts_with('*') {
            j -= 1;
        }
        if j > 0 && lines[j - 1].trim() == "/**" {
            let text: Vec<&str> = lines[j..i]
                .iter()
                .map(|l| l.trim().trim_start_matches('*').trim())
                .take_while(|l| !l.is_empty() && *l != "/")
                .collect();
            doc = text.join(" ");
        }
        out.push((name, value, doc));
    }
    out
}

fn generate() -> String {
    let header = std::fs::read_to_string(root().join("include/quorumkit.h")).unwrap();
    let mut constants = Map::new();
    let mut status = Vec::new();
    for (name, value, doc) in defines(&header) {
        if name.starts_with("QK_ERR_") || name == "QK_OK" {
            let code = value.as_u64().unwrap() as u32;
            // SAFETY: qk_status_str returns a static NUL-terminated string.
            let message = unsafe { CStr::from_ptr(quorumkit::ffi::status::qk_status_str(code)) };
            status.push(json!({
                "code": code,
                "name": name,
                "message": message.to_str().unwrap(),
                "doc": doc,
            }));
        } else {
            constants.insert(name, json!({ "value": value, "doc": doc }));
        }
    }
    let doc = json!({
        "generated_from": "include/quorumkit.h",
        "version": env!("CARGO_PKG_VERSION"),
        "abi_version": quorumkit::ffi::abi::QK_ABI_VERSION,
        "constants": constants,
        "status": status,
    });
    serde_json::to_string_pretty(&doc).unwrap() + "\n"
}

#[test]
fn the_constants_file_matches_the_header() {
    let path = root().join("include/quorumkit-constants.json");
    let want = generate();
    if std::env::var_os("QK_BLESS").is_some() {
        std::fs::write(&path, &want).unwrap();
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "include/quorumkit-constants.json is stale: run `make header` and commit it"
    );
    // A sanity check of the content: the codes are 0.. with no reuse.
    let v: Value = serde_json::from_str(&have).unwrap();
    let codes: Vec<u64> = v["status"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["code"].as_u64().unwrap())
        .collect();
    assert_eq!(codes[0], 0);
    assert!(codes.windows(2).all(|w| w[0] < w[1]), "{codes:?}");
    assert_eq!(
        v["constants"]["QK_TIMEOUT_FOREVER"]["value"],
        json!(u64::MAX)
    );
    assert_eq!(v["constants"]["QK_LEASE_SHARED"]["value"], json!(1));
}
