/* Lock leases and fences through the C API: every function, good and bad
 * arguments, a manual-clock table for deterministic time, and two threads
 * handing a lock off on the monotonic clock. */
#include <pthread.h>
#include <time.h>

#include "check.h"

#define SEC 1000000000ull
#define MS 1000000ull

static const char BAD_UTF8[] = {'r', (char)0xff};

static void sentinel(qk_lease *l) {
    l->token = SENTINEL_U64;
    l->expires_at_ns = SENTINEL_U64;
    l->mode = SENTINEL_U32;
}

static int untouched(const qk_lease *l) {
    return l->token == SENTINEL_U64 && l->expires_at_ns == SENTINEL_U64 && l->mode == SENTINEL_U32;
}

static void test_codes(void) {
    CHECK(QK_ERR_TIMEOUT == 12 && QK_ERR_LEASE_EXPIRED == 13 && QK_ERR_NOT_HOLDER == 14 &&
          QK_ERR_STALE_TOKEN == 15 && QK_ERR_BUSY == 16);
    CHECK(strcmp(qk_status_str(QK_ERR_TIMEOUT), "timed out") == 0);
    CHECK(strcmp(qk_status_str(QK_ERR_LEASE_EXPIRED), "lease expired") == 0);
    CHECK(strcmp(qk_status_str(QK_ERR_NOT_HOLDER), "not the holder") == 0);
    CHECK(strcmp(qk_status_str(QK_ERR_STALE_TOKEN), "stale token") == 0);
    CHECK(strcmp(qk_status_str(QK_ERR_BUSY), "busy") == 0);
    CHECK(strcmp(qk_status_str(11), "unknown status") == 0);
    CHECK(QK_LEASE_EXCLUSIVE == 0 && QK_LEASE_SHARED == 1 && QK_TIMEOUT_FOREVER == UINT64_MAX);
}

static void test_fence(void) {
    CHECK_ERR(qk_fence_new(NULL, NULL), QK_ERR_NULL_ARG);
    qk_fence *f = NULL;
    REQUIRE(qk_fence_new(&f, NULL) == QK_OK && f != NULL);
    uint64_t h = SENTINEL_U64;
    CHECK_ERR(qk_fence_highest(f, STR("db"), &h, NULL), QK_ERR_NOT_FOUND);
    CHECK(h == SENTINEL_U64);
    CHECK_OK(qk_fence_check(f, STR("db"), 5, NULL));
    CHECK_OK(qk_fence_check(f, STR("db"), 5, NULL)); /* the same holder again */
    CHECK_OK(qk_fence_check(f, STR("db"), 7, NULL));
    CHECK_ERR(qk_fence_check(f, STR("db"), 6, NULL), QK_ERR_STALE_TOKEN);
    CHECK(strstr(qk_last_error_message(), "stale fencing token 6") != NULL);
    CHECK_OK(qk_fence_check(f, STR("other"), 1, NULL)); /* per resource */
    CHECK_OK(qk_fence_highest(f, STR("db"), &h, NULL));
    CHECK(h == 7);
    CHECK_ERR(qk_fence_check(NULL, STR("db"), 9, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_fence_check(f, NULL, 2, 9, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_fence_check(f, BAD_UTF8, 2, 9, NULL), QK_ERR_INVALID_UTF8);
    CHECK_ERR(qk_fence_highest(f, STR("db"), NULL, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_fence_highest(NULL, STR("db"), &h, NULL), QK_ERR_NULL_ARG);
    qk_fence_free(f);
    qk_fence_free(NULL);
}

static void test_manual_table(void) {
    qk_lease_table *t = NULL;
    CHECK_ERR(qk_lease_table_new_manual(0, 1000, NULL, NULL), QK_ERR_NULL_ARG);
    REQUIRE(qk_lease_table_new_manual(0, 1000, &t, NULL) == QK_OK && t != NULL);
    uint64_t now = 0;
    CHECK_OK(qk_lease_table_now(t, &now, NULL));
    CHECK(now == 1000);
    CHECK_ERR(qk_lease_table_now(t, NULL, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_lease_table_now(NULL, &now, NULL), QK_ERR_NULL_ARG);

    qk_lease a, l;
    CHECK_OK(qk_lease_table_try_acquire(t, STR("job"), STR("a"), SEC, QK_LEASE_EXCLUSIVE, &a, NULL));
    CHECK(a.token == 1 && a.expires_at_ns == 1000 + SEC && a.mode == QK_LEASE_EXCLUSIVE);

    /* Busy, timeouts and bad arguments leave the out-parameter alone. */
    sentinel(&l);
    CHECK_ERR(qk_lease_table_try_acquire(t, STR("job"), STR("b"), SEC, QK_LEASE_SHARED, &l, NULL),
              QK_ERR_BUSY);
    CHECK_ERR(qk_lease_table_acquire(t, STR("job"), STR("b"), SEC, QK_LEASE_EXCLUSIVE, 0, &l, NULL),
              QK_ERR_TIMEOUT);
    CHECK_ERR(qk_lease_table_acquire(t, STR("x"), STR("b"), 0, QK_LEASE_EXCLUSIVE, 0, &l, NULL),
              QK_ERR_INVALID_ARG);
    CHECK(strstr(qk_last_error_message(), "ttl") != NULL);
    CHECK_ERR(qk_lease_table_try_acquire(t, STR("x"), STR("b"), 0, QK_LEASE_SHARED, &l, NULL),
              QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_lease_table_try_acquire(t, STR("x"), STR("b"), SEC, 7, &l, NULL), QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_lease_table_try_acquire(t, STR(""), STR("b"), SEC, 0, &l, NULL), QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_lease_table_try_acquire(t, STR("x"), STR(""), SEC, 0, &l, NULL), QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_lease_table_try_acquire(t, BAD_UTF8, 2, STR("b"), SEC, 0, &l, NULL),
              QK_ERR_INVALID_UTF8);
    CHECK_ERR(qk_lease_table_acquire(t, STR("x"), BAD_UTF8, 2, SEC, 0, 0, &l, NULL),
              QK_ERR_INVALID_UTF8);
    CHECK_ERR(qk_lease_table_try_acquire(NULL, STR("x"), STR("b"), SEC, 0, &l, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_lease_table_try_acquire(t, NULL, 1, STR("b"), SEC, 0, &l, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_lease_table_acquire(t, STR("x"), NULL, 1, SEC, 0, 0, &l, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_lease_table_acquire(t, STR("x"), STR("b"), SEC, 0, 0, NULL, NULL), QK_ERR_NULL_ARG);
    CHECK(untouched(&l));

    /* Renew and release: the holder only. */
    CHECK_ERR(qk_lease_table_renew(t, STR("job"), STR("mallory"), a.token, SEC, &l, NULL),
              QK_ERR_NOT_HOLDER);
    CHECK_ERR(qk_lease_table_renew(t, STR("job"), STR("a"), 999, SEC, &l, NULL), QK_ERR_NOT_HOLDER);
    CHECK_ERR(qk_lease_table_renew(t, STR("nope"), STR("a"), a.token, SEC, &l, NULL),
              QK_ERR_NOT_HOLDER);
    CHECK_ERR(qk_lease_table_renew(t, STR("job"), STR("a"), a.token, 0, &l, NULL), QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_lease_table_renew(t, STR("job"), STR("a"), a.token, SEC, NULL, NULL),
              QK_ERR_NULL_ARG);
    CHECK_ERR(qk_lease_table_renew(t, BAD_UTF8, 2, STR("a"), a.token, SEC, &l, NULL),
              QK_ERR_INVALID_UTF8);
    CHECK_ERR(qk_lease_table_release(t, STR("job"), STR("mallory"), a.token, NULL), QK_ERR_NOT_HOLDER);
    CHECK_ERR(qk_lease_table_release(NULL, STR("job"), STR("a"), a.token, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_lease_table_release(t, STR("job"), BAD_UTF8, 2, a.token, NULL), QK_ERR_INVALID_UTF8);
    CHECK(untouched(&l));
    CHECK_OK(qk_lease_table_set_time(t, 1000 + SEC / 2, NULL));
    CHECK_OK(qk_lease_table_renew(t, STR("job"), STR("a"), a.token, SEC, &l, NULL));
    CHECK(l.token == a.token && l.expires_at_ns == 1000 + SEC / 2 + SEC);

    /* Expiry: renew and release then say LEASE_EXPIRED, until superseded. */
    CHECK_OK(qk_lease_table_set_time(t, 1000 + 2 * SEC, NULL));
    CHECK_ERR(qk_lease_table_renew(t, STR("job"), STR("a"), a.token, SEC, &l, NULL),
              QK_ERR_LEASE_EXPIRED);
    CHECK_ERR(qk_lease_table_release(t, STR("job"), STR("a"), a.token, NULL), QK_ERR_LEASE_EXPIRED);
    qk_lease b;
    CHECK_OK(qk_lease_table_try_acquire(t, STR("job"), STR("b"), SEC, QK_LEASE_SHARED, &b, NULL));
    CHECK(b.token > a.token && b.mode == QK_LEASE_SHARED);
    CHECK_ERR(qk_lease_table_release(t, STR("job"), STR("a"), a.token, NULL), QK_ERR_NOT_HOLDER);
    qk_lease c;
    CHECK_OK(qk_lease_table_try_acquire(t, STR("job"), STR("c"), SEC, QK_LEASE_SHARED, &c, NULL));
    CHECK(c.token > b.token);
    CHECK_OK(qk_lease_table_release(t, STR("job"), STR("b"), b.token, NULL));
    CHECK_ERR(qk_lease_table_release(t, STR("job"), STR("b"), b.token, NULL), QK_ERR_NOT_HOLDER);
    CHECK_OK(qk_lease_table_release(t, STR("job"), STR("c"), c.token, NULL));

    /* The clock: never back; only manual tables. */
    CHECK_ERR(qk_lease_table_set_time(t, 5, NULL), QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_lease_table_set_time(NULL, 5, NULL), QK_ERR_NULL_ARG);
    qk_lease_table *mono = NULL;
    CHECK_ERR(qk_lease_table_new(0, NULL, NULL), QK_ERR_NULL_ARG);
    REQUIRE(qk_lease_table_new(0, &mono, NULL) == QK_OK);
    CHECK_ERR(qk_lease_table_set_time(mono, 5, NULL), QK_ERR_INVALID_ARG);
    qk_lease_table_free(mono);
    qk_lease_table_free(NULL);
    qk_lease_table_free(t);

    /* Lock-delay after an unreleased expiry. */
    REQUIRE(qk_lease_table_new_manual(100 * MS, 0, &t, NULL) == QK_OK);
    CHECK_OK(qk_lease_table_try_acquire(t, STR("r"), STR("a"), SEC, QK_LEASE_EXCLUSIVE, &a, NULL));
    CHECK_OK(qk_lease_table_set_time(t, SEC, NULL));
    CHECK_ERR(qk_lease_table_try_acquire(t, STR("r"), STR("b"), SEC, QK_LEASE_EXCLUSIVE, &l, NULL),
              QK_ERR_BUSY);
    CHECK_OK(qk_lease_table_set_time(t, SEC + 100 * MS, NULL));
    CHECK_OK(qk_lease_table_try_acquire(t, STR("r"), STR("b"), SEC, QK_LEASE_EXCLUSIVE, &l, NULL));
    qk_lease_table_free(t);
}

struct waiter {
    qk_lease_table *table;
    const char *owner;
    uint64_t timeout_ns;
    qk_status status;
    qk_lease lease;
    int ready;
    int *shared_counter;
    int seen_counter;
};

static void *wait_for_lease(void *arg) {
    struct waiter *w = arg;
    __atomic_store_n(&w->ready, 1, __ATOMIC_SEQ_CST);
    w->status = qk_lease_table_acquire(w->table, STR("lock"), w->owner, strlen(w->owner), SEC,
                                       QK_LEASE_EXCLUSIVE, w->timeout_ns, &w->lease, NULL);
    if (w->shared_counter) w->seen_counter = __atomic_load_n(w->shared_counter, __ATOMIC_SEQ_CST);
    return NULL;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static void wait_ready(struct waiter *w) {
    while (!__atomic_load_n(&w->ready, __ATOMIC_SEQ_CST)) sleep_ms(1);
    sleep_ms(20); /* let it block inside acquire */
}

static void test_handoff_threads(void) {
    /* Monotonic clock: a releases, the blocked thread b gets the lock next. */
    qk_lease_table *t = NULL;
    REQUIRE(qk_lease_table_new(0, &t, NULL) == QK_OK);
    qk_lease a;
    CHECK_OK(qk_lease_table_acquire(t, STR("lock"), STR("a"), SEC, QK_LEASE_EXCLUSIVE,
                                    QK_TIMEOUT_FOREVER, &a, NULL));
    int counter = 0;
    struct waiter b = {t, "b", QK_TIMEOUT_FOREVER, 99, {0, 0, 0}, 0, &counter, -1};
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, wait_for_lease, &b) == 0);
    wait_ready(&b);
    __atomic_store_n(&counter, 1, __ATOMIC_SEQ_CST); /* a's work, done under the lock */
    CHECK_OK(qk_lease_table_release(t, STR("lock"), STR("a"), a.token, NULL));
    pthread_join(th, NULL);
    CHECK(b.status == QK_OK && b.lease.token > a.token && b.seen_counter == 1);
    CHECK_OK(qk_lease_table_release(t, STR("lock"), STR("b"), b.lease.token, NULL));
    /* A blocked acquire with a timeout gives up on time. */
    CHECK_OK(qk_lease_table_acquire(t, STR("lock"), STR("a"), SEC, QK_LEASE_EXCLUSIVE, 0, &a, NULL));
    struct waiter c = {t, "c", 20 * MS, 99, {0, 0, 0}, 0, NULL, 0};
    REQUIRE(pthread_create(&th, NULL, wait_for_lease, &c) == 0);
    pthread_join(th, NULL);
    CHECK(c.status == QK_ERR_TIMEOUT);
    CHECK_OK(qk_lease_table_release(t, STR("lock"), STR("a"), a.token, NULL));
    qk_lease_table_free(t);

    /* Manual clock: moving time grants the waiter at a's expiry... */
    REQUIRE(qk_lease_table_new_manual(0, 0, &t, NULL) == QK_OK);
    CHECK_OK(qk_lease_table_try_acquire(t, STR("lock"), STR("a"), SEC, QK_LEASE_EXCLUSIVE, &a, NULL));
    struct waiter d = {t, "d", QK_TIMEOUT_FOREVER, 99, {0, 0, 0}, 0, NULL, 0};
    REQUIRE(pthread_create(&th, NULL, wait_for_lease, &d) == 0);
    wait_ready(&d);
    CHECK_OK(qk_lease_table_set_time(t, 3 * SEC, NULL));
    pthread_join(th, NULL);
    CHECK(d.status == QK_OK && d.lease.token > a.token && d.lease.expires_at_ns == 4 * SEC);
    /* ...and times out a waiter whose deadline passes. */
    struct waiter e = {t, "e", SEC / 2, 99, {0, 0, 0}, 0, NULL, 0};
    REQUIRE(pthread_create(&th, NULL, wait_for_lease, &e) == 0);
    wait_ready(&e);
    CHECK_OK(qk_lease_table_set_time(t, 3 * SEC + SEC / 2, NULL));
    pthread_join(th, NULL);
    CHECK(e.status == QK_ERR_TIMEOUT);
    CHECK_OK(qk_lease_table_release(t, STR("lock"), STR("d"), d.lease.token, NULL));
    qk_lease_table_free(t);
}

/* Resident set size in bytes (Linux), or 0 when unknown. */
static size_t rss_bytes(void) {
    FILE *fp = fopen("/proc/self/statm", "r");
    if (!fp) return 0;
    unsigned long size = 0, resident = 0;
    int got = fscanf(fp, "%lu %lu", &size, &resident);
    fclose(fp);
    return got == 2 ? (size_t)resident * 4096u : 0;
}

/* Whether memory checkers distort RSS (ASan's quarantine, valgrind). */
static bool instrumented(void) {
#if defined(__SANITIZE_ADDRESS__)
    return true;
#else
    const char *pre = getenv("LD_PRELOAD");
    return pre != NULL && strstr(pre, "valgrind") != NULL;
#endif
}

/* "A lock per job id": a million distinct names, one held at a time. The
 * table keeps no state for released names, so its memory stays flat. */
static void test_distinct_names_do_not_leak(void) {
    qk_lease_table *t = NULL;
    REQUIRE(qk_lease_table_new_manual(0, 0, &t, NULL) == QK_OK);
    bool plain = !instrumented();
    long n = plain ? 1000000 : 50000;
    size_t before = 0, count = 99;
    char name[32];
    for (long i = 0; i < n; i++) {
        if (i == 1000) before = rss_bytes();
        int len = snprintf(name, sizeof name, "job-%ld", i);
        qk_lease l;
        if (qk_lease_table_try_acquire(t, name, (size_t)len, STR("worker"), SEC, QK_LEASE_EXCLUSIVE,
                                       &l, NULL) != QK_OK ||
            qk_lease_table_release(t, name, (size_t)len, STR("worker"), l.token, NULL) != QK_OK) {
            CHECK(!"acquire+release failed");
            break;
        }
    }
    CHECK_OK(qk_lease_table_resource_count(t, &count, NULL));
    CHECK(count == 0);
    if (plain) {
        size_t after = rss_bytes();
        /* Before the fix: ~600 bytes per name ever used (~600 MB here). */
        CHECK(after < before + 32u * 1024 * 1024);
        printf("lease: %ld distinct names, RSS %zu -> %zu KiB\n", n, before / 1024, after / 1024);
    }
    CHECK_ERR(qk_lease_table_resource_count(NULL, &count, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_lease_table_resource_count(t, NULL, NULL), QK_ERR_NULL_ARG);
    qk_lease_table_free(t);
}

/* A lease's state, as the table has it, after a renewal and a takeover. */
static void test_lease_status(void) {
    qk_lease_table *t = NULL;
    REQUIRE(qk_lease_table_new_manual(0, 0, &t, NULL) == QK_OK);
    qk_lease a, b, got;
    uint8_t held = false;
    CHECK_OK(qk_lease_table_try_acquire(t, STR("r"), STR("a"), 10 * SEC, QK_LEASE_EXCLUSIVE, &a, NULL));
    CHECK_OK(qk_lease_table_lease_status(t, STR("r"), a.token, &got, &held, NULL));
    CHECK(held && got.token == a.token && got.expires_at_ns == 10 * SEC);
    /* Renewed to a *shorter* ttl: the table's expiry is the truth. */
    CHECK_OK(qk_lease_table_renew(t, STR("r"), STR("a"), a.token, 2 * SEC, &got, NULL));
    CHECK_OK(qk_lease_table_lease_status(t, STR("r"), a.token, &got, &held, NULL));
    CHECK(held && got.expires_at_ns == 2 * SEC);
    CHECK_OK(qk_lease_table_set_time(t, 3 * SEC, NULL));
    CHECK_OK(qk_lease_table_try_acquire(t, STR("r"), STR("b"), SEC, QK_LEASE_EXCLUSIVE, &b, NULL));
    CHECK(b.token == a.token + 1);
    got.token = 12345;
    CHECK_OK(qk_lease_table_lease_status(t, STR("r"), a.token, &got, &held, NULL));
    CHECK(!held && got.token == 12345);
    CHECK_OK(qk_lease_table_lease_status(t, STR("r"), b.token, &got, &held, NULL));
    CHECK(held && got.token == b.token);
    CHECK_ERR(qk_lease_table_lease_status(t, STR("r"), b.token, NULL, &held, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_lease_table_lease_status(t, "\xff", 1, b.token, &got, &held, NULL), QK_ERR_INVALID_UTF8);
    qk_lease_table_free(t);
}

void test_lease(void) {
    test_distinct_names_do_not_leak();
    test_lease_status();
    test_codes();
    test_fence();
    test_manual_table();
    test_handoff_threads();
}
