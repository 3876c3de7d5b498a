/*
 * main.c - start-up, the main thread's duties, and shutdown.
 *
 * Threads:
 *   main      parses options, binds the listening sockets, starts the
 *             workers, then waits for signals; once a second it publishes
 *             the demo clock (--demo) and trims history by age.
 *   w0..wN-1  one event loop each (worker.c); each has its own listening
 *             socket per address, bound with SO_REUSEPORT, so the kernel
 *             spreads new connections over the workers.
 *
 * The journal (journal.h), chosen here once: memory (no thread), --store
 * (one more thread, "store": SQLite commits) or --redis (two more, bp-pub
 * and bp-read: every publish goes through a Redis Stream, and every node
 * fans out what it reads back). Publishes, the demo clock and subscription
 * events all go through it.
 *
 * SIGUSR1: with --store, the store thread writes PATH.backup (online backup).
 * SIGTERM/SIGINT: main sets server.stopping and wakes every worker; workers
 * stop accepting, end their streams over about a second (jittered, so
 * clients don't all reconnect at once) and exit; main joins them and exits
 * 0. SIGPIPE is ignored: writes report EPIPE instead.
 */
#include "auth.h"
#include "backplane.h"
#include "config.h"
#include "demo.h"
#include "h1server.h"
#include "hub.h"
#include "journal.h"
#include "log.h"
#include "peer.h"
#include "ratelimit.h"
#include "router.h"
#include "server.h"
#include "siphash.h"
#include "store.h"
#include "subs.h"
#include "worker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_BOUND 16  /* distinct addresses after name resolution */
#define FD_RESERVE 64 /* descriptors kept for epoll, eventfds, listeners, logs */

typedef struct bound {
    struct sockaddr_storage addr;
    socklen_t addr_len;
    int *fds; /* one socket per worker */
} bound_t;

static long raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl))
        return 1024;
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl))
            getrlimit(RLIMIT_NOFILE, &rl);
    }
    return rl.rlim_cur == RLIM_INFINITY ? 1L << 20 : (long)rl.rlim_cur;
}

static int open_listener(const struct sockaddr *sa, socklen_t len)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
    /* Accepted sockets inherit TCP_NODELAY from their listener on Linux (checked:
     * getsockopt on an accepted socket says 1), which saves a setsockopt per
     * connection at accept (worker.c). */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    /* Accept a connection once its first bytes are there, so the worker reads
     * and answers the request in the turn that accepts it (worker.c,
     * first_read): 1,000 subscribers connected in about 390 loop turns
     * instead of 1,050-1,500, 15 ms of CPU instead of 16-20. A client that
     * sends nothing is still accepted after about a second (the kernel's
     * retransmission of the SYN-ACK), then the usual timeouts apply. */
    int defer = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer, sizeof(defer));
    if (sa->sa_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (bind(fd, sa, len) || listen(fd, 4096)) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

static void set_port(struct sockaddr_storage *ss, int port)
{
    if (ss->ss_family == AF_INET)
        ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
}

static void format_addr(const struct sockaddr_storage *ss, char *out, size_t cap)
{
    char host[INET6_ADDRSTRLEN] = "?";
    int port;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
        port = ntohs(a->sin_port);
        snprintf(out, cap, "%s:%d", host, port);
    } else {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
        port = ntohs(a->sin6_port);
        snprintf(out, cap, "[%s]:%d", host, port);
    }
}

/* The workers' sockets all carry SO_REUSEPORT, which would also let them
 * join a group another process holds on the same port. Unless the user asked
 * for that (--reuse-port), first bind once without it: if the port is busy,
 * that bind fails with EADDRINUSE, as users expect. */
static int port_is_free(const struct sockaddr *sa, socklen_t len)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 1; /* let the real bind report the problem */
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (sa->sa_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    int r = bind(fd, sa, len);
    int e = errno;
    close(fd);
    errno = e;
    return r == 0 || e != EADDRINUSE;
}

/* Binds one socket per worker on every address `spec` resolves to. The first
 * socket fixes the port (so ":0" gives all workers the same port). */
static int bind_spec(const char *spec, int workers, int reuse_port, int optional, bound_t *out, int *num_out)
{
    char host[256];
    int port;
    if (config_split_hostport(spec, host, sizeof(host), &port))
        return -1;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *res;
    char portstr[8];
    snprintf(portstr, sizeof(portstr), "%d", port);
    int gai = getaddrinfo(host[0] ? host : NULL, portstr, &hints, &res);
    if (gai) {
        fprintf(stderr, "courant: cannot resolve --listen %s: %s\n", spec, gai_strerror(gai));
        return -1;
    }
    int bound_any = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        if (*num_out == MAX_BOUND)
            break;
        bound_t *b = &out[*num_out];
        memcpy(&b->addr, ai->ai_addr, ai->ai_addrlen);
        b->addr_len = ai->ai_addrlen;
        b->fds = calloc((size_t)workers, sizeof(int));
        int i = 0;
        if (b->fds && !reuse_port && port != 0 && !port_is_free(ai->ai_addr, ai->ai_addrlen)) {
            char a[80];
            format_addr(&b->addr, a, sizeof(a));
            fprintf(stderr, "courant: cannot listen on %s: %s (use --reuse-port to share it)\n", a,
                    strerror(EADDRINUSE));
            free(b->fds);
            freeaddrinfo(res);
            return -1;
        }
        for (; b->fds && i < workers; i++) {
            b->fds[i] = open_listener((struct sockaddr *)&b->addr, b->addr_len);
            if (b->fds[i] < 0)
                break;
            if (i == 0) { /* learn the port the kernel chose for ":0" */
                struct sockaddr_storage got;
                memset(&got, 0, sizeof(got));
                socklen_t gl = sizeof(got);
                if (getsockname(b->fds[0], (struct sockaddr *)&got, &gl) == 0)
                    set_port(&b->addr,
                             ntohs(got.ss_family == AF_INET ? ((struct sockaddr_in *)&got)->sin_port
                                                            : ((struct sockaddr_in6 *)&got)->sin6_port));
            }
        }
        if (!b->fds || i < workers) {
            int e = errno;
            char a[80];
            format_addr(&b->addr, a, sizeof(a));
            while (b->fds && i-- > 0)
                close(b->fds[i]);
            free(b->fds);
            if (optional && (e == EADDRNOTAVAIL || e == EAFNOSUPPORT)) {
                log_warn("not listening on %s: %s", a, strerror(e));
                continue;
            }
            fprintf(stderr, "courant: cannot listen on %s: %s\n", a, strerror(e));
            freeaddrinfo(res);
            return -1;
        }
        (*num_out)++;
        bound_any = 1;
    }
    freeaddrinfo(res);
    return bound_any || optional ? 0 : -1;
}

static int64_t realtime_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for SIGTERM/SIGINT, doing the once-a-second duties meanwhile. */
static int main_loop(server_t *srv, const sigset_t *sigs)
{
    for (;;) {
        /* Sleep to the next whole second, so clock ticks land on it. */
        int64_t now = realtime_ms();
        long wait_ms = 1000 - (long)(now % 1000);
        struct timespec ts = {wait_ms / 1000, (wait_ms % 1000) * 1000000L};
        int sig = sigtimedwait(sigs, NULL, &ts);
        if (sig == SIGTERM || sig == SIGINT)
            return sig;
        if (sig == SIGUSR1) { /* the README's backup procedure */
            journal_request_backup(srv->journal);
            continue;
        }
        if (sig < 0 && errno != EAGAIN && errno != EINTR)
            return -1;
        if (sig < 0 && errno == EAGAIN) {
            if (srv->cfg->demo)
                demo_publish_tick(srv->journal); /* logs why when it fails */
            hub_trim(srv->hub);
        }
    }
}

/* The hub's sinks are the workers' inboxes (hub.h, worker.h). */
static int hub_post_to_worker(void *w, evbuf_t *ev) { return worker_post(w, ev); }
static void hub_wake_worker(void *w) { worker_wake(w); }

/* Chooses the journal (journal.h) and loads its history into the hub.
 * --store: a store that cannot be used is a one-line reason and a refusal
 * to start: running without the durability the user asked for would be
 * worse. --redis: only a bad URL stops courant (an unreachable Redis is
 * retried). Otherwise memory. */
static int open_journal(server_t *srv, const config_t *cfg)
{
    char why[512];
    const char *opt = cfg->store_path ? "--store" : "--redis";
    const char *arg = cfg->store_path ? cfg->store_path : cfg->redis_url;
    if (cfg->store_path)
        srv->journal = store_open(cfg->store_path, (store_sync_t)cfg->sync, cfg->history, cfg->history_age_s,
                                  srv->hub, why, sizeof(why));
    else if (cfg->redis_url)
        srv->journal =
            backplane_open(cfg->redis_url, cfg->redis_stream, cfg->history, srv->hub, why, sizeof(why));
    else if (!(srv->journal = journal_new_memory(srv->hub)))
        snprintf(why, sizeof(why), "out of memory");
    if (!srv->journal || journal_load(srv->journal, why, sizeof(why)) < 0) {
        if (cfg->store_path || cfg->redis_url)
            fprintf(stderr, "courant: cannot use %s %s: %s\n", opt, arg, why);
        else
            fprintf(stderr, "courant: %s\n", why);
        return -1;
    }
    return 0;
}

/* The per-client limits (--max-connections-per-ip, --publish-rate,
 * --subscribe-rate) and the proxies whose client-address header is
 * believed (--trusted-proxy). A bad value is a one-line error. */
static int setup_limits(server_t *srv, const config_t *cfg)
{
    if (cfg->num_trusted_proxies &&
        !(srv->trusted = calloc((size_t)cfg->num_trusted_proxies, sizeof(peer_cidr_t))))
        return -1;
    for (int i = 0; i < cfg->num_trusted_proxies; i++) {
        if (peer_cidr_parse(cfg->trusted_proxies[i], strlen(cfg->trusted_proxies[i]), &srv->trusted[i])) {
            fprintf(
                stderr,
                "courant: --trusted-proxy wants an address or a CIDR range (host bits zero), not \"%s\"\n",
                cfg->trusted_proxies[i]);
            return -1;
        }
        srv->num_trusted++;
    }
    const char *hdr = cfg->trusted_proxy_header ? cfg->trusted_proxy_header : "forwarded";
    if (!strcmp(hdr, "forwarded")) {
        srv->trusted_header = PEER_HEADER_FORWARDED;
    } else if (!strcmp(hdr, "x-forwarded-for")) {
        srv->trusted_header = PEER_HEADER_X_FORWARDED_FOR;
    } else {
        fprintf(stderr, "courant: --trusted-proxy-header wants forwarded or x-forwarded-for, not \"%s\"\n",
                hdr);
        return -1;
    }
    /* Room for as many client addresses as connections (each holds one),
     * and as many rate buckets as that: past it the least recently used
     * bucket is forgotten, never more memory. */
    size_t keys = (size_t)srv->max_connections < 65536 ? 65536 : (size_t)srv->max_connections;
    if ((cfg->max_connections_per_ip &&
         !(srv->conns_per_ip = ratelimit_counter_new((uint32_t)cfg->max_connections_per_ip, keys))) ||
        (cfg->publish_rate && !(srv->publish_rate = ratelimit_new((uint32_t)cfg->publish_rate, 1000,
                                                                  (uint32_t)cfg->publish_rate * 2, keys))) ||
        (cfg->subscribe_rate &&
         !(srv->subscribe_rate = ratelimit_new((uint32_t)cfg->subscribe_rate, 1000,
                                               (uint32_t)cfg->subscribe_rate * 2, keys)))) {
        fprintf(stderr, "courant: out of memory for the rate-limit tables\n");
        return -1;
    }
    return 0;
}

/* One line saying who may publish and subscribe, so a misconfiguration shows. */
static void log_auth_policy(const server_t *srv)
{
    int pub = auth_has_key(srv->auth, AUTH_PUBLISHER), sub = auth_has_key(srv->auth, AUTH_SUBSCRIBER);
    log_info("publish: %s; subscribe: %s", pub ? "JWT (mercure.publish)" : "loopback peers only, no JWT",
             !sub                  ? "anyone (no subscriber key; private updates reach nobody)"
             : srv->cfg->anonymous ? "JWT, or anonymous for public updates"
                                   : "JWT only");
}

int main(int argc, char **argv)
{
    config_t cfg;
    int rc = config_parse(&cfg, argc, argv);
    if (rc) {
        config_dispose(&cfg);
        return rc > 0 ? 0 : 2;
    }
    log_set_level((log_level_t)cfg.log_level);
    /* The hash key for every table keyed by client bytes, before any
     * thread or table exists (siphash.h). */
    if (siphash_seed_init() != 0) {
        fprintf(stderr, "courant: no randomness for the hash key: %s\n", strerror(errno));
        config_dispose(&cfg);
        return 2;
    }
    char *demo_tokens = NULL;
    if (cfg.demo_auth && (!cfg.demo || !(demo_tokens = demo_auth_init(&cfg)))) {
        if (!cfg.demo)
            fprintf(stderr, "courant: --demo-auth goes with --demo\n");
        config_dispose(&cfg);
        return 2;
    }
    auth_t *auth = auth_new(&cfg);
    if (!auth) {
        free(demo_tokens);
        config_dispose(&cfg);
        return 2;
    }
    if (cfg.store_path && cfg.redis_url) {
        /* Two histories could disagree; with --redis the stream is the history. */
        fprintf(stderr,
                "courant: --store and --redis exclude each other: with --redis, Redis holds the history\n");
        auth_free(auth);
        free(demo_tokens);
        config_dispose(&cfg);
        return 2;
    }
    if (cfg.subscriptions && !auth_has_key(auth, AUTH_SUBSCRIBER)) {
        /* Subscription events are private and the API needs a token: without
         * a subscriber key nobody could ever see either. */
        fprintf(stderr, "courant: --subscriptions needs --subscriber-jwt-key (or -file)\n");
        auth_free(auth);
        free(demo_tokens);
        config_dispose(&cfg);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGUSR1);               /* --store: write a backup */
    pthread_sigmask(SIG_BLOCK, &sigs, NULL); /* inherited by the workers */

    long fd_limit = raise_fd_limit();
    server_t srv = {.cfg = &cfg,
                    .handler = &router_handler,
                    .auth = auth,
                    .demo_tokens = demo_tokens,
                    .num_workers = cfg.workers,
                    .started_ms = realtime_ms()};
    long budget = fd_limit - FD_RESERVE - (long)cfg.workers * (2 + CONFIG_MAX_LISTEN);
    if (budget < 16)
        budget = 16;
    srv.max_connections = cfg.max_connections ? cfg.max_connections : budget;
    if (srv.max_connections > budget) {
        log_warn("--max-connections %ld is above what the descriptor limit (%ld) allows; using %ld",
                 srv.max_connections, fd_limit, budget);
        srv.max_connections = budget;
    }
    atomic_init(&srv.open_conns, 0);
    atomic_init(&srv.stopping, 0);
    atomic_init(&srv.body_bytes, 0);

    bound_t bound[MAX_BOUND];
    int num_bound = 0;
    if (setup_limits(&srv, &cfg)) {
        rc = 2;
        goto out;
    }
    /* The store first: a second courant on the same store must be refused
     * for that reason, whatever its port. */
    srv.hub = hub_new(cfg.history, cfg.history_age_s);
    if (!srv.hub) {
        fprintf(stderr, "courant: out of memory\n");
        rc = 1;
        goto out;
    }
    if (open_journal(&srv, &cfg)) {
        rc = 1;
        goto out;
    }
    int defaults = argc > 0 && !getenv("COURANT_LISTEN");
    for (int i = 0; i < cfg.num_listen; i++) {
        /* The default [::1] is optional: a host without IPv6 still starts. */
        int optional = defaults && !strcmp(cfg.listen[i], "[::1]:8000");
        if (bind_spec(cfg.listen[i], cfg.workers, cfg.reuse_port, optional, bound, &num_bound)) {
            rc = 1;
            goto out;
        }
    }
    if (num_bound == 0) {
        fprintf(stderr, "courant: no address to listen on\n");
        rc = 1;
        goto out;
    }
    srv.workers = calloc((size_t)cfg.workers, sizeof(worker_t *));
    if (cfg.subscriptions)
        srv.subs = subs_new(srv.hub, srv.journal, cfg.anonymous_subscription_rate);
    if (!srv.workers || (cfg.subscriptions && !srv.subs)) {
        fprintf(stderr, "courant: out of memory\n");
        rc = 1;
        goto out;
    }
    for (int i = 0; i < cfg.workers; i++) {
        worker_listener_t ls[MAX_BOUND];
        for (int b = 0; b < num_bound; b++) {
            ls[b] = (worker_listener_t){bound[b].fds[i], h1server_accept, h1server_refuse_at_accept, NULL};
            bound[b].fds[i] = -1; /* the worker owns it now */
        }
        if (!(srv.workers[i] = worker_new(i, &srv, ls, num_bound))) {
            rc = 1;
            goto out;
        }
    }
    hub_sink_t sinks[256];
    for (int i = 0; i < cfg.workers; i++)
        sinks[i] = (hub_sink_t){hub_post_to_worker, hub_wake_worker, srv.workers[i]};
    if (hub_try_set_sinks(srv.hub, sinks, cfg.workers)) {
        fprintf(stderr, "courant: out of memory\n");
        rc = 1;
        goto out;
    }
    if (journal_start(srv.journal)) {
        rc = 1;
        goto out;
    }
    int started = 0;
    for (; started < cfg.workers; started++)
        if (worker_start(srv.workers[started]))
            break;
    if (started == cfg.workers) {
        for (int b = 0; b < num_bound; b++) {
            char a[80];
            format_addr(&bound[b].addr, a, sizeof(a));
            log_info("listening on http://%s/", a);
        }
        log_info("courant ready: %d workers, up to %ld connections, history %ld%s", cfg.workers,
                 srv.max_connections, cfg.history, cfg.demo ? ", demo clock on" : "");
        log_auth_policy(&srv);
        if (demo_tokens)
            log_warn(
                "DEMO ONLY: --demo-auth made a random HS256 key; its tokens are served at /demo/tokens.json "
                "to anyone who asks. Never use --demo-auth in production.");
        int sig = main_loop(&srv, &sigs);
        log_info("%s received: draining and stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
    } else {
        rc = 1;
    }
    atomic_store(&srv.stopping, 1);
    for (int i = 0; i < started; i++)
        worker_wake(srv.workers[i]);
    for (int i = 0; i < started; i++)
        worker_join(srv.workers[i]);
    /* After the workers: publishes they accepted while draining are
     * committed (their answers, if the conn is gone, are dropped). */
    journal_stop(srv.journal);
    if (rc == 0)
        log_info("stopped");
out:
    journal_stop(srv.journal); /* posts into the inboxes (acks, hub_publish): before worker_free */
    for (int i = 0; srv.workers && i < cfg.workers; i++)
        worker_free(srv.workers[i]);
    free(srv.workers);
    journal_free(srv.journal);
    subs_free(srv.subs);
    ratelimit_counter_free(srv.conns_per_ip);
    ratelimit_free(srv.publish_rate);
    ratelimit_free(srv.subscribe_rate);
    free(srv.trusted);
    hub_free(srv.hub);
    auth_free(auth);
    free(demo_tokens);
    for (int b = 0; b < num_bound; b++) {
        for (int i = 0; i < cfg.workers; i++)
            if (bound[b].fds[i] >= 0)
                close(bound[b].fds[i]);
        free(bound[b].fds);
    }
    config_dispose(&cfg);
    return rc;
}
