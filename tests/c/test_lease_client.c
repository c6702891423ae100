/* qk_lease_client against three `quorumkit serve --state lease` processes
 * this test starts itself on free loopback ports in a temp dir (the binary
 * from QK_BIN, else QK_BIN_PATH), kills the leader with SIGKILL, and stops
 * every process by its PID. */
#define _DEFAULT_SOURCE /* mkdtemp, setenv */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

#ifndef QK_BIN_PATH
#define QK_BIN_PATH "target/release/quorumkit"
#endif
#define SEC 1000000000ull
#define MS 1000000ull
#define CLUSTER_ID 7
#define SECRET "c-test-cluster-secret"

struct cluster {
    char dir[64];
    int port[3];
    pid_t pid[3];
    char peers[256]; /* 1=127.0.0.1:P,2=...,3=... */
    char addrs[256]; /* 127.0.0.1:P,... */
};

static const char *binary(void) {
    const char *b = getenv("QK_BIN");
    return b && *b ? b : QK_BIN_PATH;
}

static void spawn(struct cluster *c, int i) {
    char id[16], data[128];
    snprintf(id, sizeof id, "%d", i + 1);
    snprintf(data, sizeof data, "%s/r%d", c->dir, i + 1);
    const char *bin = binary();
    fflush(NULL); /* else the child's exit would print buffered output again */
    pid_t pid = fork();
    if (pid == 0) {
        freopen("/dev/null", "w", stdout);
        freopen("/dev/null", "w", stderr);
        setenv("QK_CLUSTER_SECRET", SECRET, 1);
        execl(bin, bin, "serve", "--state", "lease", "--id", id, "--peers", c->peers, "--cluster-id", "7",
              "--heartbeat-ms", "20", "--data", data, "--init", (char *)NULL);
        _exit(127);
    }
    c->pid[i] = pid;
}

static void stop(struct cluster *c, int i) {
    if (c->pid[i] > 0) {
        kill(c->pid[i], SIGKILL);
        waitpid(c->pid[i], NULL, 0);
        c->pid[i] = 0;
    }
}

static int start_cluster(struct cluster *c) {
    snprintf(c->dir, sizeof c->dir, "/tmp/qk-lease-client-c-XXXXXX");
    if (!mkdtemp(c->dir)) return 0;
    for (int i = 0; i < 3; i++) c->port[i] = free_port();
    snprintf(c->peers, sizeof c->peers, "1=127.0.0.1:%d,2=127.0.0.1:%d,3=127.0.0.1:%d", c->port[0], c->port[1],
             c->port[2]);
    snprintf(c->addrs, sizeof c->addrs, "127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d", c->port[0], c->port[1],
             c->port[2]);
    if (access(binary(), X_OK) != 0) return 0;
    for (int i = 0; i < 3; i++) spawn(c, i);
    return 1;
}

static void stop_cluster(struct cluster *c) {
    for (int i = 0; i < 3; i++) stop(c, i);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", c->dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", c->dir);
}

/* The leader's id by `quorumkit status` (its LEADER column), or 0. */
static int leader_of(struct cluster *c) {
    char cmd[512];
    snprintf(cmd, sizeof cmd, "QK_CLUSTER_SECRET=%s %s status --peers %s --cluster-id %d 2>/dev/null", SECRET,
             binary(), c->peers, CLUSTER_ID);
    FILE *f = popen(cmd, "r");
    if (!f) return 0;
    char line[256];
    int leader = 0;
    while (fgets(line, sizeof line, f)) {
        int id = 0, lead = 0;
        char addr[64];
        if (sscanf(line, "%d %63s %d", &id, addr, &lead) == 3 && lead >= 1 && lead <= 3) leader = lead;
    }
    pclose(f);
    return leader;
}

static qk_lease_client *open_client(const char *addrs, uint64_t timeout_ns) {
    qk_lease_client *lc = NULL;
    CHECK_OK(qk_lease_client_new(addrs, CLUSTER_ID, KEY(SECRET), timeout_ns, &lc, NULL));
    REQUIRE(lc != NULL);
    return lc;
}

/* The first grant on a new cluster waits for its first leader. */
static int first_grant(qk_lease_client *lc, qk_lease *out) {
    for (int i = 0; i < 100; i++) {
        if (qk_lease_client_try_acquire(lc, STR("warm-up"), STR("c"), 5 * SEC, QK_LEASE_EXCLUSIVE, out, NULL) == QK_OK)
            return 1;
        nap_ms(100);
    }
    return 0;
}

struct waiter {
    qk_lease_client *lc;
    qk_status status;
    qk_lease lease;
};

static void *blocked_acquire(void *arg) {
    struct waiter *w = arg;
    w->status = qk_lease_client_acquire(w->lc, STR("queue"), STR("second"), 5 * SEC, QK_LEASE_EXCLUSIVE, 10 * SEC,
                                        &w->lease, NULL);
    return NULL;
}

/* The outcome of qk_lease_client_acquire_async(), handed over under a lock. */
struct async_outcome {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int calls;
    qk_status status;
    qk_lease lease;
    char message[256];
};

static void on_async(void *user_data, qk_status status, const qk_lease *lease, const char *message) {
    struct async_outcome *o = user_data;
    pthread_mutex_lock(&o->mu);
    o->calls++;
    o->status = status;
    if (lease) o->lease = *lease;
    snprintf(o->message, sizeof o->message, "%s", message ? message : "(null)");
    pthread_cond_broadcast(&o->cv);
    pthread_mutex_unlock(&o->mu);
}

/* Waits (at most `ms`) for the callback; returns how many calls came. */
static int await_async(struct async_outcome *o, int ms) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&o->mu);
    while (o->calls == 0 && pthread_cond_timedwait(&o->cv, &o->mu, &until) == 0) {
    }
    int calls = o->calls;
    pthread_mutex_unlock(&o->mu);
    return calls;
}

static void async_acquire(qk_lease_client *lc) {
    struct async_outcome o = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, QK_ERR_PANIC, {0}, ""};
    /* Bad input is refused at the call; the callback never runs. */
    CHECK_ERR(qk_lease_client_acquire_async(lc, STR("a"), STR("o"), SEC, QK_LEASE_EXCLUSIVE, SEC, NULL, &o, NULL),
              QK_ERR_NULL_ARG);
    CHECK_ERR(qk_lease_client_acquire_async(NULL, STR("a"), STR("o"), SEC, QK_LEASE_EXCLUSIVE, SEC, on_async, &o,
                                            NULL),
              QK_ERR_NULL_ARG);
    CHECK_ERR(qk_lease_client_acquire_async(lc, STR("a"), STR("o"), 0, QK_LEASE_EXCLUSIVE, SEC, on_async, &o, NULL),
              QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_lease_client_acquire_async(lc, STR(""), STR("o"), SEC, QK_LEASE_EXCLUSIVE, SEC, on_async, &o, NULL),
              QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_lease_client_acquire_async(lc, STR("a"), STR(""), SEC, QK_LEASE_EXCLUSIVE, SEC, on_async, &o, NULL),
              QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_lease_client_acquire_async(lc, STR("a"), STR("o"), SEC, 7, SEC, on_async, &o, NULL),
              QK_ERR_INVALID_ARG);
    nap_ms(50);
    CHECK(o.calls == 0);

    /* Queued behind a holder: no answer until the holder releases, then the
     * grant arrives through the callback with a larger token. */
    qk_lease holder;
    CHECK_OK(qk_lease_client_try_acquire(lc, STR("async"), STR("holder"), 5 * SEC, QK_LEASE_EXCLUSIVE, &holder,
                                         NULL));
    CHECK_OK(qk_lease_client_acquire_async(lc, STR("async"), STR("waiter"), 5 * SEC, QK_LEASE_EXCLUSIVE, 10 * SEC,
                                           on_async, &o, NULL));
    CHECK(await_async(&o, 300) == 0);
    CHECK_OK(qk_lease_client_release(lc, STR("async"), STR("holder"), holder.token, NULL));
    CHECK(await_async(&o, 10000) == 1);
    CHECK_OK(o.status);
    CHECK(o.lease.token > holder.token && o.lease.mode == QK_LEASE_EXCLUSIVE);
    uint64_t now = 0;
    CHECK_OK(qk_lease_client_now(lc, &now, NULL));
    CHECK(o.lease.expires_at_ns > now && o.lease.expires_at_ns <= now + 5 * SEC);
    CHECK(strcmp(o.message, "") == 0);

    /* Timeout 0 on a held resource: QK_ERR_BUSY through the callback. */
    struct async_outcome busy = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, QK_OK, {0}, ""};
    CHECK_OK(qk_lease_client_acquire_async(lc, STR("async"), STR("other"), SEC, QK_LEASE_EXCLUSIVE, 0, on_async,
                                           &busy, NULL));
    CHECK(await_async(&busy, 10000) == 1);
    CHECK(busy.status == QK_ERR_BUSY);
    CHECK(strlen(busy.message) > 0);
    CHECK_OK(qk_lease_client_release(lc, STR("async"), STR("waiter"), o.lease.token, NULL));
    nap_ms(20);
    CHECK(o.calls == 1 && busy.calls == 1); /* exactly once */
}

static void bad_input(qk_lease_client *lc) {
    qk_lease_client *none = (qk_lease_client *)0x1;
    qk_lease l;
    CHECK_ERR(qk_lease_client_new(NULL, 1, KEY(SECRET), 0, &none, NULL), QK_ERR_NULL_ARG);
    CHECK(none == (qk_lease_client *)0x1);
    CHECK_ERR(qk_lease_client_new("", 1, KEY(SECRET), 0, &none, NULL), QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_lease_client_new("not an address", 1, KEY(SECRET), 0, &none, NULL), QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_lease_client_new("127.0.0.1:1", 1, KEY("short"), 0, &none, NULL), QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_lease_client_new("127.0.0.1:1", 1, NULL, 16, 0, &none, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_lease_client_new("\xff:1", 1, KEY(SECRET), 0, &none, NULL), QK_ERR_INVALID_UTF8);
    CHECK(none == (qk_lease_client *)0x1);
    CHECK_ERR(qk_lease_client_try_acquire(NULL, STR("r"), STR("o"), SEC, QK_LEASE_EXCLUSIVE, &l, NULL),
              QK_ERR_NULL_ARG);
    CHECK_ERR(qk_lease_client_try_acquire(lc, STR(""), STR("o"), SEC, QK_LEASE_EXCLUSIVE, &l, NULL),
              QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_lease_client_try_acquire(lc, STR("r"), STR("o"), 0, QK_LEASE_EXCLUSIVE, &l, NULL),
              QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_lease_client_try_acquire(lc, STR("r"), STR("o"), SEC, 99, &l, NULL), QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_lease_client_try_acquire(lc, "\xff", 1, STR("o"), SEC, QK_LEASE_EXCLUSIVE, &l, NULL),
              QK_ERR_INVALID_UTF8);
    CHECK_ERR(qk_lease_client_try_acquire(lc, STR("r"), STR("o"), SEC, QK_LEASE_EXCLUSIVE, NULL, NULL),
              QK_ERR_NULL_ARG);
    CHECK_ERR(qk_lease_client_release(lc, STR("r"), STR(""), 1, NULL), QK_ERR_INVALID_ARG);
    size_t n = SENTINEL_SIZE;
    CHECK_ERR(qk_lease_client_holders(lc, STR("r"), NULL, 0, NULL, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_lease_client_holders(lc, NULL, 3, NULL, 0, &n, NULL), QK_ERR_NULL_ARG);
    CHECK(n == SENTINEL_SIZE);
    qk_lease_client_free(NULL);
}

/* With no replica listening, a call fails within the client's timeout. */
static void dead_cluster(void) {
    char addr[32];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", free_port());
    qk_lease_client *lc = open_client(addr, 300 * MS);
    qk_lease l;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK_ERR(qk_lease_client_try_acquire(lc, STR("r"), STR("o"), SEC, QK_LEASE_EXCLUSIVE, &l, NULL),
              QK_ERR_BACKEND_UNAVAILABLE);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    CHECK(s < 3.0);
    qk_lease_client_free(lc);
}

static void leases_and_failover(struct cluster *c) {
    qk_lease_client *lc = open_client(c->addrs, 10 * SEC);
    qk_lease warm;
    REQUIRE(first_grant(lc, &warm));
    bad_input(lc);

    /* A wrong secret is refused: no lease for a process without it. */
    qk_lease_client *intruder = NULL;
    CHECK_OK(qk_lease_client_new(c->addrs, CLUSTER_ID, KEY("a-different-secret"), 500 * MS, &intruder, NULL));
    qk_lease l;
    CHECK(qk_lease_client_try_acquire(intruder, STR("r"), STR("intruder"), SEC, QK_LEASE_EXCLUSIVE, &l, NULL) != QK_OK);
    qk_lease_client_free(intruder);

    /* Exclusive: a second owner is refused while the first holds. */
    qk_lease a, b;
    CHECK_OK(qk_lease_client_try_acquire(lc, STR("res"), STR("alice"), 5 * SEC, QK_LEASE_EXCLUSIVE, &a, NULL));
    CHECK(a.token > warm.token);
    CHECK(a.mode == QK_LEASE_EXCLUSIVE);
    uint64_t now = 0;
    CHECK_OK(qk_lease_client_now(lc, &now, NULL));
    CHECK(a.expires_at_ns > now && a.expires_at_ns <= now + 5 * SEC);
    CHECK_ERR(qk_lease_client_try_acquire(lc, STR("res"), STR("bob"), 5 * SEC, QK_LEASE_EXCLUSIVE, &b, NULL),
              QK_ERR_BUSY);
    qk_lease holders[2];
    size_t n = 0;
    CHECK_OK(qk_lease_client_holders(lc, STR("res"), holders, 2, &n, NULL));
    CHECK(n == 1 && holders[0].token == a.token);
    CHECK_ERR(qk_lease_client_holders(lc, STR("res"), NULL, 0, &n, NULL), QK_ERR_BUFFER_TOO_SMALL);
    CHECK(n == 1);

    /* Renew and release check the owner and the token. */
    qk_lease r;
    CHECK_OK(qk_lease_client_renew(lc, STR("res"), STR("alice"), a.token, 5 * SEC, &r, NULL));
    CHECK(r.token == a.token);
    CHECK_ERR(qk_lease_client_renew(lc, STR("res"), STR("bob"), a.token, 5 * SEC, &r, NULL), QK_ERR_NOT_HOLDER);
    CHECK_ERR(qk_lease_client_release(lc, STR("res"), STR("alice"), a.token + 1000, NULL), QK_ERR_NOT_HOLDER);
    CHECK_OK(qk_lease_client_release(lc, STR("res"), STR("alice"), a.token, NULL));
    CHECK_ERR(qk_lease_client_release(lc, STR("res"), STR("alice"), a.token, NULL), QK_ERR_NOT_HOLDER);

    /* Shared holders together; an exclusive acquire times out behind them. */
    qk_lease s1, s2;
    CHECK_OK(qk_lease_client_try_acquire(lc, STR("shared"), STR("r1"), 5 * SEC, QK_LEASE_SHARED, &s1, NULL));
    CHECK_OK(qk_lease_client_try_acquire(lc, STR("shared"), STR("r2"), 5 * SEC, QK_LEASE_SHARED, &s2, NULL));
    CHECK(s2.token > s1.token && s2.mode == QK_LEASE_SHARED);
    CHECK_ERR(qk_lease_client_acquire(lc, STR("shared"), STR("w"), 5 * SEC, QK_LEASE_EXCLUSIVE, 200 * MS, &b, NULL),
              QK_ERR_TIMEOUT);

    /* FIFO hand-off: a blocked acquire is granted when the holder releases. */
    qk_lease first;
    CHECK_OK(qk_lease_client_try_acquire(lc, STR("queue"), STR("first"), 5 * SEC, QK_LEASE_EXCLUSIVE, &first, NULL));
    struct waiter w = {lc, QK_ERR_PANIC, {0}};
    pthread_t th;
    REQUIRE(pthread_create(&th, NULL, blocked_acquire, &w) == 0);
    nap_ms(300);
    CHECK_OK(qk_lease_client_release(lc, STR("queue"), STR("first"), first.token, NULL));
    pthread_join(th, NULL);
    CHECK_OK(w.status);
    CHECK(w.lease.token > first.token);
    async_acquire(lc);

    /* Election over the service. */
    qk_election *e = NULL;
    CHECK_ERR(qk_election_new_service(NULL, STR("e"), STR("c1"), SEC, &e, NULL), QK_ERR_NULL_ARG);
    CHECK_OK(qk_election_new_service(lc, STR("e"), STR("c1"), 2 * SEC, &e, NULL));
    uint64_t epoch = 0;
    CHECK_OK(qk_election_campaign(e, 5 * SEC, &epoch, NULL));
    CHECK(epoch > w.lease.token);
    uint8_t leading = 0;
    CHECK_OK(qk_election_is_leader(e, &leading, NULL));
    CHECK(leading == 1);

    /* Kill -9 the replica a client finds as leader: after failover the
     * held lease is still held (a new leader honours it), and tokens rise. */
    qk_lease held;
    CHECK_OK(qk_lease_client_try_acquire(lc, STR("survives"), STR("alice"), 30 * SEC, QK_LEASE_EXCLUSIVE, &held,
                                         NULL));
    int killed = leader_of(c) - 1;
    CHECK(killed >= 0);
    if (killed >= 0) stop(c, killed);
    CHECK_ERR(qk_lease_client_try_acquire(lc, STR("survives"), STR("bob"), 5 * SEC, QK_LEASE_EXCLUSIVE, &b, NULL),
              QK_ERR_BUSY);
    qk_lease after;
    CHECK_OK(qk_lease_client_try_acquire(lc, STR("after"), STR("bob"), 5 * SEC, QK_LEASE_EXCLUSIVE, &after, NULL));
    CHECK(after.token > held.token);
    CHECK_OK(qk_lease_client_release(lc, STR("survives"), STR("alice"), held.token, NULL));
    CHECK_OK(qk_election_resign(e, NULL));
    qk_election_free(e);
    qk_lease_client_free(lc);
}

void test_lease_client(void) {
    dead_cluster();
    struct cluster c = {0};
    if (!start_cluster(&c)) {
        fprintf(stderr, "test_lease_client: cannot start %s (build it: make bin)\n", binary());
        CHECK(0);
        return;
    }
    leases_and_failover(&c);
    stop_cluster(&c);
}
