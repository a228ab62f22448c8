/* A dynamically linked program carrying a Go build-id note (owner "Go", type 4), as every Go
 * binary does: librampart.so must flag it `go` (Go runtimes exec with raw system calls). */
__asm__(".section .note.go.buildid,\"a\",@note\n"
        ".balign 4\n"
        ".long 4\n"      /* namesz: "Go\0\0" */
        ".long 8\n"      /* descsz */
        ".long 4\n"      /* type: NT_GO_BUILDID */
        ".asciz \"Go\"\n"
        ".balign 4\n"
        ".ascii \"buildid!\"\n"
        ".balign 4\n"
        ".previous\n");

int main(void) { return 0; }
