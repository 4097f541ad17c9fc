/* The floor under a pass, without Python: one small write to each of N loopback sockets,
 * first as a loop of write() calls, then as io_uring sends submitted all at once (one system
 * call per pass instead of N). Run by send_cost.py, which builds it when a C compiler and
 * liburing's headers are installed (Debian: `apt install gcc liburing-dev`).
 *
 *     send_floor COUNT ROUNDS SIZE
 *
 * Prints "port P" once listening on 127.0.0.1, accepts COUNT connections, pins itself to
 * CPU 0, then prints one line per variant: its name and every pass's duration in seconds.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void fail(const char *what) {
    perror(what);
    exit(1);
}

static void write_loop(const int *fds, int count, const char *data, int size) {
    for (int i = 0; i < count; i++)
        if (write(fds[i], data, size) != size) fail("write");
}

static void uring_pass(struct io_uring *ring, const int *fds, int count, const char *data,
                       int size) {
    for (int i = 0; i < count; i++)
        io_uring_prep_send(io_uring_get_sqe(ring), fds[i], data, size, MSG_DONTWAIT);
    if (io_uring_submit_and_wait(ring, count) < 0) fail("io_uring_submit_and_wait");
    struct io_uring_cqe *cqe;
    unsigned head, seen = 0;
    io_uring_for_each_cqe(ring, head, cqe) {
        if (cqe->res != size) {
            fprintf(stderr, "send: %d\n", cqe->res);
            exit(1);
        }
        seen++;
    }
    io_uring_cq_advance(ring, seen);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: send_floor COUNT ROUNDS SIZE\n");
        return 2;
    }
    int count = atoi(argv[1]), rounds = atoi(argv[2]), size = atoi(argv[3]), one = 1;
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = {.sin_family = AF_INET,
                                  .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t length = sizeof address;
    if (bind(listener, (struct sockaddr *)&address, sizeof address) || listen(listener, 4096) ||
        getsockname(listener, (struct sockaddr *)&address, &length))
        fail("listen");
    printf("port %d\n", ntohs(address.sin_port));
    fflush(stdout);
    int *fds = malloc(count * sizeof *fds);
    for (int i = 0; i < count; i++) {
        if ((fds[i] = accept(listener, NULL, NULL)) < 0) fail("accept");
        setsockopt(fds[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        fcntl(fds[i], F_SETFL, O_NONBLOCK);
    }
    sleep(1); /* the reader's last connections settle */
    cpu_set_t cpus;
    CPU_ZERO(&cpus);
    CPU_SET(0, &cpus);
    if (sched_setaffinity(0, sizeof cpus, &cpus)) fail("sched_setaffinity");
    char *data = malloc(size);
    memset(data, 'x', size);
    struct io_uring ring;
    if (io_uring_queue_init(count, &ring, 0)) fail("io_uring_queue_init");
    for (int variant = 0; variant < 2; variant++) {
        printf(variant ? "io_uring" : "write loop");
        for (int round = 0; round < rounds; round++) {
            double start = now();
            if (variant)
                uring_pass(&ring, fds, count, data, size);
            else
                write_loop(fds, count, data, size);
            printf(" %.9f", now() - start);
            usleep(10000); /* a pause, as between two messages */
        }
        printf("\n");
        fflush(stdout);
    }
    return 0;
}
