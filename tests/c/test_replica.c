/* qk_replica with a C state machine (a counter kept by callbacks) and
 * qk_net_client: three replicas in this process on free loopback ports,
 * data in a temp dir; the leader is stopped and restarted from its
 * directory, which replays its log into an empty state. */
#define _DEFAULT_SOURCE /* mkdtemp */
#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

#define SEC 1000000000ull
#define MS 1000000ull
#define SECRET "replica-c-test-secret"

struct counter {
    int64_t total;
    uint64_t applied;
    uint64_t last_time;
    int time_went_back;
};

static int32_t apply_counter(void *user, uint64_t time_ns, const uint8_t *cmd, size_t len, qk_reply *reply) {
    struct counter *c = user;
    char text[64] = {0}, out[32];
    if (len == 0 || len >= sizeof text) {
        qk_reply_set(reply, KEY("bad command length"), NULL);
        return 1;
    }
    memcpy(text, cmd, len);
    if (time_ns < c->last_time) c->time_went_back = 1;
    c->last_time = time_ns;
    c->applied++;
    long long n = 0;
    if (sscanf(text, "add %lld", &n) != 1) {
        qk_reply_set(reply, KEY("unknown command"), NULL);
        return 7;
    }
    c->total += n;
    snprintf(out, sizeof out, "%" PRId64, c->total);
    qk_reply_set(reply, KEY(out), NULL);
    return 0;
}

static int32_t query_counter(void *user, const uint8_t *q, size_t len, qk_reply *reply) {
    struct counter *c = user;
    if (len != 3 || memcmp(q, "get", 3) != 0) {
        qk_reply_set(reply, KEY("only get"), NULL);
        return 1;
    }
    char out[32];
    snprintf(out, sizeof out, "%" PRId64, c->total);
    qk_reply_set(reply, KEY(out), NULL);
    return 0;
}

static long long as_number(qk_bytes *b) {
    char text[32] = {0};
    if (b->len == 0 || b->len >= sizeof text) return -1;
    memcpy(text, b->data, b->len);
    qk_bytes_free(b);
    return atoll(text);
}

static qk_status start(int id, const char *peers, const char *dir, struct counter *c, int init, qk_replica **out) {
    char data[128];
    snprintf(data, sizeof data, "%s/r%d", dir, id);
    return qk_replica_start((uint32_t)id, peers, data, 5, KEY(SECRET), (uint8_t)init, 20 * MS, apply_counter,
                            query_counter, c, out, NULL);
}

/* Three free loopback ports, as `qk_replica_start()`'s peers ("1=host:port,...")
 * and as a client's addresses. */
static void three_replicas(int port[3], char peers[128], char addrs[128]) {
    for (int i = 0; i < 3; i++) port[i] = free_port();
    snprintf(peers, 128, "1=127.0.0.1:%d,2=127.0.0.1:%d,3=127.0.0.1:%d", port[0], port[1], port[2]);
    snprintf(addrs, 128, "127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d", port[0], port[1], port[2]);
}

/* Proposes "add n" and returns the new total (-1 on error). */
static long long add(qk_net_client *cl, long long n) {
    char cmd[32];
    snprintf(cmd, sizeof cmd, "add %lld", n);
    qk_bytes r = {0};
    if (qk_net_client_propose(cl, KEY(cmd), &r, NULL) != QK_OK) return -1;
    return as_number(&r);
}

/* The counter's snapshot: its total and applied count as text. */
struct snap_counter {
    struct counter c;
    int snapshots, restores;
};

static int32_t snapshot_counter(void *user, qk_reply *reply) {
    struct snap_counter *s = user;
    char out[64];
    snprintf(out, sizeof out, "%" PRId64 " %" PRIu64, s->c.total, s->c.applied);
    s->snapshots++;
    qk_reply_set(reply, KEY(out), NULL);
    return 0;
}

static int32_t restore_counter(void *user, const uint8_t *data, size_t len, qk_reply *reply) {
    struct snap_counter *s = user;
    char text[64] = {0};
    long long total = 0;
    unsigned long long applied = 0;
    if (len >= sizeof text) {
        qk_reply_set(reply, KEY("snapshot too long"), NULL);
        return 1;
    }
    memcpy(text, data, len);
    if (sscanf(text, "%lld %llu", &total, &applied) != 2) {
        qk_reply_set(reply, KEY("not a counter snapshot"), NULL);
        return 1;
    }
    s->c.total = total;
    s->c.applied = applied;
    s->restores++;
    return 0;
}

static qk_status start_compacting(int id, const char *peers, const char *dir, struct snap_counter *s, int init,
                                  qk_replica **out) {
    char data[128];
    snprintf(data, sizeof data, "%s/r%d", dir, id);
    return qk_replica_start_compacting((uint32_t)id, peers, data, 6, KEY(SECRET), (uint8_t)init, 20 * MS,
                                       apply_counter, query_counter, snapshot_counter, restore_counter, 5, s,
                                       out, NULL);
}

/* Replicas that compact every 5 slots; one stops, the others compact past
 * it, and it comes back by restoring a peer's snapshot. */
static void test_replica_compaction(void) {
    char dir[] = "/tmp/qk-replica-compact-c-XXXXXX";
    REQUIRE(mkdtemp(dir));
    int port[3];
    char peers[128], addrs[128];
    three_replicas(port, peers, addrs);
    struct snap_counter st[3];
    memset(st, 0, sizeof st);
    qk_replica *r[3] = {NULL, NULL, NULL}, *none = NULL;
    /* NULL callbacks are refused. */
    char data[128];
    snprintf(data, sizeof data, "%s/x", dir);
    CHECK_ERR(qk_replica_start_compacting(1, peers, data, 6, KEY(SECRET), 1, 0, apply_counter, NULL, NULL,
                                          restore_counter, 5, &st[0], &none, NULL),
              QK_ERR_NULL_ARG);
    CHECK_ERR(qk_replica_start_compacting(1, peers, data, 6, KEY(SECRET), 1, 0, apply_counter, NULL,
                                          snapshot_counter, NULL, 5, &st[0], &none, NULL),
              QK_ERR_NULL_ARG);
    CHECK(none == NULL);
    for (int i = 0; i < 3; i++) CHECK_OK(start_compacting(i + 1, peers, dir, &st[i], 1, &r[i]));
    qk_net_client *cl = NULL;
    CHECK_OK(qk_net_client_new(addrs, 6, KEY(SECRET), 10 * SEC, &cl, NULL));
    long long total = 0;
    for (int k = 1; k <= 10; k++) {
        total += k;
        CHECK(add(cl, k) == total);
    }
    /* Stop a replica that does not lead. */
    int gone = -1;
    for (int i = 0; i < 3 && gone < 0; i++) {
        qk_replica_info info = {0};
        CHECK_OK(qk_replica_status(r[i], &info, NULL));
        if (info.leader != info.id) gone = i;
    }
    REQUIRE(gone >= 0);
    qk_replica_free(r[gone]);
    r[gone] = NULL;
    for (int k = 11; k <= 40; k++) {
        total += k;
        CHECK(add(cl, k) == total);
    }
    for (int i = 0; i < 3; i++)
        if (i != gone) CHECK(st[i].snapshots > 0);
    memset(&st[gone], 0, sizeof st[gone]);
    CHECK_OK(start_compacting(gone + 1, peers, dir, &st[gone], 0, &r[gone]));
    for (int w = 0; w < 500 && st[gone].c.total != total; w++) nap_ms(10);
    CHECK(st[gone].c.total == total);
    CHECK(st[gone].restores >= 1);
    qk_net_client_free(cl);
    for (int i = 0; i < 3; i++) qk_replica_free(r[i]);
    char cmd[96];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

/* Index of the replica that leads (-1 if none within 10 s). */
static int leader_of(qk_replica **r, int n) {
    for (int w = 0; w < 1000; w++) {
        for (int i = 0; i < n; i++) {
            qk_replica_info info = {0};
            if (r[i] && qk_replica_status(r[i], &info, NULL) == QK_OK && info.leader == info.id) return i;
        }
        nap_ms(10);
    }
    return -1;
}

/* Whether replica `r`'s membership has `voters` voters and `ids` ids. */
static int membership_is(qk_replica *r, size_t voters, size_t ids, uint64_t *epoch) {
    uint32_t got[8];
    uint64_t start = 0;
    size_t v = 0, len = 0;
    if (qk_replica_membership(r, epoch, &start, got, 8, &v, &len, NULL) != QK_OK) return 0;
    return v == voters && len == ids;
}

/* Three running replicas take a fourth: it joins, is added as a learner,
 * promoted; then the leadership is handed to it. */
static void test_replica_membership(void) {
    char dir[] = "/tmp/qk-replica-members-c-XXXXXX";
    REQUIRE(mkdtemp(dir));
    int port[4];
    for (int i = 0; i < 4; i++) port[i] = free_port();
    char peers[128], peers4[160], addr4[32], addrs[160];
    snprintf(peers, sizeof peers, "1=127.0.0.1:%d,2=127.0.0.1:%d,3=127.0.0.1:%d", port[0], port[1], port[2]);
    snprintf(peers4, sizeof peers4, "%s,4=127.0.0.1:%d", peers, port[3]);
    snprintf(addr4, sizeof addr4, "127.0.0.1:%d", port[3]);
    snprintf(addrs, sizeof addrs, "127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d", port[0], port[1], port[2],
             port[3]);
    struct counter st[4];
    memset(st, 0, sizeof st);
    qk_replica *r[4] = {NULL, NULL, NULL, NULL}, *none = NULL;
    for (int i = 0; i < 3; i++) CHECK_OK(start(i + 1, peers, dir, &st[i], QK_REPLICA_INIT, &r[i]));
    /* An init value with other bits is refused. */
    CHECK_ERR(start(4, peers4, dir, &st[3], 4, &none), QK_ERR_INVALID_ARG);
    CHECK_OK(start(4, peers4, dir, &st[3], QK_REPLICA_INIT | QK_REPLICA_JOIN, &r[3]));
    REQUIRE(r[0] && r[1] && r[2] && r[3]);
    uint64_t epoch = 9;
    CHECK(membership_is(r[3], 3, 3, &epoch) && epoch == 0); /* not a member yet */
    qk_net_client *cl = NULL;
    CHECK_OK(qk_net_client_new(addrs, 5, KEY(SECRET), 10 * SEC, &cl, NULL));
    REQUIRE(cl != NULL);
    long long total = 0;
    total += 3;
    CHECK(add(cl, 3) == total);

    int l = leader_of(r, 3);
    REQUIRE(l >= 0);
    qk_error e = {0};
    /* No address yet: refused. */
    CHECK(qk_replica_change_membership(r[l], QK_PAXOS_ADD_LEARNER, 4, 0, &e) == QK_ERR_INVALID_ARG);
    CHECK(strstr(e.message, "add_peer") != NULL);
    for (int i = 0; i < 3; i++) {
        CHECK_OK(qk_replica_add_peer(r[i], 4, addr4, NULL));
        CHECK_OK(qk_replica_add_peer(r[i], 4, addr4, NULL)); /* again: nothing changes */
    }
    CHECK_ERR(qk_replica_add_peer(r[0], 4, "127.0.0.1:1", NULL), QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_replica_add_peer(r[0], 0, addr4, NULL), QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_replica_add_peer(r[0], 5, "nowhere", NULL), QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_replica_add_peer(r[0], 5, NULL, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_replica_add_peer(NULL, 5, addr4, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_replica_change_membership(r[l], 77, 4, 0, NULL), QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_replica_change_membership(r[(l + 1) % 3], QK_PAXOS_ADD_LEARNER, 4, 0, NULL), QK_ERR_NOT_LEADER);
    CHECK_ERR(qk_replica_change_membership(NULL, QK_PAXOS_ADD_LEARNER, 4, 0, NULL), QK_ERR_NULL_ARG);

    CHECK_OK(qk_replica_change_membership(r[l], QK_PAXOS_ADD_LEARNER, 4, 0, NULL));
    int ok = 0;
    for (int w = 0; w < 1000 && !ok; w++, nap_ms(10)) ok = membership_is(r[3], 3, 4, &epoch);
    CHECK(ok && epoch == 1);
    total += 4;
    CHECK(add(cl, 4) == total);
    for (int w = 0; w < 1000 && st[3].total != total; w++) nap_ms(10);
    CHECK(st[3].total == total); /* the learner applied every command */
    /* Promote it (retried: a promotion needs the learner heard lately). */
    ok = 0;
    for (int w = 0; w < 1000 && !ok; w++) {
        ok = qk_replica_change_membership(r[l], QK_PAXOS_PROMOTE, 4, 0, NULL) == QK_OK;
        if (!ok) nap_ms(10);
    }
    CHECK(ok);
    ok = 0;
    for (int w = 0; w < 1000 && !ok; w++, nap_ms(10))
        ok = membership_is(r[0], 4, 4, &epoch) && membership_is(r[3], 4, 4, &epoch);
    CHECK(ok && epoch == 2);
    /* The size query, and a buffer that is too small. */
    uint64_t start_slot = 0;
    size_t voters = 0, len = 0;
    uint32_t one[1];
    CHECK_ERR(qk_replica_membership(r[3], &epoch, &start_slot, NULL, 0, &voters, &len, NULL),
              QK_ERR_BUFFER_TOO_SMALL);
    CHECK(len == 4 && voters == 4);
    CHECK_ERR(qk_replica_membership(r[3], &epoch, &start_slot, one, 1, &voters, &len, NULL),
              QK_ERR_BUFFER_TOO_SMALL);
    CHECK_ERR(qk_replica_membership(r[3], NULL, &start_slot, one, 1, &voters, &len, NULL), QK_ERR_NULL_ARG);

    /* Hand the leadership to the new voter. */
    l = leader_of(r, 4);
    REQUIRE(l >= 0);
    if (l != 3) {
        CHECK_ERR(qk_replica_transfer_leadership(r[3], 1, NULL), QK_ERR_NOT_LEADER);
        CHECK_OK(qk_replica_transfer_leadership(r[l], 4, NULL));
        /* A transfer whose target is not caught up within an election
         * timeout is dropped (likely under valgrind): ask again, as an
         * operator would. */
        ok = 0;
        for (int w = 1; w <= 1000 && !ok; w++, nap_ms(10)) {
            qk_replica_info info = {0};
            ok = qk_replica_status(r[3], &info, NULL) == QK_OK && info.leader == 4;
            if (!ok && w % 100 == 0) {
                int now = leader_of(r, 4);
                if (now >= 0 && now != 3) qk_replica_transfer_leadership(r[now], 4, NULL);
            }
        }
        CHECK(ok);
    }
    CHECK_ERR(qk_replica_transfer_leadership(r[3], 4, NULL), QK_ERR_INVALID_ARG); /* itself */
    total += 5;
    CHECK(add(cl, 5) == total);

    qk_net_client_free(cl);
    for (int i = 0; i < 4; i++) qk_replica_free(r[i]);
    char cmd[96];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

/* The read policy changes what a leader does, not just a flag: with its
 * followers gone, a leader still holding its lease answers a lease read by
 * itself, and refuses a ReadIndex read (which needs a majority). 200 ms
 * heartbeats give 2 s leases, room for the steps (valgrind included). */
static void test_replica_read_policy(void) {
    char dir[] = "/tmp/qk-replica-rp-XXXXXX";
    REQUIRE(mkdtemp(dir));
    int port[3];
    char peers[128], addrs[128];
    three_replicas(port, peers, addrs);
    struct counter st[3] = {{0}, {0}, {0}};
    qk_replica *r[3] = {NULL, NULL, NULL};
    for (int i = 0; i < 3; i++) {
        char data[128];
        snprintf(data, sizeof data, "%s/r%d", dir, i + 1);
        CHECK_OK(qk_replica_start((uint32_t)i + 1, peers, data, 5, KEY(SECRET), QK_REPLICA_INIT, 200 * MS,
                                  apply_counter, query_counter, &st[i], &r[i], NULL));
    }
    REQUIRE(r[0] && r[1] && r[2]);
    qk_net_client *cl = NULL;
    CHECK_OK(qk_net_client_new(addrs, 5, KEY(SECRET), 20 * SEC, &cl, NULL));
    REQUIRE(cl != NULL);
    CHECK(add(cl, 7) == 7);
    int leader = -1;
    for (int w = 0; w < 500 && leader < 0; w++) {
        for (int i = 0; i < 3; i++) {
            qk_replica_info info = {0};
            CHECK_OK(qk_replica_status(r[i], &info, NULL));
            if (info.read_lease) leader = i;
        }
        if (leader < 0) nap_ms(10);
    }
    REQUIRE(leader >= 0);
    /* The leader heard from both followers just now: its lease is fresh. */
    CHECK(add(cl, 1) == 8);
    for (int i = 0; i < 3; i++)
        if (i != leader) {
            qk_replica_free(r[i]);
            r[i] = NULL;
        }
    char one[64];
    snprintf(one, sizeof one, "127.0.0.1:%d", port[leader]);
    qk_net_client *alone = NULL;
    CHECK_OK(qk_net_client_new(one, 5, KEY(SECRET), 400 * MS, &alone, NULL));
    REQUIRE(alone != NULL);
    qk_bytes res = {0};
    qk_replica_info info = {0};
    CHECK_OK(qk_replica_status(r[leader], &info, NULL));
    if (info.read_lease) {
        /* Lease: answered alone, from the leader's state. */
        CHECK_OK(qk_net_client_read(alone, KEY("get"), &res, NULL));
        CHECK(as_number(&res) == 8);
        /* ReadIndex: the same read now needs a majority, which is gone. */
        CHECK_OK(qk_replica_set_read_policy(r[leader], QK_REPLICA_READ_INDEX, NULL));
        CHECK(qk_net_client_read(alone, KEY("get"), &res, NULL) != QK_OK);
        CHECK(res.data == NULL);
    } else {
        fprintf(stderr, "note: the leader's lease ran out before the read-policy check (a slow machine)\n");
    }
    qk_net_client_free(alone);
    qk_net_client_free(cl);
    for (int i = 0; i < 3; i++) qk_replica_free(r[i]);
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

void test_replica(void) {
    test_replica_compaction();
    test_replica_membership();
    test_replica_read_policy();
    char dir[] = "/tmp/qk-replica-c-XXXXXX";
    REQUIRE(mkdtemp(dir));
    int port[3];
    char peers[128], addrs[128];
    three_replicas(port, peers, addrs);

    /* Bad input is refused with a status and nothing starts. */
    struct counter scratch = {0};
    qk_replica *none = NULL;
    CHECK_ERR(qk_replica_start(1, NULL, dir, 5, KEY(SECRET), 1, 0, apply_counter, NULL, &scratch, &none, NULL),
              QK_ERR_NULL_ARG);
    CHECK_ERR(qk_replica_start(1, peers, dir, 5, KEY(SECRET), 1, 0, NULL, NULL, &scratch, &none, NULL),
              QK_ERR_NULL_ARG);
    CHECK_ERR(qk_replica_start(4, peers, dir, 5, KEY(SECRET), 1, 0, apply_counter, NULL, &scratch, &none, NULL),
              QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_replica_start(1, "1=nowhere", dir, 5, KEY(SECRET), 1, 0, apply_counter, NULL, &scratch, &none,
                               NULL),
              QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_replica_start(1, "0=127.0.0.1:1", dir, 5, KEY(SECRET), 1, 0, apply_counter, NULL, &scratch,
                               &none, NULL),
              QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_replica_start(1, peers, dir, 5, KEY("short"), 1, 0, apply_counter, NULL, &scratch, &none, NULL),
              QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_replica_start(1, peers, dir, 5, KEY(SECRET), 4, 0, apply_counter, NULL, &scratch, &none, NULL),
              QK_ERR_INVALID_ARG);
    /* A replica without its log and without init must not rejoin. */
    CHECK(start(1, peers, dir, &scratch, 0, &none) != QK_OK);
    CHECK(none == NULL);

    struct counter state[3] = {{0}, {0}, {0}};
    qk_replica *r[3] = {NULL, NULL, NULL};
    for (int i = 0; i < 3; i++) CHECK_OK(start(i + 1, peers, dir, &state[i], 1, &r[i]));
    REQUIRE(r[0] && r[1] && r[2]);
    /* A second replica on the same directory is refused. */
    struct counter other = {0};
    CHECK(start(1, peers, dir, &other, 0, &none) != QK_OK);

    qk_net_client *cl = NULL;
    CHECK_OK(qk_net_client_new(addrs, 5, KEY(SECRET), 10 * SEC, &cl, NULL));
    REQUIRE(cl != NULL);
    long long total = 0;
    for (int i = 1; i <= 20; i++) {
        long long got = add(cl, i);
        total += i;
        CHECK(got == total);
    }
    /* A refusal comes back as an error with the callback's message. */
    qk_bytes res = {0};
    qk_error e = {0};
    CHECK(qk_net_client_propose(cl, KEY("multiply 3"), &res, &e) == QK_ERR_INVALID_ARG);
    CHECK(strstr(e.message, "unknown command") != NULL);
    CHECK(res.data == NULL && res.len == 0);
    /* Reads go to the leader's state. */
    CHECK_OK(qk_net_client_read(cl, KEY("get"), &res, NULL));
    CHECK(as_number(&res) == total);
    CHECK_ERR(qk_net_client_read(cl, KEY("size"), &res, NULL), QK_ERR_INVALID_ARG);
    /* ReadIndex reads, switched on while running: each read still sees
     * every write before it. */
    for (int i = 0; i < 3; i++) CHECK_OK(qk_replica_set_read_policy(r[i], QK_REPLICA_READ_INDEX, NULL));
    for (int i = 0; i < 5; i++) {
        total += 1;
        CHECK(add(cl, 1) == total);
        CHECK_OK(qk_net_client_read(cl, KEY("get"), &res, NULL));
        CHECK(as_number(&res) == total);
    }
    qk_error pe = {0};
    CHECK(qk_replica_set_read_policy(r[0], 2, &pe) == QK_ERR_INVALID_ARG);
    CHECK(strstr(pe.message, "QK_REPLICA_READ_INDEX") != NULL);
    CHECK_ERR(qk_replica_set_read_policy(NULL, QK_REPLICA_READ_LEASE, NULL), QK_ERR_NULL_ARG);
    for (int i = 0; i < 3; i++) CHECK_OK(qk_replica_set_read_policy(r[i], QK_REPLICA_READ_LEASE, NULL));
    CHECK_OK(qk_net_client_read(cl, KEY("get"), &res, NULL));
    CHECK(as_number(&res) == total);
    CHECK_ERR(qk_net_client_propose(cl, NULL, 4, &res, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_net_client_propose(cl, KEY("add 1"), NULL, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_net_client_new("", 5, KEY(SECRET), 0, &cl, NULL), QK_ERR_INVALID_ARG);
    qk_bytes_free(NULL);

    /* Every replica applies the same commands (the refused one too). */
    for (int w = 0; w < 200; w++) {
        int same = 1;
        for (int i = 0; i < 3; i++) {
            qk_replica_info st;
            CHECK_OK(qk_replica_status(r[i], &st, NULL));
            same &= st.applied == 26;
        }
        if (same) break;
        nap_ms(10);
    }
    int leader = 0;
    for (int i = 0; i < 3; i++) {
        qk_replica_info st = {0};
        CHECK_OK(qk_replica_status(r[i], &st, NULL));
        CHECK(st.id == (uint32_t)i + 1 && st.applied == 26);
        CHECK(state[i].total == total && !state[i].time_went_back);
        if (st.read_lease) leader = i;
    }
    CHECK_ERR(qk_replica_status(r[0], NULL, NULL), QK_ERR_NULL_ARG);

    /* Stop the leader: the others go on; restart it from its directory,
     * and it rebuilds its state from the log. */
    qk_replica_free(r[leader]);
    r[leader] = NULL;
    long long got = add(cl, 100);
    total += 100;
    CHECK(got == total);
    state[leader].total = 0;
    state[leader].applied = 0;
    state[leader].last_time = 0;
    CHECK_OK(start(leader + 1, peers, dir, &state[leader], 0, &r[leader]));
    got = add(cl, 1);
    total += 1;
    CHECK(got == total);
    for (int w = 0; w < 300 && state[leader].total != total; w++) nap_ms(10);
    CHECK(state[leader].total == total);

    qk_net_client_free(cl);
    for (int i = 0; i < 3; i++) qk_replica_free(r[i]);
    qk_replica_free(NULL);
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}
