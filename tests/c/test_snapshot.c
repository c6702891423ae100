#define _POSIX_C_SOURCE 200809L /* strtok_r */
/* Snapshots of qk_ring and qk_ketama: the two-call pattern, round trips,
 * the committed cross-face fixtures (tests/vectors/snapshot-v1/, written by
 * the Rust core, read by the Python tests too), and corrupt input. */
#include "check.h"

#ifndef QK_VECTORS_DIR
#error "compile with -DQK_VECTORS_DIR=\"<repo>/tests/vectors\""
#endif

/* Reads a whole file into a malloc'd buffer; REQUIREs success. */
static uint8_t *read_file(const char *name, size_t *len) {
    char path[512];
    snprintf(path, sizeof path, "%s/snapshot-v1/%s", QK_VECTORS_DIR, name);
    FILE *f = fopen(path, "rb");
    REQUIRE(f != NULL);
    REQUIRE(fseek(f, 0, SEEK_END) == 0);
    long n = ftell(f);
    REQUIRE(n >= 0);
    REQUIRE(fseek(f, 0, SEEK_SET) == 0);
    uint8_t *buf = malloc((size_t)n + 1);
    REQUIRE(buf != NULL);
    REQUIRE(fread(buf, 1, (size_t)n, f) == (size_t)n);
    fclose(f);
    buf[n] = 0;
    *len = (size_t)n;
    return buf;
}

/* A ring's snapshot through the two-call pattern (malloc'd). */
static uint8_t *ring_snapshot(const qk_ring *r, size_t *len) {
    size_t need = SENTINEL_SIZE;
    CHECK_ERR(qk_ring_snapshot(r, NULL, 0, &need), QK_ERR_BUFFER_TOO_SMALL);
    CHECK(strstr(qk_last_error_message(), "needs") != NULL);
    REQUIRE(need != SENTINEL_SIZE && need >= 16);
    uint8_t *buf = malloc(need);
    REQUIRE(buf != NULL);
    size_t small = SENTINEL_SIZE;
    CHECK_ERR(qk_ring_snapshot(r, buf, need - 1, &small), QK_ERR_BUFFER_TOO_SMALL);
    CHECK(small == need);
    CHECK_OK(qk_ring_snapshot(r, buf, need, len));
    CHECK(*len == need);
    return buf;
}

static const char *ring_name(const qk_ring *r, size_t i) {
    const char *name = "";
    size_t len;
    if (qk_ring_node_name(r, i, &name, &len) != QK_OK) return "";
    return name;
}

static const char *ketama_name(const qk_ketama *k, size_t i) {
    const char *name = "";
    size_t len;
    if (qk_ketama_node_name(k, i, &name, &len) != QK_OK) return "";
    return name;
}

/* Every line "kind\tkey\tnode" of placements.tsv, checked on the restored
 * ring or continuum. */
static void check_fixture_placements(const qk_ring *r, const qk_ketama *k) {
    size_t len;
    char *tsv = (char *)read_file("placements.tsv", &len);
    int checked = 0;
    char *save = NULL;
    for (char *line = strtok_r(tsv, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#') continue;
        char *kind = line, *key = strchr(kind, '\t');
        REQUIRE(key != NULL);
        *key++ = 0;
        char *node = strchr(key, '\t');
        REQUIRE(node != NULL);
        *node++ = 0;
        size_t index = SENTINEL_SIZE;
        if (strcmp(kind, "ring") == 0) {
            CHECK_OK(qk_ring_get_node(r, KEY(key), &index));
            CHECK(strcmp(ring_name(r, index), node) == 0);
        } else {
            CHECK_OK(qk_ketama_get_node(k, KEY(key), &index));
            CHECK(strcmp(ketama_name(k, index), node) == 0);
        }
        checked++;
    }
    CHECK(checked == 128);
    free(tsv);
}

static void test_fixtures(void) {
    size_t ring_len, ketama_len;
    uint8_t *ring_bytes = read_file("hash_ring.qksn", &ring_len);
    uint8_t *ketama_bytes = read_file("ketama.qksn", &ketama_len);
    qk_ring *r = NULL;
    qk_ketama *k = NULL;
    CHECK_OK(qk_ring_restore(ring_bytes, ring_len, &r));
    CHECK_OK(qk_ketama_restore(ketama_bytes, ketama_len, &k));
    REQUIRE(r != NULL && k != NULL);
    size_t count = 0;
    CHECK_OK(qk_ring_node_count(r, &count));
    CHECK(count == 4);
    CHECK(strcmp(ring_name(r, 2), "cache-\xc3\xbc") == 0); /* order kept */
    check_fixture_placements(r, k);

    /* Saving again gives the committed bytes: C, Rust and Python agree. */
    size_t len = 0;
    uint8_t *again = ring_snapshot(r, &len);
    CHECK(len == ring_len && memcmp(again, ring_bytes, len) == 0);
    free(again);
    uint8_t kbuf[512];
    CHECK_OK(qk_ketama_snapshot(k, kbuf, sizeof kbuf, &len));
    CHECK(len == ketama_len && memcmp(kbuf, ketama_bytes, len) == 0);
    size_t need = SENTINEL_SIZE;
    CHECK_ERR(qk_ketama_snapshot(k, NULL, 0, &need), QK_ERR_BUFFER_TOO_SMALL);
    CHECK(need == ketama_len);

    /* The wrong kind is an invalid argument, not corruption. */
    qk_ring *wrong = (qk_ring *)0x1;
    CHECK_ERR(qk_ring_restore(ketama_bytes, ketama_len, &wrong), QK_ERR_INVALID_ARG);
    CHECK(wrong == (qk_ring *)0x1);
    qk_ketama *wrongk = NULL;
    CHECK_ERR(qk_ketama_restore(ring_bytes, ring_len, &wrongk), QK_ERR_INVALID_ARG);
    CHECK(wrongk == NULL);

    qk_ring_free(r);
    qk_ketama_free(k);
    free(ring_bytes);
    free(ketama_bytes);
}

static void test_round_trip_and_bad_input(void) {
    qk_ring *r = NULL;
    REQUIRE(qk_ring_new(20, &r) == QK_OK);
    CHECK_OK(qk_ring_add_node(r, STR("b"), 2));
    CHECK_OK(qk_ring_add_node(r, STR("a"), 1));
    size_t len = 0;
    uint8_t *snap = ring_snapshot(r, &len);

    qk_ring *back = NULL;
    CHECK_OK(qk_ring_restore(snap, len, &back));
    char key[32];
    int same = 1;
    for (int i = 0; i < 2000; i++) {
        snprintf(key, sizeof key, "k%d", i);
        size_t a = 0, b = 1;
        qk_ring_get_node(r, KEY(key), &a);
        qk_ring_get_node(back, KEY(key), &b);
        same &= (a == b);
    }
    CHECK(same);
    CHECK(strcmp(ring_name(back, 0), "b") == 0);
    qk_ring_free(back);

    /* NULL arguments. */
    size_t out_len = SENTINEL_SIZE;
    uint8_t small[4];
    CHECK_ERR(qk_ring_snapshot(NULL, small, sizeof small, &out_len), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_ring_snapshot(r, small, sizeof small, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_ring_snapshot(r, NULL, 8, &out_len), QK_ERR_NULL_ARG);
    CHECK(out_len == SENTINEL_SIZE);
    CHECK_ERR(qk_ketama_snapshot(NULL, small, sizeof small, &out_len), QK_ERR_NULL_ARG);
    qk_ring *out = (qk_ring *)0x1;
    CHECK_ERR(qk_ring_restore(snap, len, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_ring_restore(NULL, len, &out), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_ring_restore(NULL, 0, &out), QK_ERR_CORRUPT); /* empty input */
    qk_ketama *kout = NULL;
    CHECK_ERR(qk_ketama_restore(NULL, 3, &kout), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_ketama_restore(snap, len, NULL), QK_ERR_NULL_ARG);

    /* Corruption: every truncation, a flipped byte, trailing bytes, bad magic. */
    int all_corrupt = 1;
    for (size_t cut = 0; cut < len; cut++)
        all_corrupt &= qk_ring_restore(snap, cut, &out) == QK_ERR_CORRUPT;
    CHECK(all_corrupt);
    uint8_t *bad = malloc(len + 1);
    REQUIRE(bad != NULL);
    memcpy(bad, snap, len);
    bad[len] = 0;
    CHECK_ERR(qk_ring_restore(bad, len + 1, &out), QK_ERR_CORRUPT);
    CHECK(strstr(qk_last_error_message(), "trailing") != NULL);
    bad[len - 6] ^= 0x40;
    CHECK_ERR(qk_ring_restore(bad, len, &out), QK_ERR_CORRUPT);
    CHECK(strstr(qk_last_error_message(), "checksum") != NULL);
    memcpy(bad, snap, len);
    bad[0] = 'X';
    CHECK_ERR(qk_ring_restore(bad, len, &out), QK_ERR_CORRUPT);
    CHECK(strstr(qk_last_error_message(), "magic") != NULL);
    memcpy(bad, snap, len);
    bad[4] = 9; /* format version 9 */
    CHECK_ERR(qk_ring_restore(bad, len, &out), QK_ERR_UNSUPPORTED_VERSION);
    CHECK(strstr(qk_last_error_message(), "version 9") != NULL);
    CHECK_ERR(qk_ketama_restore(bad, len, &kout), QK_ERR_UNSUPPORTED_VERSION);
    CHECK(out == (qk_ring *)0x1 && kout == NULL);
    /* Random bytes behind a valid magic: an error, never a crash. */
    unsigned seed = 12345;
    int never_ok = 1;
    for (int round = 0; round < 200; round++) {
        memcpy(bad, "QKSN\x01\x00\x01\x00", 8);
        for (size_t i = 8; i < len; i++) {
            seed = seed * 1103515245u + 12345u;
            bad[i] = (uint8_t)(seed >> 16);
        }
        never_ok &= qk_ring_restore(bad, len, &out) == QK_ERR_CORRUPT;
    }
    if (!never_ok) fprintf(stderr, "random-bytes seed 12345\n");
    CHECK(never_ok);
    free(bad);
    free(snap);
    qk_ring_free(r);

    /* An empty ring round-trips too. */
    qk_ring *empty = NULL;
    REQUIRE(qk_ring_new(0, &empty) == QK_OK);
    uint8_t buf[64];
    CHECK_OK(qk_ring_snapshot(empty, buf, sizeof buf, &len));
    CHECK(len == 24); /* header 12 + vnodes 4 + count 4 + crc 4 */
    qk_ring *back2 = NULL;
    CHECK_OK(qk_ring_restore(buf, len, &back2));
    size_t count = SENTINEL_SIZE;
    CHECK_OK(qk_ring_node_count(back2, &count));
    CHECK(count == 0);
    qk_ring_free(back2);
    qk_ring_free(empty);
}

void test_snapshot(void) {
    test_fixtures();
    test_round_trip_and_bad_input();
}
