/* qk_ring: every function, with good and bad arguments, and real placements. */
#include <math.h>

#include "check.h"

#define NKEYS 10000

static qk_status add(qk_ring *r, const char *name, uint32_t weight) {
    return qk_ring_add_node(r, STR(name), weight, NULL);
}

/* The name of node `index`, or "" when the call fails. */
static const char *name_of(const qk_ring *r, size_t index) {
    const char *name = NULL;
    size_t len = 0;
    if (qk_ring_node_name(r, index, &name, &len, NULL) != QK_OK) return "";
    return name;
}

static void make_key(char *buf, size_t cap, int i) { snprintf(buf, cap, "key-%d", i); }

static void test_new_and_free(void) {
    qk_ring *r = (qk_ring *)0x1;
    CHECK_ERR(qk_ring_new(0, NULL, NULL), QK_ERR_NULL_ARG);
    qk_ring_free(NULL); /* a no-op */

    /* vnodes 0 means 160 points per unit of weight. */
    CHECK_OK(qk_ring_new(0, &r, NULL));
    REQUIRE(r != NULL && r != (qk_ring *)0x1);
    size_t points = SENTINEL_SIZE;
    CHECK_OK(add(r, "a", 1));
    CHECK_OK(qk_ring_point_count(r, &points, NULL));
    CHECK(points == 160);
    CHECK_OK(add(r, "b", 3));
    CHECK_OK(qk_ring_point_count(r, &points, NULL));
    CHECK(points == 160 * 4);
    qk_ring_free(r);

    CHECK_OK(qk_ring_new(10, &r, NULL));
    CHECK_OK(add(r, "a", 2));
    CHECK_OK(qk_ring_point_count(r, &points, NULL));
    CHECK(points == 20);
    points = SENTINEL_SIZE;
    CHECK_ERR(qk_ring_point_count(NULL, &points, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_ring_point_count(r, NULL, NULL), QK_ERR_NULL_ARG);
    CHECK(points == SENTINEL_SIZE);
    qk_ring_free(r);
}

static void test_membership(void) {
    qk_ring *r = NULL;
    REQUIRE(qk_ring_new(0, &r, NULL) == QK_OK);

    /* add_node: bad arguments */
    CHECK_ERR(qk_ring_add_node(NULL, STR("a"), 1, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_ring_add_node(r, NULL, 1, 1, NULL), QK_ERR_NULL_ARG);
    /* (NULL, 0) is the empty name, as (NULL, 0) is the empty key (an empty
     * Go string arrives so): the same answer as "", not a NULL error. */
    CHECK_ERR(qk_ring_add_node(r, NULL, 0, 1, NULL), QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_ring_add_node(r, "\xff\xfe", 2, 1, NULL), QK_ERR_INVALID_UTF8);
    CHECK_ERR(qk_ring_add_node(r, "\xc3", 1, 1, NULL), QK_ERR_INVALID_UTF8); /* truncated sequence */
    CHECK_ERR(qk_ring_add_node(r, "", 0, 1, NULL), QK_ERR_INVALID_ARG);      /* empty name */
    CHECK_ERR(qk_ring_add_node(r, "a\0b", 3, 1, NULL), QK_ERR_INVALID_ARG);  /* NUL inside */
    CHECK_ERR(add(r, "zero", 0), QK_ERR_INVALID_ARG);
    CHECK_ERR(add(r, "huge", 0xffffffffu), QK_ERR_INVALID_ARG); /* too many points */
    size_t count = SENTINEL_SIZE;
    CHECK_OK(qk_ring_node_count(r, &count, NULL));
    CHECK(count == 0); /* nothing was added by the failures */

    /* add_node: good, with the length taken literally (no NUL needed) */
    CHECK_OK(qk_ring_add_node(r, "alpha-and-more", 5, 1, NULL));
    CHECK_OK(add(r, "beta", 2));
    CHECK_OK(add(r, "gamma", 1));
    CHECK_OK(add(r, "\xc3\xbc-ключ", 1)); /* UTF-8 names are fine */
    CHECK_ERR(add(r, "beta", 5), QK_ERR_ALREADY_EXISTS);
    CHECK(strstr(qk_last_error_message(), "beta") != NULL);

    /* node_count */
    count = SENTINEL_SIZE;
    CHECK_ERR(qk_ring_node_count(NULL, &count, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_ring_node_count(r, NULL, NULL), QK_ERR_NULL_ARG);
    CHECK(count == SENTINEL_SIZE);
    CHECK_OK(qk_ring_node_count(r, &count, NULL));
    CHECK(count == 4);

    /* node_name: NUL-terminated, with its length, in insertion order */
    const char *name = "untouched";
    size_t len = SENTINEL_SIZE;
    CHECK_OK(qk_ring_node_name(r, 0, &name, &len, NULL));
    CHECK(strcmp(name, "alpha") == 0 && len == 5);
    CHECK_OK(qk_ring_node_name(r, 3, &name, &len, NULL));
    CHECK(strcmp(name, "\xc3\xbc-ключ") == 0 && len == strlen("\xc3\xbc-ключ"));
    name = "untouched";
    len = SENTINEL_SIZE;
    CHECK_ERR(qk_ring_node_name(r, 4, &name, &len, NULL), QK_ERR_NOT_FOUND);
    CHECK_ERR(qk_ring_node_name(r, (size_t)-1, &name, &len, NULL), QK_ERR_NOT_FOUND);
    CHECK_ERR(qk_ring_node_name(NULL, 0, &name, &len, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_ring_node_name(r, 0, NULL, &len, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_ring_node_name(r, 0, &name, NULL, NULL), QK_ERR_NULL_ARG);
    CHECK(strcmp(name, "untouched") == 0 && len == SENTINEL_SIZE);

    /* node_index */
    size_t index = SENTINEL_SIZE;
    CHECK_OK(qk_ring_node_index(r, STR("gamma"), &index, NULL));
    CHECK(index == 2);
    index = SENTINEL_SIZE;
    CHECK_ERR(qk_ring_node_index(r, STR("delta"), &index, NULL), QK_ERR_NOT_FOUND);
    CHECK(strstr(qk_last_error_message(), "delta") != NULL);
    CHECK_ERR(qk_ring_node_index(r, "\xff", 1, &index, NULL), QK_ERR_INVALID_UTF8);
    CHECK_ERR(qk_ring_node_index(NULL, STR("gamma"), &index, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_ring_node_index(r, NULL, 3, &index, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_ring_node_index(r, STR("gamma"), NULL, NULL), QK_ERR_NULL_ARG);
    CHECK(index == SENTINEL_SIZE);

    /* weight and set_weight */
    uint32_t w = SENTINEL_U32;
    CHECK_OK(qk_ring_weight(r, STR("beta"), &w, NULL));
    CHECK(w == 2);
    w = SENTINEL_U32;
    CHECK_ERR(qk_ring_weight(r, STR("delta"), &w, NULL), QK_ERR_NOT_FOUND);
    CHECK_ERR(qk_ring_weight(r, "\xff", 1, &w, NULL), QK_ERR_INVALID_UTF8);
    CHECK_ERR(qk_ring_weight(NULL, STR("beta"), &w, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_ring_weight(r, NULL, 4, &w, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_ring_weight(r, STR("beta"), NULL, NULL), QK_ERR_NULL_ARG);
    CHECK(w == SENTINEL_U32);
    CHECK_OK(qk_ring_set_weight(r, STR("beta"), 5, NULL));
    CHECK_OK(qk_ring_weight(r, STR("beta"), &w, NULL));
    CHECK(w == 5);
    size_t points = 0;
    CHECK_OK(qk_ring_point_count(r, &points, NULL));
    CHECK(points == 160 * (1 + 5 + 1 + 1));
    CHECK_ERR(qk_ring_set_weight(r, STR("beta"), 0, NULL), QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_ring_set_weight(r, STR("delta"), 1, NULL), QK_ERR_NOT_FOUND);
    CHECK_ERR(qk_ring_set_weight(r, "\xff", 1, 1, NULL), QK_ERR_INVALID_UTF8);
    CHECK_ERR(qk_ring_set_weight(NULL, STR("beta"), 1, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_ring_set_weight(r, NULL, 4, 1, NULL), QK_ERR_NULL_ARG);
    CHECK_OK(qk_ring_weight(r, STR("beta"), &w, NULL));
    CHECK(w == 5); /* unchanged by the failures */

    /* remove_node: later indices shift down */
    CHECK_ERR(qk_ring_remove_node(r, STR("delta"), NULL), QK_ERR_NOT_FOUND);
    CHECK_ERR(qk_ring_remove_node(r, "\xff", 1, NULL), QK_ERR_INVALID_UTF8);
    CHECK_ERR(qk_ring_remove_node(NULL, STR("beta"), NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_ring_remove_node(r, NULL, 4, NULL), QK_ERR_NULL_ARG);
    CHECK_OK(qk_ring_remove_node(r, STR("beta"), NULL));
    CHECK_ERR(qk_ring_remove_node(r, STR("beta"), NULL), QK_ERR_NOT_FOUND);
    CHECK_OK(qk_ring_node_count(r, &count, NULL));
    CHECK(count == 3);
    CHECK(strcmp(name_of(r, 1), "gamma") == 0);
    CHECK_OK(qk_ring_node_index(r, STR("gamma"), &index, NULL));
    CHECK(index == 1);
    CHECK_OK(qk_ring_point_count(r, &points, NULL));
    CHECK(points == 160 * 3);
    qk_ring_free(r);
}

static void test_empty_ring(void) {
    qk_ring *r = NULL;
    REQUIRE(qk_ring_new(0, &r, NULL) == QK_OK);
    size_t index = SENTINEL_SIZE, indices[2] = {SENTINEL_SIZE, SENTINEL_SIZE};
    const uint8_t *keys[1] = {(const uint8_t *)"k"};
    size_t lens[1] = {1};
    CHECK_ERR(qk_ring_get_node(r, KEY("k"), &index, NULL), QK_ERR_EMPTY);
    CHECK_ERR(qk_ring_get_node_by_hash(r, 42, &index, NULL), QK_ERR_EMPTY);
    CHECK_ERR(qk_ring_get_nodes(r, KEY("k"), 1, indices, NULL), QK_ERR_EMPTY);
    CHECK_ERR(qk_ring_get_nodes(r, KEY("k"), 0, NULL, NULL), QK_ERR_EMPTY);
    CHECK_ERR(qk_ring_get_node_batch(r, keys, lens, 1, indices, NULL), QK_ERR_EMPTY);
    CHECK_ERR(qk_ring_get_node_batch(r, NULL, NULL, 0, NULL, NULL), QK_ERR_EMPTY);
    CHECK(index == SENTINEL_SIZE && indices[0] == SENTINEL_SIZE && indices[1] == SENTINEL_SIZE);
    /* shares of no nodes: nothing to write */
    CHECK_OK(qk_ring_shares(r, NULL, 0, NULL));
    size_t points = SENTINEL_SIZE;
    CHECK_OK(qk_ring_point_count(r, &points, NULL));
    CHECK(points == 0);
    qk_ring_free(r);
}

static void test_lookups(void) {
    qk_ring *r = NULL;
    REQUIRE(qk_ring_new(0, &r, NULL) == QK_OK);
    const char *nodes[] = {"n0", "n1", "n2", "n3", "n4"};
    for (int i = 0; i < 5; i++) CHECK_OK(add(r, nodes[i], i == 4 ? 3 : 1));

    /* get_node: argument checks */
    size_t index = SENTINEL_SIZE;
    CHECK_ERR(qk_ring_get_node(NULL, KEY("k"), &index, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_ring_get_node(r, NULL, 1, &index, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_ring_get_node(r, KEY("k"), NULL, NULL), QK_ERR_NULL_ARG);
    CHECK(index == SENTINEL_SIZE);
    /* the empty key, with or without a pointer */
    size_t i_null = SENTINEL_SIZE, i_empty = SENTINEL_SIZE;
    CHECK_OK(qk_ring_get_node(r, NULL, 0, &i_null, NULL));
    CHECK_OK(qk_ring_get_node(r, (const uint8_t *)"", 0, &i_empty, NULL));
    CHECK(i_null < 5 && i_null == i_empty);
    /* keys are bytes: an embedded NUL matters */
    CHECK_OK(qk_ring_get_node(r, (const uint8_t *)"a\0b", 3, &index, NULL));
    CHECK(index < 5);

    /* qk_hash_key is pinned (xxh3-64, seed 0x716b72696e670001) */
    uint64_t h = SENTINEL_U64;
    CHECK_OK(qk_hash_key(NULL, 0, &h, NULL));
    CHECK(h == 0x43d0de6f932a83d2ull);
    CHECK_OK(qk_hash_key(KEY("hello"), &h, NULL));
    CHECK(h == 0x32e1567f14de0f7dull);
    CHECK_OK(qk_hash_key(KEY("user:42"), &h, NULL));
    CHECK(h == 0xfde09d7dff53fa37ull);
    h = SENTINEL_U64;
    CHECK_ERR(qk_hash_key(NULL, 3, &h, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_hash_key(KEY("k"), NULL, NULL), QK_ERR_NULL_ARG);
    CHECK(h == SENTINEL_U64);
    index = SENTINEL_SIZE;
    CHECK_ERR(qk_ring_get_node_by_hash(NULL, 1, &index, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_ring_get_node_by_hash(r, 1, NULL, NULL), QK_ERR_NULL_ARG);
    CHECK(index == SENTINEL_SIZE);

    /* get_nodes: argument checks, then real preference lists */
    size_t idx[6] = {SENTINEL_SIZE, SENTINEL_SIZE, SENTINEL_SIZE,
                     SENTINEL_SIZE, SENTINEL_SIZE, SENTINEL_SIZE};
    CHECK_ERR(qk_ring_get_nodes(r, KEY("k"), 6, idx, NULL), QK_ERR_INVALID_ARG); /* n > nodes */
    CHECK(strstr(qk_last_error_message(), "6") != NULL);
    CHECK_ERR(qk_ring_get_nodes(NULL, KEY("k"), 2, idx, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_ring_get_nodes(r, NULL, 1, 2, idx, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_ring_get_nodes(r, KEY("k"), 2, NULL, NULL), QK_ERR_NULL_ARG);
    for (int i = 0; i < 6; i++) CHECK(idx[i] == SENTINEL_SIZE);
    CHECK_OK(qk_ring_get_nodes(r, KEY("k"), 0, NULL, NULL));

    /* Over many keys: the first is get_node, all distinct, and the hash
     * path agrees; batch lookups equal single ones. */
    static const uint8_t *keys[NKEYS];
    static size_t lens[NKEYS], batch[NKEYS], single[NKEYS];
    static char bufs[NKEYS][16];
    int pref_ok = 1, hash_ok = 1;
    for (int k = 0; k < NKEYS; k++) {
        make_key(bufs[k], sizeof bufs[k], k);
        keys[k] = (const uint8_t *)bufs[k];
        lens[k] = strlen(bufs[k]);
        if (qk_ring_get_node(r, keys[k], lens[k], &single[k], NULL) != QK_OK) pref_ok = 0;
        if (k % 10 == 0) {
            size_t pref[5];
            if (qk_ring_get_nodes(r, keys[k], lens[k], 5, pref, NULL) != QK_OK || pref[0] != single[k])
                pref_ok = 0;
            int seen[5] = {0};
            for (int j = 0; j < 5; j++) {
                if (pref[j] >= 5 || seen[pref[j]]++) pref_ok = 0;
            }
            uint64_t kh;
            size_t by_hash = SENTINEL_SIZE;
            if (qk_hash_key(keys[k], lens[k], &kh, NULL) != QK_OK ||
                qk_ring_get_node_by_hash(r, kh, &by_hash, NULL) != QK_OK || by_hash != single[k])
                hash_ok = 0;
        }
    }
    CHECK(pref_ok);
    CHECK(hash_ok);
    CHECK_OK(qk_ring_get_node_batch(r, keys, lens, NKEYS, batch, NULL));
    CHECK(memcmp(batch, single, sizeof batch) == 0);

    /* batch: argument checks leave the output untouched */
    size_t out3[3] = {SENTINEL_SIZE, SENTINEL_SIZE, SENTINEL_SIZE};
    const uint8_t *bad_keys[3] = {keys[0], NULL, keys[2]};
    size_t bad_lens[3] = {lens[0], 4, lens[2]};
    CHECK_ERR(qk_ring_get_node_batch(r, bad_keys, bad_lens, 3, out3, NULL), QK_ERR_NULL_ARG);
    CHECK(strstr(qk_last_error_message(), "keys[1]") != NULL);
    CHECK_ERR(qk_ring_get_node_batch(NULL, keys, lens, 3, out3, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_ring_get_node_batch(r, NULL, lens, 3, out3, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_ring_get_node_batch(r, keys, NULL, 3, out3, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_ring_get_node_batch(r, keys, lens, 3, NULL, NULL), QK_ERR_NULL_ARG);
    CHECK(out3[0] == SENTINEL_SIZE && out3[1] == SENTINEL_SIZE && out3[2] == SENTINEL_SIZE);
    bad_lens[1] = 0; /* a NULL key of length 0 is the empty key */
    CHECK_OK(qk_ring_get_node_batch(r, bad_keys, bad_lens, 3, out3, NULL));
    CHECK(out3[1] == i_null && out3[0] == single[0]);
    CHECK_OK(qk_ring_get_node_batch(r, NULL, NULL, 0, NULL, NULL));

    /* shares: by node index, summing to 1, following the weights */
    double shares[6] = {-1, -1, -1, -1, -1, -1};
    CHECK_ERR(qk_ring_shares(r, shares, 4, NULL), QK_ERR_BUFFER_TOO_SMALL);
    CHECK(strstr(qk_last_error_message(), "5") != NULL);
    CHECK_ERR(qk_ring_shares(r, NULL, 5, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_ring_shares(NULL, shares, 5, NULL), QK_ERR_NULL_ARG);
    CHECK(shares[0] == -1);
    CHECK_OK(qk_ring_shares(r, shares, 6, NULL));
    CHECK(shares[5] == -1); /* beyond the node count: untouched */
    double sum = 0;
    for (int i = 0; i < 5; i++) sum += shares[i];
    CHECK(fabs(sum - 1.0) < 1e-9);
    CHECK(shares[4] > 1.8 * shares[0] && shares[4] > 1.8 * shares[3]); /* weight 3 vs 1 */
    /* and they predict where keys land */
    int hits[5] = {0};
    for (int k = 0; k < NKEYS; k++) hits[single[k]]++;
    for (int i = 0; i < 5; i++) CHECK(fabs(hits[i] / (double)NKEYS - shares[i]) < 0.03);

    /* Removing a node moves only its keys; adding it back restores all. */
    char before[NKEYS][4];
    for (int k = 0; k < NKEYS; k++) snprintf(before[k], 4, "%s", name_of(r, single[k]));
    CHECK_OK(qk_ring_remove_node(r, STR("n2"), NULL));
    int moved = 0, wrong = 0;
    for (int k = 0; k < NKEYS; k++) {
        size_t now;
        if (qk_ring_get_node(r, keys[k], lens[k], &now, NULL) != QK_OK) wrong++;
        const char *name = name_of(r, now);
        if (strcmp(before[k], "n2") == 0) {
            moved++;
            if (strcmp(name, "n2") == 0 || name[0] == '\0') wrong++;
        } else if (strcmp(name, before[k]) != 0) {
            wrong++;
        }
    }
    CHECK(wrong == 0);
    CHECK(moved == hits[2] && moved > 0);
    CHECK_OK(add(r, "n2", 1));
    wrong = 0;
    for (int k = 0; k < NKEYS; k++) {
        size_t now;
        qk_ring_get_node(r, keys[k], lens[k], &now, NULL);
        if (strcmp(name_of(r, now), before[k]) != 0) wrong++;
    }
    CHECK(wrong == 0); /* placement does not depend on insertion order */

    /* Raising a weight moves keys only onto that node. */
    CHECK_OK(qk_ring_set_weight(r, STR("n0"), 4, NULL));
    wrong = 0;
    for (int k = 0; k < NKEYS; k++) {
        size_t now;
        qk_ring_get_node(r, keys[k], lens[k], &now, NULL);
        const char *name = name_of(r, now);
        if (strcmp(name, before[k]) != 0 && strcmp(name, "n0") != 0) wrong++;
    }
    CHECK(wrong == 0);
    qk_ring_free(r);
}

void test_ring(void) {
    test_new_and_free();
    test_membership();
    test_empty_ring();
    test_lookups();
}
