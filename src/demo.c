/*
 * demo.c - see demo.h.
 */
#include "demo.h"

#include "id.h"

#include <string.h>
#include <time.h>

int demo_publish_tick(hub_t *hub, store_t *store)
{
    char id[ID_UUID_URN_LEN + 1], now[64];
    /* The tick is aimed at a whole second; name that second. time(NULL)
     * reads the coarse clock, which can still say the previous second a
     * few ms after it turned, and two ticks then carried the same stamp
     * (eventsource.test.mjs caught it). Round the precise clock instead. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    time_t t = ts.tv_sec + (ts.tv_nsec >= 500000000L ? 1 : 0);
    struct tm tm;
    localtime_r(&t, &tm);
    size_t n = strftime(now, sizeof(now), "%Y-%m-%d %H:%M:%S", &tm);
    id_new_uuid7(id);
    const char *topic = DEMO_CLOCK_TOPIC;
    size_t topic_len = strlen(topic);
    evbuf_spec_t spec = {
        .id = id, .id_len = strlen(id), .data = now, .data_len = n, .retry = -1,
        .topics = &topic, .topic_lens = &topic_len, .num_topics = 1,
    };
    evbuf_t *ev = evbuf_try_new(&spec);
    if (!ev)
        return -1;
    if (store) {
        if (store_try_submit(store, ev, NULL, NULL, 0)) {
            evbuf_unref(ev);
            return -1;
        }
        return 0;
    }
    hub_publish(hub, ev);
    return 0;
}
