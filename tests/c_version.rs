//! The C header agrees with the crate: its version macros equal Cargo.toml's
//! version and `qk_version()`, and everything it declares carries the
//! `qk_`/`QK_` prefix.
#![cfg(feature = "capi")]

use std::ffi::CStr;

fn header() -> String {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/include/quorumkit.h");
    std::fs::read_to_string(path).expect("include/quorumkit.h (run `make header`)")
}

/// The value of `#define NAME value` in the header.
fn define(header: &str, name: &str) -> String {
    let mut found = header.lines().filter_map(|line| {
        let rest = line.trim().strip_prefix("#define ")?;
        let (n, value) = rest.split_once(char::is_whitespace)?;
        (n == name).then(|| value.trim().to_owned())
    });
    let value = found.next().unwrap_or_else(|| panic!("no #define {name}"));
    assert!(found.next().is_none(), "#define {name} appears twice");
    value
}

#[test]
fn version_macros_match_cargo() {
    let h = header();
    for (macro_name, cargo) in [
        ("QK_VERSION_MAJOR", env!("CARGO_PKG_VERSION_MAJOR")),
        ("QK_VERSION_MINOR", env!("CARGO_PKG_VERSION_MINOR")),
        ("QK_VERSION_PATCH", env!("CARGO_PKG_VERSION_PATCH")),
    ] {
        assert_eq!(
            define(&h, macro_name),
            cargo,
            "{macro_name}: update cbindgen.toml's after_includes and run `make header`"
        );
    }
    let string = format!("\"{}\"", env!("CARGO_PKG_VERSION"));
    assert_eq!(define(&h, "QK_VERSION_STRING"), string);
}

#[test]
fn qk_version_returns_the_crate_version() {
    // SAFETY: qk_version returns a static NUL-terminated string.
    let v = unsafe { CStr::from_ptr(quorumkit::ffi::qk_version()) };
    assert_eq!(v.to_str().unwrap(), env!("CARGO_PKG_VERSION"));
}

/// The names the header declares: macros, typedefs and functions.
fn declared_names(header: &str) -> Vec<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let mut names = Vec::new();
    for line in header.lines() {
        if let Some(rest) = line.strip_prefix("#define ") {
            names.push(ident(rest));
        } else if let Some(rest) = line.strip_prefix("typedef ") {
            // A struct typedef (`typedef struct {`) is named on its `} name;` line.
            if let Some((_, after)) = rest.split_once("(*") {
                // A function pointer: `typedef void (*qk_x_callback)(...);`.
                names.push(ident(after));
            } else if !rest.ends_with('{') {
                let last = rest.trim_end_matches(';').rsplit(' ').next().unwrap();
                names.push(ident(last));
            }
        } else if let Some(rest) = line.strip_prefix("} ")
            && let Some(name) = rest.strip_suffix(';')
        {
            names.push(ident(name));
        } else if line.starts_with(|c: char| c.is_ascii_alphabetic())
            && !line.starts_with("extern")
            && let Some(open) = line.find('(')
        {
            // A declaration at column 0: `qk_status qk_ring_new(uint32_t vnodes,`.
            let before = line[..open].trim_end();
            let start = before.rfind([' ', '*']).map_or(0, |i| i + 1);
            names.push(ident(&before[start..]));
        }
    }
    names
}

#[test]
fn every_declaration_is_prefixed() {
    let h = header();
    let names = declared_names(&h);
    assert!(names.iter().any(|n| n == "qk_ring_new"), "{names:?}");
    assert!(names.iter().any(|n| n == "qk_ring"), "{names:?}");
    assert!(names.iter().any(|n| n == "QK_ERR_PANIC"), "{names:?}");
    assert!(names.iter().any(|n| n == "qk_lease"), "{names:?}");
    let stray: Vec<_> = names
        .iter()
        .filter(|n| !(n.starts_with("qk_") || n.starts_with("QK_") || *n == "QUORUMKIT_H"))
        .collect();
    assert!(
        stray.is_empty(),
        "unprefixed names in include/quorumkit.h: {stray:?} \
         (exclude core items in cbindgen.toml [export] exclude)"
    );
}

#[test]
fn packaging_files_carry_the_version() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/bindings/cmake/quorumkitConfigVersion.cmake"
    );
    let cmake = std::fs::read_to_string(path).unwrap();
    let want = format!("set(PACKAGE_VERSION \"{}\")", env!("CARGO_PKG_VERSION"));
    assert!(
        cmake.lines().any(|l| l.trim() == want),
        "{path} must contain {want}"
    );
}

/// Every function's doc says whether it may run concurrently (FFI layers
/// drop `const`, so the words are what they have).
#[test]
fn every_function_documents_its_thread_safety() {
    let h = header();
    let mut comment = String::new();
    let mut missing = Vec::new();
    let mut functions = 0;
    for line in h.lines() {
        let t = line.trim();
        if t.starts_with("/**") {
            comment.clear();
        }
        if t.starts_with("/**") || t.starts_with('*') {
            comment.push_str(t);
            comment.push('\n');
            continue;
        }
        if t.starts_with("/*") || t.starts_with("//") || t.starts_with('#') {
            continue;
        }
        if let Some(name) = t
            .split('(')
            .next()
            .and_then(|head| head.split_whitespace().last())
            .map(|n| n.trim_start_matches('*'))
            .filter(|n| n.starts_with("qk_") && t.contains('('))
        {
            functions += 1;
            if !(comment.contains("Thread safety") || comment.contains("Thread-safe")) {
                missing.push(name.to_owned());
            }
            comment.clear();
        }
    }
    assert!(functions > 150, "parsed only {functions} functions");
    assert!(missing.is_empty(), "no thread-safety note: {missing:?}");
}
