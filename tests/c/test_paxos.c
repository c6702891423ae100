/* Multi-Paxos through the C API: three replicas in one process, driven the
 * way a C event loop over sockets would drive them: a little network (a
 * queue of copied (from, to, bytes) messages), a fake clock moved to the
 * earliest qk_paxos_node_next_deadline(), and qk_paxos_node_poll() drained
 * after every call. Elects a leader, decides commands proposed at the
 * leader and at a follower in the same order everywhere, crashes and
 * restarts a replica on file storage, and walks every error path. */
#include <stdbool.h>
#include <stdint.h>
#include <unistd.h>

#include "check.h"

#define NODES 3
#define MAX_LOG 64
#define CMD_MAX 16
#define MS 1000000ull

static const uint32_t MEMBERS[NODES] = {1, 2, 3};

typedef struct {
    uint32_t from, to;
    uint8_t *bytes;
    size_t len;
} packet;

typedef struct {
    qk_paxos_node *node[NODES];
    uint64_t now;
    /* The network: packets in flight, in send order. */
    packet *queue;
    size_t queue_len, queue_cap;
    /* What each replica delivered since it (re)started, in order. */
    char log[NODES][MAX_LOG][CMD_MAX];
    size_t log_len[NODES];
    uint64_t next_slot[NODES];
    uint64_t persisted[NODES];
    int leader_changes[NODES];
    int order_errors;
    char path[128];
} cluster;

static int index_of(uint32_t id) {
    for (int i = 0; i < NODES; i++)
        if (MEMBERS[i] == id) return i;
    return -1;
}

static void enqueue(cluster *c, uint32_t from, uint32_t to, const uint8_t *bytes, size_t len) {
    if (c->queue_len == c->queue_cap) {
        c->queue_cap = c->queue_cap ? 2 * c->queue_cap : 64;
        c->queue = realloc(c->queue, c->queue_cap * sizeof(packet));
        REQUIRE(c->queue != NULL);
    }
    /* The bytes are borrowed until the next call on the node: copy them. */
    uint8_t *copy = malloc(len ? len : 1);
    REQUIRE(copy != NULL);
    memcpy(copy, bytes, len);
    c->queue[c->queue_len++] = (packet){from, to, copy, len};
}

/* Acts on every output of replica i. */
static void drain(cluster *c, int i) {
    qk_paxos_output o;
    uint8_t has = true;
    while (has) {
        REQUIRE(qk_paxos_node_poll(c->node[i], &o, &has, NULL) == QK_OK);
        if (!has) break;
        switch (o.kind) {
        case QK_PAXOS_OUTPUT_SEND:
            CHECK(o.data != NULL && o.data_len > 0);
            CHECK(index_of(o.to) >= 0 && o.to != MEMBERS[i]);
            enqueue(c, MEMBERS[i], o.to, o.data, o.data_len);
            break;
        case QK_PAXOS_OUTPUT_DECIDED:
            /* Slots in order, no gaps; a slot's commands by index. */
            if (o.slot != c->next_slot[i] || (o.count > 0 && o.index >= o.count))
                c->order_errors++;
            if (o.count == 0) {
                if (o.data_len != 0) c->order_errors++;
                c->next_slot[i]++;
                break;
            }
            REQUIRE(c->log_len[i] < MAX_LOG && o.data_len < CMD_MAX);
            memcpy(c->log[i][c->log_len[i]], o.data, o.data_len);
            c->log[i][c->log_len[i]][o.data_len] = '\0';
            c->log_len[i]++;
            if (o.index + 1 == o.count) c->next_slot[i]++;
            break;
        case QK_PAXOS_OUTPUT_PERSISTED:
            CHECK(o.count > 0);
            c->persisted[i] += o.count;
            break;
        case QK_PAXOS_OUTPUT_LEADER_CHANGED:
            CHECK(!o.has_leader || index_of(o.leader) >= 0);
            c->leader_changes[i]++;
            break;
        default:
            CHECK(!"unknown output kind");
        }
    }
}

/* Delivers every packet in flight (and what they cause) to running replicas. */
static void deliver_all(cluster *c) {
    size_t head = 0;
    while (head < c->queue_len) {
        packet p = c->queue[head++];
        int to = index_of(p.to);
        if (to >= 0 && c->node[to] != NULL) {
            CHECK_OK(qk_paxos_node_step(c->node[to], p.from, p.bytes, p.len, c->now, NULL));
            drain(c, to);
        }
        free(p.bytes);
    }
    c->queue_len = 0;
}

/* Moves the clock to the earliest deadline and ticks the replicas due. */
static void advance(cluster *c) {
    uint64_t next = UINT64_MAX;
    for (int i = 0; i < NODES; i++) {
        if (c->node[i] == NULL) continue;
        uint64_t d = SENTINEL_U64;
        CHECK_OK(qk_paxos_node_next_deadline(c->node[i], &d, NULL));
        if (d < next) next = d;
    }
    REQUIRE(next != UINT64_MAX);
    if (next > c->now) c->now = next;
    for (int i = 0; i < NODES; i++) {
        if (c->node[i] == NULL) continue;
        uint64_t d = 0;
        CHECK_OK(qk_paxos_node_next_deadline(c->node[i], &d, NULL));
        if (d <= c->now) {
            CHECK_OK(qk_paxos_node_tick(c->node[i], c->now, NULL));
            drain(c, i);
        }
    }
}

typedef bool (*predicate)(cluster *c, const void *arg);

/* Runs until `done` holds; false if it does not within 60 s of fake time. */
static bool run_until(cluster *c, predicate done, const void *arg) {
    uint64_t limit = c->now + 60000 * MS;
    for (int steps = 0; steps < 100000 && c->now <= limit; steps++) {
        deliver_all(c);
        if (done(c, arg)) return true;
        advance(c);
    }
    return false;
}

static bool is_leader(cluster *c, int i) {
    uint8_t l = false;
    if (c->node[i] == NULL) return false;
    CHECK_OK(qk_paxos_node_is_leader(c->node[i], &l, NULL));
    return l;
}

/* The index of the leader every running replica follows, or -1. */
static int agreed_leader(cluster *c) {
    int leader = -1;
    for (int i = 0; i < NODES; i++)
        if (is_leader(c, i)) leader = i;
    if (leader < 0) return -1;
    for (int i = 0; i < NODES; i++) {
        if (c->node[i] == NULL) continue;
        uint32_t l = SENTINEL_U32;
        uint8_t has = false;
        CHECK_OK(qk_paxos_node_leader(c->node[i], &l, &has, NULL));
        if (!has || l != MEMBERS[leader]) return -1;
    }
    return leader;
}

static bool leader_known(cluster *c, const void *arg) {
    (void)arg;
    return agreed_leader(c) >= 0;
}

/* Every replica follows replica *(int *)arg, which leads. */
static bool leader_is(cluster *c, const void *arg) {
    return agreed_leader(c) == *(const int *)arg;
}

/* Every running replica delivered at least *(size_t *)arg commands. */
static bool all_delivered(cluster *c, const void *arg) {
    size_t want = *(const size_t *)arg;
    for (int i = 0; i < NODES; i++)
        if (c->node[i] != NULL && c->log_len[i] < want) return false;
    return true;
}

static bool leader_has_lease(cluster *c, const void *arg) {
    (void)arg;
    int l = agreed_leader(c);
    uint8_t lease = false;
    if (l < 0) return false;
    CHECK_OK(qk_paxos_node_has_read_lease(c->node[l], c->now, &lease, NULL));
    return lease;
}

static void config_for(int i, qk_paxos_config *cfg) {
    REQUIRE(qk_paxos_config_init(MEMBERS[i], MEMBERS, NODES, cfg, NULL) == QK_OK);
    cfg->seed = 1000 + (uint64_t)i;
    cfg->max_batch = 4;
}

/* Replica i starts (or restarts): memory storage, or the file for the last. */
static void start(cluster *c, int i) {
    qk_paxos_config cfg;
    config_for(i, &cfg);
    c->log_len[i] = 0;
    c->next_slot[i] = 0;
    if (i == NODES - 1)
        CHECK_OK(qk_paxos_node_new_file(&cfg, c->path, c->now, &c->node[i], NULL));
    else
        CHECK_OK(qk_paxos_node_new_memory(&cfg, c->now, &c->node[i], NULL));
    REQUIRE(c->node[i] != NULL);
    drain(c, i);
}

static void crash(cluster *c, int i) {
    qk_paxos_node_free(c->node[i]);
    c->node[i] = NULL;
}

static size_t count_of(cluster *c, int i, const char *cmd) {
    size_t n = 0;
    for (size_t k = 0; k < c->log_len[i]; k++) n += strcmp(c->log[i][k], cmd) == 0;
    return n;
}

static size_t position_of(cluster *c, int i, const char *cmd) {
    for (size_t k = 0; k < c->log_len[i]; k++)
        if (strcmp(c->log[i][k], cmd) == 0) return k;
    return SIZE_MAX;
}

static bool same_log(cluster *c, int a, int b) {
    if (c->log_len[a] != c->log_len[b]) return false;
    for (size_t k = 0; k < c->log_len[a]; k++)
        if (strcmp(c->log[a][k], c->log[b][k]) != 0) return false;
    return true;
}

static void propose(cluster *c, int i, const char *cmd) {
    CHECK_OK(qk_paxos_node_propose(c->node[i], KEY(cmd), c->now, NULL));
    drain(c, i);
}

static void test_paxos_cluster(void) {
    static cluster c;
    memset(&c, 0, sizeof c);
    snprintf(c.path, sizeof c.path, "/tmp/qk_test_paxos_%ld.log", (long)getpid());
    unlink(c.path);
    for (int i = 0; i < NODES; i++) start(&c, i);

    /* A leader is elected and every replica follows it. */
    REQUIRE(run_until(&c, leader_known, NULL));
    int leader = agreed_leader(&c);
    int follower = (leader + 1) % NODES;
    for (int i = 0; i < NODES; i++) {
        CHECK(is_leader(&c, i) == (i == leader));
        CHECK(c.leader_changes[i] >= 1);
    }
    /* The persisted promise reached storage before the votes went out. */
    CHECK(c.persisted[leader] > 0);

    /* Commands proposed at the leader and at a follower: every replica
     * delivers all of them once, in one order, the leader's in its order. */
    char cmd[CMD_MAX];
    for (int k = 0; k < 5; k++) {
        snprintf(cmd, sizeof cmd, "a%d", k);
        propose(&c, leader, cmd);
        snprintf(cmd, sizeof cmd, "b%d", k);
        propose(&c, follower, cmd);
    }
    size_t want = 10;
    REQUIRE(run_until(&c, all_delivered, &want));
    deliver_all(&c);
    CHECK(c.log_len[0] == 10);
    CHECK(same_log(&c, 0, 1) && same_log(&c, 0, 2));
    for (int k = 0; k < 5; k++) {
        snprintf(cmd, sizeof cmd, "a%d", k);
        CHECK(count_of(&c, 0, cmd) == 1);
        if (k > 0) {
            char prev[CMD_MAX];
            snprintf(prev, sizeof prev, "a%d", k - 1);
            CHECK(position_of(&c, 0, prev) < position_of(&c, 0, cmd));
        }
        snprintf(cmd, sizeof cmd, "b%d", k);
        CHECK(count_of(&c, 0, cmd) == 1);
    }
    /* max_batch 4 and 5 commands at the leader: at least 3 slots. */
    for (int i = 0; i < NODES; i++) {
        uint64_t ci = SENTINEL_U64;
        CHECK_OK(qk_paxos_node_commit_index(c.node[i], &ci, NULL));
        CHECK(ci == c.next_slot[i] && ci >= 3);
    }
    /* propose_all: four commands in one call take one slot (max_batch 4),
     * delivered in order everywhere; a bad array proposes nothing. */
    deliver_all(&c);
    uint64_t slots_before = c.next_slot[leader];
    const uint8_t *bad[2] = {(const uint8_t *)"x", NULL};
    const size_t bad_lens[2] = {1, 1};
    CHECK_ERR(qk_paxos_node_propose_all(c.node[leader], bad, bad_lens, 2, c.now, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_paxos_node_propose_all(c.node[leader], NULL, bad_lens, 2, c.now, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_paxos_node_propose_all(NULL, bad, bad_lens, 1, c.now, NULL), QK_ERR_NULL_ARG);
    CHECK_OK(qk_paxos_node_propose_all(c.node[leader], NULL, NULL, 0, c.now, NULL));
    const uint8_t *many[4] = {(const uint8_t *)"p0", (const uint8_t *)"p1", (const uint8_t *)"p2",
                              (const uint8_t *)"p3"};
    const size_t many_lens[4] = {2, 2, 2, 2};
    CHECK_OK(qk_paxos_node_propose_all(c.node[leader], many, many_lens, 4, c.now, NULL));
    drain(&c, leader);
    want = 14;
    REQUIRE(run_until(&c, all_delivered, &want));
    deliver_all(&c);
    CHECK(c.next_slot[leader] == slots_before + 1);
    CHECK(count_of(&c, 0, "x") == 0);
    for (int i = 0; i < NODES; i++) {
        CHECK(c.log_len[i] == 14);
        CHECK(strcmp(c.log[i][10], "p0") == 0 && strcmp(c.log[i][13], "p3") == 0);
    }

    /* Followers never hold the read lease; the leader gets it. */
    REQUIRE(run_until(&c, leader_has_lease, NULL));
    leader = agreed_leader(&c);
    for (int i = 0; i < NODES; i++) {
        uint8_t lease = true;
        CHECK_OK(qk_paxos_node_has_read_lease(c.node[i], c.now, &lease, NULL));
        CHECK(lease == (i == leader));
    }

    /* Crash the replica on file storage (a follower or the leader), decide
     * more without it, restart it from its file: it delivers the whole log
     * again, in the same order, and catches up. */
    int f = NODES - 1;
    crash(&c, f);
    char before[MAX_LOG][CMD_MAX];
    memcpy(before, c.log[f], sizeof before);
    size_t before_len = c.log_len[f];
    REQUIRE(run_until(&c, leader_known, NULL));
    leader = agreed_leader(&c);
    for (int k = 0; k < 3; k++) {
        snprintf(cmd, sizeof cmd, "c%d", k);
        propose(&c, leader, cmd);
    }
    want = 17;
    REQUIRE(run_until(&c, all_delivered, &want));
    start(&c, f);
    REQUIRE(run_until(&c, all_delivered, &want));
    deliver_all(&c);
    int other = (f + 1) % NODES;
    CHECK(c.log_len[f] == 17);
    CHECK(same_log(&c, f, other));
    for (size_t k = 0; k < before_len; k++) CHECK(strcmp(before[k], c.log[f][k]) == 0);
    CHECK(c.order_errors == 0);

    /* Leadership transfer: refused where it cannot work, then the target
     * leads and a command proposed meanwhile is not lost. */
    REQUIRE(run_until(&c, leader_known, NULL));
    leader = agreed_leader(&c);
    int target = (leader + 1) % NODES;
    uint64_t at = c.now;
    CHECK_ERR(qk_paxos_node_transfer_leadership(NULL, MEMBERS[target], at, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_paxos_node_transfer_leadership(c.node[target], MEMBERS[leader], at, NULL),
              QK_ERR_NOT_LEADER);
    CHECK_ERR(qk_paxos_node_transfer_leadership(c.node[leader], MEMBERS[leader], at, NULL),
              QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_paxos_node_transfer_leadership(c.node[leader], 99, at, NULL), QK_ERR_INVALID_ARG);
    CHECK(strstr(qk_last_error_message(), "not a voter") != NULL);
    CHECK_OK(qk_paxos_node_transfer_leadership(c.node[leader], MEMBERS[target], at, NULL));
    drain(&c, leader);
    propose(&c, leader, "moved");
    REQUIRE(run_until(&c, leader_is, &target));
    CHECK(c.now - at < 200 * MS); /* not an election timeout and more */
    want = 18;
    REQUIRE(run_until(&c, all_delivered, &want));
    deliver_all(&c);
    CHECK(count_of(&c, target, "moved") == 1);

    for (int i = 0; i < NODES; i++) crash(&c, i);
    for (size_t k = 0; k < c.queue_len; k++) free(c.queue[k].bytes);
    free(c.queue);
    unlink(c.path);
}

static void test_paxos_errors(void) {
    CHECK(QK_PAXOS_OUTPUT_SEND == 0 && QK_PAXOS_OUTPUT_DECIDED == 1 &&
          QK_PAXOS_OUTPUT_PERSISTED == 2 && QK_PAXOS_OUTPUT_LEADER_CHANGED == 3 &&
          QK_PAXOS_OUTPUT_SNAPSHOT == 4 && QK_PAXOS_OUTPUT_READ_INDEX == 5 &&
          QK_PAXOS_OUTPUT_MEMBERSHIP == 6);
    qk_paxos_config cfg;
    CHECK_ERR(qk_paxos_config_init(1, MEMBERS, NODES, NULL, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_paxos_config_init(1, NULL, NODES, &cfg, NULL), QK_ERR_NULL_ARG);
    CHECK_OK(qk_paxos_config_init(1, MEMBERS, NODES, &cfg, NULL));
    CHECK(cfg.id == 1 && cfg.members_len == NODES && cfg.cluster_id == 0);
    CHECK(memcmp(cfg.members, MEMBERS, sizeof MEMBERS) == 0);
    CHECK(cfg.heartbeat_interval_ns == 50 * MS && cfg.election_timeout_ns == 500 * MS);
    CHECK(cfg.lease_duration_ns == 1000 * MS && cfg.max_clock_drift_ns == 50 * MS);
    CHECK(cfg.max_batch == 64 && cfg.max_inflight == 64 && cfg.seed == 0);

    /* Creation: NULL arguments, bad configs; the out-parameter is kept. */
    qk_paxos_node *n = (qk_paxos_node *)0x1;
    CHECK_ERR(qk_paxos_node_new_memory(NULL, 0, &n, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_paxos_node_new_memory(&cfg, 0, NULL, NULL), QK_ERR_NULL_ARG);
    qk_paxos_config bad = cfg;
    bad.id = 7;
    CHECK_ERR(qk_paxos_node_new_memory(&bad, 0, &n, NULL), QK_ERR_INVALID_ARG);
    bad = cfg;
    bad.heartbeat_interval_ns = 0;
    CHECK_ERR(qk_paxos_node_new_memory(&bad, 0, &n, NULL), QK_ERR_INVALID_ARG);
    bad = cfg;
    bad.members_len = QK_PAXOS_MAX_MEMBERS + 1;
    CHECK_ERR(qk_paxos_node_new_memory(&bad, 0, &n, NULL), QK_ERR_INVALID_ARG);
    CHECK(strstr(qk_last_error_message(), "members_len") != NULL);
    bad.members_len = 0;
    CHECK_ERR(qk_paxos_node_new_memory(&bad, 0, &n, NULL), QK_ERR_INVALID_ARG);
    CHECK(n == (qk_paxos_node *)0x1);

    /* The config holds its own copy of the ids: the caller's array may be
     * scratch memory that is reused before the node is made (koffi passes
     * a JS array that way; a replica then sent to peers 0 and 2164273152). */
    {
        uint32_t scratch[QK_PAXOS_MAX_MEMBERS + 1];
        for (size_t k = 0; k <= QK_PAXOS_MAX_MEMBERS; k++) scratch[k] = (uint32_t)k + 1;
        qk_paxos_config own;
        CHECK_ERR(qk_paxos_config_init(1, scratch, QK_PAXOS_MAX_MEMBERS + 1, &own, NULL),
                  QK_ERR_INVALID_ARG);
        CHECK_OK(qk_paxos_config_init(2, scratch, 3, &own, NULL));
        scratch[0] = 0, scratch[1] = 2164273152u, scratch[2] = 0xdeadbeef;
        qk_paxos_node *mine = NULL;
        CHECK_OK(qk_paxos_node_new_memory(&own, 0, &mine, NULL));
        uint64_t deadline = 0;
        CHECK_OK(qk_paxos_node_next_deadline(mine, &deadline, NULL));
        /* It stands for election and asks its real peers, 1 and 3. */
        CHECK_OK(qk_paxos_node_tick(mine, deadline, NULL));
        qk_paxos_output out;
        uint8_t has = true;
        int sends = 0;
        while (has) {
            CHECK_OK(qk_paxos_node_poll(mine, &out, &has, NULL));
            if (has && out.kind == QK_PAXOS_OUTPUT_SEND) {
                CHECK(out.to == 1 || out.to == 3);
                sends++;
            }
        }
        CHECK(sends == 2);
        qk_paxos_node_free(mine);
    }

    /* File storage: NULL path, a directory that does not exist, a file
     * that is not a record file. */
    char path[128], junk[128];
    snprintf(path, sizeof path, "/tmp/qk_test_paxos_missing_%ld/node.log", (long)getpid());
    CHECK_ERR(qk_paxos_node_new_file(&cfg, NULL, 0, &n, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_paxos_node_new_file(NULL, path, 0, &n, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_paxos_node_new_file(&cfg, path, 0, NULL, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_paxos_node_new_file(&cfg, path, 0, &n, NULL), QK_ERR_STORAGE);
    CHECK(strstr(qk_last_error_message(), "qk_test_paxos_missing") != NULL);
    snprintf(junk, sizeof junk, "/tmp/qk_test_paxos_junk_%ld.log", (long)getpid());
    FILE *fp = fopen(junk, "wb");
    REQUIRE(fp != NULL);
    fputs("not a paxos log", fp);
    fclose(fp);
    CHECK_ERR(qk_paxos_node_new_file(&cfg, junk, 0, &n, NULL), QK_ERR_CORRUPT);
    bad = cfg;
    bad.id = 7;
    CHECK_ERR(qk_paxos_node_new_file(&bad, junk, 0, &n, NULL), QK_ERR_INVALID_ARG);
    unlink(junk);
    CHECK(n == (qk_paxos_node *)0x1);

    /* Calls on a node: NULL handles and out-parameters, garbage bytes. */
    CHECK_OK(qk_paxos_node_new_memory(&cfg, 0, &n, NULL));
    /* Version byte 1, then an unknown tag; and a future version. */
    uint8_t garbage[] = {0x01, 0xee, 0x13, 0x37, 0xff};
    uint8_t future[] = {0xff, 0x01, 0x00};
    CHECK_ERR(qk_paxos_node_step(NULL, 2, garbage, sizeof garbage, 0, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_paxos_node_step(n, 2, NULL, 3, 0, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_paxos_node_step(n, 2, garbage, sizeof garbage, 0, NULL), QK_ERR_CORRUPT);
    CHECK_ERR(qk_paxos_node_step(n, 2, garbage, 3, 0, NULL), QK_ERR_CORRUPT);
    CHECK_ERR(qk_paxos_node_step(n, 2, NULL, 0, 0, NULL), QK_ERR_CORRUPT);
    CHECK_ERR(qk_paxos_node_step(n, 2, future, sizeof future, 0, NULL), QK_ERR_UNSUPPORTED_VERSION);

    CHECK_ERR(qk_paxos_node_tick(NULL, 0, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_paxos_node_propose(NULL, KEY("x"), 0, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_paxos_node_propose(n, NULL, 1, 0, NULL), QK_ERR_NULL_ARG);
    qk_paxos_output o;
    uint8_t has = true;
    CHECK_ERR(qk_paxos_node_poll(NULL, &o, &has, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_paxos_node_poll(n, NULL, &has, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_paxos_node_poll(n, &o, NULL, NULL), QK_ERR_NULL_ARG);
    uint64_t u = SENTINEL_U64;
    uint32_t l = SENTINEL_U32;
    CHECK_ERR(qk_paxos_node_next_deadline(NULL, &u, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_paxos_node_next_deadline(n, NULL, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_paxos_node_leader(NULL, &l, &has, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_paxos_node_leader(n, NULL, &has, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_paxos_node_leader(n, &l, NULL, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_paxos_node_is_leader(NULL, &has, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_paxos_node_is_leader(n, NULL, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_paxos_node_has_read_lease(NULL, 0, &has, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_paxos_node_has_read_lease(n, 0, NULL, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_paxos_node_commit_index(NULL, &u, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_paxos_node_commit_index(n, NULL, NULL), QK_ERR_NULL_ARG);
    CHECK(u == SENTINEL_U64 && l == SENTINEL_U32);

    /* A fresh follower: no leader, no lease, nothing committed, a deadline
     * (its election timeout) ahead. */
    CHECK_OK(qk_paxos_node_leader(n, &l, &has, NULL));
    CHECK(!has && l == SENTINEL_U32);
    CHECK_OK(qk_paxos_node_is_leader(n, &has, NULL));
    CHECK(!has);
    CHECK_OK(qk_paxos_node_has_read_lease(n, 0, &has, NULL));
    CHECK(!has);
    CHECK_OK(qk_paxos_node_commit_index(n, &u, NULL));
    CHECK(u == 0);
    CHECK_OK(qk_paxos_node_next_deadline(n, &u, NULL));
    CHECK(u >= 500 * MS && u < 1000 * MS);
    qk_paxos_node_free(n);
    qk_paxos_node_free(NULL);
}

/* Reads the whole file at `path` into a malloc'd buffer. */
static uint8_t *slurp(const char *path, size_t *len) {
    FILE *fp = fopen(path, "rb");
    REQUIRE(fp != NULL);
    REQUIRE(fseek(fp, 0, SEEK_END) == 0);
    long n = ftell(fp);
    REQUIRE(n >= 0);
    rewind(fp);
    uint8_t *buf = malloc((size_t)n + 1);
    REQUIRE(buf != NULL);
    REQUIRE(fread(buf, 1, (size_t)n, fp) == (size_t)n);
    fclose(fp);
    *len = (size_t)n;
    return buf;
}

static void spit(const char *path, const uint8_t *buf, size_t len) {
    FILE *fp = fopen(path, "wb");
    REQUIRE(fp != NULL);
    REQUIRE(fwrite(buf, 1, len, fp) == len);
    fclose(fp);
}

/* A one-replica cluster on a file: it elects itself and decides commands. */
static void decide_alone(qk_paxos_node *n, uint64_t *now, int commands) {
    uint8_t leader = false;
    for (int k = 0; k < 100 && !leader; k++) {
        uint64_t d;
        CHECK_OK(qk_paxos_node_next_deadline(n, &d, NULL));
        *now = d > *now ? d : *now + MS;
        CHECK_OK(qk_paxos_node_tick(n, *now, NULL));
        CHECK_OK(qk_paxos_node_is_leader(n, &leader, NULL));
    }
    REQUIRE(leader);
    for (int k = 0; k < commands; k++) {
        char cmd[16];
        snprintf(cmd, sizeof cmd, "c%d", k);
        CHECK_OK(qk_paxos_node_propose(n, KEY(cmd), *now, NULL));
        qk_paxos_output out;
        uint8_t has = true;
        while (has) CHECK_OK(qk_paxos_node_poll(n, &out, &has, NULL));
    }
    uint64_t commit = 0;
    CHECK_OK(qk_paxos_node_commit_index(n, &commit, NULL));
    CHECK(commit >= (uint64_t)commands);
}

/* Record files: one live node per file, tied to its cluster and replica
 * id, and damage refused with the file left as it was. */
static void test_paxos_storage_safety(void) {
    static const uint32_t one[1] = {1};
    qk_paxos_config cfg;
    REQUIRE(qk_paxos_config_init(1, one, 1, &cfg, NULL) == QK_OK);
    CHECK(cfg.cluster_id == 0);
    cfg.cluster_id = 0x5eed;
    char path[128];
    snprintf(path, sizeof path, "/tmp/qk_test_paxos_safety_%ld.log", (long)getpid());
    unlink(path);
    qk_paxos_node *n = NULL, *second = (qk_paxos_node *)0x1;
    uint64_t now = 0;
    CHECK_OK(qk_paxos_node_new_file(&cfg, path, now, &n, NULL));
    decide_alone(n, &now, 12);

    /* A second node on the same file while the first lives. */
    CHECK_ERR(qk_paxos_node_new_file(&cfg, path, now, &second, NULL), QK_ERR_STORAGE_IN_USE);
    CHECK(strstr(qk_last_error_message(), "locked") != NULL);
    CHECK(second == (qk_paxos_node *)0x1);
    CHECK(strcmp(qk_status_str(QK_ERR_STORAGE_IN_USE), "storage in use") == 0);
    qk_paxos_node_free(n);

    /* Another cluster id, another replica id. */
    qk_paxos_config other = cfg;
    other.cluster_id = 0x5eee;
    CHECK_ERR(qk_paxos_node_new_file(&other, path, now, &second, NULL), QK_ERR_STORAGE_MISMATCH);
    CHECK(strstr(qk_last_error_message(), "cluster") != NULL);
    static const uint32_t two[2] = {1, 2};
    REQUIRE(qk_paxos_config_init(2, two, 2, &other, NULL) == QK_OK);
    other.cluster_id = cfg.cluster_id;
    CHECK_ERR(qk_paxos_node_new_file(&other, path, now, &second, NULL), QK_ERR_STORAGE_MISMATCH);
    CHECK(second == (qk_paxos_node *)0x1);

    /* One flipped bit in the middle of the log: refused, file untouched. */
    size_t len = 0;
    uint8_t *bytes = slurp(path, &len);
    REQUIRE(len > 200);
    bytes[len / 2] ^= 0x04;
    spit(path, bytes, len);
    CHECK_ERR(qk_paxos_node_new_file(&cfg, path, now, &second, NULL), QK_ERR_STORAGE_CORRUPT);
    CHECK(strstr(qk_last_error_message(), "untouched") != NULL);
    CHECK(second == (qk_paxos_node *)0x1);
    size_t len2 = 0;
    uint8_t *after = slurp(path, &len2);
    CHECK(len2 == len && memcmp(after, bytes, len) == 0);
    free(after);

    /* Undo the flip: the replica restarts and re-delivers what it decided. */
    bytes[len / 2] ^= 0x04;
    spit(path, bytes, len);
    free(bytes);
    CHECK_OK(qk_paxos_node_new_file(&cfg, path, now, &n, NULL));
    int decided = 0;
    qk_paxos_output out;
    uint8_t has = true;
    while (has) {
        CHECK_OK(qk_paxos_node_poll(n, &out, &has, NULL));
        if (has && out.kind == QK_PAXOS_OUTPUT_DECIDED && out.count > 0) decided++;
    }
    CHECK(decided == 12);
    qk_paxos_node_free(n);
    unlink(path);
}

/* Drains a lone node's outputs: counts DECIDED slots, keeps a SNAPSHOT. */
static void drain_lone(qk_paxos_node *n, uint64_t *decided, uint64_t *snap_slot, char *snap,
                       size_t snap_cap) {
    qk_paxos_output o;
    uint8_t has = true;
    for (;;) {
        CHECK_OK(qk_paxos_node_poll(n, &o, &has, NULL));
        if (!has) return;
        if (o.kind == QK_PAXOS_OUTPUT_DECIDED && o.index + 1 >= o.count) (*decided)++;
        if (o.kind == QK_PAXOS_OUTPUT_SNAPSHOT) {
            REQUIRE(o.data_len < snap_cap);
            memcpy(snap, o.data, o.data_len);
            snap[o.data_len] = 0;
            *snap_slot = o.slot;
            *decided = o.slot;
        }
    }
}

/* Compaction: a one-member file-backed node decides, compacts, refuses
 * bad compactions, and restarts from its snapshot. */
static void test_paxos_compaction(void) {
    static const uint32_t one[1] = {1};
    qk_paxos_config cfg;
    CHECK_OK(qk_paxos_config_init(1, one, 1, &cfg, NULL));
    cfg.max_batch = 1;
    char path[128];
    snprintf(path, sizeof path, "/tmp/qk_test_paxos_compact_%ld.log", (long)getpid());
    unlink(path);
    qk_paxos_node *n = NULL;
    CHECK_OK(qk_paxos_node_new_file(&cfg, path, 0, &n, NULL));
    uint64_t now = 0, deadline = 0, decided = 0, snap_slot = 0;
    char snap[64];
    snap[0] = 0;
    for (int k = 0; k < 10 && !decided; k++) {
        CHECK_OK(qk_paxos_node_next_deadline(n, &deadline, NULL));
        now = deadline;
        CHECK_OK(qk_paxos_node_tick(n, now, NULL));
        drain_lone(n, &decided, &snap_slot, snap, sizeof snap);
        uint8_t lead = false;
        CHECK_OK(qk_paxos_node_is_leader(n, &lead, NULL));
        if (lead) break;
    }
    for (int k = 0; k < 20; k++) {
        char cmd[16];
        snprintf(cmd, sizeof cmd, "c%d", k);
        CHECK_OK(qk_paxos_node_propose(n, (const uint8_t *)cmd, strlen(cmd), now, NULL));
        drain_lone(n, &decided, &snap_slot, snap, sizeof snap);
    }
    uint64_t commit = 0, start = 7, len = 7;
    CHECK_OK(qk_paxos_node_commit_index(n, &commit, NULL));
    CHECK(commit == decided && commit >= 20);
    CHECK_OK(qk_paxos_node_log_extent(n, &start, &len, NULL));
    CHECK(start == 0 && len == commit);
    /* Bad compactions: NULL arguments, a slot not decided yet. */
    CHECK_ERR(qk_paxos_node_compact(NULL, 1, KEY("s"), now, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_paxos_node_compact(n, 1, NULL, 3, now, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_paxos_node_compact(n, commit + 1, KEY("s"), now, NULL), QK_ERR_INVALID_ARG);
    CHECK(strstr(qk_last_error_message(), "not decided yet") != NULL);
    CHECK_ERR(qk_paxos_node_log_extent(n, NULL, &len, NULL), QK_ERR_NULL_ARG);
    /* The state after every decided slot. */
    char state[32];
    snprintf(state, sizeof state, "state@%llu", (unsigned long long)commit);
    CHECK_OK(qk_paxos_node_compact(n, commit, (const uint8_t *)state, strlen(state), now, NULL));
    CHECK_OK(qk_paxos_node_log_extent(n, &start, &len, NULL));
    CHECK(start == commit && len == 0);
    /* The checkpoint is written in the background; any later call (a tick
     * here) puts it in place once it is written. */
    {
        uint8_t busy = 2;
        CHECK_OK(qk_paxos_node_compacting(n, &busy, NULL));
        CHECK(busy == 0 || busy == 1);
        for (int w = 0; w < 2000 && busy; w++) {
            nap_ms(1);
            CHECK_OK(qk_paxos_node_tick(n, now, NULL));
            CHECK_OK(qk_paxos_node_compacting(n, &busy, NULL));
        }
        CHECK(busy == 0);
        CHECK_ERR(qk_paxos_node_compacting(n, NULL, NULL), QK_ERR_NULL_ARG);
        CHECK_ERR(qk_paxos_node_compacting(NULL, &busy, NULL), QK_ERR_NULL_ARG);
    }
    /* Not newer than the log's start: refused, nothing changes. */
    CHECK_ERR(qk_paxos_node_compact(n, commit, KEY("older"), now, NULL), QK_ERR_INVALID_ARG);
    CHECK(strstr(qk_last_error_message(), "already starts at slot") != NULL);
    CHECK_OK(qk_paxos_node_propose(n, KEY("after"), now, NULL));
    drain_lone(n, &decided, &snap_slot, snap, sizeof snap);

    /* ReadIndex on a lone leader: ready at once, with the read's id. */
    CHECK_ERR(qk_paxos_node_read_index(NULL, 1, now, NULL), QK_ERR_NULL_ARG);
    CHECK_OK(qk_paxos_node_read_index(n, 77, now, NULL));
    {
        qk_paxos_output o;
        uint8_t has = true;
        int reads = 0;
        while (has) {
            CHECK_OK(qk_paxos_node_poll(n, &o, &has, NULL));
            if (has && o.kind == QK_PAXOS_OUTPUT_READ_INDEX) {
                CHECK(o.index == 77 && o.count == 1);
                reads++;
            }
        }
        CHECK(reads == 1);
    }
    qk_paxos_node_free(n);

    /* On a follower (a fresh member of three): not the leader. */
    {
        qk_paxos_config three;
        CHECK_OK(qk_paxos_config_init(1, MEMBERS, NODES, &three, NULL));
        qk_paxos_node *f = NULL;
        CHECK_OK(qk_paxos_node_new_memory(&three, 0, &f, NULL));
        CHECK_ERR(qk_paxos_node_read_index(f, 1, 0, NULL), QK_ERR_NOT_LEADER);
        qk_paxos_node_free(f);
    }
    n = NULL;

    /* The records after the checkpoint are in the segment the compaction
     * began beside the log file; damage there is refused like damage in
     * the log file, and changes nothing. */
    char seg[160];
    snprintf(seg, sizeof seg, "%s.seg.000001", path);
    {
        size_t seg_len = 0;
        uint8_t *bytes = slurp(seg, &seg_len);
        REQUIRE(seg_len > 31 + 12);
        bytes[seg_len - 2] ^= 0x10;
        spit(seg, bytes, seg_len);
        qk_paxos_node *refused = (qk_paxos_node *)0x1;
        CHECK_ERR(qk_paxos_node_new_file(&cfg, path, now, &refused, NULL), QK_ERR_STORAGE_CORRUPT);
        CHECK(strstr(qk_last_error_message(), ".seg.000001") != NULL);
        CHECK(refused == (qk_paxos_node *)0x1);
        size_t again_len = 0;
        uint8_t *again = slurp(seg, &again_len);
        CHECK(again_len == seg_len && memcmp(again, bytes, seg_len) == 0);
        free(again);
        bytes[seg_len - 2] ^= 0x10;
        spit(seg, bytes, seg_len);
        free(bytes);
    }

    /* The restart hands out the snapshot first, then only the slot after it. */
    n = NULL;
    decided = 0;
    CHECK_OK(qk_paxos_node_new_file(&cfg, path, now, &n, NULL));
    drain_lone(n, &decided, &snap_slot, snap, sizeof snap);
    CHECK(snap_slot == commit && strcmp(snap, state) == 0);
    CHECK(decided == commit + 1);
    CHECK_OK(qk_paxos_node_log_extent(n, &start, &len, NULL));
    CHECK(start == commit && len == 1);
    qk_paxos_node_free(n);
    unlink(path);
    unlink(seg);
}

/* Membership through the C API: a lone voter adds a joining replica as a
 * learner, which catches up, is promoted and votes; every refusal is a
 * status code and changes nothing. A tiny network of two nodes: packets
 * copied into a queue, a fake clock moved to the earliest deadline. */
typedef struct {
    qk_paxos_node *node[2];
    uint32_t id[2];
    uint64_t now;
    packet queue[4096];
    size_t queue_len;
    uint64_t decided[2];
    uint64_t epoch[2];
    uint32_t ids[2][8];
    uint64_t voters[2], ids_len[2];
} pair;

static void pair_drain(pair *p, int i) {
    qk_paxos_output o;
    uint8_t has = true;
    for (;;) {
        CHECK_OK(qk_paxos_node_poll(p->node[i], &o, &has, NULL));
        if (!has) return;
        if (o.kind == QK_PAXOS_OUTPUT_SEND) {
            REQUIRE(p->queue_len < 4096);
            uint8_t *copy = malloc(o.data_len ? o.data_len : 1);
            REQUIRE(copy != NULL);
            memcpy(copy, o.data, o.data_len);
            p->queue[p->queue_len++] = (packet){p->id[i], o.to, copy, o.data_len};
        } else if (o.kind == QK_PAXOS_OUTPUT_DECIDED && o.index + 1 >= o.count) {
            CHECK(o.slot == p->decided[i]);
            p->decided[i] = o.slot + 1;
        } else if (o.kind == QK_PAXOS_OUTPUT_MEMBERSHIP) {
            /* Epoch in index, first slot in slot, voters then learners. */
            CHECK(o.index > p->epoch[i]);
            CHECK(o.slot == p->decided[i]);
            CHECK(o.data_len % 4 == 0 && o.data_len / 4 <= 8 && o.count <= o.data_len / 4);
            p->epoch[i] = o.index;
            p->voters[i] = o.count;
            p->ids_len[i] = o.data_len / 4;
            memcpy(p->ids[i], o.data, o.data_len);
        }
    }
}

static void pair_step(pair *p) {
    while (p->queue_len > 0) {
        packet k = p->queue[0];
        memmove(p->queue, p->queue + 1, (p->queue_len - 1) * sizeof(packet));
        p->queue_len--;
        int to = k.to == p->id[0] ? 0 : k.to == p->id[1] ? 1 : -1;
        if (to >= 0) {
            CHECK_OK(qk_paxos_node_step(p->node[to], k.from, k.bytes, k.len, p->now, NULL));
            pair_drain(p, to);
        }
        free(k.bytes);
    }
    uint64_t d0, d1;
    CHECK_OK(qk_paxos_node_next_deadline(p->node[0], &d0, NULL));
    CHECK_OK(qk_paxos_node_next_deadline(p->node[1], &d1, NULL));
    uint64_t d = d0 < d1 ? d0 : d1;
    p->now = d > p->now ? d : p->now + MS;
    for (int i = 0; i < 2; i++) {
        CHECK_OK(qk_paxos_node_tick(p->node[i], p->now, NULL));
        pair_drain(p, i);
    }
}

static void test_paxos_membership(void) {
    static const uint32_t one[1] = {1};
    pair p;
    memset(&p, 0, sizeof p);
    p.id[0] = 1;
    p.id[1] = 2;
    qk_paxos_config cfg;
    CHECK_OK(qk_paxos_config_init(1, one, 1, &cfg, NULL));
    cfg.heartbeat_interval_ns = 10 * MS;
    cfg.election_timeout_ns = 100 * MS;
    cfg.lease_duration_ns = 0;
    cfg.max_clock_drift_ns = 0;
    CHECK_OK(qk_paxos_node_new_memory(&cfg, 0, &p.node[0], NULL));
    decide_alone(p.node[0], &p.now, 3);
    pair_drain(&p, 0);
    CHECK_OK(qk_paxos_node_commit_index(p.node[0], &p.decided[0], NULL));

    /* The joiner: its config names the cluster's voters, not itself. */
    qk_paxos_config jcfg = cfg;
    jcfg.id = 2;
    qk_paxos_node *bad = (qk_paxos_node *)0x1;
    CHECK_ERR(qk_paxos_node_new_memory(&jcfg, 0, &bad, NULL), QK_ERR_INVALID_ARG);
    CHECK(strstr(qk_last_error_message(), "join") != NULL);
    CHECK_ERR(qk_paxos_node_join(NULL, NULL, 0, &bad, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_paxos_node_join(&jcfg, NULL, 0, NULL, NULL), QK_ERR_NULL_ARG);
    qk_paxos_config empty = jcfg;
    empty.members_len = 0;
    CHECK_ERR(qk_paxos_node_join(&empty, NULL, 0, &bad, NULL), QK_ERR_INVALID_ARG);
    CHECK(bad == (qk_paxos_node *)0x1);
    CHECK_OK(qk_paxos_node_join(&jcfg, NULL, p.now, &p.node[1], NULL));

    /* Refusals: nothing changes. */
    qk_paxos_node *lead = p.node[0];
    CHECK_ERR(qk_paxos_node_change_membership(NULL, QK_PAXOS_ADD_LEARNER, 2, 0, p.now, NULL),
              QK_ERR_NULL_ARG);
    CHECK_ERR(qk_paxos_node_change_membership(lead, 77, 2, 0, p.now, NULL), QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_paxos_node_change_membership(lead, QK_PAXOS_PROMOTE, 2, 0, p.now, NULL),
              QK_ERR_INVALID_ARG);
    CHECK(strstr(qk_last_error_message(), "not a learner") != NULL);
    CHECK_ERR(qk_paxos_node_change_membership(lead, QK_PAXOS_REMOVE, 9, 0, p.now, NULL),
              QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_paxos_node_change_membership(lead, QK_PAXOS_REMOVE, 1, 0, p.now, NULL),
              QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_paxos_node_change_membership(lead, QK_PAXOS_ADD_LEARNER, 1, 0, p.now, NULL),
              QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_paxos_node_change_membership(p.node[1], QK_PAXOS_ADD_LEARNER, 3, 0, p.now, NULL),
              QK_ERR_NOT_LEADER);
    CHECK_ERR(qk_paxos_node_propose(lead, (const uint8_t *)"\xffqk-cfg\x01x", 9, p.now, NULL),
              QK_ERR_INVALID_ARG);

    /* Add the learner: it catches up and reports epoch 1. */
    CHECK_OK(qk_paxos_node_change_membership(lead, QK_PAXOS_ADD_LEARNER, 2, 0, p.now, NULL));
    pair_drain(&p, 0);
    /* A lone voter decides the change at once and ends its epoch: it leads
     * no more until it stands again in the new one. */
    CHECK_ERR(qk_paxos_node_change_membership(lead, QK_PAXOS_ADD_LEARNER, 3, 0, p.now, NULL),
              QK_ERR_NOT_LEADER);
    CHECK(p.epoch[0] == 1);
    for (int k = 0; k < 2000 && !(p.epoch[1] == 1 && p.decided[1] == p.decided[0]); k++)
        pair_step(&p);
    CHECK(p.epoch[0] == 1 && p.epoch[1] == 1);
    CHECK(p.voters[1] == 1 && p.ids_len[1] == 2 && p.ids[1][0] == 1 && p.ids[1][1] == 2);
    CHECK(p.decided[1] == p.decided[0] && p.decided[1] >= 4);

    uint64_t epoch = 0, start = 0;
    size_t nv = 0, nids = 0;
    uint32_t ids[4] = {0};
    CHECK_ERR(qk_paxos_node_membership(p.node[1], &epoch, &start, ids, 1, &nv, &nids, NULL),
              QK_ERR_BUFFER_TOO_SMALL);
    CHECK(nids == 2 && nv == 1 && epoch == 1);
    CHECK_ERR(qk_paxos_node_membership(p.node[1], &epoch, &start, NULL, 4, &nv, &nids, NULL),
              QK_ERR_NULL_ARG);
    CHECK_ERR(qk_paxos_node_membership(NULL, &epoch, &start, ids, 4, &nv, &nids, NULL),
              QK_ERR_NULL_ARG);
    CHECK_OK(qk_paxos_node_membership(p.node[1], &epoch, &start, ids, 4, &nv, &nids, NULL));
    CHECK(epoch == 1 && start >= 4 && start <= p.decided[0] && nv == 1);
    CHECK(ids[0] == 1 && ids[1] == 2);

    /* Let the leader hear the learner, then promote it: two voters. */
    for (int k = 0; k < 30; k++) pair_step(&p);
    uint8_t is_leader = false;
    int l = -1;
    for (int k = 0; k < 2000 && l < 0; k++) {
        for (int i = 0; i < 2 && l < 0; i++) {
            CHECK_OK(qk_paxos_node_is_leader(p.node[i], &is_leader, NULL));
            if (is_leader) l = i;
        }
        if (l < 0) pair_step(&p);
    }
    REQUIRE(l >= 0);
    CHECK_OK(qk_paxos_node_change_membership(p.node[l], QK_PAXOS_PROMOTE, 2, 0, p.now, NULL));
    pair_drain(&p, l);
    for (int k = 0; k < 4000 && !(p.epoch[0] == 2 && p.epoch[1] == 2); k++) pair_step(&p);
    CHECK(p.epoch[0] == 2 && p.epoch[1] == 2);
    CHECK(p.voters[0] == 2 && p.voters[1] == 2 && p.ids_len[1] == 2);

    /* Both vote now: a command proposed at either is decided by both. */
    uint64_t before = p.decided[0];
    for (int k = 0; k < 4000 && p.decided[1] <= before; k++) {
        if (k == 200) CHECK_OK(qk_paxos_node_propose(p.node[1], KEY("two"), p.now, NULL));
        pair_step(&p);
    }
    for (int k = 0; k < 400 && p.decided[0] != p.decided[1]; k++) pair_step(&p);
    CHECK(p.decided[1] > before && p.decided[0] == p.decided[1]);
    /* Two voters: removing one is refused. */
    for (int i = 0; i < 2; i++) {
        CHECK_OK(qk_paxos_node_is_leader(p.node[i], &is_leader, NULL));
        if (is_leader)
            CHECK_ERR(qk_paxos_node_change_membership(p.node[i], QK_PAXOS_REMOVE, p.id[1 - i], 0,
                                                      p.now, NULL),
                      QK_ERR_INVALID_ARG);
    }
    for (size_t k = 0; k < p.queue_len; k++) free(p.queue[k].bytes);
    qk_paxos_node_free(p.node[0]);
    qk_paxos_node_free(p.node[1]);
}

void test_paxos(void) {
    test_paxos_errors();
    test_paxos_cluster();
    test_paxos_storage_safety();
    test_paxos_compaction();
    test_paxos_membership();
}
