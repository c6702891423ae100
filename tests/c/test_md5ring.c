/* qk_md5ring: every function, with good and bad arguments, and placements
 * checked against uhashring 2.5 (expected values produced by uhashring's
 * HashRing({"alpha": 1, "beta": {"weight": 2}, "gamma": {"vnodes": 40,
 * "weight": 3}, "zero": 0}) for the keys "key-0".."key-23"). */
#include "check.h"

static const size_t UHASHRING_OWNERS[24] = {1, 1, 1, 1, 2, 0, 1, 0, 0, 2, 0, 2,
                                            1, 0, 1, 1, 1, 0, 0, 1, 1, 1, 2, 0};

static qk_md5ring *make_ring(void) {
    qk_md5ring *r = NULL;
    REQUIRE(qk_md5ring_new(0, &r, NULL) == QK_OK);
    REQUIRE(qk_md5ring_add_node(r, STR("alpha"), 0, 1, NULL) == QK_OK);
    REQUIRE(qk_md5ring_add_node(r, STR("beta"), 0, 2, NULL) == QK_OK);
    REQUIRE(qk_md5ring_add_node(r, STR("gamma"), 40, 3, NULL) == QK_OK);
    REQUIRE(qk_md5ring_add_node(r, STR("zero"), 0, 0, NULL) == QK_OK); /* a member with no points */
    return r;
}

static void test_lifecycle_and_membership(void) {
    qk_md5ring *r = NULL;
    CHECK_ERR(qk_md5ring_new(0, NULL, NULL), QK_ERR_NULL_ARG);
    qk_md5ring_free(NULL);

    CHECK_OK(qk_md5ring_new(0, &r, NULL));
    size_t idx = SENTINEL_SIZE;
    CHECK_ERR(qk_md5ring_get_node(r, KEY("k"), &idx, NULL), QK_ERR_EMPTY);
    CHECK_OK(qk_md5ring_add_node(r, STR("zero"), 0, 0, NULL));
    CHECK_ERR(qk_md5ring_get_node(r, KEY("k"), &idx, NULL), QK_ERR_EMPTY); /* no points yet */
    CHECK(idx == SENTINEL_SIZE);

    CHECK_ERR(qk_md5ring_add_node(NULL, STR("a"), 0, 1, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_md5ring_add_node(r, NULL, 1, 0, 1, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_md5ring_add_node(r, "\xff", 1, 0, 1, NULL), QK_ERR_INVALID_UTF8);
    CHECK_ERR(qk_md5ring_add_node(r, "", 0, 0, 1, NULL), QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_md5ring_add_node(r, "a\0b", 3, 0, 1, NULL), QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_md5ring_add_node(r, STR("huge"), 0xffffffffu, 2, NULL), QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_md5ring_add_node(r, STR("zero"), 0, 1, NULL), QK_ERR_ALREADY_EXISTS);

    CHECK_OK(qk_md5ring_add_node(r, STR("a"), 10, 2, NULL));
    size_t n = SENTINEL_SIZE;
    CHECK_OK(qk_md5ring_point_count(r, &n, NULL));
    CHECK(n == 20);
    CHECK_OK(qk_md5ring_set_weight(r, STR("a"), 3, NULL)); /* keeps its 10 vnodes */
    CHECK_OK(qk_md5ring_point_count(r, &n, NULL));
    CHECK(n == 30);
    uint32_t w = SENTINEL_U32;
    CHECK_OK(qk_md5ring_weight(r, STR("a"), &w, NULL));
    CHECK(w == 3);
    CHECK_ERR(qk_md5ring_weight(r, STR("nope"), &w, NULL), QK_ERR_NOT_FOUND);
    CHECK_ERR(qk_md5ring_weight(NULL, STR("a"), &w, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_md5ring_weight(r, STR("a"), NULL, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_md5ring_set_weight(r, STR("nope"), 1, NULL), QK_ERR_NOT_FOUND);
    CHECK_ERR(qk_md5ring_set_weight(r, "\xc3", 1, 1, NULL), QK_ERR_INVALID_UTF8);
    CHECK_ERR(qk_md5ring_set_weight(NULL, STR("a"), 1, NULL), QK_ERR_NULL_ARG);
    CHECK_OK(qk_md5ring_node_count(r, &n, NULL));
    CHECK(n == 2);
    CHECK_ERR(qk_md5ring_node_count(NULL, &n, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_md5ring_node_count(r, NULL, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_md5ring_point_count(NULL, &n, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_md5ring_point_count(r, NULL, NULL), QK_ERR_NULL_ARG);

    CHECK_OK(qk_md5ring_get_node(r, KEY("k"), &idx, NULL));
    CHECK(idx == 1); /* the only node with points */
    CHECK_OK(qk_md5ring_node_index(r, STR("a"), &idx, NULL));
    CHECK(idx == 1);
    CHECK_ERR(qk_md5ring_node_index(r, STR("q"), &idx, NULL), QK_ERR_NOT_FOUND);
    CHECK_ERR(qk_md5ring_node_index(r, "\xff", 1, &idx, NULL), QK_ERR_INVALID_UTF8);
    CHECK_ERR(qk_md5ring_node_index(NULL, STR("a"), &idx, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_md5ring_node_index(r, STR("a"), NULL, NULL), QK_ERR_NULL_ARG);

    CHECK_ERR(qk_md5ring_remove_node(r, STR("q"), NULL), QK_ERR_NOT_FOUND);
    CHECK_ERR(qk_md5ring_remove_node(NULL, STR("a"), NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_md5ring_remove_node(r, NULL, 1, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_md5ring_remove_node(r, "\xff", 1, NULL), QK_ERR_INVALID_UTF8);
    CHECK_OK(qk_md5ring_remove_node(r, STR("zero"), NULL));
    CHECK_OK(qk_md5ring_node_index(r, STR("a"), &idx, NULL));
    CHECK(idx == 0); /* indices shift down */
    qk_md5ring_free(r);
}

static void test_placements_match_uhashring(void) {
    qk_md5ring *r = make_ring();
    size_t n = 0;
    CHECK_OK(qk_md5ring_point_count(r, &n, NULL));
    CHECK(n == 600); /* 160 + 320 + 120 + 0, as uhashring */
    char key[32];
    for (int i = 0; i < 24; i++) {
        snprintf(key, sizeof key, "key-%d", i);
        size_t idx = SENTINEL_SIZE;
        CHECK_OK(qk_md5ring_get_node(r, KEY(key), &idx, NULL));
        CHECK(idx == UHASHRING_OWNERS[i]);
    }
    /* md5("user:42") = 56dadf18...; the same owner by hash. */
    uint8_t h[16];
    CHECK_OK(qk_md5ring_hash(KEY("user:42"), h, NULL));
    CHECK(h[0] == 0x56 && h[1] == 0xda && h[15] == 0xde);
    size_t a = SENTINEL_SIZE, b = SENTINEL_SIZE;
    CHECK_OK(qk_md5ring_get_node(r, KEY("user:42"), &a, NULL));
    CHECK_OK(qk_md5ring_get_node_by_hash(r, h, &b, NULL));
    CHECK(a == b && a == 1); /* uhashring: beta */
    CHECK_ERR(qk_md5ring_hash(KEY("k"), NULL, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_md5ring_hash(NULL, 3, h, NULL), QK_ERR_NULL_ARG);
    CHECK_OK(qk_md5ring_hash(NULL, 0, h, NULL)); /* the empty key */
    CHECK_ERR(qk_md5ring_get_node_by_hash(r, NULL, &b, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_md5ring_get_node_by_hash(NULL, h, &b, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_md5ring_get_node_by_hash(r, h, NULL, NULL), QK_ERR_NULL_ARG);

    /* Points ascend, and a key exactly at a point goes to the next one. */
    uint8_t p[16], prev[16];
    size_t owner = 0, next_owner = 0;
    for (size_t i = 0; i < n; i++) {
        CHECK_OK(qk_md5ring_point(r, i, p, &owner, NULL));
        if (i > 0) CHECK(memcmp(prev, p, 16) < 0);
        memcpy(prev, p, 16);
        CHECK_OK(qk_md5ring_point(r, (i + 1) % n, h, &next_owner, NULL));
        CHECK_OK(qk_md5ring_get_node_by_hash(r, p, &a, NULL));
        CHECK(a == next_owner);
    }
    CHECK_ERR(qk_md5ring_point(r, n, p, &owner, NULL), QK_ERR_NOT_FOUND);
    CHECK_ERR(qk_md5ring_point(r, 0, NULL, &owner, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_md5ring_point(r, 0, p, NULL, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_md5ring_point(NULL, 0, p, &owner, NULL), QK_ERR_NULL_ARG);

    /* Preference lists: distinct, first = get_node; "zero" never appears. */
    size_t idx3[3] = {9, 9, 9};
    CHECK_OK(qk_md5ring_get_nodes(r, KEY("key-4"), 3, idx3, NULL));
    CHECK(idx3[0] == 2 && idx3[1] != idx3[0] && idx3[2] != idx3[0] && idx3[1] != idx3[2]);
    CHECK(idx3[1] != 3 && idx3[2] != 3);
    size_t idx4[4];
    CHECK_ERR(qk_md5ring_get_nodes(r, KEY("key-4"), 4, idx4, NULL), QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_md5ring_get_nodes(r, KEY("key-4"), 5, NULL, NULL), QK_ERR_NULL_ARG);
    CHECK_OK(qk_md5ring_get_nodes(r, KEY("key-4"), 0, NULL, NULL));

    /* Batch equals single lookups. */
    const uint8_t *keys[24];
    size_t lens[24], out[24];
    char buf[24][16];
    for (int i = 0; i < 24; i++) {
        snprintf(buf[i], sizeof buf[i], "key-%d", i);
        keys[i] = (const uint8_t *)buf[i];
        lens[i] = strlen(buf[i]);
    }
    CHECK_OK(qk_md5ring_get_node_batch(r, keys, lens, 24, out, NULL));
    for (int i = 0; i < 24; i++) CHECK(out[i] == UHASHRING_OWNERS[i]);
    CHECK_ERR(qk_md5ring_get_node_batch(r, NULL, lens, 24, out, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_md5ring_get_node_batch(r, keys, NULL, 24, out, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_md5ring_get_node_batch(r, keys, lens, 24, NULL, NULL), QK_ERR_NULL_ARG);

    /* Shares: sum to 1, zero for the pointless node; buffer checks. */
    double s[4] = {0};
    CHECK_OK(qk_md5ring_shares(r, s, 4, NULL));
    CHECK(s[0] > 0 && s[1] > 0 && s[2] > 0 && s[3] == 0.0);
    double sum = s[0] + s[1] + s[2] + s[3];
    CHECK(sum > 1 - 1e-9 && sum < 1 + 1e-9);
    CHECK_ERR(qk_md5ring_shares(r, s, 3, NULL), QK_ERR_BUFFER_TOO_SMALL);
    CHECK_ERR(qk_md5ring_shares(r, NULL, 4, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_md5ring_shares(NULL, s, 4, NULL), QK_ERR_NULL_ARG);

    /* Names. */
    const char *name = NULL;
    size_t len = 0;
    CHECK_OK(qk_md5ring_node_name(r, 2, &name, &len, NULL));
    CHECK(len == 5 && strcmp(name, "gamma") == 0);
    CHECK_ERR(qk_md5ring_node_name(r, 4, &name, &len, NULL), QK_ERR_NOT_FOUND);
    CHECK_ERR(qk_md5ring_node_name(r, 0, NULL, &len, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_md5ring_node_name(r, 0, &name, NULL, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_md5ring_node_name(NULL, 0, &name, &len, NULL), QK_ERR_NULL_ARG);

    /* Bad key pointer. */
    size_t idx = SENTINEL_SIZE;
    CHECK_ERR(qk_md5ring_get_node(r, NULL, 3, &idx, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_md5ring_get_node(NULL, KEY("k"), &idx, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_md5ring_get_node(r, KEY("k"), NULL, NULL), QK_ERR_NULL_ARG);
    CHECK(idx == SENTINEL_SIZE);
    qk_md5ring_free(r);
}

void test_md5ring(void) {
    test_lifecycle_and_membership();
    test_placements_match_uhashring();
}
