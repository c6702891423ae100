/* ABI 2's boundary rules: the caller's qk_error carries each call's
 * outcome whatever thread reads it; flags are 0/1 bytes; a blocked acquire
 * stops on qk_cancel_fire() or when its table is freed. */
#include <pthread.h>
#include <time.h>

#include "check.h"

static uint64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* A call on a worker thread, its qk_error read on the main thread: the
 * hazard of goroutines, koffi's .async and virtual threads. */
struct remote_call {
    const qk_ring *ring;
    const char *name;
    qk_error err;
    qk_status status;
};

static void *remote(void *arg) {
    struct remote_call *c = arg;
    size_t index;
    c->status = qk_ring_node_index(c->ring, STR(c->name), &index, &c->err);
    return NULL;
}

static void test_error_struct(void) {
    qk_error err;
    memset(&err, 0x7f, sizeof err);
    qk_ring *r = NULL;
    REQUIRE(qk_ring_new(0, &r, &err) == QK_OK);
    CHECK(err.status == QK_OK && err.message[0] == '\0');
    CHECK(qk_sizeof_error() == sizeof(qk_error));
    CHECK(sizeof err.message == QK_ERROR_MESSAGE_CAPACITY);

    /* Failure: status and message match the call and the thread-local. */
    size_t index = SENTINEL_SIZE;
    CHECK(qk_ring_node_index(r, STR("ghost"), &index, &err) == QK_ERR_NOT_FOUND);
    CHECK(err.status == QK_ERR_NOT_FOUND);
    CHECK(strstr(err.message, "ghost") != NULL);
    CHECK(strcmp(err.message, qk_last_error_message()) == 0);
    CHECK(index == SENTINEL_SIZE);
    /* Success overwrites it. */
    CHECK(qk_ring_add_node(r, STR("a"), 1, &err) == QK_OK);
    CHECK(err.status == QK_OK && err.message[0] == '\0');
    /* NULL handle: still written. */
    CHECK(qk_ring_node_count(NULL, &index, &err) == QK_ERR_NULL_ARG);
    CHECK(err.status == QK_ERR_NULL_ARG && strstr(err.message, "ring") != NULL);

    /* Four workers fail with their own names; the main thread reads each
     * worker's qk_error after join and sees exactly that worker's call,
     * while its own thread-local message stays its own. */
    CHECK(qk_ring_node_index(r, STR("main-thread"), &index, NULL) == QK_ERR_NOT_FOUND);
    struct remote_call calls[4] = {{r, "w-zero", {0}, 0}, {r, "w-one", {0}, 0},
                                   {r, "w-two", {0}, 0}, {r, "a", {0}, 0}};
    pthread_t th[4];
    for (int i = 0; i < 4; i++) REQUIRE(pthread_create(&th[i], NULL, remote, &calls[i]) == 0);
    for (int i = 0; i < 4; i++) REQUIRE(pthread_join(th[i], NULL) == 0);
    for (int i = 0; i < 3; i++) {
        CHECK(calls[i].status == QK_ERR_NOT_FOUND && calls[i].err.status == QK_ERR_NOT_FOUND);
        CHECK(strstr(calls[i].err.message, calls[i].name) != NULL);
    }
    CHECK(calls[3].status == QK_OK && calls[3].err.status == QK_OK && calls[3].err.message[0] == 0);
    CHECK(strstr(qk_last_error_message(), "main-thread") != NULL);

    /* A message longer than the buffer is cut at a character boundary and
     * NUL-terminated; a NUL inside user input does not end it early. */
    char longname[2000];
    size_t n = 0;
    while (n + 2 < sizeof longname) { /* "é" is 2 bytes: odd cut points exist */
        longname[n++] = (char)0xc3;
        longname[n++] = (char)0xa9;
    }
    CHECK(qk_ring_node_index(r, longname, n, &index, &err) == QK_ERR_NOT_FOUND);
    size_t len = strlen(err.message);
    CHECK(len > 400 && len < QK_ERROR_MESSAGE_CAPACITY);
    /* The message ends on a whole character: no dangling lead byte. */
    CHECK(((unsigned char)err.message[len - 1] & 0xc0) == 0x80 ||
          ((unsigned char)err.message[len - 1] & 0x80) == 0);
    const char with_nul[] = {'x', '\0', 'y'};
    CHECK(qk_ring_node_index(r, with_nul, 3, &index, &err) == QK_ERR_NOT_FOUND ||
          err.status == QK_ERR_INVALID_ARG);
    CHECK(strlen(err.message) > 5);
    qk_ring_free(r);
}

static void test_flags(void) {
    /* Flags are uint8_t 0/1 on the way out, and refused otherwise on the
     * way in (a caller that guessed a wider bool is told, not believed). */
    qk_detector *d = NULL;
    REQUIRE(qk_detector_new(8.0, 100, 100000000ull, 0, 1000000000ull, &d, NULL) == QK_OK);
    uint8_t up = 0x55;
    CHECK_OK(qk_detector_heartbeat(d, STR("n"), 1000, NULL));
    CHECK_OK(qk_detector_is_available(d, STR("n"), 1000, &up, NULL));
    CHECK(up == 1);
    qk_detector_free(d);

    qk_txn_sim *sim = NULL;
    REQUIRE(qk_txn_sim_new(QK_TXN_PROTOCOL_2PC, 2, 0, 7, &sim, NULL) == QK_OK);
    {
        uint8_t bad[2] = {1, 2};
        qk_error err;
        CHECK(qk_txn_sim_begin(sim, 1, bad, 2, &err) == QK_ERR_INVALID_ARG);
        CHECK(strstr(err.message, "0 or 1") != NULL);
        CHECK_ERR(qk_txn_sim_crash_coordinator_after_votes(sim, 7, NULL), QK_ERR_INVALID_ARG);
        qk_txn_sim_free(sim);
    }
}

/* A blocked acquire and how it ended. */
struct waiter {
    const qk_lease_table *t;
    const qk_cancel *cancel;
    qk_status status;
    qk_error err;
    qk_lease lease;
    int done;
};

static void *wait_forever(void *arg) {
    struct waiter *w = arg;
    w->status = qk_lease_table_acquire_cancellable(w->t, STR("res"), STR("waiter"), 1000000000000ull,
                                                   QK_LEASE_EXCLUSIVE, QK_TIMEOUT_FOREVER,
                                                   w->cancel, &w->lease, &w->err);
    __atomic_store_n(&w->done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static void *wait_plain(void *arg) {
    struct waiter *w = arg;
    w->status = qk_lease_table_acquire(w->t, STR("res"), STR("plain"), 1000000000000ull,
                                       QK_LEASE_EXCLUSIVE, QK_TIMEOUT_FOREVER, &w->lease, &w->err);
    __atomic_store_n(&w->done, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static size_t queued(const qk_lease_table *t) {
    size_t n = 0;
    CHECK_OK(qk_lease_table_queue_len(t, STR("res"), &n, NULL));
    return n;
}

static void test_cancel(void) {
    qk_lease_table *t = NULL;
    REQUIRE(qk_lease_table_new(0, &t, NULL) == QK_OK);
    qk_lease held;
    CHECK_OK(qk_lease_table_acquire(t, STR("res"), STR("holder"), 1000000000000ull,
                                    QK_LEASE_EXCLUSIVE, 0, &held, NULL));
    qk_cancel *c = NULL;
    REQUIRE(qk_cancel_new(&c, NULL) == QK_OK);
    uint8_t fired = 9;
    CHECK_OK(qk_cancel_is_fired(c, &fired, NULL));
    CHECK(fired == 0);

    /* Blocked forever, then fired from this thread: returns promptly. */
    struct waiter w = {t, c, -1, {0}, {0}, 0};
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, wait_forever, &w) == 0);
    for (int i = 0; i < 200 && queued(t) == 0; i++) sleep_ms(5);
    sleep_ms(20);
    CHECK(!__atomic_load_n(&w.done, __ATOMIC_SEQ_CST));
    uint64_t t0 = mono_ns();
    CHECK_OK(qk_cancel_fire(c, NULL));
    REQUIRE(pthread_join(th, NULL) == 0);
    CHECK(mono_ns() - t0 < 2000000000ull);
    CHECK(w.status == QK_ERR_CANCELLED && w.err.status == QK_ERR_CANCELLED);
    CHECK(strstr(w.err.message, "cancelled") != NULL);
    CHECK_OK(qk_cancel_is_fired(c, &fired, NULL));
    CHECK(fired == 1);
    /* Already fired: fails at once, even on a free resource. */
    qk_lease l;
    CHECK_ERR(qk_lease_table_acquire_cancellable(t, STR("free-res"), STR("x"), 1000000000ull,
                                                 QK_LEASE_EXCLUSIVE, QK_TIMEOUT_FOREVER, c, &l,
                                                 NULL),
              QK_ERR_CANCELLED);
    /* The withdrawn waiter left the queue: the holder's release frees it. */
    CHECK_OK(qk_lease_table_release(t, STR("res"), STR("holder"), held.token, NULL));
    CHECK_OK(qk_lease_table_try_acquire(t, STR("res"), STR("next"), 1000000000ull,
                                        QK_LEASE_EXCLUSIVE, &held, NULL));
    qk_cancel_free(c);
    qk_cancel_free(NULL);
    CHECK_ERR(qk_cancel_fire(NULL, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_cancel_new(NULL, NULL), QK_ERR_NULL_ARG);

    /* Freeing the table with blocked acquires (plain and cancellable with
     * a NULL cancel): both return QK_ERR_CANCELLED, and free waits. */
    struct waiter a = {t, NULL, -1, {0}, {0}, 0};
    struct waiter b = {t, NULL, -1, {0}, {0}, 0};
    pthread_t ta, tb;
    REQUIRE(pthread_create(&ta, NULL, wait_forever, &a) == 0);
    REQUIRE(pthread_create(&tb, NULL, wait_plain, &b) == 0);
    for (int i = 0; i < 200 && queued(t) < 2; i++) sleep_ms(5);
    CHECK(queued(t) == 2);
    qk_lease_table_free(t);
    REQUIRE(pthread_join(ta, NULL) == 0);
    REQUIRE(pthread_join(tb, NULL) == 0);
    CHECK(a.status == QK_ERR_CANCELLED && b.status == QK_ERR_CANCELLED);
}

/* Outcomes of callback acquires. */
struct outcome {
    int calls;
    qk_status status;
    uint64_t token;
    char message[128];
};

static void on_lease(void *user, qk_status status, const qk_lease *lease, const char *message) {
    struct outcome *o = user;
    o->calls++;
    o->status = status;
    o->token = lease ? lease->token : 0;
    snprintf(o->message, sizeof o->message, "%s", message);
}

static void test_async_acquire(void) {
    qk_lease_table *t = NULL;
    REQUIRE(qk_lease_table_new(0, &t, NULL) == QK_OK);
    /* Free: granted at once, inside the call. */
    struct outcome a = {0};
    CHECK_OK(qk_lease_table_acquire_async(t, STR("res"), STR("a"), 60000000000ull, QK_LEASE_EXCLUSIVE,
                                          QK_TIMEOUT_FOREVER, NULL, on_lease, &a, NULL));
    CHECK(a.calls == 1 && a.status == QK_OK && a.token > 0 && a.message[0] == 0);
    /* Queued: granted by the release, in the releasing thread. */
    struct outcome b = {0};
    CHECK_OK(qk_lease_table_acquire_async(t, STR("res"), STR("b"), 60000000000ull, QK_LEASE_EXCLUSIVE,
                                          QK_TIMEOUT_FOREVER, NULL, on_lease, &b, NULL));
    CHECK(b.calls == 0 && queued(t) == 1);
    CHECK_OK(qk_lease_table_release(t, STR("res"), STR("a"), a.token, NULL));
    CHECK(b.calls == 1 && b.status == QK_OK && b.token > a.token);
    /* Cancelled: the callback runs inside qk_cancel_fire, once. */
    qk_cancel *c = NULL;
    REQUIRE(qk_cancel_new(&c, NULL) == QK_OK);
    struct outcome x = {0};
    CHECK_OK(qk_lease_table_acquire_async(t, STR("res"), STR("x"), 1000000000ull, QK_LEASE_EXCLUSIVE,
                                          QK_TIMEOUT_FOREVER, c, on_lease, &x, NULL));
    CHECK(x.calls == 0);
    CHECK_OK(qk_cancel_fire(c, NULL));
    CHECK(x.calls == 1 && x.status == QK_ERR_CANCELLED && strstr(x.message, "cancelled"));
    CHECK_OK(qk_cancel_fire(c, NULL));
    CHECK(x.calls == 1 && queued(t) == 0);
    /* Refused up front: no callback. */
    struct outcome y = {0};
    CHECK_ERR(qk_lease_table_acquire_async(t, STR("res"), STR("y"), 1000000000ull, QK_LEASE_EXCLUSIVE,
                                           QK_TIMEOUT_FOREVER, c, on_lease, &y, NULL),
              QK_ERR_CANCELLED);
    CHECK_ERR(qk_lease_table_acquire_async(t, STR("res"), STR("y"), 1000000000ull, QK_LEASE_EXCLUSIVE, 0,
                                           NULL, on_lease, &y, NULL),
              QK_ERR_TIMEOUT);
    CHECK_ERR(qk_lease_table_acquire_async(t, STR("res"), STR("y"), 1000000000ull, QK_LEASE_EXCLUSIVE,
                                           QK_TIMEOUT_FOREVER, NULL, NULL, &y, NULL),
              QK_ERR_NULL_ARG);
    CHECK(y.calls == 0);
    /* A timeout is delivered by the timer thread. */
    struct outcome z = {0};
    CHECK_OK(qk_lease_table_acquire_async(t, STR("res"), STR("z"), 1000000000ull, QK_LEASE_EXCLUSIVE,
                                          20000000ull, NULL, on_lease, &z, NULL));
    for (int i = 0; i < 400 && !__atomic_load_n(&z.calls, __ATOMIC_SEQ_CST); i++) sleep_ms(5);
    CHECK(z.calls == 1 && z.status == QK_ERR_TIMEOUT);
    /* Freeing the table cancels the rest, before free returns. */
    struct outcome w = {0};
    CHECK_OK(qk_lease_table_acquire_async(t, STR("res"), STR("w"), 1000000000ull, QK_LEASE_SHARED,
                                          QK_TIMEOUT_FOREVER, NULL, on_lease, &w, NULL));
    qk_lease_table_free(t);
    CHECK(w.calls == 1 && w.status == QK_ERR_CANCELLED);
    qk_cancel_free(c);
}

void test_errors(void) {
    test_error_struct();
    test_flags();
    test_cancel();
    test_async_acquire();
}
