/* qk_bounded: every function with good and bad arguments, the capacity
 * bound, membership changes, and acquire/release from many threads. */
#include <math.h>
#include <pthread.h>

#include "check.h"

#define NODES 5
#define THREADS 4
#define PER_THREAD 3000

static qk_ring *make_ring(void) {
    qk_ring *r = NULL;
    REQUIRE(qk_ring_new(40, &r, NULL) == QK_OK);
    char name[32];
    for (int i = 0; i < NODES; i++) {
        snprintf(name, sizeof name, "node-%d", i);
        REQUIRE(qk_ring_add_node(r, STR(name), 1, NULL) == QK_OK);
    }
    return r;
}

static uint64_t max_load(const qk_bounded *b, uint64_t *total) {
    uint64_t loads[NODES + 2];
    size_t count = 0;
    qk_bounded_node_count(b, &count, NULL);
    REQUIRE(qk_bounded_loads(b, loads, NODES + 2, total, NULL) == QK_OK);
    uint64_t max = 0;
    for (size_t i = 0; i < count; i++) max = loads[i] > max ? loads[i] : max;
    return max;
}

static void test_new_and_bad_args(void) {
    qk_ring *r = make_ring();
    qk_bounded *b = (qk_bounded *)0x1;
    CHECK_ERR(qk_bounded_new(NULL, 1.25, &b, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_bounded_new(r, 1.25, NULL, NULL), QK_ERR_NULL_ARG);
    const double bad[] = {1.0, 0.5, -1.0, NAN, INFINITY, -INFINITY};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_ERR(qk_bounded_new(r, bad[i], &b, NULL), QK_ERR_INVALID_ARG);
    CHECK(strstr(qk_last_error_message(), "balance factor") != NULL);
    CHECK(b == (qk_bounded *)0x1);
    qk_bounded_free(NULL);

    CHECK_OK(qk_bounded_new(r, 1.25, &b, NULL));
    /* The balancer has its own copy: the ring can go. */
    qk_ring_free(r);
    double c = 0;
    CHECK_OK(qk_bounded_balance_factor(b, &c, NULL));
    CHECK(c == 1.25);
    CHECK_ERR(qk_bounded_balance_factor(NULL, &c, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_bounded_balance_factor(b, NULL, NULL), QK_ERR_NULL_ARG);

    size_t count = SENTINEL_SIZE, index = SENTINEL_SIZE;
    CHECK_OK(qk_bounded_node_count(b, &count, NULL));
    CHECK(count == NODES);
    CHECK_ERR(qk_bounded_node_count(NULL, &count, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_bounded_node_count(b, NULL, NULL), QK_ERR_NULL_ARG);

    const char *name = NULL;
    size_t len = SENTINEL_SIZE;
    CHECK_OK(qk_bounded_node_name(b, 3, &name, &len, NULL));
    CHECK(strcmp(name, "node-3") == 0 && len == 6);
    CHECK_ERR(qk_bounded_node_name(b, NODES, &name, &len, NULL), QK_ERR_NOT_FOUND);
    CHECK_ERR(qk_bounded_node_name(NULL, 0, &name, &len, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_bounded_node_name(b, 0, NULL, &len, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_bounded_node_name(b, 0, &name, NULL, NULL), QK_ERR_NULL_ARG);

    /* acquire */
    CHECK_ERR(qk_bounded_acquire(NULL, KEY("k"), &index, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_bounded_acquire(b, NULL, 3, &index, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_bounded_acquire(b, KEY("k"), NULL, NULL), QK_ERR_NULL_ARG);
    CHECK(index == SENTINEL_SIZE);
    CHECK_OK(qk_bounded_acquire(b, NULL, 0, &index, NULL)); /* the empty key */
    CHECK(index < NODES);

    /* release */
    CHECK_ERR(qk_bounded_release(NULL, 0, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_bounded_release(b, NODES, NULL), QK_ERR_NOT_FOUND);
    CHECK_ERR(qk_bounded_release(b, (index + 1) % NODES, NULL), QK_ERR_INVALID_ARG); /* load 0 */
    CHECK(strstr(qk_last_error_message(), "no load") != NULL);
    CHECK_OK(qk_bounded_release(b, index, NULL));
    CHECK_ERR(qk_bounded_release(b, index, NULL), QK_ERR_INVALID_ARG);

    /* loads */
    uint64_t loads[NODES], total = SENTINEL_U64;
    CHECK_ERR(qk_bounded_loads(NULL, loads, NODES, &total, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_bounded_loads(b, NULL, NODES, &total, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_bounded_loads(b, loads, NODES, NULL, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_bounded_loads(b, loads, NODES - 1, &total, NULL), QK_ERR_BUFFER_TOO_SMALL);
    CHECK(total == SENTINEL_U64);
    CHECK_OK(qk_bounded_loads(b, loads, NODES, &total, NULL));
    CHECK(total == 0);

    /* capacity: ceil(1.25 * 1 / 5) = 1 */
    uint64_t cap = SENTINEL_U64;
    CHECK_OK(qk_bounded_capacity(b, 0, &cap, NULL));
    CHECK(cap == 1);
    CHECK_ERR(qk_bounded_capacity(b, NODES, &cap, NULL), QK_ERR_NOT_FOUND);
    CHECK_ERR(qk_bounded_capacity(NULL, 0, &cap, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_bounded_capacity(b, 0, NULL, NULL), QK_ERR_NULL_ARG);
    qk_bounded_free(b);

    /* An empty ring: nothing to acquire until a node is added. */
    qk_ring *empty = NULL;
    REQUIRE(qk_ring_new(0, &empty, NULL) == QK_OK);
    CHECK_OK(qk_bounded_new(empty, 2.0, &b, NULL));
    qk_ring_free(empty);
    index = SENTINEL_SIZE;
    CHECK_ERR(qk_bounded_acquire(b, KEY("k"), &index, NULL), QK_ERR_EMPTY);
    CHECK(index == SENTINEL_SIZE);
    CHECK_OK(qk_bounded_loads(b, NULL, 0, &total, NULL));
    CHECK(total == 0);
    CHECK_OK(qk_bounded_add_node(b, STR("only"), 1, NULL));
    CHECK_OK(qk_bounded_acquire(b, KEY("k"), &index, NULL));
    CHECK(index == 0);
    qk_bounded_free(b);
}

static void test_bound_and_membership(void) {
    qk_ring *r = make_ring();
    qk_bounded *b = NULL;
    REQUIRE(qk_bounded_new(r, 1.1, &b, NULL) == QK_OK);
    qk_ring_free(r);
    /* One hot key: it fills its node to capacity and spills clockwise. */
    int within = 1;
    for (int i = 1; i <= 1000; i++) {
        size_t index;
        uint64_t before[NODES], after[NODES], total;
        REQUIRE(qk_bounded_loads(b, before, NODES, &total, NULL) == QK_OK);
        REQUIRE(qk_bounded_acquire(b, KEY("hot"), &index, NULL) == QK_OK);
        REQUIRE(qk_bounded_loads(b, after, NODES, &total, NULL) == QK_OK);
        within &= after[index] == before[index] + 1 &&
                   after[index] <= (uint64_t)ceil(1.1 * (double)i / NODES);
    }
    CHECK(within);
    uint64_t total = 0;
    CHECK(max_load(b, &total) <= (uint64_t)ceil(1.1 * 1000 / NODES));
    CHECK(total == 1000);

    /* Membership: add keeps loads, remove drops the node's load. */
    CHECK_ERR(qk_bounded_add_node(NULL, STR("x"), 1, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_bounded_add_node(b, NULL, 1, 1, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_bounded_add_node(b, "\xff", 1, 1, NULL), QK_ERR_INVALID_UTF8);
    CHECK_ERR(qk_bounded_add_node(b, STR("node-0"), 1, NULL), QK_ERR_ALREADY_EXISTS);
    CHECK_ERR(qk_bounded_add_node(b, STR("zero"), 0, NULL), QK_ERR_INVALID_ARG);
    CHECK_OK(qk_bounded_add_node(b, STR("node-new"), 2, NULL));
    uint64_t loads[NODES + 1];
    CHECK_OK(qk_bounded_loads(b, loads, NODES + 1, &total, NULL));
    CHECK(loads[NODES] == 0 && total == 1000);
    const char *name = NULL;
    size_t len = 0;
    CHECK_OK(qk_bounded_node_name(b, NODES, &name, &len, NULL));
    CHECK(strcmp(name, "node-new") == 0);

    uint64_t dropped = SENTINEL_U64, first = loads[0];
    CHECK_ERR(qk_bounded_remove_node(NULL, STR("node-0"), &dropped, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_bounded_remove_node(b, NULL, 1, &dropped, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_bounded_remove_node(b, STR("node-0"), NULL, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_bounded_remove_node(b, "\xc3", 1, &dropped, NULL), QK_ERR_INVALID_UTF8);
    CHECK_ERR(qk_bounded_remove_node(b, STR("nope"), &dropped, NULL), QK_ERR_NOT_FOUND);
    CHECK(dropped == SENTINEL_U64);
    CHECK_OK(qk_bounded_remove_node(b, STR("node-0"), &dropped, NULL));
    CHECK(dropped == first);
    CHECK_OK(qk_bounded_loads(b, loads, NODES + 1, &total, NULL));
    CHECK(total == 1000 - first);
    CHECK_OK(qk_bounded_node_name(b, 0, &name, &len, NULL));
    CHECK(strcmp(name, "node-1") == 0);
    qk_bounded_free(b);
}

struct job {
    const qk_bounded *b;
    int id;
    int release;
    int failures;
    size_t held[PER_THREAD];
    int nheld;
};

static void *worker(void *arg) {
    struct job *job = arg;
    char key[32];
    unsigned seed = (unsigned)job->id * 7919u + 1;
    for (int i = 0; i < PER_THREAD; i++) {
        snprintf(key, sizeof key, "t%d-%d", job->id, i);
        size_t index;
        if (qk_bounded_acquire(job->b, KEY(key), &index, NULL) != QK_OK) {
            job->failures++;
            continue;
        }
        job->held[job->nheld++] = index;
        seed = seed * 1103515245u + 12345u;
        if (job->release && (seed >> 16) % 3 == 0) {
            int j = (int)((seed >> 8) % (unsigned)job->nheld);
            if (qk_bounded_release(job->b, job->held[j], NULL) != QK_OK) job->failures++;
            job->held[j] = job->held[--job->nheld];
        }
    }
    return NULL;
}

static void run_threads(const qk_bounded *b, int release, struct job *jobs) {
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        jobs[i].b = b;
        jobs[i].id = i + release * THREADS;
        jobs[i].release = release;
        jobs[i].failures = 0;
        jobs[i].nheld = 0;
        REQUIRE(pthread_create(&t[i], NULL, worker, &jobs[i]) == 0);
    }
    for (int i = 0; i < THREADS; i++) REQUIRE(pthread_join(t[i], NULL) == 0);
}

static void test_threads_keep_the_bound(void) {
    qk_ring *r = make_ring();
    qk_bounded *b = NULL;
    REQUIRE(qk_bounded_new(r, 1.05, &b, NULL) == QK_OK);
    qk_ring_free(r);
    static struct job jobs[THREADS];

    /* Acquire and release at random: the loads equal what is held. */
    run_threads(b, 1, jobs);
    uint64_t held[NODES] = {0}, loads[NODES], total;
    for (int i = 0; i < THREADS; i++) {
        CHECK(jobs[i].failures == 0);
        for (int j = 0; j < jobs[i].nheld; j++) held[jobs[i].held[j]]++;
    }
    CHECK_OK(qk_bounded_loads(b, loads, NODES, &total, NULL));
    CHECK(memcmp(held, loads, sizeof held) == 0);
    /* Release everything: back to zero. */
    for (int i = 0; i < THREADS; i++)
        for (int j = 0; j < jobs[i].nheld; j++) CHECK_OK(qk_bounded_release(b, jobs[i].held[j], NULL));
    CHECK(max_load(b, &total) == 0 && total == 0);

    /* Acquire only, from all threads at once: within ceil(c * L / n). */
    run_threads(b, 0, jobs);
    for (int i = 0; i < THREADS; i++) CHECK(jobs[i].failures == 0);
    uint64_t max = max_load(b, &total);
    CHECK(total == THREADS * PER_THREAD);
    CHECK(max <= (uint64_t)ceil(1.05 * (double)total / NODES));
    qk_bounded_free(b);
}

void test_bounded(void) {
    test_new_and_bad_args();
    test_bound_and_membership();
    test_threads_keep_the_bound();
}
