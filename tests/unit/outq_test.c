/*
 * outq_test.c - the output queue against a naive model (one byte string of
 * everything queued), with the worker's back-to-back copies (wref.h): slices
 * of one block that follow each other merge into one item, and whatever is
 * merged, gathered, cut and consumed, the bytes that come out are the bytes
 * that went in, and every count (wref, block, evbuf) returns to where it
 * started.
 */
#include "../../src/outq.c"

#include "test.h"

static evbuf_t *make_event(int i)
{
    char id[32], data[64];
    snprintf(id, sizeof(id), "id-%d", i);
    snprintf(data, sizeof(data), "event %d %.*s", i, i % 40, "........................................");
    const char *topic = "t";
    size_t tlen = 1;
    evbuf_spec_t spec = {.id = id,
                         .id_len = strlen(id),
                         .data = data,
                         .data_len = strlen(data),
                         .retry = -1,
                         .topics = &topic,
                         .topic_lens = &tlen,
                         .num_topics = 1};
    evbuf_t *ev = evbuf_try_new(&spec);
    if (!ev)
        abort();
    return ev;
}

/* Everything the queue would write, in order (gather and consume it all). */
static size_t drain_all(outq_t *q, char *out, size_t cap, size_t step)
{
    size_t n = 0;
    while (!outq_empty(q)) {
        struct iovec iov[8];
        int k = outq_gather(q, iov, 8, step);
        size_t took = 0;
        for (int i = 0; i < k; i++) {
            if (n + iov[i].iov_len > cap)
                abort();
            memcpy(out + n, iov[i].iov_base, iov[i].iov_len);
            n += iov[i].iov_len;
            took += iov[i].iov_len;
        }
        outq_consume(q, took);
    }
    return n;
}

static void test_adjacent_copies_merge(void)
{
    wref_pool_t pool;
    wref_pool_init(&pool);
    outq_t q;
    outq_init(&q, &pool);
    evbuf_t *ev[3];
    wref_t *w[3];
    char want[4096];
    size_t wl = 0;
    for (int i = 0; i < 3; i++) {
        ev[i] = make_event(i);
        w[i] = wref_new(&pool, ev[i]);
        w[i]->live = 1;
        wblock_t *b;
        const char *at = wref_copy(&pool, w[i], ev[i]->chunked, ev[i]->chunked_len, &b);
        ASSERT(at != NULL);
        ASSERT(b == pool.open);
        /* a second subscriber gets the same copy */
        wblock_t *b2;
        ASSERT(wref_copy(&pool, w[i], ev[i]->chunked, ev[i]->chunked_len, &b2) == at && b2 == b);
        /* another range of the same event is not copied */
        ASSERT(wref_copy(&pool, w[i], ev[i]->bytes, ev[i]->len, &b2) == NULL);
        outq_push_block(&q, b, at, ev[i]->chunked_len);
        memcpy(want + wl, ev[i]->chunked, ev[i]->chunked_len);
        wl += ev[i]->chunked_len;
    }
    ASSERT_UEQ(q.count, 1); /* three events, one iovec */
    ASSERT_UEQ(q.bytes, wl);
    ASSERT(outq_tail_block(&q) == pool.open);
    ASSERT_UEQ(pool.open->refs, 2); /* the pool's and the one item's */
    for (int i = 0; i < 3; i++) {
        wref_release_unused(&pool, w[i]); /* the copies live on in the block */
        evbuf_unref(ev[i]);
    }
    char got[4096];
    size_t gl = drain_all(&q, got, sizeof(got), 7); /* cut in 7-byte writes */
    ASSERT_UEQ(gl, wl);
    ASSERT(memcmp(got, want, wl) == 0);
    ASSERT_UEQ(pool.open->refs, 1);
    outq_dispose(&q);
    wref_pool_dispose(&pool);
}

static void test_copy_rules(void)
{
    wref_pool_t pool;
    wref_pool_init(&pool);
    evbuf_t *ev = make_event(1);
    wref_t *w = wref_new(&pool, ev);
    wblock_t *b;
    ASSERT(wref_copy(&pool, w, ev->chunked, ev->chunked_len, &b) == NULL); /* a replay: not copied */
    w->live = 1;
    static char big[WBLOCK_COPY_MAX + 1];
    ASSERT(wref_copy(&pool, w, big, sizeof(big), &b) == NULL); /* too big to be worth it */
    wref_release_unused(&pool, w);
    /* filling blocks: a full block is replaced, and freed (kept as a spare)
     * once its last slice is written */
    outq_t q;
    outq_init(&q, &pool);
    wblock_t *first = NULL;
    int blocks = 0;
    for (int i = 0; i < 5000; i++) {
        w = wref_new(&pool, ev);
        w->live = 1;
        const char *at = wref_copy(&pool, w, ev->chunked, ev->chunked_len, &b);
        ASSERT(at != NULL);
        if (!first)
            first = b;
        if (b != first && blocks == 0) {
            blocks = 1;
            ASSERT_UEQ(first->refs, 1); /* only our queue's item: the pool let go */
        }
        outq_push_block(&q, b, at, ev->chunked_len);
        wref_release_unused(&pool, w);
    }
    ASSERT(blocks == 1);
    ASSERT(q.count >= 2); /* one item per block */
    char *out = malloc(5000 * 128);
    size_t n = drain_all(&q, out, 5000 * 128, 1 << 20);
    ASSERT_UEQ(n, 5000 * (size_t)ev->chunked_len);
    ASSERT(memcmp(out + n - ev->chunked_len, ev->chunked, ev->chunked_len) == 0);
    free(out);
    ASSERT(pool.num_spare_blocks >= 1);
    outq_dispose(&q);
    evbuf_unref(ev);
    wref_pool_dispose(&pool);
}

/* Random pushes of every kind and random partial writes, against a model. */
static void test_against_model(void)
{
    wref_pool_t pool;
    wref_pool_init(&pool);
    outq_t q;
    outq_init(&q, &pool);
    enum { EVENTS = 64 };
    evbuf_t *ev[EVENTS];
    for (int i = 0; i < EVENTS; i++)
        ev[i] = make_event(i);
    size_t model_cap = 1 << 22, ml = 0, mo = 0;
    char *model = malloc(model_cap), *got = malloc(model_cap);
    size_t gl = 0;
    unsigned seed = 42;
    wref_t *open_w[EVENTS] = {0}; /* this "batch"'s wrefs, as stream_fanout holds them */
    for (int step = 0; step < 20000 && ml + 4096 < model_cap; step++) {
        seed = seed * 1103515245u + 12345u;
        unsigned r = seed >> 8;
        int i = (int)(r % EVENTS);
        switch (r % 5) {
        case 0:
            outq_push_static(&q, "static:", 7);
            memcpy(model + ml, "static:", 7);
            ml += 7;
            break;
        case 1: {
            char *h = strdup("heap!");
            outq_push_heap(&q, h, 5);
            memcpy(model + ml, "heap!", 5);
            ml += 5;
            break;
        }
        case 2: {
            wref_t *w = wref_new(&pool, ev[i]);
            outq_push_event(&q, w, ev[i]->bytes, ev[i]->len);
            memcpy(model + ml, ev[i]->bytes, ev[i]->len);
            ml += ev[i]->len;
            break;
        }
        case 3: { /* a copied event; batches end at random */
            if (!open_w[i]) {
                open_w[i] = wref_new(&pool, ev[i]);
                open_w[i]->live = 1;
            }
            wblock_t *b;
            const char *at = wref_copy(&pool, open_w[i], ev[i]->chunked, ev[i]->chunked_len, &b);
            ASSERT(at != NULL);
            outq_push_block(&q, b, at, ev[i]->chunked_len);
            memcpy(model + ml, ev[i]->chunked, ev[i]->chunked_len);
            ml += ev[i]->chunked_len;
            if ((r >> 12) % 4 == 0) /* end of a batch: its wrefs go */
                for (int k = 0; k < EVENTS; k++)
                    if (open_w[k]) {
                        if (open_w[k]->refs == 0)
                            wref_release_unused(&pool, open_w[k]);
                        open_w[k] = NULL;
                    }
            break;
        }
        default: { /* a partial write */
            struct iovec iov[4];
            int k = outq_gather(&q, iov, 4, (r >> 4) % 300 + 1);
            size_t took = 0;
            for (int j = 0; j < k; j++) {
                memcpy(got + gl, iov[j].iov_base, iov[j].iov_len);
                gl += iov[j].iov_len;
                took += iov[j].iov_len;
            }
            outq_consume(&q, took);
            mo += took;
            break;
        }
        }
        ASSERT_UEQ(q.bytes, ml - mo);
    }
    gl += drain_all(&q, got + gl, model_cap - gl, 97);
    ASSERT_UEQ(gl, ml);
    ASSERT(memcmp(got, model, ml) == 0);
    for (int k = 0; k < EVENTS; k++)
        if (open_w[k] && open_w[k]->refs == 0)
            wref_release_unused(&pool, open_w[k]);
    ASSERT(pool.open == NULL || pool.open->refs == 1);
    for (int i = 0; i < EVENTS; i++) {
        ASSERT_UEQ(atomic_load(&ev[i]->refs), 1); /* every wref let go */
        evbuf_unref(ev[i]);
    }
    outq_dispose(&q);
    wref_pool_dispose(&pool);
    free(model);
    free(got);
}

/* Each event a written block slice holds is reported once, with its own
 * post time, when the item's last byte is written (the write latency). */
typedef struct seen {
    int64_t ns[16];
    int n;
} seen_t;

static void on_block_event(void *ctx, int64_t hub_ns)
{
    seen_t *s = ctx;
    s->ns[s->n++] = hub_ns;
}

static void on_written(void *ctx, const outq_item_t *it)
{
    if (it->kind == OUTQ_BLOCK)
        wblock_each_event(it->block, it->ptr, it->len, on_block_event, ctx);
}

static void test_block_events_timed(void)
{
    wref_pool_t pool;
    wref_pool_init(&pool);
    outq_t a, b;
    outq_init(&a, &pool);
    outq_init(&b, &pool);
    for (int i = 0; i < 4; i++) {
        evbuf_t *ev = make_event(i);
        ev->hub_ns = 1000 + i;
        wref_t *w = wref_new(&pool, ev);
        w->live = 1;
        wblock_t *blk;
        const char *at = wref_copy(&pool, w, ev->chunked, ev->chunked_len, &blk);
        ASSERT(at != NULL);
        outq_push_block(&a, blk, at, ev->chunked_len); /* a: all four, one item */
        if (i >= 2)
            outq_push_block(&b, blk, at, ev->chunked_len); /* b: the last two only */
        wref_release_unused(&pool, w);
        evbuf_unref(ev);
    }
    ASSERT_UEQ(a.count, 1);
    ASSERT_UEQ(b.count, 1);
    seen_t sa = {0}, sb = {0};
    outq_consume_notify(&a, a.bytes - 1, on_written, &sa);
    ASSERT_EQ(sa.n, 0); /* not its last byte yet */
    outq_consume_notify(&a, 1, on_written, &sa);
    ASSERT_EQ(sa.n, 4);
    for (int i = 0; i < 4; i++)
        ASSERT_EQ(sa.ns[i], 1000 + i);
    outq_consume_notify(&b, b.bytes, on_written, &sb);
    ASSERT_EQ(sb.n, 2);
    ASSERT_EQ(sb.ns[0], 1002);
    ASSERT_EQ(sb.ns[1], 1003);
    outq_dispose(&a);
    outq_dispose(&b);
    wref_pool_dispose(&pool);
}

int main(void)
{
    TEST_MAIN_BEGIN();
    TEST_RUN(test_adjacent_copies_merge);
    TEST_RUN(test_copy_rules);
    TEST_RUN(test_against_model);
    TEST_RUN(test_block_events_timed);
    TEST_MAIN_END();
}
