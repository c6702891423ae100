/* Two-phase commit through the C API: a coordinator and three
 * participants exchanging encoded messages through a queue, a
 * participant in doubt that restarts and still commits, the blocking of
 * 2PC next to Paxos Commit in the simulation, and bad arguments (NULL,
 * damaged bytes, a small buffer, bad participant lists, votes nobody asked
 * for). */
#include <stdbool.h>

#include "check.h"

#define MS 1000000ull
#define NPART 3
#define QCAP 64

typedef struct {
    uint32_t from, to;
    size_t len;
    uint8_t bytes[128];
} mail;

static mail queue[QCAP];
static size_t q_head, q_tail;

static void post(uint32_t from, uint32_t to, const uint8_t *b, size_t len) {
    REQUIRE(q_tail - q_head < QCAP && len <= sizeof queue[0].bytes);
    mail *m = &queue[q_tail++ % QCAP];
    m->from = from;
    m->to = to;
    m->len = len;
    memcpy(m->bytes, b, len);
}

static int outcomes_seen;

/* Drains one machine's outputs: messages go to the queue, vote requests
 * are answered yes, outcomes are counted. */
static void drain_coordinator(qk_txn_coordinator *c) {
    uint8_t buf[128];
    qk_txn_output o;
    uint8_t has = true;
    while (has) {
        CHECK_OK(qk_txn_coordinator_poll(c, buf, sizeof buf, &o, &has, NULL));
        if (has && o.kind == QK_TXN_OUTPUT_SEND) post(0, o.to, buf, o.message_len);
        if (has && o.kind == QK_TXN_OUTPUT_OUTCOME) CHECK(o.commit && o.txn == 7);
    }
}

static void drain_participant(qk_txn_participant *p, uint32_t id, uint64_t now) {
    uint8_t buf[128];
    qk_txn_output o;
    uint8_t has = true;
    while (has) {
        CHECK_OK(qk_txn_participant_poll(p, buf, sizeof buf, &o, &has, NULL));
        if (!has) break;
        if (o.kind == QK_TXN_OUTPUT_SEND) post(id, o.to, buf, o.message_len);
        if (o.kind == QK_TXN_OUTPUT_VOTE_REQUESTED) CHECK_OK(qk_txn_participant_vote(p, o.txn, true, now, NULL));
        if (o.kind == QK_TXN_OUTPUT_OUTCOME) {
            CHECK(o.commit && o.txn == 7);
            outcomes_seen++;
        }
    }
}

static void test_txn_commit_by_bytes(void) {
    qk_txn_config cfg = {.vote_timeout_ns = 200 * MS, .retry_interval_ns = 50 * MS, .cooperative = true};
    qk_txn_coordinator *c = NULL;
    qk_txn_participant *p[NPART + 1] = {0};
    REQUIRE(qk_txn_coordinator_new(0, &cfg, 0, &c, NULL) == QK_OK);
    for (uint32_t i = 1; i <= NPART; i++) REQUIRE(qk_txn_participant_new(i, &cfg, 0, &p[i], NULL) == QK_OK);

    uint32_t ids[NPART] = {1, 2, 3};
    CHECK_OK(qk_txn_coordinator_begin(c, 7, ids, NPART, 0, NULL));
    int32_t decision = 99;
    CHECK_OK(qk_txn_coordinator_decision(c, 7, &decision, NULL));
    CHECK(decision == QK_TXN_UNDECIDED);

    /* The first output is the Started record, before any Prepare. */
    uint8_t buf[128];
    qk_txn_output o;
    uint8_t has = false;
    CHECK_OK(qk_txn_coordinator_poll(c, buf, sizeof buf, &o, &has, NULL));
    CHECK(has && o.kind == QK_TXN_OUTPUT_PERSISTED && o.records == 1);
    /* A buffer too small leaves the Prepare queued. */
    CHECK_ERR(qk_txn_coordinator_poll(c, buf, 4, &o, &has, NULL), QK_ERR_BUFFER_TOO_SMALL);
    CHECK(strstr(qk_last_error_message(), "bytes") != NULL);
    drain_coordinator(c);
    CHECK(q_tail - q_head == NPART);

    /* Participant 3 crashes after voting yes, before the outcome arrives. */
    uint64_t now = 1 * MS;
    bool crashed = false;
    while (q_head != q_tail) {
        mail m = queue[q_head++ % QCAP];
        if (m.to == 0) {
            CHECK_OK(qk_txn_coordinator_step(c, m.from, m.bytes, m.len, now, NULL));
            drain_coordinator(c);
        } else {
            if (m.to == 3 && !crashed) {
                uint32_t st = 0;
                CHECK_OK(qk_txn_participant_step(p[3], 0, m.bytes, m.len, now, NULL));
                drain_participant(p[3], 3, now);
                CHECK_OK(qk_txn_participant_state(p[3], 7, &st, NULL));
                CHECK(st == QK_TXN_PREPARED);
                continue;
            }
            if (m.to == 3 && crashed) continue; /* lost while it was down */
            CHECK_OK(qk_txn_participant_step(p[m.to], m.from, m.bytes, m.len, now, NULL));
            drain_participant(p[m.to], m.to, now);
        }
        if (!crashed && m.to == 0 && m.from == 3) {
            CHECK_OK(qk_txn_participant_restart(p[3], now, NULL));
            crashed = true;
        }
    }
    CHECK_OK(qk_txn_coordinator_decision(c, 7, &decision, NULL));
    CHECK(decision == 1);
    uint32_t st = 0;
    CHECK_OK(qk_txn_participant_state(p[3], 7, &st, NULL));
    CHECK(st == QK_TXN_PREPARED || st == QK_TXN_COMMITTED);
    /* In doubt after the restart: it asks at its deadline and learns. */
    uint64_t deadline = 0;
    CHECK_OK(qk_txn_participant_next_deadline(p[3], &deadline, &has, NULL));
    if (has) {
        CHECK_OK(qk_txn_participant_tick(p[3], deadline, NULL));
        drain_participant(p[3], 3, deadline);
        while (q_head != q_tail) {
            mail m = queue[q_head++ % QCAP];
            if (m.to == 0) {
                CHECK_OK(qk_txn_coordinator_step(c, m.from, m.bytes, m.len, deadline, NULL));
                drain_coordinator(c);
            } else {
                CHECK_OK(qk_txn_participant_step(p[m.to], m.from, m.bytes, m.len, deadline, NULL));
                drain_participant(p[m.to], m.to, deadline);
            }
        }
    }
    for (uint32_t i = 1; i <= NPART; i++) {
        CHECK_OK(qk_txn_participant_state(p[i], 7, &st, NULL));
        CHECK(st == QK_TXN_COMMITTED);
    }
    CHECK(outcomes_seen == NPART);
    CHECK_OK(qk_txn_coordinator_next_deadline(c, &deadline, &has, NULL));
    CHECK(!has);

    /* Coordinator restart keeps the decision. */
    CHECK_OK(qk_txn_coordinator_restart(c, 10 * MS, NULL));
    CHECK_OK(qk_txn_coordinator_decision(c, 7, &decision, NULL));
    CHECK(decision == 1);

    for (uint32_t i = 1; i <= NPART; i++) qk_txn_participant_free(p[i]);
    qk_txn_coordinator_free(c);
}

static void test_txn_bad_input(void) {
    qk_txn_config cfg = {.vote_timeout_ns = 200 * MS, .retry_interval_ns = 50 * MS, .cooperative = true};
    qk_txn_config zero = {.vote_timeout_ns = 0, .retry_interval_ns = 50 * MS, .cooperative = true};
    qk_txn_coordinator *c = (qk_txn_coordinator *)0x1;
    CHECK_ERR(qk_txn_coordinator_new(0, NULL, 0, &c, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_txn_coordinator_new(0, &zero, 0, &c, NULL), QK_ERR_INVALID_ARG);
    CHECK(c == (qk_txn_coordinator *)0x1);
    CHECK_ERR(qk_txn_coordinator_new(0, &cfg, 0, NULL, NULL), QK_ERR_NULL_ARG);
    REQUIRE(qk_txn_coordinator_new(0, &cfg, 0, &c, NULL) == QK_OK);

    uint32_t dup[2] = {1, 1}, self[2] = {0, 1}, ok[2] = {1, 2};
    CHECK_ERR(qk_txn_coordinator_begin(c, 1, NULL, 2, 0, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_txn_coordinator_begin(c, 1, ok, 0, 0, NULL), QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_txn_coordinator_begin(c, 1, dup, 2, 0, NULL), QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_txn_coordinator_begin(c, 1, self, 2, 0, NULL), QK_ERR_INVALID_ARG);
    CHECK_OK(qk_txn_coordinator_begin(c, 1, ok, 2, 0, NULL));
    CHECK_ERR(qk_txn_coordinator_begin(c, 1, ok, 2, 0, NULL), QK_ERR_INVALID_ARG);
    CHECK(strstr(qk_last_error_message(), "already exists") != NULL);

    int32_t d = 5;
    CHECK_ERR(qk_txn_coordinator_decision(c, 999, &d, NULL), QK_ERR_INVALID_ARG);
    CHECK(d == 5);
    CHECK_ERR(qk_txn_coordinator_decision(NULL, 1, &d, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_txn_coordinator_decision(c, 1, NULL, NULL), QK_ERR_NULL_ARG);

    /* Damaged messages: truncated, unknown tag, bad bool, trailing bytes,
     * another version. Vote{txn 1, yes} is 01 02 <u64 1> 01. */
    uint8_t vote[11] = {1, 2, 1, 0, 0, 0, 0, 0, 0, 0, 1};
    CHECK_ERR(qk_txn_coordinator_step(c, 1, vote, 5, 0, NULL), QK_ERR_CORRUPT);
    uint8_t bad_tag[11];
    memcpy(bad_tag, vote, 11);
    bad_tag[1] = 77;
    CHECK_ERR(qk_txn_coordinator_step(c, 1, bad_tag, 11, 0, NULL), QK_ERR_CORRUPT);
    uint8_t bad_bool[11];
    memcpy(bad_bool, vote, 11);
    bad_bool[10] = 2;
    CHECK_ERR(qk_txn_coordinator_step(c, 1, bad_bool, 11, 0, NULL), QK_ERR_CORRUPT);
    uint8_t longer[12];
    memcpy(longer, vote, 11);
    longer[11] = 0;
    CHECK_ERR(qk_txn_coordinator_step(c, 1, longer, 12, 0, NULL), QK_ERR_CORRUPT);
    uint8_t v9[11];
    memcpy(v9, vote, 11);
    v9[0] = 9;
    CHECK_ERR(qk_txn_coordinator_step(c, 1, v9, 11, 0, NULL), QK_ERR_UNSUPPORTED_VERSION);
    CHECK_ERR(qk_txn_coordinator_step(c, 1, NULL, 11, 0, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_txn_coordinator_step(c, 1, NULL, 0, 0, NULL), QK_ERR_CORRUPT);
    /* The well-formed vote is taken. */
    CHECK_OK(qk_txn_coordinator_step(c, 1, vote, 11, 0, NULL));

    qk_txn_output o;
    uint8_t has;
    uint8_t buf[8];
    CHECK_ERR(qk_txn_coordinator_poll(c, NULL, 8, &o, &has, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_txn_coordinator_poll(c, buf, 8, NULL, &has, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_txn_coordinator_poll(c, buf, 8, &o, NULL, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_txn_coordinator_tick(NULL, 0, NULL), QK_ERR_NULL_ARG);
    qk_txn_coordinator_free(c);
    qk_txn_coordinator_free(NULL);

    qk_txn_participant *p = NULL;
    REQUIRE(qk_txn_participant_new(1, &cfg, 0, &p, NULL) == QK_OK);
    CHECK_ERR(qk_txn_participant_vote(p, 42, true, 0, NULL), QK_ERR_INVALID_ARG);
    CHECK(strstr(qk_last_error_message(), "not awaiting a vote") != NULL);
    uint32_t st = SENTINEL_U32;
    CHECK_ERR(qk_txn_participant_state(NULL, 1, &st, NULL), QK_ERR_NULL_ARG);
    CHECK(st == SENTINEL_U32);
    CHECK_OK(qk_txn_participant_state(p, 42, &st, NULL));
    CHECK(st == QK_TXN_UNKNOWN);
    CHECK_ERR(qk_txn_participant_step(p, 0, vote, 3, 0, NULL), QK_ERR_CORRUPT);
    qk_txn_participant_free(p);
    qk_txn_participant_free(NULL);

    qk_txn_sim *s = NULL;
    CHECK_ERR(qk_txn_sim_new(7, 3, 1, 0, &s, NULL), QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_txn_sim_new(QK_TXN_PROTOCOL_2PC, 0, 1, 0, &s, NULL), QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_txn_sim_new(QK_TXN_PROTOCOL_PAXOS_COMMIT, 3, 9, 0, &s, NULL), QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_txn_sim_new(QK_TXN_PROTOCOL_2PC, 3, 1, 0, NULL, NULL), QK_ERR_NULL_ARG);
    REQUIRE(qk_txn_sim_new(QK_TXN_PROTOCOL_2PC, 3, 1, 0, &s, NULL) == QK_OK);
    uint8_t two[2] = {true, true};
    CHECK_ERR(qk_txn_sim_begin(s, 1, two, 2, NULL), QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_txn_sim_crash(s, 99, NULL), QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_txn_sim_restart(s, 1, NULL), QK_ERR_INVALID_ARG);
    CHECK_OK(qk_txn_sim_crash(s, 0, NULL));
    uint8_t three[3] = {true, true, true};
    CHECK_ERR(qk_txn_sim_begin(s, 1, three, 3, NULL), QK_ERR_INVALID_ARG);
    CHECK(strstr(qk_last_error_message(), "down") != NULL);
    qk_txn_sim_free(s);
    qk_txn_sim_free(NULL);
}

/* The same fault in both protocols: the coordinator dies the moment the
 * last yes vote is cast (and, for Paxos Commit, one of three acceptors is
 * down). 2PC blocks; Paxos Commit commits. */
static void test_txn_blocking(void) {
    for (uint32_t proto = QK_TXN_PROTOCOL_2PC; proto <= QK_TXN_PROTOCOL_PAXOS_COMMIT; proto++) {
        qk_txn_sim *s = NULL;
        REQUIRE(qk_txn_sim_new(proto, 3, 1, 11, &s, NULL) == QK_OK);
        if (proto == QK_TXN_PROTOCOL_PAXOS_COMMIT) CHECK_OK(qk_txn_sim_crash(s, 4, NULL));
        CHECK_OK(qk_txn_sim_crash_coordinator_after_votes(s, true, NULL));
        uint8_t yes[3] = {true, true, true};
        CHECK_OK(qk_txn_sim_begin(s, 1, yes, 3, NULL));
        CHECK_OK(qk_txn_sim_run(s, 10000 * MS, NULL));
        for (uint32_t p = 1; p <= 3; p++) {
            uint32_t st = 0;
            CHECK_OK(qk_txn_sim_state(s, p, 1, &st, NULL));
            CHECK(st == (proto == QK_TXN_PROTOCOL_2PC ? QK_TXN_PREPARED : QK_TXN_COMMITTED));
        }
        uint8_t safe = false;
        CHECK_OK(qk_txn_sim_check(s, &safe, NULL));
        CHECK(safe);
        qk_txn_stats st;
        CHECK_OK(qk_txn_sim_stats(s, &st, NULL));
        CHECK(st.crashes == (proto == QK_TXN_PROTOCOL_2PC ? 1u : 2u));
        CHECK(st.committed == (proto == QK_TXN_PROTOCOL_2PC ? 0u : 1u));
        CHECK(st.sent > 0);
        qk_txn_sim_free(s);
    }
}

void test_txn(void) {
    test_txn_commit_by_bytes();
    test_txn_bad_input();
    test_txn_blocking();
}
