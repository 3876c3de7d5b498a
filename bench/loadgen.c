/*
 * loadgen.c - the load generator of `make bench`.
 *
 * A coordinator forks K subscriber processes (each holds up to --per-proc
 * streams, so the 20,000-descriptor cap of one process is never reached),
 * waits until every stream has its response head, samples the server's RSS,
 * then runs the publishing phases itself:
 *
 *   rate   --rate-events events at --rate events/s (latency)
 *   burst  --burst-events events, at most --inflight POSTs in flight
 *          (throughput: delivered events/s until all arrived or --timeout)
 *
 * Every event's data is  T<monotonic ns>_P<phase>_S<seq>_xxxx...  padded to
 * --size bytes, so a subscriber computes publish-to-receive latency from
 * CLOCK_MONOTONIC (one clock for every process on the machine). Streams are
 * parsed with the project's sse_parser (src/sse.c); chunked responses
 * (nginx/nchan) are de-chunked first.
 *
 * Loss is counted against the plan: expected deliveries = planned events x
 * requested subscribers, so a subscriber that never connected, a publish
 * that failed and a delivery that never came all show as loss.
 *
 * --h2 K: subscribers are HTTP/2 streams, K per connection (h2c with prior
 * knowledge; libnghttp2's client session), so -n 10000 --h2 100 holds
 * 10,000 streams over 100 connections. Windows are opened wide (1 GiB) so
 * the client's flow control never throttles the measurement. Publishing
 * stays HTTP/1.1 POSTs.
 *
 * Output: one "RESULT key=value ..." line per phase on stdout (run.sh parses
 * them), a human summary on stderr. Bounded: every wait has a deadline.
 *
 *   loadgen --target courant|nchan|floor --port P -n N [--pids 1,2]
 *           [--rate 10 --rate-events 50] [--burst-events 2000 --inflight 8] [--tls]
 *
 * --tls: every connection (subscribers and publishers) speaks TLS (OpenSSL,
 * any certificate accepted, no session reuse: each subscriber makes a full
 * handshake, as a new browser would); the subscriber's state machine gains
 * a handshake step, and reads go through SSL_read until it wants more.
 *
 * Threads: none. Child <-> coordinator messages go through pipes.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "sse.h"

#include <nghttp2/nghttp2.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define NB 2400 /* latency histogram buckets (see hist_idx) */
#define MAX_PROCS 64
#define MAX_PIDS 64
#define MAX_PUB_CONNS 64

/* ---- options ------------------------------------------------------------- */

enum { T_COURANT, T_NCHAN, T_FLOOR };

static struct {
    int target;
    const char *host;
    int port;
    long n;
    int per_proc;
    int min_procs;
    const char *sub_path;
    const char *pub_path;
    int pub_port; /* publish to this port instead of --port (0 = same) */
    const char *topic;
    int pids[MAX_PIDS];
    int num_pids;
    double rate;
    long rate_events;
    double rate2;      /* a second latency phase ("rate2"), e.g. 1/s then 10/s */
    long rate2_events; /* 0: none */
    long burst_events;
    int inflight;
    int size;
    double timeout_s;
    double connect_timeout_s;
    int settle_ms;
    int conn_inflight;
    int pub_conns; /* burst: publish connections (0 = --inflight, one request in flight each) */
    const char *labels;
    int src_ips;
    int h2;           /* streams per HTTP/2 connection; 0 = HTTP/1.1, one connection per subscriber */
    int tls;          /* --tls: speak TLS on every connection */
    int fresh_topics; /* each event also has a topic of its own (no match cache helps) */
} opt = {
    .target = T_COURANT,
    .host = "127.0.0.1",
    .port = 0,
    .n = 100,
    .per_proc = 18000,
    .topic = "bench",
    .rate = 10,
    .rate_events = 0,
    .burst_events = 0,
    .inflight = 8,
    .size = 100,
    .timeout_s = 30,
    .connect_timeout_s = 60,
    .settle_ms = 1000,
    .conn_inflight = 256,
    .labels = "",
    .src_ips = 250,
};

static const char *target_name(void)
{
    return opt.target == T_NCHAN ? "nchan" : opt.target == T_FLOOR ? "floor" : "courant";
}

/* ---- small helpers ------------------------------------------------------- */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "loadgen: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

static double cpu_self_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Reads exactly len bytes, or fails at the deadline (ns, monotonic). */
static int read_all(int fd, void *buf, size_t len, int64_t deadline)
{
    char *p = buf;
    while (len) {
        int64_t left = deadline - now_ns();
        if (left <= 0)
            return -1;
        struct pollfd pfd = {fd, POLLIN, 0};
        int r = poll(&pfd, 1, (int)(left / 1000000 + 1));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            continue;
        ssize_t n = read(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* ---- latency histogram: 1 us steps below 1 ms, then 1 % steps ------------ */

static int hist_idx(int64_t ns)
{
    int64_t us = ns / 1000;
    if (us < 0)
        us = 0;
    if (us < 1000)
        return (int)us;
    int i = 1000 + (int)(log((double)us / 1000.0) / log(1.01));
    return i >= NB ? NB - 1 : i;
}

static double hist_mid_us(int i) { return i < 1000 ? i + 0.5 : 1000.0 * pow(1.01, (double)(i - 1000) + 0.5); }

static double hist_pct_us(const uint64_t *h, uint64_t total, double q)
{
    if (!total)
        return 0;
    uint64_t want = (uint64_t)ceil(q * (double)total), acc = 0;
    if (want == 0)
        want = 1;
    for (int i = 0; i < NB; i++) {
        acc += h[i];
        if (acc >= want)
            return hist_mid_us(i);
    }
    return hist_mid_us(NB - 1);
}

/* ---- server-side probes: RSS and CPU of the given PIDs ------------------- */

static long rss_kib_of(int pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    long v = 0;
    size_t fl = strlen(field);
    while (fgets(line, sizeof(line), f))
        if (!strncmp(line, field, fl)) {
            v = atol(line + fl);
            break;
        }
    fclose(f);
    return v;
}

static long server_rss_kib(void)
{
    long sum = 0;
    for (int i = 0; i < opt.num_pids; i++)
        sum += rss_kib_of(opt.pids[i], "VmRSS:");
    return sum;
}

/* Proportional set size: shared pages divided among their users. */
static long server_pss_kib(void)
{
    long sum = 0;
    for (int i = 0; i < opt.num_pids; i++) {
        char path[64], line[256];
        snprintf(path, sizeof(path), "/proc/%d/smaps_rollup", opt.pids[i]);
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        while (fgets(line, sizeof(line), f))
            if (!strncmp(line, "Pss:", 4)) {
                sum += atol(line + 4);
                break;
            }
        fclose(f);
    }
    return sum;
}

/* On-CPU seconds of one process: the sum of its threads' run time from
 * /proc/PID/task/TID/schedstat (nanoseconds, exact), or -1 when schedstat is
 * missing. /proc/PID/stat counts in clock ticks (10 ms): a 2M-delivery burst
 * of the floor is only 7 ticks, too coarse for the CPU-per-delivery ratios. */
static double proc_cpu_schedstat_s(int pid)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/task", pid);
    DIR *d = opendir(path);
    if (!d)
        return -1;
    double sum = 0;
    int found = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char p2[320];
        snprintf(p2, sizeof(p2), "/proc/%d/task/%s/schedstat", pid, e->d_name);
        FILE *f = fopen(p2, "r");
        if (!f)
            continue;
        unsigned long long ns = 0;
        if (fscanf(f, "%llu", &ns) == 1) {
            sum += (double)ns / 1e9;
            found = 1;
        }
        fclose(f);
    }
    closedir(d);
    return found ? sum : -1;
}

/* The same from /proc/PID/stat (utime + stime, clock ticks). */
static double proc_cpu_stat_s(int pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    unsigned long ut = 0, st = 0;
    /* after ")": state(3) ... utime is field 14, stime 15 */
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return 0;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double server_cpu_s(void)
{
    double sum = 0;
    for (int i = 0; i < opt.num_pids; i++) {
        double s = proc_cpu_schedstat_s(opt.pids[i]);
        sum += s >= 0 ? s : proc_cpu_stat_s(opt.pids[i]);
    }
    return sum;
}

/* ---- messages between the coordinator and the subscriber processes ------- */

enum { M_READY = 1, M_PHASE = 2 };
enum { C_BEGIN = 1, C_DRAIN = 2, C_EXIT = 3 };

typedef struct ctrl_msg {
    int type;
    int phase;
    uint32_t planned; /* C_BEGIN: events that will be published */
    uint32_t target;  /* C_DRAIN: events the server accepted */
    int64_t deadline; /* C_DRAIN: monotonic ns */
} ctrl_msg_t;

typedef struct ready_msg {
    int type;
    uint32_t wanted, held, failed, refused;
    int64_t first_ns, last_ns; /* first connect started, last head received */
    double cpu_s;
} ready_msg_t;

typedef struct phase_msg {
    int type;
    int phase;
    uint64_t received, dups, stray, foreign;
    uint32_t complete, gone, alive;
    int64_t first_ns, last_ns, max_ns;
    double cpu_s;
    uint64_t hist[NB];
} phase_msg_t;

/* ---- a subscriber process ------------------------------------------------ */

enum { S_IDLE, S_CONNECTING, S_HANDSHAKE, S_HEAD, S_STREAM, S_DEAD };

static SSL_CTX *client_ctx; /* --tls: one per process (made before fork, used after) */

static void tls_client_init(void)
{
    client_ctx = SSL_CTX_new(TLS_client_method());
    if (!client_ctx)
        exit(2);
    SSL_CTX_set_verify(client_ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_session_cache_mode(client_ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_mode(client_ctx, SSL_MODE_RELEASE_BUFFERS);
    static const unsigned char alpn[] = "\x08http/1.1";
    SSL_CTX_set_alpn_protos(client_ctx, alpn, sizeof(alpn) - 1);
}

/* read(2) or SSL_read: > 0 bytes, 0 end of stream, -1 with errno (EAGAIN). */
static ssize_t conn_recv(int fd, SSL *ssl, char *buf, size_t cap)
{
    if (!ssl)
        return read(fd, buf, cap);
    ERR_clear_error();
    int n = SSL_read(ssl, buf, (int)cap);
    if (n > 0)
        return n;
    int e = SSL_get_error(ssl, n);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        errno = EAGAIN;
        return -1;
    }
    if (e == SSL_ERROR_ZERO_RETURN)
        return 0;
    errno = EPROTO;
    return -1;
}
enum { CS_SIZE, CS_EXT, CS_DATA, CS_CRLF, CS_END };

typedef struct sub {
    int fd;
    uint8_t state;
    uint8_t chunked;
    uint8_t cst; /* chunk decoder state */
    uint8_t counted_gone;
    uint16_t hlen;
    char *hbuf;     /* response head while it arrives */
    uint64_t crem;  /* chunk bytes left */
    int32_t phase;  /* phase of `count` and `seen` */
    uint32_t count; /* distinct events of `phase` received */
    uint8_t *seen;  /* bitmap over seq, per phase */
    sse_parser_t p;
    struct h2c *h2; /* --h2: the connection carrying this stream */
    SSL *ssl;       /* --tls */
} sub_t;

/* --h2: one HTTP/2 connection carrying several subscriber streams. */
typedef struct h2c {
    int fd;
    int connected;
    nghttp2_session *ng;
    long first, count; /* its subscribers: C.subs[first .. first+count) */
    char *wbuf;        /* bytes nghttp2 produced that the socket did not take */
    size_t wlen, wcap;
} h2c_t;

static struct {
    int child_index;
    long first_global; /* global index of this child's first subscriber */
    sub_t *subs;
    long n;
    long next_to_start, in_flight, held, failed, refused, finished;
    int64_t first_ns, last_ns;
    int ready_sent;
    /* the phase in progress */
    int phase;
    uint32_t planned, target;
    int draining;
    int64_t deadline;
    uint32_t complete, gone;
    double cpu_at_begin;
    phase_msg_t pm;
    int64_t recv_ns; /* time of the read being parsed */
    char *request;
    size_t request_len;
} C;

static void phase_reset(int phase, uint32_t planned)
{
    memset(&C.pm, 0, sizeof(C.pm));
    C.pm.type = M_PHASE;
    C.pm.phase = phase;
    C.phase = phase;
    C.planned = planned;
    C.target = 0;
    C.draining = 0;
    C.complete = C.gone = 0;
    C.cpu_at_begin = cpu_self_s();
}

static void on_sse_event(void *ctx, const sse_event_t *ev)
{
    sub_t *s = ctx;
    const char *d = ev->data;
    if (ev->data_len < 8 || d[0] != 'T') {
        C.pm.foreign++;
        return;
    }
    char *e;
    long long t = strtoll(d + 1, &e, 10);
    if (e[0] != '_' || e[1] != 'P') {
        C.pm.foreign++;
        return;
    }
    long phase = strtol(e + 2, &e, 10);
    if (e[0] != '_' || e[1] != 'S') {
        C.pm.foreign++;
        return;
    }
    long seq = strtol(e + 2, &e, 10);
    if (phase != C.phase || seq < 0 || (uint32_t)seq >= C.planned) {
        C.pm.stray++;
        return;
    }
    if (s->phase != phase) {
        free(s->seen);
        s->seen = calloc(C.planned / 8 + 1, 1);
        if (!s->seen)
            die("out of memory");
        s->phase = (int32_t)phase;
        s->count = 0;
    }
    if (s->seen[seq >> 3] & (1u << (seq & 7))) {
        C.pm.dups++;
        return;
    }
    s->seen[seq >> 3] |= (uint8_t)(1u << (seq & 7));
    int64_t lat = C.recv_ns - t;
    C.pm.hist[hist_idx(lat)]++;
    if (lat > C.pm.max_ns)
        C.pm.max_ns = lat;
    if (!C.pm.first_ns)
        C.pm.first_ns = C.recv_ns;
    C.pm.last_ns = C.recv_ns;
    C.pm.received++;
    s->count++;
    if (C.draining && s->count == C.target)
        C.complete++;
}

static const sse_parser_callbacks_t sse_cb = {on_sse_event, NULL, NULL};

static int sub_complete(const sub_t *s) { return s->phase == C.phase && s->count >= C.target; }

static void sub_close(sub_t *s, int dead)
{
    if (s->ssl) {
        SSL_free(s->ssl);
        s->ssl = NULL;
    }
    if (s->fd >= 0) {
        struct linger lg = {1, 0}; /* RST: no TIME_WAIT left behind */
        setsockopt(s->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        close(s->fd);
        s->fd = -1;
    }
    free(s->hbuf);
    s->hbuf = NULL;
    if (s->state == S_STREAM && dead) {
        if (C.draining && !sub_complete(s))
            C.gone++;
    }
    s->state = S_DEAD;
}

static void sub_start(sub_t *s, long global_index)
{
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0) {
        C.failed++;
        s->state = S_DEAD;
        C.finished++;
        return;
    }
    int one = 1;
    setsockopt(s->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    struct sockaddr_in src = {.sin_family = AF_INET};
    src.sin_addr.s_addr = htonl((127u << 24) | (uint32_t)(2 + global_index % opt.src_ips));
    if (bind(s->fd, (struct sockaddr *)&src, sizeof(src)))
        fprintf(stderr, "loadgen: bind source address: %s\n", strerror(errno));
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)opt.port)};
    inet_pton(AF_INET, opt.host, &dst.sin_addr);
    s->state = S_CONNECTING;
    C.in_flight++;
    if (connect(s->fd, (struct sockaddr *)&dst, sizeof(dst)) && errno != EINPROGRESS) {
        C.failed++;
        C.in_flight--;
        C.finished++;
        sub_close(s, 0);
        return;
    }
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = s};
    extern int child_epfd;
    if (epoll_ctl(child_epfd, EPOLL_CTL_ADD, s->fd, &ev))
        die("epoll_ctl: %s", strerror(errno));
}

int child_epfd = -1;

/* De-chunks (when needed) and feeds the SSE parser. Returns -1 to drop. */
static int sub_body(sub_t *s, const char *p, size_t n)
{
    if (!s->chunked)
        return sse_parser_feed(&s->p, p, n);
    while (n) {
        char c;
        switch (s->cst) {
        case CS_SIZE:
            c = *p++;
            n--;
            if (c >= '0' && c <= '9')
                s->crem = s->crem * 16 + (uint64_t)(c - '0');
            else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
                s->crem = s->crem * 16 + (uint64_t)((c | 0x20) - 'a' + 10);
            else if (c == ';')
                s->cst = CS_EXT;
            else if (c == '\n')
                s->cst = s->crem ? CS_DATA : CS_END;
            else if (c != '\r')
                return -1;
            break;
        case CS_EXT:
            c = *p++;
            n--;
            if (c == '\n')
                s->cst = s->crem ? CS_DATA : CS_END;
            break;
        case CS_DATA: {
            size_t take = n < s->crem ? n : (size_t)s->crem;
            if (sse_parser_feed(&s->p, p, take))
                return -1;
            p += take;
            n -= take;
            s->crem -= take;
            if (!s->crem)
                s->cst = CS_CRLF;
            break;
        }
        case CS_CRLF:
            c = *p++;
            n--;
            if (c == '\n') {
                s->cst = CS_SIZE;
                s->crem = 0;
            }
            break;
        case CS_END:
            return 0;
        }
    }
    return 0;
}

static void head_done(sub_t *s, int ok)
{
    (void)s;
    C.in_flight--;
    C.finished++;
    if (ok) {
        C.held++;
        C.last_ns = now_ns();
    }
}

/* A subscriber that failed before its stream opened (connect, handshake,
 * request, an oversized head): counted failed, its socket closed. */
static void sub_fail(sub_t *s)
{
    C.failed++;
    head_done(s, 0);
    sub_close(s, 0);
}

/* A subscriber whose connection or stream ended: a failure if it had not
 * got its stream yet; either way it is dead. */
static void sub_lost(sub_t *s)
{
    if (s->state != S_STREAM) {
        C.failed++;
        head_done(s, 0);
    }
    sub_close(s, 1);
}

/* Accumulates the response head; on its end, checks the status and hands
 * the rest to the body. */
static void sub_head(sub_t *s, const char *p, size_t n)
{
    if (!s->hbuf && !(s->hbuf = malloc(8192)))
        die("out of memory");
    size_t room = 8191 - s->hlen;
    size_t take = n < room ? n : room;
    memcpy(s->hbuf + s->hlen, p, take);
    s->hlen = (uint16_t)(s->hlen + take);
    s->hbuf[s->hlen] = 0;
    char *end = strstr(s->hbuf, "\r\n\r\n");
    if (!end) {
        if (s->hlen >= 8191)
            sub_fail(s);
        return;
    }
    size_t head_len = (size_t)(end - s->hbuf) + 4;
    if (strncmp(s->hbuf, "HTTP/1.", 7) || atoi(s->hbuf + 9) != 200) {
        C.refused++;
        if (C.refused <= 3) {
            char *eol = strstr(s->hbuf, "\r\n");
            fprintf(stderr, "loadgen: subscribe answered: %.*s\n", (int)(eol - s->hbuf), s->hbuf);
        }
        head_done(s, 0);
        sub_close(s, 0);
        return;
    }
    for (char *h = strstr(s->hbuf, "\r\n"); h && h < end; h = strstr(h + 2, "\r\n"))
        if (!strncasecmp(h + 2, "transfer-encoding:", 18) && strcasestr(h + 2, "chunked") &&
            strcasestr(h + 2, "chunked") < strstr(h + 2, "\r\n"))
            s->chunked = 1;
    s->state = S_STREAM;
    head_done(s, 1);
    /* body bytes that came with the head */
    size_t body_in_buf = s->hlen - head_len;
    const char *body = s->hbuf + head_len;
    int r = sub_body(s, body, body_in_buf);
    if (take < n && r == 0)
        r = sub_body(s, p + take, n - take);
    free(s->hbuf);
    s->hbuf = NULL;
    if (r) {
        fprintf(stderr, "loadgen: stream parse error\n");
        sub_close(s, 1);
    }
}

static char rbuf[1 << 16];

static void sub_handshake(sub_t *s);

static void sub_readable(sub_t *s)
{
    if (s->state == S_HANDSHAKE) {
        sub_handshake(s);
        if (s->state != S_HEAD)
            return;
    }
    for (;;) {
        ssize_t n = conn_recv(s->fd, s->ssl, rbuf, sizeof(rbuf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            sub_lost(s);
            return;
        }
        C.recv_ns = now_ns();
        if (s->state == S_HEAD) {
            sub_head(s, rbuf, (size_t)n);
        } else if (s->state == S_STREAM) {
            if (sub_body(s, rbuf, (size_t)n)) {
                fprintf(stderr, "loadgen: stream parse error\n");
                sub_close(s, 1);
            }
        }
        if (s->state == S_DEAD)
            return;
        /* A short read emptied the socket: the next byte brings a new
         * edge, so no read that would only say EAGAIN. (Not with TLS: a
         * read returns one record, more may wait.) */
        if ((size_t)n < sizeof(rbuf) && !s->ssl)
            return;
    }
}

/* The request is small: one write on a fresh connection takes it all. */
static int sub_send_request(sub_t *s)
{
    if (s->ssl)
        return SSL_write(s->ssl, C.request, (int)C.request_len) == (int)C.request_len ? 0 : -1;
    return write(s->fd, C.request, C.request_len) == (ssize_t)C.request_len ? 0 : -1;
}

/* Connected (and through the handshake): sends the request, then waits for
 * the head. */
static void sub_request(sub_t *s)
{
    if (sub_send_request(s)) {
        sub_fail(s);
        return;
    }
    s->state = S_HEAD;
}

static void sub_handshake(sub_t *s)
{
    ERR_clear_error();
    int r = SSL_do_handshake(s->ssl);
    if (r != 1) {
        int e = SSL_get_error(s->ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
            return;
        if (C.failed < 3)
            fprintf(stderr, "loadgen: TLS handshake failed: %s\n",
                    ERR_reason_error_string(ERR_peek_last_error())
                        ? ERR_reason_error_string(ERR_peek_last_error())
                        : "connection closed");
        sub_fail(s);
        return;
    }
    sub_request(s);
}

static void sub_writable(sub_t *s)
{
    if (s->state == S_HANDSHAKE) {
        sub_handshake(s);
        return;
    }
    if (s->state != S_CONNECTING)
        return;
    int err = 0;
    socklen_t el = sizeof(err);
    getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &el);
    if (err) {
        if (C.failed < 3)
            fprintf(stderr, "loadgen: connect: %s\n", strerror(err));
        sub_fail(s);
        return;
    }
    if (opt.tls) {
        s->ssl = SSL_new(client_ctx);
        if (!s->ssl || SSL_set_fd(s->ssl, s->fd) != 1)
            die("SSL_new: out of memory");
        SSL_set_connect_state(s->ssl);
        s->state = S_HANDSHAKE;
        sub_handshake(s);
        return;
    }
    sub_request(s);
}

/* ---- --h2: subscribers as HTTP/2 streams -------------------------------- */

static int h2_flush(h2c_t *h)
{
    for (;;) {
        while (h->wlen) {
            ssize_t w = write(h->fd, h->wbuf, h->wlen);
            if (w < 0 && errno == EINTR)
                continue;
            if (w < 0 && errno == EAGAIN)
                return 0;
            if (w <= 0)
                return -1;
            memmove(h->wbuf, h->wbuf + w, h->wlen - (size_t)w);
            h->wlen -= (size_t)w;
        }
        const uint8_t *p;
        ssize_t n = nghttp2_session_mem_send(h->ng, &p);
        if (n < 0)
            return -1;
        if (n == 0)
            return 0;
        if (h->wlen + (size_t)n > h->wcap) {
            h->wcap = (h->wlen + (size_t)n) * 2;
            if (!(h->wbuf = realloc(h->wbuf, h->wcap)))
                die("out of memory");
        }
        memcpy(h->wbuf + h->wlen, p, (size_t)n);
        h->wlen += (size_t)n;
    }
}

static int h2_on_header(nghttp2_session *ng, const nghttp2_frame *f, const uint8_t *name, size_t nl,
                        const uint8_t *value, size_t vl, uint8_t flags, void *ud)
{
    (void)flags, (void)ud;
    sub_t *s = nghttp2_session_get_stream_user_data(ng, f->hd.stream_id);
    if (!s || s->state != S_HEAD || nl != 7 || memcmp(name, ":status", 7))
        return 0;
    if (vl == 3 && !memcmp(value, "200", 3)) {
        s->state = S_STREAM;
        head_done(s, 1);
    } else {
        C.refused++;
        if (C.refused <= 3)
            fprintf(stderr, "loadgen: h2 subscribe answered %.*s\n", (int)vl, value);
        head_done(s, 0);
        s->state = S_DEAD;
    }
    return 0;
}

static int h2_on_data(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data, size_t len,
                      void *ud)
{
    (void)flags, (void)ud;
    sub_t *s = nghttp2_session_get_stream_user_data(ng, id);
    if (s && s->state == S_STREAM && sse_parser_feed(&s->p, (const char *)data, len)) {
        fprintf(stderr, "loadgen: stream parse error\n");
        sub_close(s, 1);
    }
    return 0;
}

static int h2_on_close(nghttp2_session *ng, int32_t id, uint32_t code, void *ud)
{
    (void)code, (void)ud;
    sub_t *s = nghttp2_session_get_stream_user_data(ng, id);
    if (!s || s->state == S_DEAD)
        return 0;
    sub_lost(s);
    return 0;
}

static nghttp2_session_callbacks *h2_cbs;

/* The connection is gone: every stream on it is. */
static void h2_dead(h2c_t *h)
{
    for (long i = h->first; i < h->first + h->count; i++) {
        sub_t *s = &C.subs[i];
        if (s->state == S_DEAD)
            continue;
        sub_lost(s);
    }
    if (h->fd >= 0) {
        struct linger lg = {1, 0};
        setsockopt(h->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        close(h->fd);
        h->fd = -1;
    }
}

/* Connected: our SETTINGS (wide windows), then one GET per subscriber. */
static void h2_connected(h2c_t *h)
{
    if (!h2_cbs) {
        nghttp2_session_callbacks_new(&h2_cbs);
        nghttp2_session_callbacks_set_on_header_callback(h2_cbs, h2_on_header);
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(h2_cbs, h2_on_data);
        nghttp2_session_callbacks_set_on_stream_close_callback(h2_cbs, h2_on_close);
    }
    if (nghttp2_session_client_new(&h->ng, h2_cbs, h))
        die("nghttp2_session_client_new");
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, (1u << 30)},
                                   {NGHTTP2_SETTINGS_ENABLE_PUSH, 0}};
    nghttp2_submit_settings(h->ng, NGHTTP2_FLAG_NONE, iv, 2);
    nghttp2_session_set_local_window_size(h->ng, NGHTTP2_FLAG_NONE, 0, (1 << 30));
    char authority[64];
    snprintf(authority, sizeof(authority), "%s:%d", opt.host, opt.port);
#define NV(n, v) {(uint8_t *)(n), (uint8_t *)(v), strlen(n), strlen(v), NGHTTP2_NV_FLAG_NONE}
    nghttp2_nv nva[] = {NV(":method", "GET"), NV(":scheme", "http"), NV(":authority", authority),
                        NV(":path", opt.sub_path), NV("accept", "text/event-stream")};
#undef NV
    for (long i = h->first; i < h->first + h->count; i++) {
        sub_t *s = &C.subs[i];
        int32_t id = nghttp2_submit_request(h->ng, NULL, nva, 5, NULL, s);
        if (id < 0) {
            C.failed++;
            head_done(s, 0);
            s->state = S_DEAD;
            continue;
        }
        s->state = S_HEAD;
    }
    h->connected = 1;
    if (h2_flush(h))
        h2_dead(h);
}

static void h2_event(h2c_t *h, uint32_t events)
{
    if (h->fd < 0)
        return;
    if ((events & EPOLLOUT) && !h->connected) {
        int err = 0;
        socklen_t el = sizeof(err);
        getsockopt(h->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err) {
            if (C.failed < 3)
                fprintf(stderr, "loadgen: connect: %s\n", strerror(err));
            h2_dead(h);
            return;
        }
        h2_connected(h);
        if (h->fd < 0)
            return;
    }
    if (!h->connected)
        return;
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        for (;;) {
            ssize_t n = read(h->fd, rbuf, sizeof(rbuf));
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0 && errno == EAGAIN)
                break;
            if (n <= 0) {
                h2_dead(h);
                return;
            }
            C.recv_ns = now_ns();
            if (nghttp2_session_mem_recv(h->ng, (const uint8_t *)rbuf, (size_t)n) < 0) {
                h2_dead(h);
                return;
            }
            if ((size_t)n < sizeof(rbuf))
                break;
        }
    }
    if (h2_flush(h))
        h2_dead(h);
}

/* Opens one connection for subscribers [first, first+count). */
static void h2_start(h2c_t *h, long first, long count, long global_index)
{
    h->first = first;
    h->count = count;
    for (long i = first; i < first + count; i++) {
        C.subs[i].h2 = h;
        C.subs[i].state = S_CONNECTING;
    }
    C.in_flight += count;
    h->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (h->fd < 0) {
        h2_dead(h);
        return;
    }
    int one = 1;
    setsockopt(h->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(h->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
    struct sockaddr_in src = {.sin_family = AF_INET};
    src.sin_addr.s_addr = htonl((127u << 24) | (uint32_t)(2 + global_index % opt.src_ips));
    bind(h->fd, (struct sockaddr *)&src, sizeof(src));
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)opt.port)};
    inet_pton(AF_INET, opt.host, &dst.sin_addr);
    if (connect(h->fd, (struct sockaddr *)&dst, sizeof(dst)) && errno != EINPROGRESS) {
        h2_dead(h);
        return;
    }
    extern int child_epfd;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET, .data.ptr = h};
    if (epoll_ctl(child_epfd, EPOLL_CTL_ADD, h->fd, &ev))
        die("epoll_ctl: %s", strerror(errno));
}

static void send_ready(int out)
{
    ready_msg_t m = {.type = M_READY,
                     .wanted = (uint32_t)C.n,
                     .held = (uint32_t)C.held,
                     .failed = (uint32_t)C.failed,
                     .refused = (uint32_t)C.refused,
                     .first_ns = C.first_ns,
                     .last_ns = C.last_ns,
                     .cpu_s = cpu_self_s()};
    if (write_all(out, &m, sizeof(m)))
        die("child: cannot report");
    C.ready_sent = 1;
}

static void send_phase(int out)
{
    C.pm.complete = C.complete;
    C.pm.gone = C.gone;
    uint32_t alive = 0;
    for (long i = 0; i < C.n; i++)
        alive += C.subs[i].state == S_STREAM;
    C.pm.alive = alive;
    C.pm.cpu_s = cpu_self_s() - C.cpu_at_begin;
    if (write_all(out, &C.pm, sizeof(C.pm)))
        die("child: cannot report");
    C.draining = 0;
    for (long i = 0; i < C.n; i++) {
        free(C.subs[i].seen);
        C.subs[i].seen = NULL;
        C.subs[i].phase = -1;
    }
}

static void start_drain(const ctrl_msg_t *m)
{
    C.target = m->target;
    C.deadline = m->deadline;
    C.draining = 1;
    C.complete = C.gone = 0;
    for (long i = 0; i < C.n; i++) {
        sub_t *s = &C.subs[i];
        if (sub_complete(s))
            C.complete++;
        else if (s->state != S_STREAM)
            C.gone++;
    }
}

static int child_main(int in, int out, long n, long first_global)
{
    C.n = n;
    C.first_global = first_global;
    C.subs = calloc((size_t)n, sizeof(sub_t));
    child_epfd = epoll_create1(EPOLL_CLOEXEC);
    if (!C.subs || child_epfd < 0)
        die("child: setup");
    char req[1024];
    int rl = snprintf(req, sizeof(req),
                      "GET %s HTTP/1.1\r\nHost: %s:%d\r\nAccept: text/event-stream\r\n"
                      "Cache-Control: no-cache\r\n\r\n",
                      opt.sub_path, opt.host, opt.port);
    C.request = req;
    C.request_len = (size_t)rl;
    for (long i = 0; i < n; i++) {
        C.subs[i].fd = -1;
        C.subs[i].phase = -1;
        sse_parser_init(&C.subs[i].p, &sse_cb, &C.subs[i], 1 << 20);
    }
    long num_h2 = opt.h2 ? (n + opt.h2 - 1) / opt.h2 : 0, next_h2 = 0;
    h2c_t *h2s = num_h2 ? calloc((size_t)num_h2, sizeof(h2c_t)) : NULL;
    if (num_h2 && !h2s)
        die("child: setup");
    struct epoll_event cev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(child_epfd, EPOLL_CTL_ADD, in, &cev);
    int64_t connect_deadline = now_ns() + (int64_t)(opt.connect_timeout_s * 1e9);
    C.first_ns = now_ns();
    C.phase = -1;
    struct epoll_event evs[512];
    int exiting = 0;
    while (!exiting) {
        while (opt.h2 && C.next_to_start < n && C.in_flight < (long)opt.conn_inflight * opt.h2 &&
               now_ns() < connect_deadline) {
            long cnt = n - C.next_to_start < opt.h2 ? n - C.next_to_start : opt.h2;
            h2_start(&h2s[next_h2++], C.next_to_start, cnt, first_global + C.next_to_start);
            C.next_to_start += cnt;
        }
        while (!opt.h2 && C.next_to_start < n && C.in_flight < opt.conn_inflight &&
               now_ns() < connect_deadline) {
            sub_start(&C.subs[C.next_to_start], first_global + C.next_to_start);
            C.next_to_start++;
        }
        if (!C.ready_sent && (C.finished >= n || now_ns() >= connect_deadline)) {
            /* past the deadline, streams still without a head are dropped */
            for (long i = 0; i < n; i++)
                if (C.subs[i].state == S_CONNECTING || C.subs[i].state == S_HANDSHAKE ||
                    C.subs[i].state == S_HEAD) {
                    C.failed++;
                    head_done(&C.subs[i], 0);
                    sub_close(&C.subs[i], 0);
                }
            send_ready(out);
        }
        int k = epoll_wait(child_epfd, evs, 512, 10);
        for (int i = 0; i < k; i++) {
            sub_t *s = evs[i].data.ptr;
            if (!s) {
                ctrl_msg_t m;
                if (read_all(in, &m, sizeof(m), now_ns() + 5000000000LL)) {
                    exiting = 1; /* the coordinator is gone */
                    break;
                }
                if (m.type == C_BEGIN)
                    phase_reset(m.phase, m.planned);
                else if (m.type == C_DRAIN)
                    start_drain(&m);
                else if (m.type == C_EXIT)
                    exiting = 1;
                continue;
            }
            if (opt.h2) {
                h2_event((h2c_t *)(void *)s, evs[i].events);
                continue;
            }
            if (s->state == S_DEAD)
                continue;
            if (evs[i].events & EPOLLOUT)
                sub_writable(s);
            if (s->state != S_DEAD && (evs[i].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)))
                sub_readable(s);
        }
        if (C.draining && (C.complete + C.gone >= (uint32_t)C.held || now_ns() >= C.deadline))
            send_phase(out);
    }
    for (long i = 0; i < n; i++) {
        sub_close(&C.subs[i], 0);
        sse_parser_dispose(&C.subs[i].p);
        free(C.subs[i].seen);
    }
    for (long i = 0; i < next_h2; i++) {
        if (h2s[i].fd >= 0)
            close(h2s[i].fd);
        if (h2s[i].ng)
            nghttp2_session_del(h2s[i].ng);
        free(h2s[i].wbuf);
    }
    free(h2s);
    free(C.subs);
    return 0;
}

/* ---- the publisher (in the coordinator) ---------------------------------- */

#define MAX_PIPELINE 64 /* requests in flight on one publish connection */

typedef struct pconn {
    int fd;
    SSL *ssl;                      /* --tls: over the blocking socket */
    int inflight;                  /* requests sent and not yet answered */
    int head;                      /* sent_ns index of the oldest of them */
    int64_t sent_ns[MAX_PIPELINE]; /* their send times, a ring from head */
    size_t rlen;
    char rbuf[1 << 16];
} pconn_t;

static struct {
    pconn_t c[MAX_PUB_CONNS];
    int m;        /* connections in use */
    int per_conn; /* requests in flight per connection (more than 1: pipelined) */
    long ok, fail;
    int logged;
    uint64_t rtt_hist[NB]; /* publish round trips (request sent to answer read) */
    int64_t rtt_max;
} P;

static int pconn_open(pconn_t *c)
{
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return -1;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    /* --pub-port: publish to another node (cross-node latency with --redis) */
    int port = opt.pub_port ? opt.pub_port : opt.port;
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, opt.host, &dst.sin_addr);
    struct timeval tv = {2, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (connect(c->fd, (struct sockaddr *)&dst, sizeof(dst))) {
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    if (opt.tls) {
        c->ssl = SSL_new(client_ctx);
        if (!c->ssl || SSL_set_fd(c->ssl, c->fd) != 1 || SSL_connect(c->ssl) != 1) {
            ERR_clear_error();
            SSL_free(c->ssl);
            c->ssl = NULL;
            close(c->fd);
            c->fd = -1;
            errno = EPROTO;
            return -1;
        }
    }
    c->rlen = 0;
    c->inflight = 0;
    c->head = 0;
    return 0;
}

/* Closes c; whatever it had in flight counts as failed. */
static void pconn_close(pconn_t *c)
{
    if (c->ssl) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0) {
        struct linger lg = {1, 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        close(c->fd);
    }
    P.fail += c->inflight;
    c->fd = -1;
    c->inflight = 0;
    c->head = 0;
    c->rlen = 0;
}

static void pub_failed(pconn_t *c, const char *why)
{
    if (P.logged++ < 3)
        fprintf(stderr, "loadgen: publish failed: %s\n", why);
    pconn_close(c);
}

/* Sends event `seq` of `phase` on c. */
static void pub_send(pconn_t *c, int phase, long seq)
{
    if (c->fd < 0 && pconn_open(c)) {
        P.fail++;
        if (P.logged++ < 3)
            fprintf(stderr, "loadgen: publish connect: %s\n", strerror(errno));
        return;
    }
    char data[8192], req[16384];
    int64_t t = now_ns();
    int dl = snprintf(data, sizeof(data), "T%lld_P%d_S%ld_", (long long)t, phase, seq);
    while (dl < opt.size && dl < (int)sizeof(data) - 1)
        data[dl++] = 'x';
    data[dl] = 0;
    int rl;
    if (opt.target == T_NCHAN)
        rl = snprintf(req, sizeof(req),
                      "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: text/plain\r\n"
                      "Content-Length: %d\r\n\r\n%s",
                      opt.pub_path, opt.host, dl, data);
    else {
        /* --fresh-topics: an alternate topic per event, as an application's
         * items have, so template subscribers cost a real match per event. */
        char alt[96] = "";
        if (opt.fresh_topics)
            snprintf(alt, sizeof(alt), "&topic=https%%3A%%2F%%2Fexample.com%%2Fitems%%2F%d-%ld", phase, seq);
        rl = snprintf(req, sizeof(req),
                      "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                      "Content-Length: %d\r\n\r\ntopic=%s%s&data=%s",
                      opt.pub_path, opt.host, (int)(strlen(opt.topic) + strlen(alt) + 12 + (size_t)dl),
                      opt.topic, alt, data);
    }
    c->sent_ns[(c->head + c->inflight) % MAX_PIPELINE] = t;
    c->inflight++;
    if (c->ssl ? SSL_write(c->ssl, req, rl) != rl : write_all(c->fd, req, (size_t)rl) != 0)
        pub_failed(c, "write");
}

/* Is a whole response at the front of c->rbuf? Returns its length (0: not
 * yet), and its status and whether the server closes after it. */
static size_t response_complete(pconn_t *c, int *status, int *closes)
{
    c->rbuf[c->rlen] = 0;
    char *end = strstr(c->rbuf, "\r\n\r\n");
    if (!end)
        return 0;
    size_t head = (size_t)(end - c->rbuf) + 4;
    *status = atoi(c->rbuf + 9);
    *closes = 0;
    long cl = -1;
    int chunked = 0;
    for (char *h = strstr(c->rbuf, "\r\n"); h && h < end; h = strstr(h + 2, "\r\n")) {
        if (!strncasecmp(h + 2, "content-length:", 15))
            cl = atol(h + 17);
        else if (!strncasecmp(h + 2, "transfer-encoding:", 18))
            chunked = 1;
        else if (!strncasecmp(h + 2, "connection:", 11) && !strncasecmp(h + 13, " close", 6))
            *closes = 1;
    }
    if (chunked) {
        char *z = strstr(end + 2, "\r\n0\r\n\r\n");
        if (!z && !strncmp(end + 4, "0\r\n\r\n", 5))
            return head + 5;
        return z ? (size_t)(z - c->rbuf) + 7 : 0;
    }
    if (cl < 0)
        cl = 0;
    return c->rlen >= head + (size_t)cl ? head + (size_t)cl : 0;
}

/* Reads what arrived and accounts for every whole answer in it, oldest
 * request first (HTTP/1.1 answers pipelined requests in order). */
static void pub_readable(pconn_t *c)
{
    ssize_t n = c->ssl ? SSL_read(c->ssl, c->rbuf + c->rlen, (int)(sizeof(c->rbuf) - 1 - c->rlen))
                       : read(c->fd, c->rbuf + c->rlen, sizeof(c->rbuf) - 1 - c->rlen);
    if (n <= 0) {
        pub_failed(c, n == 0 ? "server closed the connection" : strerror(errno));
        return;
    }
    c->rlen += (size_t)n;
    int64_t now = now_ns();
    for (;;) {
        int status, closes;
        size_t len = response_complete(c, &status, &closes);
        if (!len) {
            if (c->rlen >= sizeof(c->rbuf) - 1)
                pub_failed(c, "response too large");
            return;
        }
        if (c->inflight == 0) {
            pub_failed(c, "an answer to no request");
            return;
        }
        int64_t rtt = now - c->sent_ns[c->head];
        c->head = (c->head + 1) % MAX_PIPELINE;
        c->inflight--;
        P.rtt_hist[hist_idx(rtt)]++;
        if (rtt > P.rtt_max)
            P.rtt_max = rtt;
        if (status >= 200 && status < 300) {
            P.ok++;
        } else {
            P.fail++;
            if (P.logged++ < 3)
                fprintf(stderr, "loadgen: publish answered %d: %.*s\n", status, (int)len, c->rbuf);
        }
        memmove(c->rbuf, c->rbuf + len, c->rlen - len);
        c->rlen -= len;
        if (closes) {
            pconn_close(c);
            return;
        }
    }
}

/* Publishes `events` events: at `rate`/s (rate > 0) or as fast as `m`
 * requests in flight allow, over `conns` connections (m / conns pipelined
 * on each: --pub-conns). */
static void publish(int phase, long events, double rate, int m, int conns, double max_s)
{
    P.ok = P.fail = 0;
    memset(P.rtt_hist, 0, sizeof(P.rtt_hist));
    P.rtt_max = 0;
    if (m > MAX_PUB_CONNS * MAX_PIPELINE)
        m = MAX_PUB_CONNS * MAX_PIPELINE;
    if (conns < 1 || conns > m)
        conns = m;
    if (conns > MAX_PUB_CONNS)
        conns = MAX_PUB_CONNS;
    P.m = conns;
    P.per_conn = (m + conns - 1) / conns;
    if (P.per_conn > MAX_PIPELINE)
        P.per_conn = MAX_PIPELINE;
    int64_t t0 = now_ns(), deadline = t0 + (int64_t)(max_s * 1e9);
    long sent = 0;
    int64_t interval = rate > 0 ? (int64_t)(1e9 / rate) : 0;
    while ((sent < events || P.ok + P.fail < events) && now_ns() < deadline) {
        int64_t now = now_ns();
        for (int i = 0; i < P.m && sent < events; i++) {
            while (P.c[i].inflight < P.per_conn && sent < events) {
                if (interval && now < t0 + sent * interval)
                    break;
                pub_send(&P.c[i], phase, sent++);
                if (P.c[i].fd < 0)
                    break;
            }
        }
        struct pollfd pfd[MAX_PUB_CONNS];
        int idx[MAX_PUB_CONNS], np = 0;
        for (int i = 0; i < P.m; i++)
            if (P.c[i].inflight > 0) {
                pfd[np] = (struct pollfd){P.c[i].fd, POLLIN, 0};
                idx[np++] = i;
            }
        int timeout = 50;
        if (interval && sent < events) {
            int64_t next = t0 + sent * interval - now_ns();
            timeout = next <= 0 ? 0 : (int)(next / 1000000);
            if (timeout > 50)
                timeout = 50;
        }
        if (np == 0 && timeout == 0)
            continue;
        /* TLS: bytes OpenSSL already holds show no readiness. */
        int pending = 0;
        for (int j = 0; j < np; j++)
            if (P.c[idx[j]].ssl && SSL_pending(P.c[idx[j]].ssl) > 0) {
                pub_readable(&P.c[idx[j]]);
                pending = 1;
            }
        if (pending)
            continue;
        int r = poll(pfd, (nfds_t)np, timeout);
        if (r <= 0)
            continue;
        for (int j = 0; j < np; j++)
            if (pfd[j].revents)
                pub_readable(&P.c[idx[j]]);
    }
    for (int i = 0; i < P.m; i++)
        if (P.c[i].inflight)
            pub_failed(&P.c[i], "no answer before the deadline");
    P.fail += events - sent; /* never sent: the deadline came first */
}

/* ---- the coordinator ----------------------------------------------------- */

typedef struct child {
    pid_t pid;
    int to, from;
    long n;
} child_t;

static child_t kids[MAX_PROCS];
static int num_kids;

static void tell_all(const ctrl_msg_t *m)
{
    for (int i = 0; i < num_kids; i++)
        if (write_all(kids[i].to, m, sizeof(*m)))
            fprintf(stderr, "loadgen: child %d is gone\n", i);
}

static void usage(void)
{
    fprintf(stderr, "usage: loadgen --target courant|nchan|floor --port P -n N [options]\n"
                    "  --host A            server IPv4 address (default 127.0.0.1)\n"
                    "  --sub-path P        subscribe request target\n"
                    "  --pub-path P        publish request target\n"
                    "  --pub-port P        publish to this port (another node) instead of --port\n"
                    "  --topic T           topic (default bench)\n"
                    "  --fresh-topics      courant: each event also gets a topic of its own\n"
                    "  --pids 1,2,3        server processes: RSS and CPU are summed over them\n"
                    "  --per-proc N        subscribers per subscriber process (default 18000)\n"
                    "  --min-procs K       at least K subscriber processes (default 1)\n"
                    "  --rate R --rate-events E      latency phase: E events at R/s\n"
                    "  --rate2 R --rate2-events E    a second latency phase (\"rate2\")\n"
                    "  --burst-events E --inflight M throughput phase: E events, M in flight\n"
                    "  --pub-conns K       burst over K connections (M/K pipelined on each; default M)\n"
                    "  --size B            event data bytes (default 100)\n"
                    "  --timeout S         drain deadline per phase (default 30)\n"
                    "  --connect-timeout S (default 60)   --settle-ms MS (default 1000)\n"
                    "  --labels 'k=v ...'  copied to the front of every RESULT line\n"
                    "  --h2 K              subscribers are HTTP/2 streams, K per connection (h2c)\n"
                    "  --tls               speak TLS on every connection\n");
    exit(2);
}

static void parse_args(int argc, char **argv)
{
    static const struct option lo[] = {{"target", 1, 0, 't'},
                                       {"host", 1, 0, 'H'},
                                       {"port", 1, 0, 'p'},
                                       {"n", 1, 0, 'n'},
                                       {"per-proc", 1, 0, 'k'},
                                       {"sub-path", 1, 0, 's'},
                                       {"pub-path", 1, 0, 'P'},
                                       {"topic", 1, 0, 'T'},
                                       {"pids", 1, 0, 'i'},
                                       {"rate", 1, 0, 'r'},
                                       {"rate-events", 1, 0, 'e'},
                                       {"burst-events", 1, 0, 'b'},
                                       {"inflight", 1, 0, 'm'},
                                       {"size", 1, 0, 'z'},
                                       {"timeout", 1, 0, 'o'},
                                       {"connect-timeout", 1, 0, 'c'},
                                       {"settle-ms", 1, 0, 'S'},
                                       {"labels", 1, 0, 'l'},
                                       {"conn-inflight", 1, 0, 'C'},
                                       {"src-ips", 1, 0, 'I'},
                                       {"min-procs", 1, 0, 'M'},
                                       {"pub-port", 1, 0, 'q'},
                                       {"h2", 1, 0, '2'},
                                       {"tls", 0, 0, 'L'},
                                       {"fresh-topics", 0, 0, 'F'},
                                       {"pub-conns", 1, 0, 'K'},
                                       {"rate2", 1, 0, 'R'},
                                       {"rate2-events", 1, 0, 'E'},
                                       {"help", 0, 0, 'h'},
                                       {0, 0, 0, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "n:", lo, NULL)) != -1) {
        switch (ch) {
        case 't':
            if (!strcmp(optarg, "courant"))
                opt.target = T_COURANT;
            else if (!strcmp(optarg, "nchan"))
                opt.target = T_NCHAN;
            else if (!strcmp(optarg, "floor"))
                opt.target = T_FLOOR;
            else
                usage();
            break;
        case 'H':
            opt.host = optarg;
            break;
        case 'p':
            opt.port = atoi(optarg);
            break;
        case 'q':
            opt.pub_port = atoi(optarg);
            break;
        case 'n':
            opt.n = atol(optarg);
            break;
        case 'k':
            opt.per_proc = atoi(optarg);
            break;
        case 's':
            opt.sub_path = optarg;
            break;
        case 'P':
            opt.pub_path = optarg;
            break;
        case 'T':
            opt.topic = optarg;
            break;
        case 'i':
            for (char *p = optarg; *p && opt.num_pids < MAX_PIDS;) {
                opt.pids[opt.num_pids++] = (int)strtol(p, &p, 10);
                while (*p == ',' || *p == ' ')
                    p++;
            }
            break;
        case 'r':
            opt.rate = atof(optarg);
            break;
        case 'e':
            opt.rate_events = atol(optarg);
            break;
        case 'b':
            opt.burst_events = atol(optarg);
            break;
        case 'm':
            opt.inflight = atoi(optarg);
            break;
        case 'z':
            opt.size = atoi(optarg);
            break;
        case 'o':
            opt.timeout_s = atof(optarg);
            break;
        case 'c':
            opt.connect_timeout_s = atof(optarg);
            break;
        case 'S':
            opt.settle_ms = atoi(optarg);
            break;
        case 'l':
            opt.labels = optarg;
            break;
        case 'C':
            opt.conn_inflight = atoi(optarg);
            break;
        case '2':
            opt.h2 = atoi(optarg);
            break;
        case 'I':
            opt.src_ips = atoi(optarg);
            break;
        case 'L':
            opt.tls = 1;
            break;
        case 'M':
            opt.min_procs = atoi(optarg);
            break;
        case 'F':
            opt.fresh_topics = 1;
            break;
        case 'K':
            opt.pub_conns = atoi(optarg);
            break;
        case 'R':
            opt.rate2 = atof(optarg);
            break;
        case 'E':
            opt.rate2_events = atol(optarg);
            break;
        default:
            usage();
        }
    }
    if (!opt.port || opt.n < 0 || opt.per_proc < 1 || opt.size < 40 || opt.size > 8000 || opt.inflight < 1 ||
        opt.src_ips < 1 || opt.src_ips > 250)
        usage();
    static char sub[512], pub[512];
    if (!opt.sub_path) {
        if (opt.target == T_NCHAN)
            snprintf(sub, sizeof(sub), "/sub?id=%s", opt.topic);
        else
            snprintf(sub, sizeof(sub), "/.well-known/mercure?topic=%s", opt.topic);
        opt.sub_path = sub;
    }
    if (!opt.pub_path) {
        if (opt.target == T_NCHAN)
            snprintf(pub, sizeof(pub), "/pub?id=%s", opt.topic);
        else
            snprintf(pub, sizeof(pub), "/.well-known/mercure");
        opt.pub_path = pub;
    }
}

static void raise_nofile(void)
{
    struct rlimit rl;
    if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    getrlimit(RLIMIT_NOFILE, &rl);
    if ((long)rl.rlim_cur < opt.per_proc + 64) {
        fprintf(stderr, "loadgen: descriptor limit %ld: lowering --per-proc to %ld\n", (long)rl.rlim_cur,
                (long)rl.rlim_cur - 64);
        opt.per_proc = (int)rl.rlim_cur - 64;
    }
}

/* Runs one phase and prints its RESULT line. */
static void run_phase(const char *name, int phase, long events, double rate, int m, long held,
                      long rss_before, long rss_idle)
{
    ctrl_msg_t b = {.type = C_BEGIN, .phase = phase, .planned = (uint32_t)events};
    tell_all(&b);
    usleep(50000); /* let every child read C_BEGIN before the first event */
    double scpu0 = server_cpu_s(), mycpu0 = cpu_self_s();
    int64_t t0 = now_ns();
    double pub_max_s = rate > 0 ? events / rate + opt.timeout_s : opt.timeout_s;
    publish(phase, events, rate, m, rate > 0 ? m : opt.pub_conns, pub_max_s);
    int64_t t_pub_end = now_ns();
    ctrl_msg_t d = {.type = C_DRAIN,
                    .phase = phase,
                    .target = (uint32_t)P.ok,
                    .deadline = now_ns() + (int64_t)(opt.timeout_s * 1e9)};
    tell_all(&d);
    static phase_msg_t pm, sum;
    memset(&sum, 0, sizeof(sum));
    int reported = 0;
    for (int i = 0; i < num_kids; i++) {
        if (read_all(kids[i].from, &pm, sizeof(pm), d.deadline + 10000000000LL) || pm.type != M_PHASE) {
            fprintf(stderr, "loadgen: child %d did not report phase %s\n", i, name);
            continue;
        }
        reported++;
        sum.received += pm.received;
        sum.dups += pm.dups;
        sum.stray += pm.stray;
        sum.foreign += pm.foreign;
        sum.complete += pm.complete;
        sum.gone += pm.gone;
        sum.alive += pm.alive;
        sum.cpu_s += pm.cpu_s;
        if (pm.first_ns && (!sum.first_ns || pm.first_ns < sum.first_ns))
            sum.first_ns = pm.first_ns;
        if (pm.last_ns > sum.last_ns)
            sum.last_ns = pm.last_ns;
        if (pm.max_ns > sum.max_ns)
            sum.max_ns = pm.max_ns;
        for (int k = 0; k < NB; k++)
            sum.hist[k] += pm.hist[k];
    }
    int64_t t_end = now_ns();
    double scpu = server_cpu_s() - scpu0, mycpu = cpu_self_s() - mycpu0;
    if (scpu < 0)
        scpu = 0; /* a server process died during the phase */
    double wall = (t_end - t0) / 1e9;
    double deliver_s = sum.last_ns > t0 ? (sum.last_ns - t0) / 1e9 : 0;
    uint64_t expected = (uint64_t)events * (uint64_t)opt.n;
    uint64_t expected_ok = (uint64_t)P.ok * (uint64_t)held;
    double loss = expected ? 1.0 - (double)sum.received / (double)expected : 0;
    if (loss < 0)
        loss = 0;
    double dps = deliver_s > 0 ? sum.received / deliver_s : 0;
    long rss_now = server_rss_kib();
    printf("RESULT %s target=%s phase=%s n=%ld held=%ld events=%ld pub_ok=%ld pub_fail=%ld "
           "pub_s=%.3f expected=%llu expected_ok=%llu received=%llu loss=%.6f dups=%llu stray=%llu "
           "foreign=%llu subs_alive=%u subs_gone=%u deliver_s=%.3f deliveries_per_s=%.0f "
           "events_per_s=%.1f p50_us=%.0f p90_us=%.0f p99_us=%.0f max_us=%.0f "
           "server_cpu_s=%.3f server_cpu_pct=%.1f gen_cpu_s=%.3f gen_cpu_pct=%.1f "
           "rss_before_kib=%ld rss_idle_kib=%ld rss_after_kib=%ld children_reported=%d "
           "pub_rtt_p50_us=%.0f pub_rtt_p99_us=%.0f pub_rtt_max_us=%.0f pub_conns=%d pub_per_conn=%d\n",
           opt.labels, target_name(), name, opt.n, held, events, P.ok, P.fail, (t_pub_end - t0) / 1e9,
           (unsigned long long)expected, (unsigned long long)expected_ok, (unsigned long long)sum.received,
           loss, (unsigned long long)sum.dups, (unsigned long long)sum.stray, (unsigned long long)sum.foreign,
           sum.alive, sum.gone, deliver_s, dps, held ? dps / (double)held : 0,
           hist_pct_us(sum.hist, sum.received, 0.50), hist_pct_us(sum.hist, sum.received, 0.90),
           hist_pct_us(sum.hist, sum.received, 0.99), sum.max_ns / 1e3, scpu,
           wall > 0 ? 100 * scpu / wall : 0, sum.cpu_s + mycpu,
           wall > 0 ? 100 * (sum.cpu_s + mycpu) / wall : 0, rss_before, rss_idle, rss_now, reported,
           hist_pct_us(P.rtt_hist, (uint64_t)(P.ok + P.fail), 0.5),
           hist_pct_us(P.rtt_hist, (uint64_t)(P.ok + P.fail), 0.99), P.rtt_max / 1e3, P.m, P.per_conn);
    fflush(stdout);
    fprintf(stderr,
            "loadgen: %s %s n=%ld: %llu/%llu delivered (loss %.4f%%), %.0f deliveries/s, "
            "p50 %.0f us p99 %.0f us max %.0f us; publish %.2f s (rtt p50 %.0f us); "
            "server cpu %.0f%%, generator cpu %.0f%%\n",
            target_name(), name, opt.n, (unsigned long long)sum.received, (unsigned long long)expected,
            100 * loss, dps, hist_pct_us(sum.hist, sum.received, 0.5),
            hist_pct_us(sum.hist, sum.received, 0.99), sum.max_ns / 1e3, (t_pub_end - t0) / 1e9,
            hist_pct_us(P.rtt_hist, (uint64_t)(P.ok + P.fail), 0.5), wall > 0 ? 100 * scpu / wall : 0,
            wall > 0 ? 100 * (sum.cpu_s + mycpu) / wall : 0);
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    if (opt.tls)
        tls_client_init();
    signal(SIGPIPE, SIG_IGN);
    raise_nofile();
    for (int i = 0; i < MAX_PUB_CONNS; i++)
        P.c[i].fd = -1;
    int procs = (int)((opt.n + opt.per_proc - 1) / opt.per_proc);
    if (procs < opt.min_procs && opt.n >= 2L * opt.min_procs)
        procs = opt.min_procs;
    if (procs < 1)
        procs = 1;
    if (procs > MAX_PROCS)
        die("-n %ld needs more than %d processes", opt.n, MAX_PROCS);
    long rss_before = server_rss_kib(), pss_before = server_pss_kib();
    double scpu_before = server_cpu_s();
    long given = 0;
    for (int i = 0; i < procs; i++) {
        long share = opt.n / procs + (i < opt.n % procs);
        int to[2], from[2];
        if (pipe2(to, O_CLOEXEC) || pipe2(from, O_CLOEXEC))
            die("pipe: %s", strerror(errno));
        pid_t pid = fork();
        if (pid < 0)
            die("fork: %s", strerror(errno));
        if (pid == 0) {
            for (int j = 0; j < i; j++) {
                close(kids[j].to);
                close(kids[j].from);
            }
            close(to[1]);
            close(from[0]);
            _exit(child_main(to[0], from[1], share, given));
        }
        close(to[0]);
        close(from[1]);
        kids[i] = (child_t){pid, to[1], from[0], share};
        given += share;
        num_kids++;
    }
    /* Wait for every child's READY. */
    long held = 0, failed = 0, refused = 0;
    int64_t first = 0, last = 0;
    double gen_cpu = 0;
    int64_t ready_deadline = now_ns() + (int64_t)((opt.connect_timeout_s + 10) * 1e9);
    for (int i = 0; i < num_kids; i++) {
        ready_msg_t m;
        if (read_all(kids[i].from, &m, sizeof(m), ready_deadline) || m.type != M_READY) {
            fprintf(stderr, "loadgen: child %d did not get ready\n", i);
            continue;
        }
        held += m.held;
        failed += m.failed;
        refused += m.refused;
        if (!first || m.first_ns < first)
            first = m.first_ns;
        if (m.last_ns > last)
            last = m.last_ns;
        gen_cpu += m.cpu_s;
    }
    double connect_s = last > first ? (last - first) / 1e9 : 0;
    double scpu_connect = server_cpu_s() - scpu_before;
    usleep((useconds_t)opt.settle_ms * 1000);
    long rss_idle = server_rss_kib(), pss_idle = server_pss_kib();
    printf("RESULT %s target=%s phase=idle n=%ld held=%ld failed=%ld refused=%ld procs=%d "
           "connect_s=%.3f connects_per_s=%.0f rss_before_kib=%ld rss_idle_kib=%ld "
           "kib_per_sub=%.3f pss_before_kib=%ld pss_idle_kib=%ld pss_kib_per_sub=%.3f "
           "server_cpu_s=%.3f gen_cpu_s=%.3f\n",
           opt.labels, target_name(), opt.n, held, failed, refused, num_kids, connect_s,
           connect_s > 0 ? held / connect_s : 0, rss_before, rss_idle,
           held ? (double)(rss_idle - rss_before) / (double)held : 0, pss_before, pss_idle,
           held ? (double)(pss_idle - pss_before) / (double)held : 0, scpu_connect, gen_cpu);
    fflush(stdout);
    fprintf(stderr,
            "loadgen: %s idle: %ld/%ld held (%ld failed, %ld refused) in %.2f s; RSS %ld -> %ld KiB (%.2f "
            "KiB/sub)\n",
            target_name(), held, opt.n, failed, refused, connect_s, rss_before, rss_idle,
            held ? (double)(rss_idle - rss_before) / (double)held : 0);
    if (opt.rate_events > 0)
        run_phase("rate", 1, opt.rate_events, opt.rate, 4, held, rss_before, rss_idle);
    if (opt.rate2_events > 0 && opt.rate2 > 0)
        run_phase("rate2", 3, opt.rate2_events, opt.rate2, 4, held, rss_before, rss_idle);
    if (opt.burst_events > 0)
        run_phase("burst", 2, opt.burst_events, 0, opt.inflight, held, rss_before, rss_idle);
    ctrl_msg_t x = {.type = C_EXIT};
    tell_all(&x);
    for (int i = 0; i < MAX_PUB_CONNS; i++)
        pconn_close(&P.c[i]);
    int64_t wait_deadline = now_ns() + 10000000000LL;
    for (int i = 0; i < num_kids; i++) {
        int st;
        while (waitpid(kids[i].pid, &st, WNOHANG) == 0) {
            if (now_ns() > wait_deadline) {
                kill(kids[i].pid, SIGKILL);
                waitpid(kids[i].pid, &st, 0);
                break;
            }
            usleep(10000);
        }
    }
    return held == opt.n ? 0 : 1;
}
