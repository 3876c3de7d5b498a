/*
 * io.c - see io.h; the plain socket transport.
 */
#include "io.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

static ssize_t plain_read(io_t *io, char *buf, size_t cap)
{
    ssize_t n;
    do
        n = read(io->fd, buf, cap);
    while (n < 0 && errno == EINTR);
    return n;
}

static ssize_t plain_writev(io_t *io, const struct iovec *iov, int iovcnt)
{
    ssize_t n;
    do
        n = writev(io->fd, iov, iovcnt);
    while (n < 0 && errno == EINTR);
    return n;
}

static int plain_shutdown(io_t *io) { return shutdown(io->fd, SHUT_WR); }

static void plain_close(io_t *io) { io->ctx = NULL; }

const io_ops_t io_plain = {"tcp", plain_read, plain_writev, plain_shutdown, plain_close};
