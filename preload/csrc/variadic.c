/*
 * The variadic exec entry points (execl, execle, execlp).
 *
 * Stable Rust cannot define C-variadic functions, so these collect their arguments into a
 * bounded array on the stack (no malloc: they may run in a vfork child) and hand them to
 * the Rust implementation. The exported symbols `execl`, `execle` and `execlp` are naked
 * Rust trampolines that jump here unchanged (src/variadic.rs): rustc's export list hides
 * symbols defined in C.
 */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>

/* 512 pointers = 4 KiB, a quarter of the hook path's stack budget. */
#define RAMPART_MAX_LIST_ARGS 512

enum rampart_variadic_kind { RAMPART_EXECL = 0, RAMPART_EXECLE = 1, RAMPART_EXECLP = 2 };

/* Implemented in Rust (src/variadic.rs). */
extern int rampart_variadic_exec(int kind, const char *file, char *const argv[],
                                 char *const envp[]);

/*
 * Fills argv with `first` and the variadic arguments up to and including the NULL
 * terminator. Returns 0, or -1 when the list does not fit (the caller reports E2BIG).
 */
#define RAMPART_COLLECT(argv, first, ap)                                   \
    do {                                                                   \
        size_t n_ = 0;                                                     \
        (argv)[n_++] = (char *)(first);                                    \
        if ((first) != NULL) {                                             \
            for (;;) {                                                     \
                char *a_ = va_arg((ap), char *);                           \
                if (n_ >= RAMPART_MAX_LIST_ARGS) {                         \
                    va_end(ap);                                            \
                    errno = E2BIG;                                         \
                    return -1;                                             \
                }                                                          \
                (argv)[n_++] = a_;                                         \
                if (a_ == NULL)                                            \
                    break;                                                 \
            }                                                              \
        }                                                                  \
    } while (0)

__attribute__((visibility("hidden"))) int rampart_shim_execl(const char *path,
                                                              const char *arg, ...) {
    char *argv[RAMPART_MAX_LIST_ARGS];
    va_list ap;
    va_start(ap, arg);
    RAMPART_COLLECT(argv, arg, ap);
    va_end(ap);
    return rampart_variadic_exec(RAMPART_EXECL, path, argv, NULL);
}

__attribute__((visibility("hidden"))) int rampart_shim_execlp(const char *file,
                                                               const char *arg, ...) {
    char *argv[RAMPART_MAX_LIST_ARGS];
    va_list ap;
    va_start(ap, arg);
    RAMPART_COLLECT(argv, arg, ap);
    va_end(ap);
    return rampart_variadic_exec(RAMPART_EXECLP, file, argv, NULL);
}

__attribute__((visibility("hidden"))) int rampart_shim_execle(const char *path,
                                                               const char *arg, ...) {
    char *argv[RAMPART_MAX_LIST_ARGS];
    char *const *envp;
    va_list ap;
    va_start(ap, arg);
    RAMPART_COLLECT(argv, arg, ap);
    /* execle's environment follows the NULL that ends the argument list. */
    envp = va_arg(ap, char *const *);
    va_end(ap);
    return rampart_variadic_exec(RAMPART_EXECLE, path, argv, envp);
}

/*
 * The precompiled `core` refers to Rust's unwinding personality routine even when nothing
 * can unwind (the library is built with panic = "abort" and no std). This stand-in is never
 * called; defined here, hidden, so that it is neither exported nor looked up at load time.
 */
__attribute__((visibility("hidden"))) void rust_eh_personality(void) {}
