/*
 * histo_test.c - unit tests for src/histo.c: bucket edges, recording
 * (negative samples, sums), summing several histograms, the quantile
 * estimate against a sorted model, and the Prometheus text (cumulative
 * buckets, _count equal to +Inf, _sum in seconds).
 */
#include "../../src/histo.c"

#include "test.h"

static void test_bucket_edges(void)
{
    ASSERT_EQ(histo_bucket(-5), 0);
    ASSERT_EQ(histo_bucket(0), 0);
    ASSERT_EQ(histo_bucket(10), 0); /* le="0.00001" includes 10 us */
    ASSERT_EQ(histo_bucket(11), 1);
    ASSERT_EQ(histo_bucket(20), 1);
    ASSERT_EQ(histo_bucket(21), 2);
    ASSERT_EQ(histo_bucket(999), 6);
    ASSERT_EQ(histo_bucket(1000), 6);
    ASSERT_EQ(histo_bucket(1001), 7);
    ASSERT_EQ(histo_bucket(10000000), 18);
    ASSERT_EQ(histo_bucket(10000001), 19); /* +Inf */
    ASSERT_EQ(histo_bucket(INT64_MAX), 19);
    for (int i = 1; i < HISTO_BUCKETS - 1; i++) /* ascending, 1-2-5 */
        ASSERT(histo_bounds_us[i] > histo_bounds_us[i - 1] &&
               histo_bounds_us[i] <= histo_bounds_us[i - 1] * 5 / 2);
}

static void test_record_and_sum(void)
{
    static histo_t a, b; /* zeroed */
    histo_record(&a, 5);
    histo_record(&a, 150);
    histo_record(&a, -3); /* a clock read before its stamp: 0 */
    histo_record(&b, 20000000);
    histo_snapshot_t s;
    memset(&s, 0, sizeof(s));
    histo_add_to(&a, &s);
    histo_add_to(&b, &s);
    ASSERT_UEQ(s.count, 4);
    ASSERT_UEQ(s.sum_us, 5 + 150 + 0 + 20000000);
    ASSERT_UEQ(s.counts[0], 2);
    ASSERT_UEQ(s.counts[4], 1); /* 150 us: (100, 200] */
    ASSERT_UEQ(s.counts[19], 1);
}

/* Against a model: the estimate lands in the same bucket as the exact
 * quantile of the sorted samples. */
static void test_quantile_model(void)
{
    static histo_t h;
    memset(&h, 0, sizeof(h));
    int64_t v[1000];
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < 1000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v[i] = (int64_t)(x % 200000); /* up to 200 ms */
        histo_record(&h, v[i]);
    }
    for (int i = 1; i < 1000; i++) /* insertion sort: small */
        for (int j = i; j > 0 && v[j - 1] > v[j]; j--) {
            int64_t t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    histo_snapshot_t s;
    memset(&s, 0, sizeof(s));
    histo_add_to(&h, &s);
    const double qs[] = {0.5, 0.9, 0.99, 1.0};
    for (size_t k = 0; k < sizeof(qs) / sizeof(qs[0]); k++) {
        double est = histo_quantile(&s, qs[k]);
        int64_t exact = v[(int)(qs[k] * 1000) - 1];
        ASSERT_EQ(histo_bucket((int64_t)est), histo_bucket(exact));
    }
    histo_snapshot_t empty;
    memset(&empty, 0, sizeof(empty));
    ASSERT(histo_quantile(&empty, 0.5) < 0);
}

static void test_quantile_inf_bucket(void)
{
    histo_snapshot_t s;
    memset(&s, 0, sizeof(s));
    s.counts[HISTO_BUCKETS - 1] = 3;
    s.count = 3;
    ASSERT_EQ((int64_t)histo_quantile(&s, 0.5), 10000000); /* reported as the last bound */
}

static void test_prometheus_text(void)
{
    histo_snapshot_t s;
    memset(&s, 0, sizeof(s));
    s.counts[0] = 1;
    s.counts[6] = 2;
    s.counts[19] = 1;
    s.count = 4;
    s.sum_us = 12003456;
    char out[4096];
    size_t n = histo_render_prom(&s, "x_seconds", out, sizeof(out));
    out[n] = 0;
    ASSERT(strstr(out, "# TYPE x_seconds histogram\n") == out);
    ASSERT(strstr(out, "x_seconds_bucket{le=\"0.00001\"} 1\n"));
    ASSERT(strstr(out, "x_seconds_bucket{le=\"0.0005\"} 1\n"));
    ASSERT(strstr(out, "x_seconds_bucket{le=\"0.001\"} 3\n"));
    ASSERT(strstr(out, "x_seconds_bucket{le=\"10\"} 3\n"));
    ASSERT(strstr(out, "x_seconds_bucket{le=\"+Inf\"} 4\n"));
    ASSERT(strstr(out, "x_seconds_sum 12.003456\n"));
    ASSERT(strstr(out, "x_seconds_count 4\n"));
    /* A short buffer is cut, never overrun. */
    char small[64];
    memset(small, 'Z', sizeof(small));
    n = histo_render_prom(&s, "x_seconds", small, 40);
    ASSERT(n <= 40);
    ASSERT_EQ(small[40], 'Z');
}

int main(void)
{
    TEST_MAIN_BEGIN();
    TEST_RUN(test_bucket_edges);
    TEST_RUN(test_record_and_sum);
    TEST_RUN(test_quantile_model);
    TEST_RUN(test_quantile_inf_bucket);
    TEST_RUN(test_prometheus_text);
    TEST_MAIN_END();
}
