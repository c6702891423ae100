/* Jump hash, qk_rendezvous and qk_maglev: every function, with good and bad
 * arguments, and real placements. */
#include <math.h>

#include "check.h"

#define NKEYS 5000

static void make_key(char *buf, size_t cap, int i) { snprintf(buf, cap, "key-%d", i); }

/* ------------------------------------------------------------------ jump */

static void test_jump(void) {
    /* Vectors of the paper's algorithm (checked against the PyPI package
     * jump-consistent-hash 3.6.0, see src/ring/jump.rs). */
    static const struct {
        uint64_t key;
        uint32_t n, want;
    } v[] = {{0, 1, 0},         {1, 10, 6},           {UINT64_MAX, 1000, 313},
             {42, 1000, 571},   {0xdeadbeef, 1000, 285}, {0x0123456789abcdefull, 1000000, 352229},
             {1, 2147483647u, 262355607u}};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        uint32_t b = SENTINEL_U32;
        CHECK_OK(qk_jump_hash(v[i].key, v[i].n, &b, NULL));
        CHECK(b == v[i].want);
    }
    uint32_t b = SENTINEL_U32;
    CHECK_ERR(qk_jump_hash(1, 0, &b, NULL), QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_jump_hash(1, 10, NULL, NULL), QK_ERR_NULL_ARG);
    CHECK(b == SENTINEL_U32);

    /* Byte keys: jump of the key's qk_hash_key. */
    uint64_t h = 0;
    uint32_t want = 0;
    CHECK_OK(qk_hash_key(KEY("user:42"), &h, NULL));
    CHECK_OK(qk_jump_hash(h, 1000, &want, NULL));
    CHECK_OK(qk_jump_hash_key(KEY("user:42"), 1000, &b, NULL));
    CHECK(b == want && b < 1000);
    CHECK_OK(qk_jump_hash_key(NULL, 0, 7, &b, NULL)); /* the empty key */
    CHECK(b < 7);
    b = SENTINEL_U32;
    CHECK_ERR(qk_jump_hash_key(NULL, 3, 7, &b, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_jump_hash_key(KEY("k"), 0, &b, NULL), QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_jump_hash_key(KEY("k"), 7, NULL, NULL), QK_ERR_NULL_ARG);
    CHECK(b == SENTINEL_U32);

    /* Batch. */
    uint64_t keys[4] = {0, 1, UINT64_MAX, 42};
    uint32_t out[4] = {SENTINEL_U32, SENTINEL_U32, SENTINEL_U32, SENTINEL_U32};
    CHECK_ERR(qk_jump_hash_batch(keys, 4, 0, out, NULL), QK_ERR_INVALID_ARG);
    CHECK(out[0] == SENTINEL_U32);
    CHECK_ERR(qk_jump_hash_batch(NULL, 4, 1000, out, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_jump_hash_batch(keys, 4, 1000, NULL, NULL), QK_ERR_NULL_ARG);
    CHECK_OK(qk_jump_hash_batch(NULL, 0, 1000, NULL, NULL));
    CHECK_OK(qk_jump_hash_batch(keys, 4, 1000, out, NULL));
    CHECK(out[0] == 0 && out[2] == 313 && out[3] == 571);

    /* Growing from 10 to 11 buckets moves keys only to bucket 10. */
    int moved = 0;
    for (uint64_t k = 0; k < NKEYS; k++) {
        uint32_t a, c;
        CHECK_OK(qk_jump_hash(k * 0x9e3779b97f4a7c15ull, 10, &a, NULL));
        CHECK_OK(qk_jump_hash(k * 0x9e3779b97f4a7c15ull, 11, &c, NULL));
        if (a != c) {
            moved++;
            CHECK(c == 10);
        }
    }
    CHECK(moved > NKEYS / 20 && moved < NKEYS / 6); /* expected 1/11 */
}

/* ------------------------------------------------------------ rendezvous */

static void test_rendezvous(void) {
    qk_rendezvous *r = NULL;
    CHECK_ERR(qk_rendezvous_new(NULL, NULL), QK_ERR_NULL_ARG);
    qk_rendezvous_free(NULL);
    REQUIRE(qk_rendezvous_new(&r, NULL) == QK_OK && r != NULL);

    size_t idx = SENTINEL_SIZE;
    CHECK_ERR(qk_rendezvous_get_node(r, KEY("k"), &idx, NULL), QK_ERR_EMPTY);
    CHECK_ERR(qk_rendezvous_get_node_by_hash(r, 1, &idx, NULL), QK_ERR_EMPTY);
    CHECK(idx == SENTINEL_SIZE);

    /* add_node: bad arguments */
    CHECK_ERR(qk_rendezvous_add_node(NULL, STR("a"), 1.0, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_rendezvous_add_node(r, NULL, 1, 1.0, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_rendezvous_add_node(r, "\xff", 1, 1.0, NULL), QK_ERR_INVALID_UTF8);
    CHECK_ERR(qk_rendezvous_add_node(r, "", 0, 1.0, NULL), QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_rendezvous_add_node(r, "a\0b", 3, 1.0, NULL), QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_rendezvous_add_node(r, STR("a"), 0.0, NULL), QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_rendezvous_add_node(r, STR("a"), -1.0, NULL), QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_rendezvous_add_node(r, STR("a"), NAN, NULL), QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_rendezvous_add_node(r, STR("a"), INFINITY, NULL), QK_ERR_INVALID_ARG);
    size_t count = SENTINEL_SIZE;
    CHECK_OK(qk_rendezvous_node_count(r, &count, NULL));
    CHECK(count == 0);

    static const char *const names[] = {"n0", "n1", "n2", "n3"};
    static const double weights[] = {1.0, 2.0, 0.5, 4.5};
    for (int i = 0; i < 4; i++) CHECK_OK(qk_rendezvous_add_node(r, STR(names[i]), weights[i], NULL));
    CHECK_ERR(qk_rendezvous_add_node(r, STR("n1"), 1.0, NULL), QK_ERR_ALREADY_EXISTS);
    CHECK_ERR(qk_rendezvous_node_count(NULL, &count, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_rendezvous_node_count(r, NULL, NULL), QK_ERR_NULL_ARG);
    CHECK_OK(qk_rendezvous_node_count(r, &count, NULL));
    CHECK(count == 4);

    /* weight / set_weight */
    double w = -1;
    CHECK_OK(qk_rendezvous_weight(r, STR("n2"), &w, NULL));
    CHECK(w == 0.5);
    w = -1;
    CHECK_ERR(qk_rendezvous_weight(NULL, STR("n2"), &w, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_rendezvous_weight(r, NULL, 2, &w, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_rendezvous_weight(r, "\xc3", 1, &w, NULL), QK_ERR_INVALID_UTF8);
    CHECK_ERR(qk_rendezvous_weight(r, STR("zz"), &w, NULL), QK_ERR_NOT_FOUND);
    CHECK_ERR(qk_rendezvous_weight(r, STR("n2"), NULL, NULL), QK_ERR_NULL_ARG);
    CHECK(w == -1);
    CHECK_ERR(qk_rendezvous_set_weight(NULL, STR("n2"), 1.0, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_rendezvous_set_weight(r, NULL, 2, 1.0, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_rendezvous_set_weight(r, "\xff", 1, 1.0, NULL), QK_ERR_INVALID_UTF8);
    CHECK_ERR(qk_rendezvous_set_weight(r, STR("zz"), 1.0, NULL), QK_ERR_NOT_FOUND);
    CHECK_ERR(qk_rendezvous_set_weight(r, STR("n2"), 0.0, NULL), QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_rendezvous_set_weight(r, STR("n2"), NAN, NULL), QK_ERR_INVALID_ARG);
    CHECK_OK(qk_rendezvous_set_weight(r, STR("n2"), 2.5, NULL));
    CHECK_OK(qk_rendezvous_weight(r, STR("n2"), &w, NULL));
    CHECK(w == 2.5);
    CHECK_OK(qk_rendezvous_set_weight(r, STR("n2"), 0.5, NULL));

    /* node_name / node_index */
    const char *name = NULL;
    size_t len = SENTINEL_SIZE;
    CHECK_ERR(qk_rendezvous_node_name(NULL, 0, &name, &len, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_rendezvous_node_name(r, 0, NULL, &len, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_rendezvous_node_name(r, 0, &name, NULL, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_rendezvous_node_name(r, 4, &name, &len, NULL), QK_ERR_NOT_FOUND);
    CHECK(name == NULL && len == SENTINEL_SIZE);
    CHECK_OK(qk_rendezvous_node_name(r, 3, &name, &len, NULL));
    CHECK(strcmp(name, "n3") == 0 && len == 2);
    idx = SENTINEL_SIZE;
    CHECK_ERR(qk_rendezvous_node_index(NULL, STR("n3"), &idx, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_rendezvous_node_index(r, NULL, 1, &idx, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_rendezvous_node_index(r, "\xff", 1, &idx, NULL), QK_ERR_INVALID_UTF8);
    CHECK_ERR(qk_rendezvous_node_index(r, STR("zz"), &idx, NULL), QK_ERR_NOT_FOUND);
    CHECK_ERR(qk_rendezvous_node_index(r, STR("n3"), NULL, NULL), QK_ERR_NULL_ARG);
    CHECK_OK(qk_rendezvous_node_index(r, STR("n3"), &idx, NULL));
    CHECK(idx == 3);

    /* shares: the expected w / sum(w) */
    double shares[5] = {-1, -1, -1, -1, -1};
    CHECK_ERR(qk_rendezvous_shares(NULL, shares, 5, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_rendezvous_shares(r, NULL, 5, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_rendezvous_shares(r, shares, 3, NULL), QK_ERR_BUFFER_TOO_SMALL);
    CHECK(shares[0] == -1);
    CHECK_OK(qk_rendezvous_shares(r, shares, 5, NULL));
    for (int i = 0; i < 4; i++) CHECK(fabs(shares[i] - weights[i] / 8.0) < 1e-12);
    CHECK(shares[4] == -1);

    /* get_node: bad arguments, then counts that follow the weights. */
    idx = SENTINEL_SIZE;
    CHECK_ERR(qk_rendezvous_get_node(NULL, KEY("k"), &idx, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_rendezvous_get_node(r, NULL, 1, &idx, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_rendezvous_get_node(r, KEY("k"), NULL, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_rendezvous_get_node_by_hash(NULL, 1, &idx, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_rendezvous_get_node_by_hash(r, 1, NULL, NULL), QK_ERR_NULL_ARG);
    CHECK(idx == SENTINEL_SIZE);
    CHECK_OK(qk_rendezvous_get_node(r, NULL, 0, &idx, NULL));
    CHECK(idx < 4);

    int counts[4] = {0};
    size_t owner[NKEYS];
    char key[32];
    for (int i = 0; i < NKEYS; i++) {
        make_key(key, sizeof key, i);
        uint64_t h;
        size_t by_hash = SENTINEL_SIZE;
        CHECK_OK(qk_rendezvous_get_node(r, KEY(key), &owner[i], NULL));
        CHECK_OK(qk_hash_key(KEY(key), &h, NULL));
        CHECK_OK(qk_rendezvous_get_node_by_hash(r, h, &by_hash, NULL));
        CHECK(by_hash == owner[i]);
        counts[owner[i]]++;
    }
    for (int i = 0; i < 4; i++) {
        double got = (double)counts[i] / NKEYS;
        CHECK(fabs(got - weights[i] / 8.0) < 0.03);
    }

    /* get_nodes */
    size_t pref[4] = {SENTINEL_SIZE, SENTINEL_SIZE, SENTINEL_SIZE, SENTINEL_SIZE};
    CHECK_ERR(qk_rendezvous_get_nodes(NULL, KEY("k"), 2, pref, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_rendezvous_get_nodes(r, NULL, 1, 2, pref, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_rendezvous_get_nodes(r, KEY("k"), 2, NULL, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_rendezvous_get_nodes(r, KEY("k"), 5, pref, NULL), QK_ERR_INVALID_ARG);
    CHECK(pref[0] == SENTINEL_SIZE);
    CHECK_OK(qk_rendezvous_get_nodes(r, KEY("k"), 0, NULL, NULL));
    CHECK_OK(qk_rendezvous_get_nodes(r, KEY("key-7"), 4, pref, NULL));
    CHECK(pref[0] == owner[7]);
    for (int i = 0; i < 4; i++)
        for (int j = i + 1; j < 4; j++) CHECK(pref[i] != pref[j]);

    /* get_node_batch */
    const uint8_t *keys[3] = {(const uint8_t *)"key-1", (const uint8_t *)"key-2", NULL};
    size_t lens[3] = {5, 5, 0};
    size_t out[3] = {SENTINEL_SIZE, SENTINEL_SIZE, SENTINEL_SIZE};
    CHECK_ERR(qk_rendezvous_get_node_batch(NULL, keys, lens, 3, out, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_rendezvous_get_node_batch(r, NULL, lens, 3, out, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_rendezvous_get_node_batch(r, keys, NULL, 3, out, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_rendezvous_get_node_batch(r, keys, lens, 3, NULL, NULL), QK_ERR_NULL_ARG);
    lens[2] = 4; /* keys[2] is NULL with a length */
    CHECK_ERR(qk_rendezvous_get_node_batch(r, keys, lens, 3, out, NULL), QK_ERR_NULL_ARG);
    CHECK(out[0] == SENTINEL_SIZE);
    lens[2] = 0;
    CHECK_OK(qk_rendezvous_get_node_batch(r, keys, lens, 3, out, NULL));
    CHECK(out[0] == owner[1] && out[1] == owner[2] && out[2] < 4);

    /* remove_node: only the removed node's keys move. */
    CHECK_ERR(qk_rendezvous_remove_node(NULL, STR("n1"), NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_rendezvous_remove_node(r, NULL, 2, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_rendezvous_remove_node(r, "\xff", 1, NULL), QK_ERR_INVALID_UTF8);
    CHECK_ERR(qk_rendezvous_remove_node(r, STR("zz"), NULL), QK_ERR_NOT_FOUND);
    CHECK_OK(qk_rendezvous_remove_node(r, STR("n1"), NULL));
    for (int i = 0; i < NKEYS; i++) {
        make_key(key, sizeof key, i);
        size_t now;
        CHECK_OK(qk_rendezvous_get_node(r, KEY(key), &now, NULL));
        if (owner[i] != 1) CHECK(now == (owner[i] > 1 ? owner[i] - 1 : owner[i]));
    }
    qk_rendezvous_free(r);
}

/* ---------------------------------------------------------------- maglev */

static void test_maglev(void) {
    qk_maglev *m = NULL;
    CHECK_ERR(qk_maglev_new(0, NULL, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_maglev_new(65536, &m, NULL), QK_ERR_INVALID_ARG); /* not prime */
    CHECK_ERR(qk_maglev_new(1, &m, NULL), QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_maglev_new(2147483647u, &m, NULL), QK_ERR_INVALID_ARG); /* prime, too large */
    CHECK(m == NULL);
    qk_maglev_free(NULL);
    REQUIRE(qk_maglev_new(0, &m, NULL) == QK_OK && m != NULL);
    uint32_t size = SENTINEL_U32;
    CHECK_ERR(qk_maglev_table_size(NULL, &size, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_maglev_table_size(m, NULL, NULL), QK_ERR_NULL_ARG);
    CHECK_OK(qk_maglev_table_size(m, &size, NULL));
    CHECK(size == QK_MAGLEV_DEFAULT_TABLE_SIZE && size == 65537);

    size_t idx = SENTINEL_SIZE;
    CHECK_ERR(qk_maglev_get_node(m, KEY("k"), &idx, NULL), QK_ERR_EMPTY);
    CHECK_ERR(qk_maglev_get_node_by_hash(m, 1, &idx, NULL), QK_ERR_EMPTY);

    /* add_node */
    CHECK_ERR(qk_maglev_add_node(NULL, STR("a"), 1, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_maglev_add_node(m, NULL, 1, 1, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_maglev_add_node(m, "\xff", 1, 1, NULL), QK_ERR_INVALID_UTF8);
    CHECK_ERR(qk_maglev_add_node(m, "", 0, 1, NULL), QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_maglev_add_node(m, STR("a"), 0, NULL), QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_maglev_add_node(m, STR("a"), 70000, NULL), QK_ERR_INVALID_ARG); /* > table */
    char name_buf[32];
    for (int i = 0; i < 100; i++) {
        snprintf(name_buf, sizeof name_buf, "backend-%d", i);
        CHECK_OK(qk_maglev_add_node(m, STR(name_buf), 1, NULL));
    }
    CHECK_ERR(qk_maglev_add_node(m, STR("backend-3"), 1, NULL), QK_ERR_ALREADY_EXISTS);
    size_t count = 0;
    CHECK_ERR(qk_maglev_node_count(NULL, &count, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_maglev_node_count(m, NULL, NULL), QK_ERR_NULL_ARG);
    CHECK_OK(qk_maglev_node_count(m, &count, NULL));
    CHECK(count == 100);

    /* shares: max/mean <= 1.01 with the default table at 100 backends */
    double shares[100];
    CHECK_ERR(qk_maglev_shares(NULL, shares, 100, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_maglev_shares(m, NULL, 100, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_maglev_shares(m, shares, 99, NULL), QK_ERR_BUFFER_TOO_SMALL);
    CHECK_OK(qk_maglev_shares(m, shares, 100, NULL));
    double max = 0, sum = 0;
    for (int i = 0; i < 100; i++) {
        sum += shares[i];
        if (shares[i] > max) max = shares[i];
    }
    CHECK(fabs(sum - 1.0) < 1e-9);
    CHECK(max * 100 <= 1.01);

    /* weight / set_weight */
    uint32_t w = SENTINEL_U32;
    CHECK_ERR(qk_maglev_weight(NULL, STR("backend-3"), &w, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_maglev_weight(m, NULL, 1, &w, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_maglev_weight(m, "\xff", 1, &w, NULL), QK_ERR_INVALID_UTF8);
    CHECK_ERR(qk_maglev_weight(m, STR("zz"), &w, NULL), QK_ERR_NOT_FOUND);
    CHECK_ERR(qk_maglev_weight(m, STR("backend-3"), NULL, NULL), QK_ERR_NULL_ARG);
    CHECK(w == SENTINEL_U32);
    CHECK_ERR(qk_maglev_set_weight(NULL, STR("backend-3"), 2, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_maglev_set_weight(m, NULL, 1, 2, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_maglev_set_weight(m, "\xff", 1, 2, NULL), QK_ERR_INVALID_UTF8);
    CHECK_ERR(qk_maglev_set_weight(m, STR("zz"), 2, NULL), QK_ERR_NOT_FOUND);
    CHECK_ERR(qk_maglev_set_weight(m, STR("backend-3"), 0, NULL), QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_maglev_set_weight(m, STR("backend-3"), 65537, NULL), QK_ERR_INVALID_ARG);
    CHECK_OK(qk_maglev_weight(m, STR("backend-3"), &w, NULL));
    CHECK(w == 1);

    /* clone, set_weight, diff */
    qk_maglev *before = NULL;
    CHECK_ERR(qk_maglev_clone(NULL, &before, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_maglev_clone(m, NULL, NULL), QK_ERR_NULL_ARG);
    CHECK_OK(qk_maglev_clone(m, &before, NULL));
    double frac = -1;
    CHECK_OK(qk_maglev_diff(m, before, &frac, NULL));
    CHECK(frac == 0.0);
    CHECK_OK(qk_maglev_set_weight(m, STR("backend-3"), 3, NULL));
    CHECK_OK(qk_maglev_weight(m, STR("backend-3"), &w, NULL));
    CHECK(w == 3);
    CHECK_OK(qk_maglev_shares(m, shares, 100, NULL));
    CHECK(shares[3] > 2.5 / 102 && shares[3] < 3.5 / 102);
    CHECK_OK(qk_maglev_diff(before, m, &frac, NULL));
    CHECK(frac > 0.015 && frac < 0.1);
    CHECK_OK(qk_maglev_set_weight(m, STR("backend-3"), 1, NULL));
    CHECK_OK(qk_maglev_diff(before, m, &frac, NULL));
    CHECK(frac == 0.0);

    /* names and indices */
    const char *name = NULL;
    size_t len = SENTINEL_SIZE;
    CHECK_ERR(qk_maglev_node_name(NULL, 0, &name, &len, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_maglev_node_name(m, 0, NULL, &len, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_maglev_node_name(m, 0, &name, NULL, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_maglev_node_name(m, 100, &name, &len, NULL), QK_ERR_NOT_FOUND);
    CHECK_OK(qk_maglev_node_name(m, 42, &name, &len, NULL));
    CHECK(strcmp(name, "backend-42") == 0 && len == 10);
    CHECK_ERR(qk_maglev_node_index(NULL, STR("backend-42"), &idx, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_maglev_node_index(m, NULL, 1, &idx, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_maglev_node_index(m, "\xff", 1, &idx, NULL), QK_ERR_INVALID_UTF8);
    CHECK_ERR(qk_maglev_node_index(m, STR("zz"), &idx, NULL), QK_ERR_NOT_FOUND);
    CHECK_ERR(qk_maglev_node_index(m, STR("backend-42"), NULL, NULL), QK_ERR_NULL_ARG);
    CHECK_OK(qk_maglev_node_index(m, STR("backend-42"), &idx, NULL));
    CHECK(idx == 42);

    /* lookups */
    idx = SENTINEL_SIZE;
    CHECK_ERR(qk_maglev_get_node(NULL, KEY("k"), &idx, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_maglev_get_node(m, NULL, 1, &idx, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_maglev_get_node(m, KEY("k"), NULL, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_maglev_get_node_by_hash(NULL, 1, &idx, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_maglev_get_node_by_hash(m, 1, NULL, NULL), QK_ERR_NULL_ARG);
    CHECK(idx == SENTINEL_SIZE);
    static size_t owner[NKEYS];
    char key[32];
    for (int i = 0; i < NKEYS; i++) {
        make_key(key, sizeof key, i);
        uint64_t h;
        size_t by_hash = SENTINEL_SIZE;
        CHECK_OK(qk_maglev_get_node(m, KEY(key), &owner[i], NULL));
        CHECK_OK(qk_hash_key(KEY(key), &h, NULL));
        CHECK_OK(qk_maglev_get_node_by_hash(m, h, &by_hash, NULL));
        CHECK(by_hash == owner[i] && owner[i] < 100);
    }
    size_t pref[100];
    CHECK_ERR(qk_maglev_get_nodes(NULL, KEY("key-5"), 3, pref, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_maglev_get_nodes(m, NULL, 1, 3, pref, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_maglev_get_nodes(m, KEY("key-5"), 3, NULL, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_maglev_get_nodes(m, KEY("key-5"), 101, pref, NULL), QK_ERR_INVALID_ARG);
    CHECK_OK(qk_maglev_get_nodes(m, KEY("key-5"), 100, pref, NULL));
    CHECK(pref[0] == owner[5]);
    int seen[100] = {0}, distinct = 0;
    for (int i = 0; i < 100; i++) distinct += !seen[pref[i]]++;
    CHECK(distinct == 100);

    const uint8_t *keys[2] = {(const uint8_t *)"key-1", (const uint8_t *)"key-2"};
    size_t lens[2] = {5, 5}, out[2] = {SENTINEL_SIZE, SENTINEL_SIZE};
    CHECK_ERR(qk_maglev_get_node_batch(NULL, keys, lens, 2, out, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_maglev_get_node_batch(m, NULL, lens, 2, out, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_maglev_get_node_batch(m, keys, NULL, 2, out, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_maglev_get_node_batch(m, keys, lens, 2, NULL, NULL), QK_ERR_NULL_ARG);
    CHECK_OK(qk_maglev_get_node_batch(m, keys, lens, 2, out, NULL));
    CHECK(out[0] == owner[1] && out[1] == owner[2]);

    /* remove_node: the removed backend's keys move, plus a little churn
     * that diff reports. */
    CHECK_ERR(qk_maglev_remove_node(NULL, STR("backend-7"), NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_maglev_remove_node(m, NULL, 1, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_maglev_remove_node(m, "\xff", 1, NULL), QK_ERR_INVALID_UTF8);
    CHECK_ERR(qk_maglev_remove_node(m, STR("zz"), NULL), QK_ERR_NOT_FOUND);
    CHECK_OK(qk_maglev_remove_node(m, STR("backend-7"), NULL));
    frac = -1;
    CHECK_ERR(qk_maglev_diff(NULL, m, &frac, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_maglev_diff(before, NULL, &frac, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_maglev_diff(before, m, NULL, NULL), QK_ERR_NULL_ARG);
    CHECK(frac == -1);
    CHECK_OK(qk_maglev_diff(before, m, &frac, NULL));
    CHECK(frac >= 0.01 && frac < 0.03);
    int moved = 0;
    for (int i = 0; i < NKEYS; i++) {
        make_key(key, sizeof key, i);
        size_t now;
        CHECK_OK(qk_maglev_get_node(m, KEY(key), &now, NULL));
        size_t was = owner[i] > 7 ? owner[i] - 1 : owner[i];
        if (owner[i] == 7 || now != was) moved++;
    }
    CHECK(fabs((double)moved / NKEYS - frac) < 0.01);

    qk_maglev *small = NULL;
    CHECK_OK(qk_maglev_new(7, &small, NULL));
    CHECK_ERR(qk_maglev_diff(before, small, &frac, NULL), QK_ERR_INVALID_ARG);
    for (int i = 0; i < 6; i++) {
        snprintf(name_buf, sizeof name_buf, "s%d", i);
        CHECK_OK(qk_maglev_add_node(small, STR(name_buf), 1, NULL));
    }
    CHECK_ERR(qk_maglev_add_node(small, STR("s6"), 1, NULL), QK_ERR_INVALID_ARG); /* 7 of 7 */
    qk_maglev_free(small);
    qk_maglev_free(before);
    qk_maglev_free(m);
}

void test_algos(void) {
    test_jump();
    test_rendezvous();
    test_maglev();
}
