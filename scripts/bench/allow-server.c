/*
 * allow-server SOCKET: the floor under scripts/bench-preload. Speaks just enough of the
 * rampart socket protocol to let the preload library through (one connection per request:
 * accept, check nothing, read what is queued, answer Allow, close) with none of the
 * daemon's work: no decoding, no policy, no audit record. The spawn cost against it is
 * what the round trip itself costs on this machine.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int listener;

/* "RMPT", version 1, payload length 4, payload: the Allow tag (bincode u32 0). */
static const char ALLOW[] = {'R', 'M', 'P', 'T', 1, 0, 4, 0, 0, 0, 0, 0, 0, 0};

static void *serve(void *unused) {
    char request[65536];
    for (;;) {
        int c = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0)
            continue;
        if (recv(c, request, sizeof request, 0) > 0)
            send(c, ALLOW, sizeof ALLOW, MSG_NOSIGNAL);
        close(c);
    }
    return unused;
}

int main(int argc, char **argv) {
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (argc != 2 || strlen(argv[1]) >= sizeof addr.sun_path) {
        fprintf(stderr, "usage: allow-server SOCKET\n");
        return 2;
    }
    strcpy(addr.sun_path, argv[1]);
    unlink(argv[1]);
    listener = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (listener < 0 || bind(listener, (struct sockaddr *)&addr, sizeof addr) != 0 ||
        listen(listener, 1024) != 0) {
        perror("allow-server");
        return 1;
    }
    /* as many threads as the daemon runs deciders on this 2-core machine */
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, serve, NULL);
    pthread_join(t[0], NULL);
    return 0;
}
