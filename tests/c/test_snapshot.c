#define _POSIX_C_SOURCE 200809L /* strtok_r */
/* Snapshots of qk_ring, qk_ketama, qk_rendezvous and qk_maglev: the two-call pattern, round trips,
 * the committed cross-face fixtures (tests/vectors/snapshot-v1/, written by
 * the Rust core, read by the Python tests too), and corrupt input. */
#include <math.h>

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
    CHECK_ERR(qk_ring_snapshot(r, NULL, 0, &need, NULL), QK_ERR_BUFFER_TOO_SMALL);
    CHECK(strstr(qk_last_error_message(), "needs") != NULL);
    REQUIRE(need != SENTINEL_SIZE && need >= 16);
    uint8_t *buf = malloc(need);
    REQUIRE(buf != NULL);
    size_t small = SENTINEL_SIZE;
    CHECK_ERR(qk_ring_snapshot(r, buf, need - 1, &small, NULL), QK_ERR_BUFFER_TOO_SMALL);
    CHECK(small == need);
    CHECK_OK(qk_ring_snapshot(r, buf, need, len, NULL));
    CHECK(*len == need);
    return buf;
}

static const char *ring_name(const qk_ring *r, size_t i) {
    const char *name = "";
    size_t len;
    if (qk_ring_node_name(r, i, &name, &len, NULL) != QK_OK) return "";
    return name;
}

static const char *ketama_name(const qk_ketama *k, size_t i) {
    const char *name = "";
    size_t len;
    if (qk_ketama_node_name(k, i, &name, &len, NULL) != QK_OK) return "";
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
            CHECK_OK(qk_ring_get_node(r, KEY(key), &index, NULL));
            CHECK(strcmp(ring_name(r, index), node) == 0);
        } else {
            CHECK_OK(qk_ketama_get_node(k, KEY(key), &index, NULL));
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
    CHECK_OK(qk_ring_restore(ring_bytes, ring_len, &r, NULL));
    CHECK_OK(qk_ketama_restore(ketama_bytes, ketama_len, &k, NULL));
    REQUIRE(r != NULL && k != NULL);
    size_t count = 0;
    CHECK_OK(qk_ring_node_count(r, &count, NULL));
    CHECK(count == 4);
    CHECK(strcmp(ring_name(r, 2), "cache-\xc3\xbc") == 0); /* order kept */
    check_fixture_placements(r, k);

    /* Saving again gives the committed bytes: C, Rust and Python agree. */
    size_t len = 0;
    uint8_t *again = ring_snapshot(r, &len);
    CHECK(len == ring_len && memcmp(again, ring_bytes, len) == 0);
    free(again);
    uint8_t kbuf[512];
    CHECK_OK(qk_ketama_snapshot(k, kbuf, sizeof kbuf, &len, NULL));
    CHECK(len == ketama_len && memcmp(kbuf, ketama_bytes, len) == 0);
    size_t need = SENTINEL_SIZE;
    CHECK_ERR(qk_ketama_snapshot(k, NULL, 0, &need, NULL), QK_ERR_BUFFER_TOO_SMALL);
    CHECK(need == ketama_len);

    /* The wrong kind is an invalid argument, not corruption. */
    qk_ring *wrong = (qk_ring *)0x1;
    CHECK_ERR(qk_ring_restore(ketama_bytes, ketama_len, &wrong, NULL), QK_ERR_INVALID_ARG);
    CHECK(wrong == (qk_ring *)0x1);
    qk_ketama *wrongk = NULL;
    CHECK_ERR(qk_ketama_restore(ring_bytes, ring_len, &wrongk, NULL), QK_ERR_INVALID_ARG);
    CHECK(wrongk == NULL);

    qk_ring_free(r);
    qk_ketama_free(k);
    free(ring_bytes);
    free(ketama_bytes);
}

static void test_round_trip_and_bad_input(void) {
    qk_ring *r = NULL;
    REQUIRE(qk_ring_new(20, &r, NULL) == QK_OK);
    CHECK_OK(qk_ring_add_node(r, STR("b"), 2, NULL));
    CHECK_OK(qk_ring_add_node(r, STR("a"), 1, NULL));
    size_t len = 0;
    uint8_t *snap = ring_snapshot(r, &len);

    qk_ring *back = NULL;
    CHECK_OK(qk_ring_restore(snap, len, &back, NULL));
    char key[32];
    int same = 1;
    for (int i = 0; i < 2000; i++) {
        snprintf(key, sizeof key, "k%d", i);
        size_t a = 0, b = 1;
        qk_ring_get_node(r, KEY(key), &a, NULL);
        qk_ring_get_node(back, KEY(key), &b, NULL);
        same &= (a == b);
    }
    CHECK(same);
    CHECK(strcmp(ring_name(back, 0), "b") == 0);
    qk_ring_free(back);

    /* NULL arguments. */
    size_t out_len = SENTINEL_SIZE;
    uint8_t small[4];
    CHECK_ERR(qk_ring_snapshot(NULL, small, sizeof small, &out_len, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_ring_snapshot(r, small, sizeof small, NULL, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_ring_snapshot(r, NULL, 8, &out_len, NULL), QK_ERR_NULL_ARG);
    CHECK(out_len == SENTINEL_SIZE);
    CHECK_ERR(qk_ketama_snapshot(NULL, small, sizeof small, &out_len, NULL), QK_ERR_NULL_ARG);
    qk_ring *out = (qk_ring *)0x1;
    CHECK_ERR(qk_ring_restore(snap, len, NULL, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_ring_restore(NULL, len, &out, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_ring_restore(NULL, 0, &out, NULL), QK_ERR_CORRUPT); /* empty input */
    qk_ketama *kout = NULL;
    CHECK_ERR(qk_ketama_restore(NULL, 3, &kout, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_ketama_restore(snap, len, NULL, NULL), QK_ERR_NULL_ARG);

    /* Corruption: every truncation, a flipped byte, trailing bytes, bad magic. */
    int all_corrupt = 1;
    for (size_t cut = 0; cut < len; cut++)
        all_corrupt &= qk_ring_restore(snap, cut, &out, NULL) == QK_ERR_CORRUPT;
    CHECK(all_corrupt);
    uint8_t *bad = malloc(len + 1);
    REQUIRE(bad != NULL);
    memcpy(bad, snap, len);
    bad[len] = 0;
    CHECK_ERR(qk_ring_restore(bad, len + 1, &out, NULL), QK_ERR_CORRUPT);
    CHECK(strstr(qk_last_error_message(), "trailing") != NULL);
    bad[len - 6] ^= 0x40;
    CHECK_ERR(qk_ring_restore(bad, len, &out, NULL), QK_ERR_CORRUPT);
    CHECK(strstr(qk_last_error_message(), "checksum") != NULL);
    memcpy(bad, snap, len);
    bad[0] = 'X';
    CHECK_ERR(qk_ring_restore(bad, len, &out, NULL), QK_ERR_CORRUPT);
    CHECK(strstr(qk_last_error_message(), "magic") != NULL);
    memcpy(bad, snap, len);
    bad[4] = 9; /* format version 9 */
    CHECK_ERR(qk_ring_restore(bad, len, &out, NULL), QK_ERR_UNSUPPORTED_VERSION);
    CHECK(strstr(qk_last_error_message(), "version 9") != NULL);
    CHECK_ERR(qk_ketama_restore(bad, len, &kout, NULL), QK_ERR_UNSUPPORTED_VERSION);
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
        never_ok &= qk_ring_restore(bad, len, &out, NULL) == QK_ERR_CORRUPT;
    }
    if (!never_ok) fprintf(stderr, "random-bytes seed 12345\n");
    CHECK(never_ok);
    free(bad);
    free(snap);
    qk_ring_free(r);

    /* An empty ring round-trips too. */
    qk_ring *empty = NULL;
    REQUIRE(qk_ring_new(0, &empty, NULL) == QK_OK);
    uint8_t buf[64];
    CHECK_OK(qk_ring_snapshot(empty, buf, sizeof buf, &len, NULL));
    CHECK(len == 24); /* header 12 + vnodes 4 + count 4 + crc 4 */
    qk_ring *back2 = NULL;
    CHECK_OK(qk_ring_restore(buf, len, &back2, NULL));
    size_t count = SENTINEL_SIZE;
    CHECK_OK(qk_ring_node_count(back2, &count, NULL));
    CHECK(count == 0);
    qk_ring_free(back2);
    qk_ring_free(empty);
}

/* Builds a framed snapshot (header + body + CRC-32) of `kind` around `body`. */
static uint32_t crc32_ieee(const uint8_t *p, size_t n) {
    uint32_t crc = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int b = 0; b < 8; b++) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static size_t framed(uint8_t *out, uint16_t kind, const uint8_t *body, size_t body_len) {
    memcpy(out, "QKSN\x01\x00", 6);
    out[6] = (uint8_t)kind;
    out[7] = (uint8_t)(kind >> 8);
    put_u32(out + 8, (uint32_t)body_len);
    memcpy(out + 12, body, body_len);
    put_u32(out + 12 + body_len, crc32_ieee(out, 12 + body_len));
    return 16 + body_len;
}

static const char *hrw_name(const qk_rendezvous *h, size_t i) {
    const char *name = "";
    size_t len;
    if (qk_rendezvous_node_name(h, i, &name, &len, NULL) != QK_OK) return "";
    return name;
}

static const char *maglev_name(const qk_maglev *m, size_t i) {
    const char *name = "";
    size_t len;
    if (qk_maglev_node_name(m, i, &name, &len, NULL) != QK_OK) return "";
    return name;
}

/* Kinds 3 and 4: the committed fixtures, round trips, bad input. */
static void test_rendezvous_maglev(void) {
    size_t hlen, mlen, tlen;
    uint8_t *hbytes = read_file("rendezvous.qksn", &hlen);
    uint8_t *mbytes = read_file("maglev.qksn", &mlen);
    qk_rendezvous *h = NULL;
    qk_maglev *m = NULL;
    CHECK_OK(qk_rendezvous_restore(hbytes, hlen, &h, NULL));
    CHECK_OK(qk_maglev_restore(mbytes, mlen, &m, NULL));
    REQUIRE(h != NULL && m != NULL);
    uint32_t size = 0;
    CHECK_OK(qk_maglev_table_size(m, &size, NULL));
    CHECK(size == 257);
    double w = 0;
    CHECK_OK(qk_rendezvous_weight(h, STR("cache-b"), &w, NULL));
    CHECK(w == 2.5);

    char *tsv = (char *)read_file("placements-hrw-maglev.tsv", &tlen);
    int checked = 0, agree = 1;
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
        if (strcmp(kind, "rendezvous") == 0) {
            agree &= qk_rendezvous_get_node(h, KEY(key), &index, NULL) == QK_OK &&
                     strcmp(hrw_name(h, index), node) == 0;
        } else {
            agree &= qk_maglev_get_node(m, KEY(key), &index, NULL) == QK_OK &&
                     strcmp(maglev_name(m, index), node) == 0;
        }
        checked++;
    }
    CHECK(agree);
    CHECK(checked == 128);
    free(tsv);

    /* Saving again gives the committed bytes, through the two-call pattern. */
    size_t need = SENTINEL_SIZE, len = 0;
    CHECK_ERR(qk_rendezvous_snapshot(h, NULL, 0, &need, NULL), QK_ERR_BUFFER_TOO_SMALL);
    CHECK(need == hlen);
    uint8_t *again = malloc(need);
    REQUIRE(again != NULL);
    CHECK_ERR(qk_rendezvous_snapshot(h, again, need - 1, &len, NULL), QK_ERR_BUFFER_TOO_SMALL);
    CHECK_OK(qk_rendezvous_snapshot(h, again, need, &len, NULL));
    CHECK(len == hlen && memcmp(again, hbytes, len) == 0);
    free(again);
    need = SENTINEL_SIZE;
    CHECK_ERR(qk_maglev_snapshot(m, NULL, 0, &need, NULL), QK_ERR_BUFFER_TOO_SMALL);
    CHECK(need == mlen);
    again = malloc(need);
    REQUIRE(again != NULL);
    CHECK_OK(qk_maglev_snapshot(m, again, need, &len, NULL));
    CHECK(len == mlen && memcmp(again, mbytes, len) == 0);
    free(again);

    /* NULL arguments. */
    uint8_t small[4];
    size_t out_len = SENTINEL_SIZE;
    CHECK_ERR(qk_rendezvous_snapshot(NULL, small, sizeof small, &out_len, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_rendezvous_snapshot(h, small, sizeof small, NULL, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_rendezvous_snapshot(h, NULL, 8, &out_len, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_maglev_snapshot(NULL, small, sizeof small, &out_len, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_maglev_snapshot(m, NULL, 8, &out_len, NULL), QK_ERR_NULL_ARG);
    CHECK(out_len == SENTINEL_SIZE);
    qk_rendezvous *hout = (qk_rendezvous *)0x1;
    qk_maglev *mout = (qk_maglev *)0x1;
    CHECK_ERR(qk_rendezvous_restore(hbytes, hlen, NULL, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_rendezvous_restore(NULL, hlen, &hout, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_maglev_restore(mbytes, mlen, NULL, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_maglev_restore(NULL, mlen, &mout, NULL), QK_ERR_NULL_ARG);

    /* Wrong kinds: an invalid argument. */
    CHECK_ERR(qk_rendezvous_restore(mbytes, mlen, &hout, NULL), QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_maglev_restore(hbytes, hlen, &mout, NULL), QK_ERR_INVALID_ARG);
    size_t rlen;
    uint8_t *rbytes = read_file("hash_ring.qksn", &rlen);
    CHECK_ERR(qk_maglev_restore(rbytes, rlen, &mout, NULL), QK_ERR_INVALID_ARG);
    qk_ring *rout = NULL;
    CHECK_ERR(qk_ring_restore(mbytes, mlen, &rout, NULL), QK_ERR_INVALID_ARG);
    CHECK(rout == NULL);
    free(rbytes);

    /* Every truncation is corrupt. */
    int all_corrupt = 1;
    for (size_t cut = 0; cut < hlen; cut++)
        all_corrupt &= qk_rendezvous_restore(hbytes, cut, &hout, NULL) == QK_ERR_CORRUPT;
    for (size_t cut = 0; cut < mlen; cut++)
        all_corrupt &= qk_maglev_restore(mbytes, cut, &mout, NULL) == QK_ERR_CORRUPT;
    CHECK(all_corrupt);

    /* Well-framed bodies with bad content: corrupt, with a clear message. */
    uint8_t body[64], snap[96];
    static const double bad_weights[] = {NAN, -1.0, 0.0, INFINITY};
    for (size_t i = 0; i < sizeof bad_weights / sizeof *bad_weights; i++) {
        put_u32(body, 1);
        put_u32(body + 4, 1);
        body[8] = 'a';
        uint64_t bits;
        memcpy(&bits, &bad_weights[i], 8);
        for (int b = 0; b < 8; b++) body[9 + b] = (uint8_t)(bits >> (8 * b));
        size_t n = framed(snap, 3, body, 17);
        CHECK_ERR(qk_rendezvous_restore(snap, n, &hout, NULL), QK_ERR_CORRUPT);
        CHECK(strstr(qk_last_error_message(), "weight") != NULL);
    }
    put_u32(body, 15); /* table size 15: not prime */
    put_u32(body + 4, 1);
    put_u32(body + 8, 1);
    body[12] = 'a';
    put_u32(body + 13, 1);
    size_t n = framed(snap, 4, body, 17);
    CHECK_ERR(qk_maglev_restore(snap, n, &mout, NULL), QK_ERR_CORRUPT);
    CHECK(strstr(qk_last_error_message(), "prime") != NULL);
    put_u32(body, 13);
    n = framed(snap, 4, body, 17);
    CHECK_OK(qk_maglev_restore(snap, n, &mout, NULL)); /* the same body with a prime size */
    REQUIRE(mout != (qk_maglev *)0x1);
    qk_maglev_free(mout);
    mout = (qk_maglev *)0x1;
    put_u32(body + 13, 0); /* weight 0 */
    n = framed(snap, 4, body, 17);
    CHECK_ERR(qk_maglev_restore(snap, n, &mout, NULL), QK_ERR_CORRUPT);
    CHECK(hout == (qk_rendezvous *)0x1 && mout == (qk_maglev *)0x1);

    /* Empty placements round-trip. */
    qk_rendezvous *eh = NULL, *eh2 = NULL;
    REQUIRE(qk_rendezvous_new(&eh, NULL) == QK_OK);
    uint8_t buf[64];
    CHECK_OK(qk_rendezvous_snapshot(eh, buf, sizeof buf, &len, NULL));
    CHECK(len == 20); /* header 12 + count 4 + crc 4 */
    CHECK_OK(qk_rendezvous_restore(buf, len, &eh2, NULL));
    size_t count = SENTINEL_SIZE;
    CHECK_OK(qk_rendezvous_node_count(eh2, &count, NULL));
    CHECK(count == 0);
    qk_rendezvous_free(eh);
    qk_rendezvous_free(eh2);
    qk_maglev *em = NULL, *em2 = NULL;
    REQUIRE(qk_maglev_new(7, &em, NULL) == QK_OK);
    CHECK_OK(qk_maglev_snapshot(em, buf, sizeof buf, &len, NULL));
    CHECK_OK(qk_maglev_restore(buf, len, &em2, NULL));
    size = 0;
    CHECK_OK(qk_maglev_table_size(em2, &size, NULL));
    CHECK(size == 7);
    qk_maglev_free(em);
    qk_maglev_free(em2);

    qk_rendezvous_free(h);
    qk_maglev_free(m);
    free(hbytes);
    free(mbytes);
}

/* A 48-byte HashRing snapshot declaring 160 vnodes x weight 419,430 for
 * one node (2^26 points): it once took 7.6 s and 1.8 GB to load. The
 * decode budget refuses it before any work. */
static void test_decode_budget(void) {
    uint8_t s[64];
    size_t n = 0;
    memcpy(s, "QKSN", 4);
    s[4] = 1, s[5] = 0;  /* version */
    s[6] = 1, s[7] = 0;  /* kind HashRing */
    uint32_t body_len = 4 + 4 + 4 + 1 + 4;
    memcpy(s + 8, &body_len, 4); /* little-endian host (x86-64, aarch64) */
    n = 12;
    uint32_t vnodes = 160, count = 1, name_len = 1, weight = 419430;
    memcpy(s + n, &vnodes, 4), n += 4;
    memcpy(s + n, &count, 4), n += 4;
    memcpy(s + n, &name_len, 4), n += 4;
    s[n++] = 'a';
    memcpy(s + n, &weight, 4), n += 4;
    /* CRC-32 (zlib) of bytes 0..n, bitwise. */
    uint32_t crc = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        crc ^= s[i];
        for (int k = 0; k < 8; k++) crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
    }
    crc ^= 0xffffffffu;
    memcpy(s + n, &crc, 4), n += 4;

    qk_ring *r = (qk_ring *)0x1;
    CHECK(QK_ERR_LIMIT_EXCEEDED == 28);
    CHECK(strcmp(qk_status_str(QK_ERR_LIMIT_EXCEEDED), "decode limit exceeded") == 0);
    CHECK(QK_DEFAULT_MAX_POINTS == (1ull << 22));
    CHECK_ERR(qk_ring_restore(s, n, &r, NULL), QK_ERR_LIMIT_EXCEEDED);
    CHECK(strstr(qk_last_error_message(), "max_points") != NULL);
    CHECK_ERR(qk_ring_restore_limited(s, n, 1000, &r, NULL), QK_ERR_LIMIT_EXCEEDED);
    CHECK(r == (qk_ring *)0x1);
    /* A damaged one is still corrupt first. */
    s[n - 1] ^= 1;
    CHECK_ERR(qk_ring_restore_limited(s, n, 1000, &r, NULL), QK_ERR_CORRUPT);

    /* An ordinary ring restores under a budget that fits it exactly. */
    qk_ring *small = NULL, *back = NULL;
    CHECK_OK(qk_ring_new(160, &small, NULL));
    CHECK_OK(qk_ring_add_node(small, STR("a"), 2, NULL));
    uint8_t buf[256];
    size_t len = 0;
    CHECK_OK(qk_ring_snapshot(small, buf, sizeof buf, &len, NULL));
    CHECK_ERR(qk_ring_restore_limited(buf, len, 319, &back, NULL), QK_ERR_LIMIT_EXCEEDED);
    CHECK_OK(qk_ring_restore_limited(buf, len, 320, &back, NULL));
    qk_ring_free(back);
    qk_ring_free(small);

    qk_maglev *m = NULL, *mb = (qk_maglev *)0x1;
    CHECK_OK(qk_maglev_new(13, &m, NULL));
    CHECK_OK(qk_maglev_add_node(m, STR("a"), 1, NULL));
    CHECK_OK(qk_maglev_snapshot(m, buf, sizeof buf, &len, NULL));
    CHECK_ERR(qk_maglev_restore_limited(buf, len, 12, &mb, NULL), QK_ERR_LIMIT_EXCEEDED);
    CHECK(mb == (qk_maglev *)0x1);
    CHECK_OK(qk_maglev_restore_limited(buf, len, 13, &mb, NULL));
    qk_maglev_free(mb);
    qk_maglev_free(m);
}

void test_snapshot(void) {
    test_decode_budget();
    test_fixtures();
    test_round_trip_and_bad_input();
    test_rendezvous_maglev();
}
