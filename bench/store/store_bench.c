/*
 * store_bench.c - the publish path's cost in the two embedded stores
 * Debian offers, measured the way courant's store thread writes: events of
 * about 200 bytes appended in groups, one durable commit (fsync) per group.
 *
 *   make bench-store      (or: cc -O2 store_bench.c -lsqlite3 -llmdb)
 *   build/store_bench DIR [EVENTS]
 *
 * For each group size it prints events per second and commits per second
 * for SQLite (WAL, synchronous=FULL: one fsync of the WAL per commit) and
 * LMDB (default flags: fsync of the data pages, then of the meta page).
 * DIR should be on the disk the store will live on: tmpfs makes fsync free
 * and hides the difference that matters.
 */
#include <lmdb.h>
#include <sqlite3.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *why)
{
    fprintf(stderr, "store_bench: %s: %s\n", what, why);
    exit(1);
}

static char payload[200];

static double bench_sqlite(const char *dir, long events, int group)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/bench.sqlite", dir);
    unlink(path);
    char wal[600];
    snprintf(wal, sizeof(wal), "%s-wal", path);
    unlink(wal);
    sqlite3 *db;
    if (sqlite3_open(path, &db) != SQLITE_OK)
        die("sqlite3_open", sqlite3_errmsg(db));
    sqlite3_exec(db,
                 "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA locking_mode=EXCLUSIVE;"
                 "CREATE TABLE events(seq INTEGER PRIMARY KEY, published_ms INTEGER, id TEXT, body BLOB);",
                 NULL, NULL, NULL);
    sqlite3_stmt *ins;
    sqlite3_prepare_v2(db, "INSERT INTO events(published_ms, id, body) VALUES (?, ?, ?)", -1, &ins, NULL);
    double t0 = now_s();
    for (long i = 0; i < events;) {
        sqlite3_exec(db, "BEGIN", NULL, NULL, NULL);
        for (int k = 0; k < group && i < events; k++, i++) {
            char id[64];
            snprintf(id, sizeof(id), "urn:uuid:%016lx", i);
            sqlite3_bind_int64(ins, 1, i);
            sqlite3_bind_text(ins, 2, id, -1, SQLITE_TRANSIENT);
            sqlite3_bind_blob(ins, 3, payload, sizeof(payload), SQLITE_STATIC);
            if (sqlite3_step(ins) != SQLITE_DONE)
                die("sqlite insert", sqlite3_errmsg(db));
            sqlite3_reset(ins);
        }
        if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
            die("sqlite commit", sqlite3_errmsg(db));
    }
    double dt = now_s() - t0;
    sqlite3_finalize(ins);
    sqlite3_close(db);
    unlink(path);
    unlink(wal);
    return (double)events / dt;
}

static double bench_lmdb(const char *dir, long events, int group)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/bench.lmdb", dir);
    char lock[600];
    snprintf(lock, sizeof(lock), "%s-lock", path);
    unlink(path);
    unlink(lock);
    MDB_env *env;
    mdb_env_create(&env);
    mdb_env_set_mapsize(env, (size_t)1 << 30);
    int rc = mdb_env_open(env, path, MDB_NOSUBDIR, 0644);
    if (rc)
        die("mdb_env_open", mdb_strerror(rc));
    MDB_dbi dbi;
    MDB_txn *txn;
    mdb_txn_begin(env, NULL, 0, &txn);
    mdb_dbi_open(txn, NULL, MDB_INTEGERKEY, &dbi);
    mdb_txn_commit(txn);
    double t0 = now_s();
    for (long i = 0; i < events;) {
        if ((rc = mdb_txn_begin(env, NULL, 0, &txn)))
            die("mdb_txn_begin", mdb_strerror(rc));
        for (int k = 0; k < group && i < events; k++, i++) {
            uint64_t key = (uint64_t)i;
            char rec[sizeof(payload) + 64];
            int n = snprintf(rec, sizeof(rec), "urn:uuid:%016lx", i);
            memcpy(rec + n, payload, sizeof(payload));
            MDB_val kv = {sizeof(key), &key}, dv = {(size_t)n + sizeof(payload), rec};
            if ((rc = mdb_put(txn, dbi, &kv, &dv, MDB_APPEND)))
                die("mdb_put", mdb_strerror(rc));
        }
        if ((rc = mdb_txn_commit(txn)))
            die("mdb_txn_commit", mdb_strerror(rc));
    }
    double dt = now_s() - t0;
    mdb_env_close(env);
    unlink(path);
    unlink(lock);
    return (double)events / dt;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: store_bench DIR [EVENTS]\n");
        return 2;
    }
    long events = argc > 2 ? atol(argv[2]) : 20000;
    memset(payload, 'x', sizeof(payload));
    static const int groups[] = {1, 8, 64, 512};
    printf("%-8s %16s %16s\n", "group", "sqlite ev/s", "lmdb ev/s");
    for (size_t g = 0; g < sizeof(groups) / sizeof(groups[0]); g++) {
        long n = groups[g] == 1 ? events / 10 : events; /* one fsync each: keep it short */
        double s = bench_sqlite(argv[1], n, groups[g]);
        double l = bench_lmdb(argv[1], n, groups[g]);
        printf("%-8d %16.0f %16.0f\n", groups[g], s, l);
        fflush(stdout);
    }
    return 0;
}
