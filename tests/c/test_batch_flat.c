/* Flat batch lookups (qk_<x>_get_node_batch_flat): every key of one buffer
 * plus offsets lands where a single lookup puts it, for every placement;
 * bad offsets are refused before anything is written. This is the batch
 * call Go and JavaScript make without copying each key. */
#include <stdint.h>

#include "check.h"

#define N_KEYS 300

typedef qk_status (*single_fn)(const void *, const uint8_t *, size_t, size_t *);
typedef qk_status (*flat_fn)(const void *, const uint8_t *, size_t, const size_t *, size_t, size_t *);

static uint8_t buf[N_KEYS * 24];
static size_t offsets[N_KEYS + 1];

/* Keys of 0..23 bytes (the empty key included), end to end. */
static size_t make_keys(void) {
    uint32_t x = 2026;
    size_t at = 0;
    for (size_t i = 0; i < N_KEYS; i++) {
        offsets[i] = at;
        size_t len = i % 24;
        for (size_t k = 0; k < len; k++) {
            x = x * 1103515245u + 12345u;
            buf[at++] = (uint8_t)(x >> 16);
        }
    }
    offsets[N_KEYS] = at;
    return at;
}

static void check_placement(const char *what, const void *p, single_fn single, flat_fn flat) {
    size_t len = make_keys();
    size_t got[N_KEYS];
    CHECK_OK(flat(p, buf, len, offsets, N_KEYS, got));
    int mismatches = 0;
    for (size_t i = 0; i < N_KEYS; i++) {
        size_t want = SIZE_MAX;
        CHECK_OK(single(p, buf + offsets[i], offsets[i + 1] - offsets[i], &want));
        mismatches += got[i] != want;
    }
    if (mismatches) printf("%s: %d mismatches\n", what, mismatches);
    CHECK(mismatches == 0);

    /* Bad offsets: decreasing, past the end; nothing is written. */
    size_t sentinel[N_KEYS];
    for (size_t i = 0; i < N_KEYS; i++) sentinel[i] = 777;
    size_t saved = offsets[5];
    offsets[5] = offsets[6] + 1;
    CHECK_ERR(flat(p, buf, len, offsets, N_KEYS, sentinel), QK_ERR_INVALID_ARG);
    offsets[5] = saved;
    CHECK_ERR(flat(p, buf, len - 1, offsets, N_KEYS, sentinel), QK_ERR_INVALID_ARG);
    CHECK(strstr(qk_last_error_message(), "offsets") != NULL);
    for (size_t i = 0; i < N_KEYS; i++) CHECK(sentinel[i] == 777);
    /* NULLs, and the empty batch. */
    CHECK_ERR(flat(NULL, buf, len, offsets, N_KEYS, got), QK_ERR_NULL_ARG);
    CHECK_ERR(flat(p, NULL, len, offsets, N_KEYS, got), QK_ERR_NULL_ARG);
    CHECK_ERR(flat(p, buf, len, NULL, N_KEYS, got), QK_ERR_NULL_ARG);
    CHECK_ERR(flat(p, buf, len, offsets, N_KEYS, NULL), QK_ERR_NULL_ARG);
    CHECK_OK(flat(p, NULL, 0, NULL, 0, NULL));
}

/* Adapters with the generic signatures (a cast between function types
 * would be undefined behaviour). */
#define ADAPT(prefix, type)                                                                      \
    static qk_status prefix##_single(const void *p, const uint8_t *k, size_t n, size_t *out) {  \
        return prefix##_get_node((const type *)p, k, n, out, NULL);                               \
    }                                                                                          \
    static qk_status prefix##_flat(const void *p, const uint8_t *k, size_t n, const size_t *o, \
                                   size_t c, size_t *out) {                                    \
        return prefix##_get_node_batch_flat((const type *)p, k, n, o, c, out, NULL);              \
    }
ADAPT(qk_ring, qk_ring)
ADAPT(qk_ketama, qk_ketama)
ADAPT(qk_maglev, qk_maglev)
ADAPT(qk_md5ring, qk_md5ring)
ADAPT(qk_rendezvous, qk_rendezvous)

#define PLACEMENT(what, p, prefix) check_placement(what, p, prefix##_single, prefix##_flat)

void test_batch_flat(void) {
    static const char *names[] = {"cache-a", "cache-b", "cache-c", "cache-d"};

    qk_ring *ring = NULL;
    REQUIRE(qk_ring_new(0, &ring, NULL) == QK_OK);
    size_t none[1];
    CHECK_ERR(qk_ring_get_node_batch_flat(ring, buf, 0, offsets, 0, none, NULL), QK_ERR_EMPTY);
    for (int i = 0; i < 4; i++) CHECK_OK(qk_ring_add_node(ring, STR(names[i]), (uint32_t)i + 1, NULL));
    PLACEMENT("ring", ring, qk_ring);
    qk_ring_free(ring);

    const char *specs[] = {"10.0.0.1:11211", "10.0.0.2:11211", "10.0.0.3:11211"};
    size_t lens[] = {14, 14, 14};
    qk_ketama *k = NULL;
    REQUIRE(qk_ketama_new(QK_KETAMA_LIBMEMCACHED, specs, lens, NULL, 3, &k, NULL) == QK_OK);
    PLACEMENT("ketama", k, qk_ketama);
    qk_ketama_free(k);

    qk_maglev *m = NULL;
    REQUIRE(qk_maglev_new(1009, &m, NULL) == QK_OK);
    for (int i = 0; i < 4; i++) CHECK_OK(qk_maglev_add_node(m, STR(names[i]), 1, NULL));
    PLACEMENT("maglev", m, qk_maglev);
    qk_maglev_free(m);

    qk_md5ring *md = NULL;
    REQUIRE(qk_md5ring_new(40, &md, NULL) == QK_OK);
    for (int i = 0; i < 4; i++) CHECK_OK(qk_md5ring_add_node(md, STR(names[i]), 40, 1, NULL));
    PLACEMENT("md5ring", md, qk_md5ring);
    qk_md5ring_free(md);

    qk_rendezvous *h = NULL;
    REQUIRE(qk_rendezvous_new(&h, NULL) == QK_OK);
    for (int i = 0; i < 4; i++) CHECK_OK(qk_rendezvous_add_node(h, STR(names[i]), 1.0 + i, NULL));
    PLACEMENT("rendezvous", h, qk_rendezvous);
    qk_rendezvous_free(h);
}
