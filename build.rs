//! Build script: gives the shared library its SONAME on Linux,
//! `libquorumkit.so.<ABI>`, where ABI is `QK_ABI_VERSION` in
//! `src/ffi/abi.rs` (bumped with every ABI break), so a program linked
//! against one ABI never loads a library of another.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/ffi/abi.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let capi = std::env::var_os("CARGO_FEATURE_CAPI").is_some();
    if os == "linux" && capi {
        let abi = abi_version();
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libquorumkit.so.{abi}");
    }
}

/// The number in `pub const QK_ABI_VERSION: u32 = N;` (one source of truth:
/// cbindgen puts the same constant in the header).
fn abi_version() -> u32 {
    let src = std::fs::read_to_string("src/ffi/abi.rs").expect("read src/ffi/abi.rs");
    src.lines()
        .find_map(|l| l.trim().strip_prefix("pub const QK_ABI_VERSION: u32 = "))
        .and_then(|rest| rest.trim_end_matches(';').trim().parse().ok())
        .expect("src/ffi/abi.rs declares pub const QK_ABI_VERSION: u32 = N;")
}
