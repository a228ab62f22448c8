/*
 * spawn-loop N PROGRAM: posix_spawn PROGRAM N times (waiting for each), then print the
 * average wall time per spawn in microseconds. Used by scripts/bench-preload.
 */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>

extern char **environ;

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: spawn-loop N PROGRAM\n");
        return 2;
    }
    long n = atol(argv[1]);
    char *child_argv[] = {argv[2], NULL};
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (long i = 0; i < n; i++) {
        pid_t pid;
        int status;
        if (posix_spawn(&pid, argv[2], NULL, NULL, child_argv, environ) != 0) {
            fprintf(stderr, "spawn-loop: spawn %ld refused\n", i);
            return 1;
        }
        waitpid(pid, &status, 0);
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double us = ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / 1e3;
    printf("%.2f\n", us / (double)n);
    return 0;
}
