/* qk_election on an in-process table: one leader at a time, FIFO
 * succession with growing epochs, resign, leader(), bad input. */
#include <pthread.h>
#include <time.h>

#include "check.h"

#define MS 1000000ull

struct campaigner {
    const qk_election *e;
    qk_status status;
    uint64_t epoch;
};

static void *campaign(void *arg) {
    struct campaigner *c = arg;
    c->status = qk_election_campaign(c->e, 5000 * MS, &c->epoch, NULL);
    return NULL;
}

struct resigner {
    const qk_election *e;
    qk_status status;
};

static void *resign_later(void *arg) {
    struct resigner *r = arg;
    struct timespec ts = {0, 100 * 1000000L};
    nanosleep(&ts, NULL);
    r->status = qk_election_resign(r->e, NULL);
    return NULL;
}

/* Observing: a loop over qk_election_wait_change sees each term change. */
static void observe_case(void) {
    qk_lease_table *t = NULL;
    REQUIRE(qk_lease_table_new(0, &t, NULL) == QK_OK);
    qk_election *a = NULL, *w = NULL;
    REQUIRE(qk_election_new(t, STR("obs"), STR("a"), 300 * MS, &a, NULL) == QK_OK);
    REQUIRE(qk_election_new(t, STR("obs"), STR("watcher"), 300 * MS, &w, NULL) == QK_OK);
    char name[16];
    size_t len = 0;
    uint64_t epoch = 7, ea = 0;
    uint8_t has = 9;
    /* Nobody leads and nothing changes: the timeout answers "nobody". */
    CHECK_OK(qk_election_wait_change(w, 0, MS, 20 * MS, name, sizeof name, &len, &epoch, &has, NULL));
    CHECK(has == 0);
    CHECK_OK(qk_election_campaign(a, 1000 * MS, &ea, NULL));
    CHECK_OK(qk_election_wait_change(w, 0, MS, QK_TIMEOUT_FOREVER, name, sizeof name, &len, &epoch, &has, NULL));
    CHECK(has == 1 && epoch == ea && len == 1 && name[0] == 'a');
    /* Renewals are not changes. */
    CHECK_OK(qk_election_wait_change(w, ea, MS, 400 * MS, name, sizeof name, &len, &epoch, &has, NULL));
    CHECK(has == 1 && epoch == ea);
    /* A resign on another thread wakes a wait with no timeout. */
    struct resigner r = {a, -1};
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, resign_later, &r) == 0);
    CHECK_OK(qk_election_wait_change(w, ea, MS, QK_TIMEOUT_FOREVER, name, sizeof name, &len, &epoch, &has, NULL));
    REQUIRE(pthread_join(th, NULL) == 0);
    CHECK(r.status == QK_OK && has == 0);
    /* Bad input. */
    CHECK_ERR(qk_election_wait_change(NULL, 0, MS, 0, name, sizeof name, &len, &epoch, &has, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_election_wait_change(w, 0, MS, 0, name, sizeof name, NULL, &epoch, &has, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_election_wait_change(w, 0, MS, 0, name, sizeof name, &len, NULL, &has, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_election_wait_change(w, 0, MS, 0, name, sizeof name, &len, &epoch, NULL, NULL), QK_ERR_NULL_ARG);
    qk_election_free(w);
    qk_election_free(a);
    qk_lease_table_free(t);
}

void test_election(void) {
    observe_case();
    qk_lease_table *t = NULL;
    REQUIRE(qk_lease_table_new(0, &t, NULL) == QK_OK);
    qk_election *a = NULL, *b = NULL;
    REQUIRE(qk_election_new(t, STR("jobs"), STR("node-a"), 300 * MS, &a, NULL) == QK_OK);
    REQUIRE(qk_election_new(t, STR("jobs"), STR("node-b"), 300 * MS, &b, NULL) == QK_OK);

    uint8_t has = 9, leading = 9;
    char name[64];
    size_t len = 0;
    uint64_t epoch = 0, ea = 0;
    CHECK_OK(qk_election_leader(a, name, sizeof name, &len, &epoch, &has, NULL));
    CHECK(has == 0);
    CHECK_OK(qk_election_campaign(a, 1000 * MS, &ea, NULL));
    CHECK_OK(qk_election_is_leader(a, &leading, NULL));
    CHECK(leading == 1);
    CHECK_OK(qk_election_leader(b, name, sizeof name, &len, &epoch, &has, NULL));
    CHECK(has == 1 && len == 6 && memcmp(name, "node-a", 6) == 0 && epoch == ea);
    /* A buffer too small: refused, nothing written. */
    char tiny[3] = {'x', 'x', 'x'};
    CHECK_ERR(qk_election_leader(b, tiny, sizeof tiny, &len, &epoch, &has, NULL), QK_ERR_BUFFER_TOO_SMALL);
    CHECK(tiny[0] == 'x');
    /* b times out while a leads, then wins when a resigns. */
    uint64_t eb = 0;
    CHECK_ERR(qk_election_campaign(b, 30 * MS, &eb, NULL), QK_ERR_TIMEOUT);
    struct campaigner cb = {b, -1, 0};
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, campaign, &cb) == 0);
    CHECK_OK(qk_election_resign(a, NULL));
    REQUIRE(pthread_join(th, NULL) == 0);
    CHECK(cb.status == QK_OK && cb.epoch > ea);
    CHECK_OK(qk_election_is_leader(a, &leading, NULL));
    CHECK(leading == 0);
    /* The deposed epoch is refused by a fence. */
    qk_fence *f = NULL;
    REQUIRE(qk_fence_new(&f, NULL) == QK_OK);
    CHECK_OK(qk_fence_check(f, STR("jobs"), cb.epoch, NULL));
    CHECK_ERR(qk_fence_check(f, STR("jobs"), ea, NULL), QK_ERR_STALE_TOKEN);
    qk_fence_free(f);
    /* The election outlives its table handle; freeing b resigns. */
    qk_lease_table_free(t);
    CHECK_OK(qk_election_is_leader(b, &leading, NULL));
    CHECK(leading == 1);
    qk_election_free(b);
    CHECK_OK(qk_election_leader(a, name, sizeof name, &len, &epoch, &has, NULL));
    CHECK(has == 0);
    qk_election_free(a);
    qk_election_free(NULL);

    /* Bad input. */
    REQUIRE(qk_lease_table_new(0, &t, NULL) == QK_OK);
    qk_election *e = NULL;
    qk_error err;
    CHECK_ERR(qk_election_new(t, NULL, 0, STR("c"), 1000 * MS, &e, &err), QK_ERR_INVALID_ARG);
    CHECK(strstr(err.message, "empty") != NULL);
    CHECK_ERR(qk_election_new(t, STR("x"), STR("c"), 1000, &e, NULL), QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_election_new(NULL, STR("x"), STR("c"), 1000 * MS, &e, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_election_campaign(NULL, 0, &epoch, NULL), QK_ERR_NULL_ARG);
    CHECK(e == NULL);
    qk_lease_table_free(t);
}
