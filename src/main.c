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
 * SIGHUP: reload (reload.h): the configuration is re-read and what can
 * change live is applied, without dropping a stream; so
 * that `systemctl reload` (the unit's ExecReload) cannot kill the server.
 * With --tls-cert/--tls-key the reload also reads the certificate and key
 * again (tls_server_reload): new handshakes use them, open connections go
 * on; a pair that does not load is logged and the old one kept.
 * SIGTERM/SIGINT: main sets server.stopping and wakes every worker; workers
 * stop accepting, end their streams over about a second (jittered, so
 * clients don't all reconnect at once) and exit; main joins them and exits
 * 0. SIGPIPE is ignored: writes report EPIPE instead.
 */
#include "accesslog.h"
#include "acme.h"
#include "acmechal.h"
#include "auth.h"
#include "backplane.h"
#include "buildinfo.h"
#include "cli.h"
#include "confdoc.h"
#include "config.h"
#include "dashboard.h"
#include "demo.h"
#include "dialect.h"
#include "h1server.h"
#include "h2server.h"
#include "hub.h"
#include "journal.h"
#include "jwks.h"
#include "jws.h"
#include "log.h"
#include "peer.h"
#include "ratelimit.h"
#include "reload.h"
#include "router.h"
#include "server.h"
#include "siphash.h"
#include "store.h"
#include "subs.h"
#include "tls.h"
#include "worker.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_BOUND 16               /* distinct addresses after name resolution */
#define FD_RESERVE 64              /* descriptors kept for epoll, eventfds, listeners, logs */
#define FD_TABLE_PRESIZE_MAX 65536 /* slots grown at start: 8 bytes each of kernel memory */

typedef struct bound {
    struct sockaddr_storage addr;
    socklen_t addr_len;
    int *fds;      /* one socket per worker */
    int cleartext; /* a --listen-http address: plain HTTP even when the server speaks TLS */
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

/* Grows the kernel's descriptor table to hold `slots` descriptors now, while
 * this process has one thread. The kernel grows the table by doubling, and
 * once threads share it each doubling waits for an RCU grace period
 * (fs/file.c, expand_fdtable: synchronize_rcu when the table is shared),
 * during which every thread that opens a descriptor waits too. Measured:
 * the accept4 that took descriptor 256 waited 13 ms, the one that took 512
 * 6 ms, with both workers idle; at N=1,000 the five doublings were a third
 * of the time 1,000 subscribers took to connect. Capped at
 * FD_TABLE_PRESIZE_MAX slots (512 KiB of kernel memory); a server that holds
 * more pays a grace period per doubling past it, once. */
static void presize_fd_table(long slots)
{
    if (slots > FD_TABLE_PRESIZE_MAX)
        slots = FD_TABLE_PRESIZE_MAX;
    int probe = epoll_create1(EPOLL_CLOEXEC); /* any descriptor to duplicate, no file system needed */
    if (probe < 0)
        return;
    int high = fcntl(probe, F_DUPFD_CLOEXEC, (int)slots - 1); /* the table grows to hold it */
    if (high >= 0)
        close(high);
    close(probe);
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

/* After a reload swapped the configuration: the TLS pair, read again. */
static void reload_tls(void *ctx)
{
    server_t *srv = ctx;
    if (!srv->tls || !srv->cfg->tls_cert)
        return; /* none, or --acme-domain: the ACME thread replaces the certificate */
    char why[512], desc[512];
    if (tls_server_reload(srv->tls, why, sizeof(why))) {
        log_error("SIGHUP: TLS certificate not reloaded, the previous one stays in use: %s", why);
        return;
    }
    tls_server_describe(srv->tls, desc, sizeof(desc));
    log_info("SIGHUP: TLS %s (new handshakes use it)", desc);
}

/* --tls-cert and --tls-key: both or neither, and they must load. */
static int open_tls(server_t *srv, const config_t *cfg)
{
    if (!cfg->tls_cert && !cfg->tls_key)
        return 0;
    if (!cfg->tls_cert || !cfg->tls_key) {
        fprintf(stderr, "courant: --tls-cert and --tls-key go together (%s is missing)\n",
                cfg->tls_cert ? "--tls-key" : "--tls-cert");
        return -1;
    }
    char why[512], desc[512];
    srv->tls = tls_server_new(cfg->tls_cert, cfg->tls_key, why, sizeof(why));
    if (!srv->tls) {
        fprintf(stderr, "courant: %s\n", why);
        return -1;
    }
    tls_server_set_protocols(srv->tls, h1server_accept, srv->h2_take_over);
    tls_server_describe(srv->tls, desc, sizeof(desc));
    log_info("TLS %s; TLS 1.2 and 1.3, ALPN %s", desc, srv->h2_take_over ? "h2 and http/1.1" : "http/1.1");
    return 0;
}

/* After a reload (applied or not): --access-log is re-opened (log
 * rotation), switched, or turned off, as the running config says. A file
 * that cannot be opened keeps the previous target. */
static void reload_access_log(server_t *srv)
{
    char err[512];
    if (accesslog_configure(srv->cfg->access_log, err, sizeof(err)))
        log_warn("SIGHUP: %s; the access log keeps its previous target", err);
}

/* ---- automatic HTTPS (--acme-domain) ------------------------------------------- */

/* The TLS layer's challenge hook (tls.h), answered from the ACME table. */
static int tls_alpn_challenge(void *ctx, const char *name, X509 **cert, EVP_PKEY **key)
{
    return acmechal_tlsalpn01(ctx, name, cert, key);
}

/* The ACME thread's install hook (acme.h): the TLS context is swapped. */
static int acme_install(void *ctx, const char *chain, size_t chain_len, const char *key, size_t key_len,
                        char *why, size_t cap)
{
    server_t *srv = ctx;
    return tls_server_use_pem(srv->tls, chain, chain_len, key, key_len, why, cap);
}

/* --acme-domain: the state directory and account, the certificate to
 * start with (stored, or a temporary self-signed one) as the TLS context.
 * The thread starts later (acme_start), once the listeners are up. */
static int open_acme(server_t *srv, const config_t *cfg, acme_t **out)
{
    char why[768], dir[1024];
    if (!cfg->num_acme_domains)
        return 0;
    if (cfg->tls_cert || cfg->tls_key) {
        fprintf(stderr, "courant: --acme-domain and --tls-cert/--tls-key exclude each other\n");
        return -1;
    }
    const char *ch = cfg->acme_challenge ? cfg->acme_challenge : "auto";
    int challenges;
    if (!strcmp(ch, "auto"))
        challenges = ACME_USE_TLSALPN01 | (cfg->num_listen_http ? ACME_USE_HTTP01 : 0);
    else if (!strcmp(ch, "tls-alpn-01"))
        challenges = ACME_USE_TLSALPN01;
    else if (!strcmp(ch, "http-01") && cfg->num_listen_http)
        challenges = ACME_USE_HTTP01;
    else {
        fprintf(stderr,
                "courant: --acme-challenge wants auto, tls-alpn-01 or http-01 (which needs --listen-http), "
                "not \"%s\"\n",
                ch);
        return -1;
    }
    if (!cfg->acme_state_dir && acme_default_state_dir(cfg->store_path, dir, sizeof(dir))) {
        fprintf(stderr, "courant: the --store path is too long to put the ACME state beside it\n");
        return -1;
    }
    acme_opts_t o = {.directory = cfg->acme_directory,
                     .domains = (const char *const *)cfg->acme_domains,
                     .num_domains = (size_t)cfg->num_acme_domains,
                     .email = cfg->acme_email,
                     .state_dir = cfg->acme_state_dir ? cfg->acme_state_dir : dir,
                     .ca_file = cfg->acme_ca_file,
                     .agree_tos = cfg->acme_agree_tos,
                     .challenges = challenges,
                     .renew_before_s = cfg->acme_renew_before};
    char *chain = NULL, *key = NULL;
    size_t chain_len = 0, key_len = 0;
    int bootstrap = 0;
    if (!(srv->acme_chal = acmechal_new())) {
        fprintf(stderr, "courant: out of memory\n");
        return -1;
    }
    if (!(*out = acme_new(&o, srv->acme_chal, why, sizeof(why))) ||
        acme_initial(*out, &chain, &chain_len, &key, &key_len, &bootstrap, why, sizeof(why)) ||
        !(srv->tls =
              tls_server_new_pem(chain, chain_len, key, key_len,
                                 bootstrap ? "(temporary, self-signed)" : "(ACME)", why, sizeof(why)))) {
        fprintf(stderr, "courant: %s\n", why);
        free(chain);
        free(key);
        return -1;
    }
    OPENSSL_cleanse(key, key_len);
    free(chain);
    free(key);
    tls_server_set_protocols(srv->tls, h1server_accept, srv->h2_take_over);
    tls_server_set_challenge(srv->tls, (challenges & ACME_USE_TLSALPN01) ? tls_alpn_challenge : NULL,
                             srv->acme_chal);
    acme_set_install(*out, acme_install, srv);
    log_info("automatic HTTPS for %d name%s from %s; challenges: %s%s%s", cfg->num_acme_domains,
             cfg->num_acme_domains == 1 ? "" : "s", cfg->acme_directory,
             (challenges & ACME_USE_TLSALPN01) ? "tls-alpn-01" : "", challenges == 3 ? ", " : "",
             (challenges & ACME_USE_HTTP01) ? "http-01" : "");
    return 0;
}

/* Waits for SIGTERM/SIGINT, doing the once-a-second duties meanwhile;
 * SIGHUP reloads (reload.h) with the same argv. */
static int main_loop(server_t *srv, const sigset_t *sigs, int argc, char **argv, const config_t *started)
{
    for (;;) {
        /* Sleep to the next whole second, so clock ticks land on it. */
        int64_t now = realtime_ms();
        long wait_ms = 1000 - (long)(now % 1000);
        struct timespec ts = {wait_ms / 1000, (wait_ms % 1000) * 1000000L};
        int sig = sigtimedwait(sigs, NULL, &ts);
        if (sig == SIGTERM || sig == SIGINT)
            return sig;
        if (sig == SIGHUP) {
            (void)reload_apply(srv, argc, argv, started, reload_tls, srv);
            reload_access_log(srv); /* re-opened even when nothing changed: log rotation */
            continue;
        }
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
 * believed (--trusted-proxy). A bad value is a one-line error. The
 * connection counter always exists, so that a reload can turn the cap on
 * (0 = no cap: counted, never refused). */
static int setup_limits(server_t *srv, const config_t *cfg)
{
    /* Room for as many client addresses as connections (each holds one),
     * and as many rate buckets as that. */
    size_t keys = (size_t)srv->max_connections < 65536 ? 65536 : (size_t)srv->max_connections;
    uint32_t max = cfg->max_connections_per_ip ? (uint32_t)cfg->max_connections_per_ip : UINT32_MAX;
    if (!(srv->conns_per_ip = ratelimit_counter_new(max, keys))) {
        fprintf(stderr, "courant: out of memory for the connection counters\n");
        return -1;
    }
    server_limits_t *l = limits_try_new(cfg, keys);
    atomic_store(&srv->limits, l);
    return l ? 0 : -1;
}

/* One line saying who may publish and subscribe, so a misconfiguration shows. */
static void log_auth_policy(const server_t *srv)
{
    const auth_t *a = srv->auth;
    int pub = auth_has_key(a, AUTH_PUBLISHER), sub = auth_has_key(a, AUTH_SUBSCRIBER);
    log_info("tokens verified: Mercure 1.0 (aud %s) %s for publishers, %s for subscribers; draft-07 %s for "
             "publishers, %s for subscribers",
             auth_resource(a) ? auth_resource(a) : "unknown",
             auth_accepts(a, AUTH_PUBLISHER, DIALECT_V1) ? "yes" : "no (--jwt-issuer or --jwks-url)",
             auth_accepts(a, AUTH_SUBSCRIBER, DIALECT_V1) ? "yes" : "no",
             auth_accepts(a, AUTH_PUBLISHER, DIALECT_CLASSIC) ? "yes" : "no",
             auth_accepts(a, AUTH_SUBSCRIBER, DIALECT_CLASSIC) ? "yes" : "no");
    log_info("publish: %s; subscribe: %s",
             pub ? "JWT (draft-07 mercure.publish, or 1.0 authorization_details)"
                 : "keyless: loopback peers only, and only requests no browser or proxy relayed "
                   "(refused with a foreign Origin, Sec-Fetch-Site: cross-site, Forwarded, X-Forwarded-For "
                   "or Via)",
             !sub                  ? "anyone (no subscriber key; private updates reach nobody)"
             : srv->cfg->anonymous ? "JWT, or anonymous for public updates"
                                   : "JWT only");
    const config_t *c = srv->cfg;
    log_info(
        "limits per client: %ld connections, %ld subscribes/s, %ld publishes/s (0 = none)%s; %zu trusted "
        "prox%s",
        c->max_connections_per_ip, c->subscribe_rate, c->publish_rate,
        c->limit_loopback ? "" : ", loopback exempt", srv->limits->num_trusted,
        srv->limits->num_trusted == 1 ? "y" : "ies");
}

/* --jwks-url: the fetcher thread, started, with a first fetch awaited for
 * a moment (tokens of an issuer whose keys are not in yet are refused, and
 * poke a fetch). Returns 0 (and *out NULL without --jwks-url), or -1 after
 * printing why. */
static int start_jwks(const config_t *cfg, jwks_fetcher_t **out)
{
    *out = NULL;
    if (!cfg->num_jwks_urls)
        return 0;
    const char *urls[CONFIG_MAX_JWKS];
    char *issuers[CONFIG_MAX_JWKS] = {0};
    int n = cfg->num_jwks_urls, rc = -1;
    const char *why = "out of memory";
    jws_algset_t algs = 0;
    if (cfg->access_token_algs && jws_algset_parse(cfg->access_token_algs, &algs, &why))
        algs = 0; /* auth_new reported it already */
    for (int i = 0; i < n; i++) {
        const char *iss;
        size_t il;
        if (config_jwks_url(cfg, i, &iss, &il, &urls[i])) {
            fprintf(stderr, "courant: --jwks-url %s: which issuer? Give ISSUER=URL, or --jwt-issuer\n",
                    cfg->jwks_urls[i]);
            why = NULL;
            goto done;
        }
        if (!(issuers[i] = strndup(iss, il)))
            goto done;
    }
    jwks_fetcher_opts_t o = {.ca_file = cfg->jwks_ca_file, .algs = algs};
    jwks_fetcher_t *f = jwks_fetcher_new(urls, (const char *const *)issuers, (size_t)n, &o, &why);
    if (!f || jwks_fetcher_start(f, &why)) {
        fprintf(stderr, "courant: --jwks-url: %s\n", why);
        jwks_fetcher_free(f);
        why = NULL;
        goto done;
    }
    if (!jwks_fetcher_wait_ready(f, 5000))
        log_warn(
            "--jwks-url: not every JWK Set could be fetched yet; their issuers' tokens are refused until "
            "they are (retried in the background)");
    *out = f;
    rc = 0;
done:
    for (int i = 0; i < n; i++)
        free(issuers[i]);
    if (rc && why && !strcmp(why, "out of memory"))
        fprintf(stderr, "courant: out of memory\n");
    return rc;
}

/* The default resource identifier: the first bound address. */
static int set_listen_url(config_t *cfg, const bound_t *b, int https)
{
    char a[80], url[160];
    format_addr(&b->addr, a, sizeof(a));
    snprintf(url, sizeof(url), "%s://%s/.well-known/mercure", https ? "https" : "http", a);
    free(cfg->listen_url);
    return (cfg->listen_url = strdup(url)) ? 0 : -1;
}

int main(int argc, char **argv)
{
    /* The development client and the generated documents: nothing of the
     * server is started for them. */
    if (argc >= 2) {
        const cli_command_t *cmd = cli_find(argv[1]);
        if (cmd)
            return cli_main(cmd, argc - 1, argv + 1);
        if (!strcmp(argv[1], "--help-man") || !strcmp(argv[1], "--help-config")) {
            if (argv[1][7] == 'm')
                confdoc_write_man(stdout);
            else
                confdoc_write_example(stdout);
            return fflush(stdout) ? 1 : 0;
        }
    }
    config_t cfg;
    int rc = config_parse(&cfg, argc, argv);
    if (rc) {
        config_dispose(&cfg);
        return rc > 0 ? 0 : 2;
    }
    log_set_level((log_level_t)cfg.log_level);
    log_set_format((log_format_t)cfg.log_format);
    /* The hash key for every table keyed by client bytes, before any
     * thread or table exists (siphash.h). */
    if (siphash_seed_init() != 0) {
        fprintf(stderr, "courant: no randomness for the hash key: %s\n", strerror(errno));
        config_dispose(&cfg);
        return 2;
    }
    char *demo_tokens = NULL;
    if (cfg.demo_auth && (!cfg.demo || demo_auth_init(&cfg))) {
        if (!cfg.demo)
            fprintf(stderr, "courant: --demo-auth goes with --demo\n");
        config_dispose(&cfg);
        return 2;
    }
    /* Built now to refuse unusable keys before anything starts; again once
     * the listen address (the default resource identifier) is known. */
    auth_t *auth = auth_new(&cfg);
    char err[512];
    if (!auth || accesslog_configure(cfg.access_log, err, sizeof(err))) {
        if (auth)
            fprintf(stderr, "courant: %s\n", err);
        auth_free(auth);
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
    if (cfg.subscriptions && !auth_has_key(auth, AUTH_SUBSCRIBER) && !cfg.num_jwks_urls) {
        /* Subscription events are private and the API needs a token: without
         * a subscriber key nobody could ever see either. */
        fprintf(stderr, "courant: --subscriptions needs --subscriber-jwt-key (or -file, or --jwks-url)\n");
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
    sigaddset(&sigs, SIGHUP);                /* reload (systemctl reload): must not kill us */
    pthread_sigmask(SIG_BLOCK, &sigs, NULL); /* inherited by the workers */

    long fd_limit = raise_fd_limit();
    server_t srv = {.cfg = &cfg,
                    .handler = &router_handler,
                    .h2_take_over = h2server_take_over,
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
    presize_fd_table(srv.max_connections + FD_RESERVE + (long)cfg.workers * (2 + CONFIG_MAX_LISTEN));
    jwks_fetcher_t *jwks = NULL;
    atomic_init(&srv.open_conns, 0);
    atomic_init(&srv.stopping, 0);
    atomic_init(&srv.body_bytes, 0);

    bound_t bound[MAX_BOUND];
    memset(bound, 0, sizeof(bound));
    int num_bound = 0;
    acme_t *acme = NULL;
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
    if (open_acme(&srv, &cfg, &acme) || open_tls(&srv, &cfg)) {
        rc = 2;
        goto out;
    }
    srv.acme = acme; /* for /metrics */
    if (cfg.num_listen_http && !srv.tls) {
        fprintf(stderr, "courant: --listen-http goes with HTTPS (--tls-cert or --acme-domain)\n");
        rc = 2;
        goto out;
    }
    for (int i = 0; i < cfg.num_listen; i++) {
        /* The default [::1] is optional: a host without IPv6 still starts. */
        int optional = cfg.listen_is_default && !strcmp(cfg.listen[i], "[::1]:8000");
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
    srv.https_port =
        ntohs(bound[0].addr.ss_family == AF_INET ? ((struct sockaddr_in *)&bound[0].addr)->sin_port
                                                 : ((struct sockaddr_in6 *)&bound[0].addr)->sin6_port);
    for (int i = 0, first = num_bound; i < cfg.num_listen_http; i++) {
        if (bind_spec(cfg.listen_http[i], cfg.workers, cfg.reuse_port, 0, bound, &num_bound)) {
            rc = 1;
            goto out;
        }
        for (; first < num_bound; first++)
            bound[first].cleartext = 1;
    }
    if (set_listen_url(&cfg, &bound[0], srv.tls != NULL) || start_jwks(&cfg, &jwks) ||
        !(auth = auth_new(&cfg))) {
        rc = 2;
        goto out;
    }
    auth_set_jwks(auth, jwks);
    auth_free((auth_t *)srv.auth);
    atomic_store(&srv.auth, auth);
    if (cfg.demo_auth && !(srv.demo_tokens = demo_tokens = demo_auth_tokens(&cfg))) {
        fprintf(stderr, "courant: out of memory\n");
        rc = 2;
        goto out;
    }
    srv.workers = calloc((size_t)cfg.workers, sizeof(worker_t *));
    if (cfg.subscriptions)
        srv.subs = subs_new(srv.hub, srv.journal, cfg.anonymous_subscription_rate);
    /* Always made (a few KiB per worker), so that a reload can turn --admin on. */
    srv.dashboard = dashboard_new(&srv);
    srv.worker_tick = dashboard_on_worker_tick;
    srv.worker_tick_ctx = srv.dashboard;
    if (!srv.workers || (cfg.subscriptions && !srv.subs) || !srv.dashboard) {
        fprintf(stderr, "courant: out of memory\n");
        rc = 1;
        goto out;
    }
    for (int i = 0; i < cfg.workers; i++) {
        worker_listener_t ls[MAX_BOUND];
        for (int b = 0; b < num_bound; b++) {
            /* With TLS every listener speaks it; over capacity it just
             * closes (a plaintext 503 would be garbage to a TLS client). */
            ls[b] =
                srv.tls && !bound[b].cleartext
                    ? (worker_listener_t){bound[b].fds[i], tls_accept, NULL, srv.tls}
                    : (worker_listener_t){bound[b].fds[i], h1server_accept, h1server_refuse_at_accept, NULL};
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
            log_info("listening on %s://%s/%s", srv.tls && !bound[b].cleartext ? "https" : "http", a,
                     bound[b].cleartext ? " (ACME HTTP-01 and redirects to https)" : "");
        }
        log_info("courant ready: %d workers, up to %ld connections, history %ld%s; version %s, pid %d",
                 cfg.workers, srv.max_connections, cfg.history, cfg.demo ? ", demo clock on" : "",
                 courant_version(), (int)getpid());
        log_auth_policy(&srv);
        char why[256];
        if (acme && acme_start(acme, why, sizeof(why)))
            log_error("acme: %s; the certificate will not be renewed", why);
        if (demo_tokens)
            log_warn(
                "DEMO ONLY: --demo-auth made a random HS256 key; its tokens are served at /demo/tokens.json "
                "to anyone who asks. Never use --demo-auth in production.");
        int sig = main_loop(&srv, &sigs, argc, argv, &cfg);
        log_info("%s received: draining and stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
        if (acme)
            acme_stop(acme); /* no certificate swap while the workers drain */
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
    dashboard_free(srv.dashboard); /* after the workers: closing their conns ends the feeds */
    journal_free(srv.journal);
    subs_free(srv.subs);
    ratelimit_counter_free(srv.conns_per_ip);
    limits_free((server_limits_t *)srv.limits);
    hub_free(srv.hub);
    auth_free((auth_t *)srv.auth); /* the running keys: a reload may have replaced `auth` */
    jwks_fetcher_free(jwks);       /* after every auth_t that borrows it */
    reload_dispose(&srv, &cfg);
    acme_free(acme);          /* its thread installs into srv.tls: before it goes */
    tls_server_free(srv.tls); /* after the workers: their conns held the SSL_CTX */
    acmechal_free(srv.acme_chal);
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
