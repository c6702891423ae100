//! Build script: gives the shared library its SONAME on Linux, so programs
//! linked against `libquorumkit.so` load `libquorumkit.so.0` (the major
//! version; bump it with any ABI break).

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let capi = std::env::var_os("CARGO_FEATURE_CAPI").is_some();
    if os == "linux" && capi {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libquorumkit.so.0");
    }
}
