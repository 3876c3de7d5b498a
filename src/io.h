/*
 * io.h - the transport under a connection: read, writev, shutdown, close.
 *
 *   conn ---> io_t { ops, fd, ctx }
 *                     |
 *                     +-- io_plain: read(2) / writev(2) / shutdown(2) on the socket
 *                     +-- (tls.c:   OpenSSL records over the same socket)
 *
 * A connection never calls a socket function itself: everything goes
 * through its io_t, so TLS plugs in here without touching conn.c or the
 * protocols above it (Redis's ConnectionType, h2o's h2o_socket_t).
 *
 * The contract of every implementation, for non-blocking sockets:
 *   read    > 0 bytes read; 0 the peer closed; -1 with errno (EAGAIN: wait
 *           for readiness, which the edge-triggered loop reports)
 *   writev  bytes taken (maybe fewer than offered); -1 with errno (EAGAIN)
 *   shutdown  ends our direction (the peer sees end of stream); 0 or -1
 *   close   frees the transport's state (never the fd: the conn owns it)
 * EINTR is retried inside. `why` on failure is left to errno.
 *
 * A transport with records (TLS) may need the other direction to make
 * progress: a write that waits for readability, a read (a handshake step,
 * an answer to a key update) that waits for writability. It says so in
 * `wants` and returns EAGAIN; conn.c retries the operation when the other
 * readiness arrives. A record whose write was interrupted by EAGAIN must be
 * retried with the same first bytes (OpenSSL's rule): `min_offer` tells the
 * conn to offer at least that many bytes on the next writev, whatever its
 * per-turn budget says.
 *
 * Threads: an io_t belongs to its connection's worker thread.
 */
#ifndef COURANT_IO_H
#define COURANT_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

typedef struct io io_t;

typedef struct io_ops {
    const char *name; /* "tcp", "tls": for logs */
    ssize_t (*read)(io_t *io, char *buf, size_t cap);
    ssize_t (*writev)(io_t *io, const struct iovec *iov, int iovcnt);
    int (*shutdown)(io_t *io);
    void (*close)(io_t *io);
} io_ops_t;

/* io_t.wants */
#define IO_WRITE_WANTS_READABLE 1 /* retry the write when the socket is readable */
#define IO_READ_WANTS_WRITABLE 2  /* retry the read when the socket is writable */

/* 24 bytes, as before TLS: the two small fields sit in the padding after fd
 * (every idle connection carries one io_t). */
struct io {
    const io_ops_t *ops; /* borrows: a static table */
    int fd;              /* borrows: the conn owns and closes it */
    uint16_t min_offer;  /* bytes the next writev must be offered at least (a record to retry, at
                            most 16384); 0: any */
    uint8_t wants;       /* IO_*_WANTS_*: set by the transport with EAGAIN, cleared by conn.c */
    void *ctx;           /* owns (through ops->close): the transport's state, NULL for plain */
};

/* The plain socket. */
extern const io_ops_t io_plain;

static inline ssize_t io_read(io_t *io, char *buf, size_t cap) { return io->ops->read(io, buf, cap); }
static inline ssize_t io_writev(io_t *io, const struct iovec *iov, int n)
{
    return io->ops->writev(io, iov, n);
}
static inline int io_shutdown(io_t *io) { return io->ops->shutdown(io); }
static inline void io_close(io_t *io) { io->ops->close(io); }

#endif
