/*
 * floor.c - the kernel floor of `make bench`: the least work a process can
 * do to fan one event out to N loopback TCP connections. No server can beat
 * it, so "courant / floor" says how much courant adds on top of the kernel.
 *
 *   floor --listen 127.0.0.1:PORT [--threads T]
 *
 * It speaks just enough HTTP for the load generator:
 *   GET <anything>    becomes a stream: a fixed response head, then events
 *   POST <anything>   body "topic=..&data=X" (or a raw body X) publishes
 *                     one event to every stream; answers 200 "ok"
 *
 * What an event costs on the wire is courant's, byte for byte (--wire
 * mercure, the default): the stream is chunked and each event is one chunk
 * "<hex>\r\nid: urn:uuid:<36 chars>\ndata: X\n\n\r\n", because a Mercure hub
 * must send an id with every event and HTTP/1.1 streams are chunked (so
 * that clients built on line readers see each event at once). A floor that
 * sent fewer bytes per delivery would measure the load generator's parsing
 * of shorter events, not the server. --wire plain sends "data: X\n\n" on a
 * close-delimited stream (the floor before 2026-12-04).
 *
 * Fan-out: T threads (SO_REUSEPORT listeners, so the kernel spreads the
 * streams); a publish appends the event to every thread's inbox under one
 * lock (so all threads see one order) and rings its eventfd. A thread takes
 * its whole inbox at once, concatenates the events into one buffer and
 * send()s that buffer to each of its streams: one syscall per stream per
 * wake-up. Bytes a socket does not take are copied to a per-stream buffer
 * and written on EPOLLOUT (edge-triggered).
 *
 * Bounded: runs until SIGTERM/SIGINT, or --max-seconds (default 3600).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 16
#define MAX_PENDING (64u << 20) /* a stream further behind is dropped */

static const char plain_head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                                 "Cache-Control: no-cache\r\nConnection: close\r\n\r\n";
static const char chunked_head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                                   "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n";
static int wire_plain;         /* --wire plain: the old close-delimited "data:" only */
static uint64_t event_counter; /* under publish_lock: makes each id distinct */
static const char pub_ok[] = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok";

enum { K_LISTENER, K_INBOX, K_REQUEST, K_STREAM, K_DEAD };

typedef struct fconn {
    int kind; /* first: tells epoll handles apart */
    int fd;
    int index; /* in the thread's stream array */
    char *rbuf;
    size_t rlen, rcap;
    char *ob; /* bytes the socket did not take yet */
    size_t olen, ooff, ocap;
    struct fconn *next_dead;
} fconn_t;

typedef struct fthread {
    int index;
    pthread_t tid;
    int epfd, lfd, evfd;
    int listener_kind, inbox_kind;
    pthread_mutex_t lock;
    char *inbox; /* concatenated event bytes */
    size_t inbox_len, inbox_cap;
    fconn_t **streams;
    int num_streams, cap_streams;
    fconn_t *dead; /* closed during this epoll batch; freed after it */
} fthread_t;

static fthread_t threads[MAX_THREADS];
static int num_threads = 1;
static pthread_mutex_t publish_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int stopping;

static void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n);
    if (!q) {
        fprintf(stderr, "floor: out of memory\n");
        abort();
    }
    return q;
}

static void append(char **buf, size_t *len, size_t *cap, const char *p, size_t n)
{
    if (*len + n > *cap) {
        size_t nc = *cap ? *cap : 4096;
        while (nc < *len + n)
            nc *= 2;
        *buf = xrealloc(*buf, nc);
        *cap = nc;
    }
    memcpy(*buf + *len, p, n);
    *len += n;
}

static void conn_close(fthread_t *t, fconn_t *c)
{
    if (c->kind == K_STREAM) {
        int i = c->index;
        t->streams[i] = t->streams[--t->num_streams];
        t->streams[i]->index = i;
    }
    close(c->fd);
    free(c->rbuf);
    free(c->ob);
    c->rbuf = c->ob = NULL;
    c->kind = K_DEAD; /* a later event of this batch may still name it */
    c->next_dead = t->dead;
    t->dead = c;
}

/* Writes what is pending; returns -1 if the connection must go. */
static int flush_pending(fconn_t *c)
{
    while (c->ooff < c->olen) {
        ssize_t w = send(c->fd, c->ob + c->ooff, c->olen - c->ooff, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN)
            return 0;
        if (w < 0)
            return -1;
        c->ooff += (size_t)w;
    }
    c->ooff = c->olen = 0;
    return 0;
}

/* Sends p to one stream, keeping what the socket refuses. */
static int stream_send(fconn_t *c, const char *p, size_t n)
{
    if (c->olen == 0) {
        for (;;) {
            ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0 && errno != EAGAIN)
                return -1;
            if (w > 0) {
                p += w;
                n -= (size_t)w;
            }
            break;
        }
        if (!n)
            return 0;
    }
    if (c->olen - c->ooff + n > MAX_PENDING)
        return -1;
    append(&c->ob, &c->olen, &c->ocap, p, n);
    return 0;
}

static void publish(const char *data, size_t len)
{
    size_t n = len + 128;
    char *ev = malloc(n);
    if (!ev)
        abort();
    pthread_mutex_lock(&publish_lock);
    if (wire_plain) {
        memcpy(ev, "data: ", 6);
        memcpy(ev + 6, data, len);
        ev[6 + len] = '\n';
        ev[7 + len] = '\n';
        n = len + 8;
    } else {
        /* the same length as courant's UUIDv7 ids: 8-4-4-4-12 hex digits */
        uint64_t k = ++event_counter;
        char id[64];
        snprintf(id, sizeof(id), "%08x-0000-7000-8000-%012llx", (unsigned)(k >> 48),
                 (unsigned long long)(k & 0xffffffffffffull));
        size_t body = 4 + 9 + 36 + 1 + 6 + len + 2; /* "id: urn:uuid:" id "\n" "data: " X "\n\n" */
        int h = snprintf(ev, n, "%zx\r\nid: urn:uuid:%s\ndata: ", body, id);
        memcpy(ev + h, data, len);
        memcpy(ev + h + len, "\n\n\r\n", 4);
        n = (size_t)h + len + 4;
    }
    for (int i = 0; i < num_threads; i++) {
        fthread_t *t = &threads[i];
        pthread_mutex_lock(&t->lock);
        int was_empty = t->inbox_len == 0;
        append(&t->inbox, &t->inbox_len, &t->inbox_cap, ev, n);
        pthread_mutex_unlock(&t->lock);
        if (was_empty) {
            uint64_t one = 1;
            ssize_t r = write(t->evfd, &one, sizeof(one));
            (void)r;
        }
    }
    pthread_mutex_unlock(&publish_lock);
    free(ev);
}

static void drain_inbox(fthread_t *t)
{
    uint64_t junk;
    ssize_t r = read(t->evfd, &junk, sizeof(junk));
    (void)r;
    pthread_mutex_lock(&t->lock);
    char *buf = t->inbox;
    size_t len = t->inbox_len;
    t->inbox = NULL;
    t->inbox_len = t->inbox_cap = 0;
    pthread_mutex_unlock(&t->lock);
    for (int i = 0; i < t->num_streams;) {
        fconn_t *c = t->streams[i];
        if (stream_send(c, buf, len))
            conn_close(t, c); /* moves the last stream into slot i */
        else
            i++;
    }
    free(buf);
}

/* The value of "data=" in a form body, or the whole body. */
static void publish_body(const char *body, size_t len)
{
    const char *d = NULL;
    if (len >= 5 && !memcmp(body, "data=", 5))
        d = body;
    else
        d = memmem(body, len, "&data=", 6) ? (const char *)memmem(body, len, "&data=", 6) + 1 : NULL;
    if (!d) {
        publish(body, len);
        return;
    }
    d += 5;
    const char *end = memchr(d, '&', (size_t)(body + len - d));
    publish(d, (size_t)((end ? end : body + len) - d));
}

/* Handles whole requests in c->rbuf. Returns -1 to close. */
static int on_request_bytes(fthread_t *t, fconn_t *c)
{
    for (;;) {
        if (c->rlen == 0)
            return 0;
        char *end = memmem(c->rbuf, c->rlen, "\r\n\r\n", 4);
        if (!end)
            return c->rlen > 65536 ? -1 : 0;
        size_t head = (size_t)(end - c->rbuf) + 4;
        if (!strncmp(c->rbuf, "GET ", 4)) {
            c->kind = K_STREAM;
            free(c->rbuf);
            c->rbuf = NULL;
            c->rlen = c->rcap = 0;
            if (t->num_streams == t->cap_streams) {
                t->cap_streams = t->cap_streams ? t->cap_streams * 2 : 1024;
                t->streams = xrealloc(t->streams, (size_t)t->cap_streams * sizeof(*t->streams));
            }
            c->index = t->num_streams;
            t->streams[t->num_streams++] = c;
            return wire_plain ? stream_send(c, plain_head, sizeof(plain_head) - 1)
                              : stream_send(c, chunked_head, sizeof(chunked_head) - 1);
        }
        if (strncmp(c->rbuf, "POST ", 5))
            return -1;
        long cl = 0;
        c->rbuf[head - 1] = 0;
        for (char *h = strstr(c->rbuf, "\r\n"); h && h < end; h = strstr(h + 2, "\r\n"))
            if (!strncasecmp(h + 2, "content-length:", 15))
                cl = atol(h + 17);
        c->rbuf[head - 1] = '\n';
        if (cl < 0 || cl > (1 << 20))
            return -1;
        if (c->rlen < head + (size_t)cl)
            return 0;
        publish_body(c->rbuf + head, (size_t)cl);
        size_t used = head + (size_t)cl;
        memmove(c->rbuf, c->rbuf + used, c->rlen - used);
        c->rlen -= used;
        /* The answer is small: one send on a keep-alive socket with an
         * empty buffer takes it. */
        if (send(c->fd, pub_ok, sizeof(pub_ok) - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof(pub_ok) - 1))
            return -1;
    }
}

static void on_readable(fthread_t *t, fconn_t *c)
{
    for (;;) {
        if (c->kind == K_STREAM) {
            char sink[512];
            ssize_t n = read(c->fd, sink, sizeof(sink));
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 && errno == EAGAIN)
                return;
            if (n <= 0) {
                conn_close(t, c);
                return;
            }
            continue;
        }
        if (c->rcap - c->rlen < 4096) {
            c->rcap = c->rcap ? c->rcap * 2 : 8192;
            c->rbuf = xrealloc(c->rbuf, c->rcap);
        }
        ssize_t n = read(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            conn_close(t, c);
            return;
        }
        c->rlen += (size_t)n;
        if (on_request_bytes(t, c)) {
            conn_close(t, c);
            return;
        }
    }
}

static void accept_some(fthread_t *t)
{
    for (;;) {
        int fd = accept4(t->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        fconn_t *c = calloc(1, sizeof(*c));
        if (!c) {
            close(fd);
            continue;
        }
        c->kind = K_REQUEST;
        c->fd = fd;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = c};
        if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, fd, &ev)) {
            close(fd);
            free(c);
        }
    }
}

static void *thread_main(void *arg)
{
    fthread_t *t = arg;
    struct epoll_event evs[256];
    while (!atomic_load(&stopping)) {
        int n = epoll_wait(t->epfd, evs, 256, 200);
        for (int i = 0; i < n; i++) {
            int kind = *(int *)evs[i].data.ptr;
            if (kind == K_LISTENER) {
                accept_some(t);
            } else if (kind == K_INBOX) {
                drain_inbox(t);
            } else {
                fconn_t *c = evs[i].data.ptr;
                if (c->kind == K_DEAD)
                    continue;
                if ((evs[i].events & EPOLLOUT) && c->olen && flush_pending(c)) {
                    conn_close(t, c);
                    continue;
                }
                if (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                    on_readable(t, c);
            }
        }
        while (t->dead) {
            fconn_t *c = t->dead;
            t->dead = c->next_dead;
            free(c);
        }
    }
    return NULL;
}

static void on_signal(int sig)
{
    (void)sig;
    atomic_store(&stopping, 1);
}

int main(int argc, char **argv)
{
    const char *listen_spec = "127.0.0.1:8100";
    long max_seconds = 3600;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--listen") && i + 1 < argc)
            listen_spec = argv[++i];
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            num_threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--max-seconds") && i + 1 < argc)
            max_seconds = atol(argv[++i]);
        else if (!strcmp(argv[i], "--wire") && i + 1 < argc &&
                 (!strcmp(argv[i + 1], "mercure") || !strcmp(argv[i + 1], "plain")))
            wire_plain = !strcmp(argv[++i], "plain");
        else {
            fprintf(stderr, "usage: floor --listen 127.0.0.1:PORT [--threads T] [--max-seconds S] [--wire "
                            "mercure|plain]\n");
            return 2;
        }
    }
    if (num_threads < 1 || num_threads > MAX_THREADS)
        num_threads = 1;
    struct rlimit rl;
    if (!getrlimit(RLIMIT_NOFILE, &rl)) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    /* Like courant (main.c, presize_fd_table): the descriptor table grown
     * while there is one thread, so no accept waits for the RCU grace
     * period a shared table's doubling costs. */
    int probe = epoll_create1(EPOLL_CLOEXEC);
    if (probe >= 0) {
        long slots = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 65536 ? 65536 : (long)rl.rlim_cur;
        int high = fcntl(probe, F_DUPFD_CLOEXEC, (int)slots - 1);
        if (high >= 0)
            close(high);
        close(probe);
    }
    char host[64];
    const char *colon = strrchr(listen_spec, ':');
    if (!colon || (size_t)(colon - listen_spec) >= sizeof(host)) {
        fprintf(stderr, "floor: bad --listen\n");
        return 2;
    }
    memcpy(host, listen_spec, (size_t)(colon - listen_spec));
    host[colon - listen_spec] = 0;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        fprintf(stderr, "floor: bad address %s\n", host);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sact = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sact, NULL);
    sigaction(SIGINT, &sact, NULL);
    for (int i = 0; i < num_threads; i++) {
        fthread_t *t = &threads[i];
        t->index = i;
        t->listener_kind = K_LISTENER;
        t->inbox_kind = K_INBOX;
        pthread_mutex_init(&t->lock, NULL);
        t->epfd = epoll_create1(EPOLL_CLOEXEC);
        t->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        t->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        int one = 1;
        setsockopt(t->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        setsockopt(t->lfd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
        if (t->epfd < 0 || t->evfd < 0 || bind(t->lfd, (struct sockaddr *)&sa, sizeof(sa)) ||
            listen(t->lfd, 4096)) {
            fprintf(stderr, "floor: cannot listen on %s: %s\n", listen_spec, strerror(errno));
            return 1;
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &t->listener_kind};
        epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->lfd, &ev);
        ev = (struct epoll_event){.events = EPOLLIN, .data.ptr = &t->inbox_kind};
        epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->evfd, &ev);
    }
    for (int i = 0; i < num_threads; i++)
        pthread_create(&threads[i].tid, NULL, thread_main, &threads[i]);
    fprintf(stderr, "floor: listening on %s with %d threads\n", listen_spec, num_threads);
    time_t start = time(NULL);
    while (!atomic_load(&stopping) && time(NULL) - start < max_seconds)
        usleep(100000);
    atomic_store(&stopping, 1);
    for (int i = 0; i < num_threads; i++)
        pthread_join(threads[i].tid, NULL);
    return 0;
}
