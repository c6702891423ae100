/* The phi-accrual failure detector through the C API: every function, good
 * and bad arguments (NULL, invalid UTF-8, bad config, unknown node, time
 * going backwards), and φ values computed by hand (see src/detect/tests.rs
 * for the arithmetic). */
#include <math.h>
#include <stdbool.h>

#include <pthread.h>
#include <time.h>

#include "check.h"

#define SEC 1000000000ull
#define MS 1000000ull

static const char BAD_UTF8[] = {'n', (char)0xff};

static qk_detector *make_default(void) {
    qk_detector *d = NULL;
    REQUIRE(qk_detector_new(8.0, 1000, 100 * MS, 3 * SEC, SEC, &d, NULL) == QK_OK && d != NULL);
    return d;
}

static void test_detect_config(void) {
    CHECK(QK_ERR_NOT_MONOTONIC == 24);
    CHECK(strcmp(qk_status_str(QK_ERR_NOT_MONOTONIC), "time went backwards") == 0);
    CHECK(strcmp(qk_status_str(23), "unknown status") == 0);
    CHECK(strcmp(qk_status_str(29), "cancelled") == 0);
    CHECK(strcmp(qk_status_str(30), "backend unavailable") == 0);
    CHECK(strcmp(qk_status_str(31), "unknown status") == 0);

    qk_detector *d = (qk_detector *)0x1;
    CHECK_ERR(qk_detector_new(8.0, 1000, 100 * MS, 3 * SEC, SEC, NULL, NULL), QK_ERR_NULL_ARG);
    /* Bad configs leave the out-parameter alone. */
    CHECK_ERR(qk_detector_new(0.0, 1000, 100 * MS, 3 * SEC, SEC, &d, NULL), QK_ERR_INVALID_ARG);
    CHECK(strstr(qk_last_error_message(), "threshold") != NULL);
    CHECK_ERR(qk_detector_new(-1.0, 1000, 100 * MS, 3 * SEC, SEC, &d, NULL), QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_detector_new(NAN, 1000, 100 * MS, 3 * SEC, SEC, &d, NULL), QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_detector_new(INFINITY, 1000, 100 * MS, 3 * SEC, SEC, &d, NULL), QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_detector_new(8.0, 0, 100 * MS, 3 * SEC, SEC, &d, NULL), QK_ERR_INVALID_ARG);
    CHECK(strstr(qk_last_error_message(), "max_samples") != NULL);
    CHECK_ERR(qk_detector_new(8.0, 65537, 100 * MS, 3 * SEC, SEC, &d, NULL), QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_detector_new(8.0, 1000, 0, 3 * SEC, SEC, &d, NULL), QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_detector_new(8.0, 1000, 100 * MS, 3 * SEC, 0, &d, NULL), QK_ERR_INVALID_ARG);
    CHECK(d == (qk_detector *)0x1);
    qk_detector_free(NULL);
}

static void test_detect_regular(void) {
    qk_detector *d = make_default();
    size_t n = SENTINEL_SIZE;
    CHECK_OK(qk_detector_len(d, &n, NULL));
    CHECK(n == 0);
    for (uint64_t i = 0; i < 10; i++) CHECK_OK(qk_detector_heartbeat(d, STR("a"), i * SEC, NULL));
    CHECK_OK(qk_detector_len(d, &n, NULL));
    CHECK(n == 1);

    /* Window 0.75, 1.25 and nine 1 s: mean 1 s, std 0.1066004 s; mean' 4 s. */
    uint64_t last = 9 * SEC;
    double phi = -1.0;
    CHECK_OK(qk_detector_phi(d, STR("a"), last + SEC, &phi, NULL));
    CHECK(phi == 0.0);
    CHECK_OK(qk_detector_phi(d, STR("a"), last + 4 * SEC, &phi, NULL));
    CHECK(fabs(phi - 0.3010299956639812) < 1e-9); /* y = 0: log10 2 */
    CHECK_OK(qk_detector_phi(d, STR("a"), last + 4200 * MS, &phi, NULL));
    CHECK(fabs(phi - 1.5175254409299836) < 1e-9); /* y = 1.876170 */
    uint8_t up = false;
    /* φ crosses 8 at Δt = 4.5570920 s. */
    CHECK_OK(qk_detector_is_available(d, STR("a"), last + 4555 * MS, &up, NULL));
    CHECK(up);
    CHECK_OK(qk_detector_is_available(d, STR("a"), last + 4559 * MS, &up, NULL));
    CHECK(!up);
    /* Long silence: φ is infinite. */
    CHECK_OK(qk_detector_phi(d, STR("a"), UINT64_MAX, &phi, NULL));
    CHECK(isinf(phi) && phi > 0);
    qk_detector_free(d);
}

static void test_detect_errors(void) {
    qk_detector *d = make_default();
    double phi = 42.0;
    uint8_t up = true;
    size_t n = SENTINEL_SIZE;

    /* Unknown node. */
    CHECK_ERR(qk_detector_phi(d, STR("x"), 0, &phi, NULL), QK_ERR_NOT_FOUND);
    CHECK_ERR(qk_detector_is_available(d, STR("x"), 0, &up, NULL), QK_ERR_NOT_FOUND);
    CHECK_ERR(qk_detector_remove(d, STR("x"), NULL), QK_ERR_NOT_FOUND);
    CHECK(phi == 42.0 && up);

    /* Times out of order (concurrent callers): not errors. A query at or
     * before the latest heartbeat is phi at it; an older heartbeat is
     * absorbed and changes nothing. */
    CHECK_OK(qk_detector_heartbeat(d, STR("a"), 10 * SEC, NULL));
    CHECK_OK(qk_detector_heartbeat(d, STR("a"), 9 * SEC, NULL));
    CHECK_OK(qk_detector_heartbeat(d, STR("a"), 10 * SEC, NULL));
    {
        /* The same as a detector that only saw the 10 s heartbeat. */
        qk_detector *d2 = make_default();
        double p1 = -1, p2 = -2;
        CHECK_OK(qk_detector_heartbeat(d2, STR("a"), 10 * SEC, NULL));
        CHECK_OK(qk_detector_phi(d, STR("a"), 14 * SEC, &p1, NULL));
        CHECK_OK(qk_detector_phi(d2, STR("a"), 14 * SEC, &p2, NULL));
        CHECK(p1 == p2 && p1 > 0.0);
        qk_detector_free(d2);
    }
    CHECK_OK(qk_detector_phi(d, STR("a"), 9 * SEC, &phi, NULL));
    CHECK(phi == 0.0);
    up = false;
    CHECK_OK(qk_detector_is_available(d, STR("a"), 9 * SEC, &up, NULL));
    CHECK(up);
    CHECK_OK(qk_detector_phi(d, STR("a"), 10 * SEC, &phi, NULL));
    CHECK(phi == 0.0);

    /* NULL pointers. */
    CHECK_ERR(qk_detector_heartbeat(NULL, STR("a"), 0, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_detector_heartbeat(d, NULL, 1, 0, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_detector_phi(NULL, STR("a"), 0, &phi, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_detector_phi(d, NULL, 1, 0, &phi, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_detector_phi(d, STR("a"), 20 * SEC, NULL, NULL), QK_ERR_NULL_ARG);
    CHECK(strstr(qk_last_error_message(), "phi_out") != NULL);
    CHECK_ERR(qk_detector_is_available(NULL, STR("a"), 0, &up, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_detector_is_available(d, NULL, 1, 0, &up, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_detector_is_available(d, STR("a"), 20 * SEC, NULL, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_detector_remove(NULL, STR("a"), NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_detector_remove(d, NULL, 1, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_detector_len(NULL, &n, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_detector_len(d, NULL, NULL), QK_ERR_NULL_ARG);

    /* Invalid UTF-8. */
    CHECK_ERR(qk_detector_heartbeat(d, BAD_UTF8, 2, 0, NULL), QK_ERR_INVALID_UTF8);
    CHECK_ERR(qk_detector_phi(d, BAD_UTF8, 2, 0, &phi, NULL), QK_ERR_INVALID_UTF8);
    CHECK_ERR(qk_detector_is_available(d, BAD_UTF8, 2, 0, &up, NULL), QK_ERR_INVALID_UTF8);
    CHECK_ERR(qk_detector_remove(d, BAD_UTF8, 2, NULL), QK_ERR_INVALID_UTF8);
    CHECK(phi == 0.0 && up);
    CHECK_OK(qk_detector_len(d, &n, NULL));
    CHECK(n == 1);

    /* Remove, then the node is unknown again. */
    CHECK_OK(qk_detector_remove(d, STR("a"), NULL));
    CHECK_ERR(qk_detector_phi(d, STR("a"), 10 * SEC, &phi, NULL), QK_ERR_NOT_FOUND);
    CHECK_OK(qk_detector_len(d, &n, NULL));
    CHECK(n == 0);
    /* The empty name is a name. */
    CHECK_OK(qk_detector_heartbeat(d, "", 0, 0, NULL));
    CHECK_OK(qk_detector_is_available(d, "", 0, SEC, &up, NULL));
    CHECK(up);
    qk_detector_free(d);
}

/* Eight threads share one detector behind a mutex, each reading the clock
 * *before* taking the lock, so calls land out of clock order, as in any
 * real program. None of it is an error, and phi stays sane. */
typedef struct {
    qk_detector *d;
    pthread_mutex_t *mu;
    int errors;
    double max_phi;
} beat_arg;

static uint64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * SEC + (uint64_t)ts.tv_nsec;
}

static void *beat_thread(void *p) {
    beat_arg *a = p;
    for (int i = 0; i < 5000; i++) {
        uint64_t now = mono_ns();
        pthread_mutex_lock(a->mu);
        double phi = -1;
        uint8_t up = false;
        if (qk_detector_heartbeat(a->d, STR("peer"), now, NULL) != QK_OK) a->errors++;
        if (qk_detector_phi(a->d, STR("peer"), now, &phi, NULL) != QK_OK) a->errors++;
        if (qk_detector_is_available(a->d, STR("peer"), now, &up, NULL) != QK_OK || !up) a->errors++;
        pthread_mutex_unlock(a->mu);
        if (phi > a->max_phi) a->max_phi = phi;
    }
    return NULL;
}

static void test_detect_threads(void) {
    qk_detector *d = make_default();
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    pthread_t th[8];
    beat_arg args[8];
    for (int i = 0; i < 8; i++) {
        args[i] = (beat_arg){d, &mu, 0, 0.0};
        REQUIRE(pthread_create(&th[i], NULL, beat_thread, &args[i]) == 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        CHECK(args[i].errors == 0);
        CHECK(args[i].max_phi >= 0.0 && args[i].max_phi < 1.0);
    }
    qk_detector_free(d);
}

/* Settings outside the usable range are refused, not clamped. */
static void test_detect_ranges(void) {
    qk_detector *d = (qk_detector *)0x1;
    const uint64_t max = 1ull << 55;
    CHECK_ERR(qk_detector_new(8.0, 1000, 100 * MS, 3 * SEC, max + 1, &d, NULL), QK_ERR_INVALID_ARG);
    CHECK(strstr(qk_last_error_message(), "first_heartbeat_estimate") != NULL);
    CHECK_ERR(qk_detector_new(8.0, 1000, 100 * MS, max + 1, SEC, &d, NULL), QK_ERR_INVALID_ARG);
    CHECK(d == (qk_detector *)0x1);
    CHECK_OK(qk_detector_new(8.0, 1000, 100 * MS, 3 * SEC, max, &d, NULL));
    uint8_t up = false;
    CHECK_OK(qk_detector_heartbeat(d, STR("a"), 0, NULL));
    CHECK_OK(qk_detector_is_available(d, STR("a"), max / 2, &up, NULL));
    CHECK(up);
    qk_detector_free(d);

    static const uint32_t one[1] = {1};
    qk_paxos_config cfg;
    qk_paxos_node *n = (qk_paxos_node *)0x1;
    REQUIRE(qk_paxos_config_init(1, one, 1, &cfg, NULL) == QK_OK);
    cfg.heartbeat_interval_ns = 1; /* 1 ns: a driver would spin */
    CHECK_ERR(qk_paxos_node_new_memory(&cfg, 0, &n, NULL), QK_ERR_INVALID_ARG);
    CHECK(strstr(qk_last_error_message(), "1 ms") != NULL);
    cfg.heartbeat_interval_ns = MS - 1;
    CHECK_ERR(qk_paxos_node_new_memory(&cfg, 0, &n, NULL), QK_ERR_INVALID_ARG);
    CHECK(n == (qk_paxos_node *)0x1);
    cfg.heartbeat_interval_ns = MS;
    CHECK_OK(qk_paxos_node_new_memory(&cfg, 0, &n, NULL));
    qk_paxos_node_free(n);
}

void test_detect(void) {
    test_detect_threads();
    test_detect_ranges();
    test_detect_config();
    test_detect_regular();
    test_detect_errors();
}
