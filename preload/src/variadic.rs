//! Exported `execl`, `execle` and `execlp`: naked trampolines that jump, with every
//! register and the stack untouched, into the C shim (`csrc/variadic.c`), which collects the
//! variadic arguments and calls [`crate::hooks::rampart_variadic_exec`].
//!
//! Stable Rust cannot define C-variadic functions, and rustc's export list of a `cdylib`
//! hides symbols defined in C, so the exported names live here and the work lives there.

unsafe extern "C" {
    fn rampart_shim_execl();
    fn rampart_shim_execle();
    fn rampart_shim_execlp();
}

macro_rules! trampoline {
    ($name:ident => $shim:ident) => {
        #[unsafe(no_mangle)]
        #[unsafe(naked)]
        pub unsafe extern "C" fn $name() {
            #[cfg(target_arch = "x86_64")]
            core::arch::naked_asm!("jmp {}", sym $shim);
            #[cfg(target_arch = "aarch64")]
            core::arch::naked_asm!("b {}", sym $shim);
        }
    };
}

trampoline!(execl => rampart_shim_execl);
trampoline!(execle => rampart_shim_execle);
trampoline!(execlp => rampart_shim_execlp);
