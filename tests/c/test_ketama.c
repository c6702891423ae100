/* qk_ketama: every function, with good and bad arguments, and placements
 * checked against vectors from libmemcached 1.1.4 and uhashring 2.5
 * (copied from tests/vectors/ketama-sample.json). */
#include <math.h>

#include "check.h"

struct vector {
    const char *key;
    uint32_t md5_u32;
    const char *server;
};

/* Config "two_600_400": 127.0.0.1:11211 weight 600, 127.0.0.1:11212 weight 400,
 * named as libmemcached names them (the default port left out). */
static const char *const two_specs[] = {"127.0.0.1", "127.0.0.1:11212"};
static const uint32_t two_weights[] = {600, 400};
static const struct vector two_libmemcached[] = {
    {"9d9", 3114363270u, "127.0.0.1:11212"},
    {"key-0", 2123055796u, "127.0.0.1"},
    {"a", 3111502092u, "127.0.0.1:11212"},
    {"\xc3\xbc-unicode-ключ", 96730527u, "127.0.0.1"},
    {"key-3", 1029098844u, "127.0.0.1:11212"},
    {"key-9", 3797840000u, "127.0.0.1"},
    {"key-11", 3713236130u, "127.0.0.1:11212"},
    {"key-16", 373441630u, "127.0.0.1:11212"},
};
/* uhashring differs from libmemcached on "9d9" (a tie broken the other way). */
static const struct vector two_uhashring[] = {
    {"9d9", 3114363270u, "127.0.0.1"},
    {"key-0", 2123055796u, "127.0.0.1"},
    {"a", 3111502092u, "127.0.0.1:11212"},
    {"key-16", 373441630u, "127.0.0.1:11212"},
};
/* uhashring hashing the names "host:port". */
static const char *const two_kt_specs[] = {"127.0.0.1:11211", "127.0.0.1:11212"};
static const struct vector two_uhashring_kt[] = {
    {"key-0", 2123055796u, "127.0.0.1:11212"},
    {"\xc3\xbc-unicode-ключ", 96730527u, "127.0.0.1:11211"},
    {"key-9", 3797840000u, "127.0.0.1:11211"},
    {"key-16", 373441630u, "127.0.0.1:11211"},
};

/* Config "mixed_ports_weights_12". */
static const char *const mixed_specs[] = {
    "cache0.example",       "cache1.example:11212", "cache2.example:11213",
    "cache3.example",       "cache4.example:11212", "cache5.example:11213",
    "cache6.example",       "cache7.example:11212", "cache8.example:11213",
    "cache9.example",       "cache10.example:11212", "cache11.example:11213"};
static const uint32_t mixed_weights[] = {1, 3, 5, 2, 4, 1, 3, 5, 2, 4, 1, 3};
static const struct vector mixed[] = {
    {"9d9", 3114363270u, "cache2.example:11213"},
    {"key-0", 2123055796u, "cache11.example:11213"},
    {"\xc3\xbc-unicode-ключ", 96730527u, "cache7.example:11212"},
    {"key-1", 2339090209u, "cache8.example:11213"},
    {"key-5", 723936391u, "cache9.example"},
    {"key-8", 1199951306u, "cache9.example"},
};

#define LEN(a) (sizeof(a) / sizeof((a)[0]))

static qk_ketama *make(qk_ketama_compat compat, const char *const *specs, const uint32_t *weights,
                       size_t count) {
    size_t lens[16];
    for (size_t i = 0; i < count; i++) lens[i] = strlen(specs[i]);
    qk_ketama *k = NULL;
    CHECK_OK(qk_ketama_new(compat, specs, lens, weights, count, &k, NULL));
    REQUIRE(k != NULL);
    return k;
}

static const char *name_of(const qk_ketama *k, size_t index) {
    const char *name = NULL;
    size_t len = 0;
    if (qk_ketama_node_name(k, index, &name, &len, NULL) != QK_OK) return "";
    return name;
}

/* Every vector's hash and server, by key and by pre-hashed key. */
static void check_vectors(const qk_ketama *k, const struct vector *v, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint32_t h = 0;
        size_t index = SENTINEL_SIZE, by_hash = SENTINEL_SIZE;
        CHECK_OK(qk_ketama_hash(KEY(v[i].key), &h, NULL));
        CHECK(h == v[i].md5_u32);
        CHECK_OK(qk_ketama_get_node(k, KEY(v[i].key), &index, NULL));
        if (strcmp(name_of(k, index), v[i].server) != 0)
            fprintf(stderr, "key %s: got %s, want %s\n", v[i].key, name_of(k, index), v[i].server);
        CHECK(strcmp(name_of(k, index), v[i].server) == 0);
        CHECK_OK(qk_ketama_get_node_by_hash(k, h, &by_hash, NULL));
        CHECK(by_hash == index);
    }
}

/* The continuum read through qk_ketama_point predicts every lookup: the
 * first point >= hash (libmemcached) or > hash (uhashring), wrapping. */
static void check_continuum(const qk_ketama *k, int strictly_after) {
    size_t points = 0, servers = 0;
    CHECK_OK(qk_ketama_point_count(k, &points, NULL));
    CHECK_OK(qk_ketama_node_count(k, &servers, NULL));
    REQUIRE(points > 0 && points < 100000);
    uint32_t *pos = malloc(points * sizeof *pos);
    size_t *owner = malloc(points * sizeof *owner);
    REQUIRE(pos && owner);
    int sorted = 1, owners_ok = 1;
    for (size_t i = 0; i < points; i++) {
        if (qk_ketama_point(k, i, &pos[i], &owner[i], NULL) != QK_OK) owners_ok = 0;
        if (owner[i] >= servers) owners_ok = 0;
        if (i > 0 && pos[i] < pos[i - 1]) sorted = 0;
    }
    CHECK(sorted);
    CHECK(owners_ok);
    int agree = 1;
    for (int n = 0; n < 2000; n++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", n);
        uint32_t h;
        size_t got = SENTINEL_SIZE, want = owner[0];
        qk_ketama_hash(KEY(key), &h, NULL);
        qk_ketama_get_node(k, KEY(key), &got, NULL);
        for (size_t i = 0; i < points; i++) {
            if (strictly_after ? pos[i] > h : pos[i] >= h) {
                want = owner[i];
                break;
            }
        }
        if (got != want) agree = 0;
    }
    CHECK(agree);
    free(pos);
    free(owner);
}

static void test_new(void) {
    size_t lens[2] = {strlen(two_specs[0]), strlen(two_specs[1])};
    qk_ketama *k = (qk_ketama *)0x1;
    CHECK_ERR(qk_ketama_new(QK_KETAMA_LIBMEMCACHED, two_specs, lens, NULL, 2, NULL, NULL),
              QK_ERR_NULL_ARG);
    CHECK_ERR(qk_ketama_new(7, two_specs, lens, NULL, 2, &k, NULL), QK_ERR_INVALID_ARG);
    CHECK(strstr(qk_last_error_message(), "7") != NULL);
    CHECK_ERR(qk_ketama_new(QK_KETAMA_LIBMEMCACHED, NULL, lens, NULL, 2, &k, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_ketama_new(QK_KETAMA_LIBMEMCACHED, two_specs, NULL, NULL, 2, &k, NULL),
              QK_ERR_NULL_ARG);
    const char *with_null[2] = {"a", NULL};
    size_t ones[2] = {1, 1};
    CHECK_ERR(qk_ketama_new(QK_KETAMA_LIBMEMCACHED, with_null, ones, NULL, 2, &k, NULL),
              QK_ERR_NULL_ARG);
    CHECK(strstr(qk_last_error_message(), "specs[1]") != NULL);
    const char *bad_utf8[1] = {"h\xff"};
    size_t two = 2;
    CHECK_ERR(qk_ketama_new(QK_KETAMA_LIBMEMCACHED, bad_utf8, &two, NULL, 1, &k, NULL),
              QK_ERR_INVALID_UTF8);
    const char *bad_specs[] = {"host:port", "h:99999", "h:1:x", ":11211", ""};
    for (size_t i = 0; i < LEN(bad_specs); i++) {
        size_t len = strlen(bad_specs[i]);
        CHECK_ERR(qk_ketama_new(QK_KETAMA_LIBMEMCACHED, &bad_specs[i], &len, NULL, 1, &k, NULL),
                  QK_ERR_INVALID_ARG);
    }
    const uint32_t zero[2] = {1, 0};
    CHECK_ERR(qk_ketama_new(QK_KETAMA_LIBMEMCACHED, two_specs, lens, zero, 2, &k, NULL),
              QK_ERR_INVALID_ARG);
    const char *dup[2] = {"a:1", "a:1"};
    size_t dup_lens[2] = {3, 3};
    CHECK_ERR(qk_ketama_new(QK_KETAMA_UHASHRING, dup, dup_lens, NULL, 2, &k, NULL),
              QK_ERR_ALREADY_EXISTS);
    CHECK(k == (qk_ketama *)0x1); /* never written on failure */

    /* No servers: fine, but lookups fail until one is added. */
    CHECK_OK(qk_ketama_new(QK_KETAMA_UHASHRING, NULL, NULL, NULL, 0, &k, NULL));
    size_t index = SENTINEL_SIZE, count = SENTINEL_SIZE;
    const uint8_t *keys[1] = {(const uint8_t *)"k"};
    size_t key_lens[1] = {1};
    CHECK_OK(qk_ketama_node_count(k, &count, NULL));
    CHECK(count == 0);
    CHECK_ERR(qk_ketama_get_node(k, KEY("k"), &index, NULL), QK_ERR_EMPTY);
    CHECK_ERR(qk_ketama_get_node_by_hash(k, 1, &index, NULL), QK_ERR_EMPTY);
    CHECK_ERR(qk_ketama_get_nodes(k, KEY("k"), 1, &index, NULL), QK_ERR_EMPTY);
    CHECK_ERR(qk_ketama_get_node_batch(k, keys, key_lens, 1, &index, NULL), QK_ERR_EMPTY);
    CHECK(index == SENTINEL_SIZE);
    CHECK_OK(qk_ketama_add_server(k, STR("only:1"), 1, NULL));
    CHECK_OK(qk_ketama_get_node(k, KEY("k"), &index, NULL));
    CHECK(index == 0);
    qk_ketama_free(k);
    qk_ketama_free(NULL);
}

static void test_vectors(void) {
    qk_ketama *k = make(QK_KETAMA_LIBMEMCACHED, two_specs, two_weights, 2);
    check_vectors(k, two_libmemcached, LEN(two_libmemcached));
    size_t points = 0;
    CHECK_OK(qk_ketama_point_count(k, &points, NULL));
    CHECK(points == 320); /* 160 points a server, split 600:400 */
    check_continuum(k, 0);
    qk_ketama_free(k);

    k = make(QK_KETAMA_UHASHRING, two_specs, two_weights, 2);
    check_vectors(k, two_uhashring, LEN(two_uhashring));
    check_continuum(k, 1);
    qk_ketama_free(k);

    k = make(QK_KETAMA_UHASHRING, two_kt_specs, two_weights, 2);
    check_vectors(k, two_uhashring_kt, LEN(two_uhashring_kt));
    qk_ketama_free(k);

    k = make(QK_KETAMA_LIBMEMCACHED, mixed_specs, mixed_weights, LEN(mixed_specs));
    check_vectors(k, mixed, LEN(mixed));
    check_continuum(k, 0);
    qk_ketama_free(k);

    /* Built server by server, the continuum is the same. */
    qk_ketama *grown = make(QK_KETAMA_LIBMEMCACHED, NULL, NULL, 0);
    for (size_t i = 0; i < LEN(mixed_specs); i++)
        CHECK_OK(qk_ketama_add_server(grown, STR(mixed_specs[i]), mixed_weights[i], NULL));
    check_vectors(grown, mixed, LEN(mixed));
    qk_ketama_free(grown);

    /* The hash alone: NULL checks. */
    uint32_t h = SENTINEL_U32;
    CHECK_OK(qk_ketama_hash(NULL, 0, &h, NULL));
    CHECK(h == 0xd98c1dd4u); /* md5("") = d41d8cd9...: the LE u32 of its first 4 bytes */
    h = SENTINEL_U32;
    CHECK_ERR(qk_ketama_hash(NULL, 1, &h, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_ketama_hash(KEY("a"), NULL, NULL), QK_ERR_NULL_ARG);
    CHECK(h == SENTINEL_U32);
}

static void test_servers(void) {
    qk_ketama *k = make(QK_KETAMA_LIBMEMCACHED, mixed_specs, mixed_weights, LEN(mixed_specs));

    /* add_server */
    CHECK_ERR(qk_ketama_add_server(NULL, STR("x:1"), 1, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_ketama_add_server(k, NULL, 3, 1, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_ketama_add_server(k, "x\xff", 2, 1, NULL), QK_ERR_INVALID_UTF8);
    CHECK_ERR(qk_ketama_add_server(k, STR("x:notaport"), 1, NULL), QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_ketama_add_server(k, STR("x:1"), 0, NULL), QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_ketama_add_server(k, STR("cache9.example"), 1, NULL), QK_ERR_ALREADY_EXISTS);
    size_t count = SENTINEL_SIZE;
    CHECK_ERR(qk_ketama_node_count(NULL, &count, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_ketama_node_count(k, NULL, NULL), QK_ERR_NULL_ARG);
    CHECK(count == SENTINEL_SIZE);
    CHECK_OK(qk_ketama_node_count(k, &count, NULL));
    CHECK(count == 12);
    CHECK_OK(qk_ketama_add_server(k, STR("[::1]:11300"), 2, NULL));
    CHECK_OK(qk_ketama_node_count(k, &count, NULL));
    CHECK(count == 13);

    /* node_name / node_index */
    const char *name = "untouched";
    size_t len = SENTINEL_SIZE, index = SENTINEL_SIZE;
    CHECK_OK(qk_ketama_node_name(k, 12, &name, &len, NULL));
    CHECK(strcmp(name, "[::1]:11300") == 0 && len == 11);
    name = "untouched";
    len = SENTINEL_SIZE;
    CHECK_ERR(qk_ketama_node_name(k, 13, &name, &len, NULL), QK_ERR_NOT_FOUND);
    CHECK_ERR(qk_ketama_node_name(NULL, 0, &name, &len, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_ketama_node_name(k, 0, NULL, &len, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_ketama_node_name(k, 0, &name, NULL, NULL), QK_ERR_NULL_ARG);
    CHECK(strcmp(name, "untouched") == 0 && len == SENTINEL_SIZE);
    CHECK_OK(qk_ketama_node_index(k, STR("cache4.example:11212"), &index, NULL));
    CHECK(index == 4);
    index = SENTINEL_SIZE;
    CHECK_ERR(qk_ketama_node_index(k, STR("cache4.example"), &index, NULL), QK_ERR_NOT_FOUND);
    CHECK_ERR(qk_ketama_node_index(k, "\xff", 1, &index, NULL), QK_ERR_INVALID_UTF8);
    CHECK_ERR(qk_ketama_node_index(NULL, STR("a"), &index, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_ketama_node_index(k, NULL, 1, &index, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_ketama_node_index(k, STR("a"), NULL, NULL), QK_ERR_NULL_ARG);
    CHECK(index == SENTINEL_SIZE);

    /* weight / set_weight */
    uint32_t w = SENTINEL_U32;
    CHECK_OK(qk_ketama_weight(k, STR("cache2.example:11213"), &w, NULL));
    CHECK(w == 5);
    w = SENTINEL_U32;
    CHECK_ERR(qk_ketama_weight(k, STR("nope"), &w, NULL), QK_ERR_NOT_FOUND);
    CHECK_ERR(qk_ketama_weight(k, "\xff", 1, &w, NULL), QK_ERR_INVALID_UTF8);
    CHECK_ERR(qk_ketama_weight(NULL, STR("a"), &w, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_ketama_weight(k, NULL, 1, &w, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_ketama_weight(k, STR("a"), NULL, NULL), QK_ERR_NULL_ARG);
    CHECK(w == SENTINEL_U32);
    CHECK_ERR(qk_ketama_set_weight(k, STR("cache2.example:11213"), 0, NULL), QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_ketama_set_weight(k, STR("nope"), 1, NULL), QK_ERR_NOT_FOUND);
    CHECK_ERR(qk_ketama_set_weight(k, "\xff", 1, 1, NULL), QK_ERR_INVALID_UTF8);
    CHECK_ERR(qk_ketama_set_weight(NULL, STR("a"), 1, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_ketama_set_weight(k, NULL, 1, 1, NULL), QK_ERR_NULL_ARG);
    CHECK_OK(qk_ketama_set_weight(k, STR("cache2.example:11213"), 7, NULL));
    CHECK_OK(qk_ketama_weight(k, STR("cache2.example:11213"), &w, NULL));
    CHECK(w == 7);

    /* Removing the added server and restoring the weight gives back the
     * original placements: the continuum is rebuilt from the membership. */
    CHECK_ERR(qk_ketama_remove_server(k, STR("::1:11300"), NULL), QK_ERR_NOT_FOUND);
    CHECK_ERR(qk_ketama_remove_server(k, "\xff", 1, NULL), QK_ERR_INVALID_UTF8);
    CHECK_ERR(qk_ketama_remove_server(NULL, STR("a"), NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_ketama_remove_server(k, NULL, 1, NULL), QK_ERR_NULL_ARG);
    CHECK_OK(qk_ketama_remove_server(k, STR("[::1]:11300"), NULL));
    CHECK_OK(qk_ketama_set_weight(k, STR("cache2.example:11213"), 5, NULL));
    check_vectors(k, mixed, LEN(mixed));

    /* point: bounds and NULLs */
    size_t points = 0, owner = SENTINEL_SIZE;
    uint32_t pos = SENTINEL_U32;
    CHECK_OK(qk_ketama_point_count(k, &points, NULL));
    CHECK_ERR(qk_ketama_point_count(NULL, &points, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_ketama_point_count(k, NULL, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_ketama_point(k, points, &pos, &owner, NULL), QK_ERR_NOT_FOUND);
    CHECK_ERR(qk_ketama_point(NULL, 0, &pos, &owner, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_ketama_point(k, 0, NULL, &owner, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_ketama_point(k, 0, &pos, NULL, NULL), QK_ERR_NULL_ARG);
    CHECK(pos == SENTINEL_U32 && owner == SENTINEL_SIZE);
    CHECK_OK(qk_ketama_point(k, points - 1, &pos, &owner, NULL));
    CHECK(owner < 12);

    /* get_nodes: distinct, first is get_node */
    size_t pref[13];
    for (int i = 0; i < 13; i++) pref[i] = SENTINEL_SIZE;
    CHECK_ERR(qk_ketama_get_nodes(k, KEY("a"), 13, pref, NULL), QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_ketama_get_nodes(NULL, KEY("a"), 2, pref, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_ketama_get_nodes(k, NULL, 1, 2, pref, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_ketama_get_nodes(k, KEY("a"), 2, NULL, NULL), QK_ERR_NULL_ARG);
    CHECK(pref[0] == SENTINEL_SIZE);
    CHECK_OK(qk_ketama_get_nodes(k, KEY("a"), 12, pref, NULL));
    CHECK(strcmp(name_of(k, pref[0]), "cache2.example:11213") == 0);
    int seen[12] = {0}, distinct = 1;
    for (int i = 0; i < 12; i++)
        if (pref[i] >= 12 || seen[pref[i]]++) distinct = 0;
    CHECK(distinct);
    CHECK(pref[12] == SENTINEL_SIZE);
    index = SENTINEL_SIZE;
    CHECK_ERR(qk_ketama_get_node(NULL, KEY("a"), &index, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_ketama_get_node(k, NULL, 1, &index, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_ketama_get_node(k, KEY("a"), NULL, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_ketama_get_node_by_hash(NULL, 1, &index, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_ketama_get_node_by_hash(k, 1, NULL, NULL), QK_ERR_NULL_ARG);
    CHECK(index == SENTINEL_SIZE);

    /* batch == single lookups */
    enum { N = 500 };
    char bufs[N][16];
    const uint8_t *keys[N];
    size_t lens[N], batch[N];
    int same = 1;
    for (int i = 0; i < N; i++) {
        snprintf(bufs[i], sizeof bufs[i], "b%d", i);
        keys[i] = (const uint8_t *)bufs[i];
        lens[i] = strlen(bufs[i]);
    }
    CHECK_OK(qk_ketama_get_node_batch(k, keys, lens, N, batch, NULL));
    for (int i = 0; i < N; i++) {
        size_t one = SENTINEL_SIZE;
        qk_ketama_get_node(k, keys[i], lens[i], &one, NULL);
        if (one != batch[i]) same = 0;
    }
    CHECK(same);
    size_t out2[2] = {SENTINEL_SIZE, SENTINEL_SIZE};
    const uint8_t *bad[2] = {keys[0], NULL};
    CHECK_ERR(qk_ketama_get_node_batch(k, bad, lens, 2, out2, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_ketama_get_node_batch(NULL, keys, lens, 2, out2, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_ketama_get_node_batch(k, NULL, lens, 2, out2, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_ketama_get_node_batch(k, keys, NULL, 2, out2, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_ketama_get_node_batch(k, keys, lens, 2, NULL, NULL), QK_ERR_NULL_ARG);
    CHECK(out2[0] == SENTINEL_SIZE && out2[1] == SENTINEL_SIZE);

    /* shares */
    double shares[12];
    for (int i = 0; i < 12; i++) shares[i] = -1;
    CHECK_ERR(qk_ketama_shares(k, shares, 11, NULL), QK_ERR_BUFFER_TOO_SMALL);
    CHECK_ERR(qk_ketama_shares(NULL, shares, 12, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_ketama_shares(k, NULL, 12, NULL), QK_ERR_NULL_ARG);
    CHECK(shares[0] == -1);
    CHECK_OK(qk_ketama_shares(k, shares, 12, NULL));
    double sum = 0;
    for (int i = 0; i < 12; i++) sum += shares[i];
    CHECK(fabs(sum - 1.0) < 1e-9);
    CHECK(shares[2] > 2.5 * shares[0]); /* weight 5 vs weight 1 */

    qk_ketama_free(k);
}

void test_ketama(void) {
    test_new();
    test_vectors();
    test_servers();
}
