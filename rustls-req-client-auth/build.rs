//! Fails the build with one clear message when this crate is built against
//! the rustls from crates.io instead of the project's patched rustls, which
//! announces its `hooks` API through the `links` key (`DEP_RUSTLS_HOOKS_API`).

fn main() {
    println!("cargo::rerun-if-env-changed=DEP_RUSTLS_HOOKS_API");
    // The version of `rustls::hooks` this crate is written for.
    if std::env::var("DEP_RUSTLS_HOOKS_API").as_deref() == Ok("1") {
        return;
    }
    for line in [
        "rustls-req-client-auth needs the patched rustls 0.23.48, which has the `rustls::hooks` module, but this build uses the rustls from crates.io.",
        "Export the patched crate with `cargo xtask fork export ../vendor/rustls` (run in this project's repository),",
        "then add to the Cargo.toml of your workspace root: [patch.crates-io] rustls = { path = \"../vendor/rustls\" }",
    ] {
        println!("cargo::error={line}");
    }
}
