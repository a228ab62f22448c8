/*
 * A small C program that starts another program through one chosen exec-family entry
 * point, so the end-to-end tests can check each hook of librampart.so:
 *
 *   probe ENTRY TARGET [ARG...]
 *
 * TARGET is a path or a PATH name (system/popen: the shell command, ARGs appended). When
 * the call returns (denied or failed) the probe prints "ret=R errno=E" and exits 0; the
 * spawn-style entries wait for the child and print "ret=R status=S". PROBE_EMPTY_ENV=1
 * passes an empty environment to the entries that take one.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static int report(long ret, int err) {
    printf("ret=%ld errno=%d\n", ret, err);
    return 0;
}

static int spawned(int ret, pid_t pid) {
    int status = -1;
    if (ret == 0)
        waitpid(pid, &status, 0);
    printf("ret=%d status=%d\n", ret, status);
    return 0;
}

struct small_stack_job {
    char **args;
    char **env;
    int ret;
    pid_t pid;
};

static void *small_stack_spawn(void *p) {
    struct small_stack_job *job = p;
    job->ret = posix_spawnp(&job->pid, job->args[0], NULL, NULL, job->args, job->env);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: probe ENTRY TARGET [ARG...]\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IONBF, 0);
    const char *entry = argv[1];
    const char *target = argv[2];
    char **args = argv + 2; /* args[0] = TARGET, then ARGs, NULL-terminated */
    char *empty[] = {NULL};
    char **env = getenv("PROBE_EMPTY_ENV") ? empty : environ;
    const char *a1 = argc > 3 ? argv[3] : NULL;
    const char *a2 = argc > 4 ? argv[4] : NULL;
    long r;

    if (!strcmp(entry, "execve")) {
        r = execve(target, args, env);
    } else if (!strcmp(entry, "execv")) {
        r = execv(target, args);
    } else if (!strcmp(entry, "execvp")) {
        r = execvp(target, args);
    } else if (!strcmp(entry, "execvpe")) {
        r = execvpe(target, args, env);
    } else if (!strcmp(entry, "execl")) {
        r = execl(target, target, a1, a2, (char *)NULL);
    } else if (!strcmp(entry, "execle")) {
        r = execle(target, target, a1, a2, (char *)NULL, env);
    } else if (!strcmp(entry, "execlp")) {
        r = execlp(target, target, a1, a2, (char *)NULL);
    } else if (!strcmp(entry, "fexecve")) {
        /* Not CLOEXEC: the kernel reopens /dev/fd/N to run a script. */
        int fd = open(target, O_RDONLY);
        if (fd < 0)
            return report(-1, errno);
        r = fexecve(fd, args, env);
    } else if (!strcmp(entry, "execveat")) {
        r = execveat(AT_FDCWD, target, args, env, 0);
    } else if (!strcmp(entry, "syscall_execve")) {
        r = syscall(SYS_execve, target, args, env);
    } else if (!strcmp(entry, "syscall_execveat")) {
        r = syscall(SYS_execveat, AT_FDCWD, target, args, env, 0);
    } else if (!strcmp(entry, "memfd")) {
        /* Copy TARGET into a memfd and run it from there (fileless). */
        int src = open(target, O_RDONLY | O_CLOEXEC);
        int mem = memfd_create("probe", 0);
        char buf[65536];
        ssize_t n;
        if (src < 0 || mem < 0)
            return report(-1, errno);
        while ((n = read(src, buf, sizeof buf)) > 0)
            if (write(mem, buf, (size_t)n) != n)
                return report(-1, errno);
        r = fexecve(mem, args, env);
    } else if (!strcmp(entry, "system") || !strcmp(entry, "libc_system")) {
        char cmd[4096] = "";
        for (int i = 2; i < argc; i++) {
            if (i > 2)
                strncat(cmd, " ", sizeof cmd - strlen(cmd) - 1);
            strncat(cmd, argv[i], sizeof cmd - strlen(cmd) - 1);
        }
        if (!strcmp(entry, "libc_system")) {
            int (*f)(const char *) = (int (*)(const char *))dlsym(RTLD_DEFAULT, "__libc_system");
            if (!f)
                return report(-2, 0);
            r = f(cmd);
        } else {
            r = system(cmd);
        }
        return report(r, r == -1 ? errno : 0);
    } else if (!strcmp(entry, "popen") || !strcmp(entry, "io_popen")) {
        FILE *(*f)(const char *, const char *) = popen;
        if (!strcmp(entry, "io_popen"))
            f = (FILE * (*)(const char *, const char *)) dlsym(RTLD_DEFAULT, "_IO_popen");
        FILE *p = f(target, "r");
        if (!p)
            return report(0, errno);
        char line[256];
        while (fgets(line, sizeof line, p))
            fputs(line, stdout);
        return report(pclose(p), 0);
    } else if (!strcmp(entry, "posix_spawn") || !strcmp(entry, "posix_spawnp")) {
        pid_t pid = 0;
        int ret = !strcmp(entry, "posix_spawn")
                      ? posix_spawn(&pid, target, NULL, NULL, args, env)
                      : posix_spawnp(&pid, target, NULL, NULL, args, env);
        return spawned(ret, pid);
    } else if (!strcmp(entry, "small_stack")) {
        /* posix_spawnp from a thread whose whole stack is PROBE_STACK_KB (default 32) KiB:
         * the hook path must fit in it. */
        const char *kb = getenv("PROBE_STACK_KB");
        size_t size = (size_t)(kb ? atoi(kb) : 32) * 1024;
        struct small_stack_job job = {args, env, -1, 0};
        pthread_attr_t attr;
        pthread_t t;
        pthread_attr_init(&attr);
        if (pthread_attr_setstacksize(&attr, size) != 0)
            return report(-3, 0);
        if (pthread_create(&t, &attr, small_stack_spawn, &job) != 0)
            return report(-4, 0);
        pthread_join(t, NULL);
        return spawned(job.ret, job.pid);
    } else if (!strcmp(entry, "vfork_execve")) {
        pid_t pid = vfork();
        if (pid == 0) {
            execve(target, args, env);
            _exit(100 + errno);
        }
        int status = 0;
        waitpid(pid, &status, 0);
        printf("ret=0 status=%d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        return 0;
    } else {
        fprintf(stderr, "probe: unknown entry %s\n", entry);
        return 2;
    }
    return report(r, errno);
}
