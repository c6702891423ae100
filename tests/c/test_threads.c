/* Thread safety as documented: lookups on a const qk_ring * run
 * concurrently, and each thread has its own last-error message. */
#include <pthread.h>

#include "check.h"

#define THREADS 4
#define KEYS 2000

struct job {
    const qk_ring *ring;
    const size_t *expected;
    int id;
    int mismatches;
    int message_ok;
};

static void *worker(void *arg) {
    struct job *job = arg;
    char key[32];
    /* Each thread fails differently and must see only its own message. */
    char unknown[32];
    snprintf(unknown, sizeof unknown, "missing-%d", job->id);
    size_t index;
    job->message_ok = 1;
    for (int round = 0; round < 5; round++) {
        for (int k = 0; k < KEYS; k++) {
            snprintf(key, sizeof key, "key-%d", k);
            if (qk_ring_get_node(job->ring, KEY(key), &index, NULL) != QK_OK ||
                index != job->expected[k])
                job->mismatches++;
        }
        if (qk_ring_node_index(job->ring, STR(unknown), &index, NULL) != QK_ERR_NOT_FOUND ||
            strstr(qk_last_error_message(), unknown) == NULL)
            job->message_ok = 0;
    }
    return NULL;
}

void test_threads(void) {
    qk_ring *r = NULL;
    REQUIRE(qk_ring_new(0, &r, NULL) == QK_OK);
    const char *nodes[] = {"t0", "t1", "t2", "t3", "t4", "t5", "t6"};
    for (int i = 0; i < 7; i++) CHECK_OK(qk_ring_add_node(r, STR(nodes[i]), 1 + i % 3, NULL));
    static size_t expected[KEYS];
    char key[32];
    for (int k = 0; k < KEYS; k++) {
        snprintf(key, sizeof key, "key-%d", k);
        CHECK(qk_ring_get_node(r, KEY(key), &expected[k], NULL) == QK_OK);
    }
    /* The main thread's message must survive the workers' failures. */
    CHECK_ERR(qk_ring_node_index(r, STR("main-only"), &expected[0], NULL), QK_ERR_NOT_FOUND);
    pthread_t threads[THREADS];
    struct job jobs[THREADS];
    for (int t = 0; t < THREADS; t++) {
        jobs[t] = (struct job){r, expected, t, 0, 0};
        REQUIRE(pthread_create(&threads[t], NULL, worker, &jobs[t]) == 0);
    }
    for (int t = 0; t < THREADS; t++) {
        REQUIRE(pthread_join(threads[t], NULL) == 0);
        CHECK(jobs[t].mismatches == 0);
        CHECK(jobs[t].message_ok);
    }
    CHECK(strstr(qk_last_error_message(), "main-only") != NULL);
    qk_ring_free(r);
}
