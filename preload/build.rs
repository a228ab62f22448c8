//! Compiles the C shim for the variadic `execl*` entry points (stable Rust cannot define
//! C-variadic functions).

fn main() {
    println!("cargo::rerun-if-changed=csrc/variadic.c");
    cc::Build::new()
        .file("csrc/variadic.c")
        .flag_if_supported("-fvisibility=hidden")
        .warnings(true)
        .extra_warnings(true)
        .compile("rampart_variadic");
}
