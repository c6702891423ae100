/* qk_redis_lease_table against a redis-server this test starts itself on a
 * free loopback port in a temp dir, and stops by its PID. */
#define _DEFAULT_SOURCE /* mkdtemp */
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

#define REDIS_SERVER "/usr/bin/redis-server"
#define SEC 1000000000ull
#define MS 1000000ull

/* Whether the server on `port` is process `pid` (INFO's process_id). */
static int answers_as(int port, pid_t pid) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ok = 0;
    if (connect(s, (struct sockaddr *)&a, sizeof a) == 0) {
        const char *req = "INFO server\r\n";
        char buf[8192] = {0}, want[64];
        snprintf(want, sizeof want, "process_id:%d\r", (int)pid);
        if (write(s, req, strlen(req)) == (ssize_t)strlen(req)) {
            size_t got = 0;
            for (int i = 0; i < 50 && got < sizeof buf - 1; i++) {
                ssize_t n = read(s, buf + got, sizeof buf - 1 - got);
                if (n <= 0) break;
                got += (size_t)n;
                if (strstr(buf, "\r\n\r\n")) break;
            }
            ok = strstr(buf, want) != NULL;
        }
    }
    close(s);
    return ok;
}

struct server {
    pid_t pid;
    int port;
    char dir[64];
    int tls_port; /* set by start_tls_server */
};

/* With tls: also a TLS port, serving the self-signed dir/cert.pem. */
static int spawn_server(struct server *srv, int tls) {
    snprintf(srv->dir, sizeof srv->dir, "/tmp/qk-redis-c-XXXXXX");
    if (!mkdtemp(srv->dir)) return 0;
    char cert[128], key[128];
    snprintf(cert, sizeof cert, "%s/cert.pem", srv->dir);
    snprintf(key, sizeof key, "%s/key.pem", srv->dir);
    if (tls) {
        char cmd[512];
        snprintf(cmd, sizeof cmd,
                 "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 "
                 "-addext subjectAltName=IP:127.0.0.1 -keyout %s -out %s >/dev/null 2>&1",
                 key, cert);
        if (system(cmd) != 0) return 0;
    }
    for (int attempt = 0; attempt < 5; attempt++) {
        srv->port = free_port();
        srv->tls_port = tls ? free_port() : 0;
        char port[16], tls_port[16];
        snprintf(port, sizeof port, "%d", srv->port);
        snprintf(tls_port, sizeof tls_port, "%d", srv->tls_port);
        fflush(NULL); /* else the child's exit would print buffered output again */
        pid_t pid = fork();
        if (pid == 0) {
            freopen("/dev/null", "w", stdout);
            freopen("/dev/null", "w", stderr);
            if (tls)
                execl(REDIS_SERVER, REDIS_SERVER, "--port", port, "--bind", "127.0.0.1", "--save", "",
                      "--appendonly", "no", "--dir", srv->dir, "--tls-port", tls_port, "--tls-cert-file", cert,
                      "--tls-key-file", key, "--tls-ca-cert-file", cert, "--tls-auth-clients", "no",
                      (char *)NULL);
            else
                execl(REDIS_SERVER, REDIS_SERVER, "--port", port, "--bind", "127.0.0.1", "--save", "",
                      "--appendonly", "no", "--dir", srv->dir, (char *)NULL);
            _exit(127);
        }
        srv->pid = pid;
        for (int i = 0; i < 500; i++) {
            if (waitpid(pid, NULL, WNOHANG) == pid) break;
            if (answers_as(srv->port, pid)) return 1;
            nap_ms(10);
        }
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    return 0;
}

static int start_server(struct server *srv) { return spawn_server(srv, 0); }

static void stop_server(struct server *srv) {
    if (srv->pid > 0) {
        kill(srv->pid, SIGKILL);
        waitpid(srv->pid, NULL, 0);
        srv->pid = 0;
    }
    char path[128];
    snprintf(path, sizeof path, "%s/cert.pem", srv->dir);
    unlink(path);
    snprintf(path, sizeof path, "%s/key.pem", srv->dir);
    unlink(path);
    rmdir(srv->dir);
}

struct waiter {
    const qk_redis_lease_table *t;
    const qk_cancel *cancel;
    const char *owner;
    qk_status status;
    qk_lease lease;
    qk_error err;
};

static void *wait_lease(void *arg) {
    struct waiter *w = arg;
    w->status = qk_redis_lease_table_acquire(w->t, STR("res"), STR(w->owner), 30 * SEC, QK_LEASE_EXCLUSIVE,
                                             QK_TIMEOUT_FOREVER, w->cancel, &w->lease, &w->err);
    return NULL;
}

static size_t queued(const qk_redis_lease_table *t) {
    size_t n = 0;
    CHECK_OK(qk_redis_lease_table_queue_len(t, STR("res"), &n, NULL));
    return n;
}

struct lost_note {
    pthread_mutex_t mu;
    int calls;
    qk_status status;
    char message[256];
};

static void on_lost(void *user_data, qk_status status, const char *message) {
    struct lost_note *n = user_data;
    pthread_mutex_lock(&n->mu);
    n->calls++;
    n->status = status;
    snprintf(n->message, sizeof n->message, "%s", message);
    pthread_mutex_unlock(&n->mu);
}

static int lost_calls(struct lost_note *n) {
    pthread_mutex_lock(&n->mu);
    int c = n->calls;
    pthread_mutex_unlock(&n->mu);
    return c;
}

/* The table's renewer keeps a lease alive; a loss is told to the callback once. */
static void keep_alive_case(const qk_redis_lease_table *t) {
    qk_lease l, now, x;
    CHECK_OK(qk_redis_lease_table_acquire(t, STR("ka"), STR("k"), 300 * MS, QK_LEASE_EXCLUSIVE, 0, NULL, &l, NULL));
    qk_keep_alive *k = NULL;
    CHECK_OK(qk_redis_lease_table_keep_alive(t, STR("ka"), STR("k"), &l, 300 * MS, &k, NULL));
    struct lost_note note = {PTHREAD_MUTEX_INITIALIZER, 0, QK_OK, ""};
    CHECK_OK(qk_keep_alive_on_lost(k, on_lost, &note, NULL));
    nap_ms(700); /* past two TTLs: alive only through renewals */
    uint8_t lost = 9;
    uint64_t renewals = 0;
    CHECK_OK(qk_keep_alive_is_lost(k, &lost, NULL));
    CHECK(lost == 0);
    CHECK_OK(qk_keep_alive_lease(k, &now, &renewals, NULL));
    CHECK(renewals >= 3 && now.token == l.token && now.expires_at_ns > l.expires_at_ns);
    CHECK_ERR(qk_redis_lease_table_try_acquire(t, STR("ka"), STR("y"), SEC, QK_LEASE_EXCLUSIVE, &x, NULL), QK_ERR_BUSY);
    CHECK(lost_calls(&note) == 0);
    /* Taken away behind the renewer's back: lost at its next renewal. */
    CHECK_OK(qk_redis_lease_table_release(t, STR("ka"), STR("k"), l.token, NULL));
    CHECK_OK(qk_keep_alive_wait_lost(k, 2 * SEC, &lost, NULL));
    CHECK(lost == 1);
    for (int i = 0; i < 200 && lost_calls(&note) == 0; i++) nap_ms(5);
    CHECK(lost_calls(&note) == 1 && note.status == QK_ERR_NOT_HOLDER && strstr(note.message, "ka"));
    qk_error err;
    CHECK_ERR(qk_keep_alive_release(k, &err), QK_ERR_NOT_HOLDER);
    CHECK(err.status == QK_ERR_NOT_HOLDER);
    /* Registered after the loss: told at once, inside the call. */
    struct lost_note late = {PTHREAD_MUTEX_INITIALIZER, 0, QK_OK, ""};
    CHECK_OK(qk_keep_alive_on_lost(k, on_lost, &late, NULL));
    CHECK(lost_calls(&late) == 1 && late.status == QK_ERR_NOT_HOLDER);
    CHECK(lost_calls(&note) == 1);
    qk_keep_alive_free(k);

    /* Freeing a keep-alive that still holds releases the lease. */
    CHECK_OK(qk_redis_lease_table_acquire(t, STR("ka"), STR("k"), 300 * MS, QK_LEASE_EXCLUSIVE, 0, NULL, &l, NULL));
    k = NULL;
    CHECK_OK(qk_redis_lease_table_keep_alive(t, STR("ka"), STR("k"), &l, 300 * MS, &k, NULL));
    qk_keep_alive_free(k);
    CHECK_OK(qk_redis_lease_table_try_acquire(t, STR("ka"), STR("y"), SEC, QK_LEASE_EXCLUSIVE, &x, NULL));
    CHECK_OK(qk_redis_lease_table_release(t, STR("ka"), STR("y"), x.token, NULL));

    /* Bad input. */
    CHECK_ERR(qk_redis_lease_table_keep_alive(NULL, STR("ka"), STR("k"), &l, SEC, &k, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_redis_lease_table_keep_alive(t, STR("ka"), STR("k"), NULL, SEC, &k, &err), QK_ERR_NULL_ARG);
    CHECK(strstr(err.message, "lease") != NULL);
    CHECK_ERR(qk_redis_lease_table_keep_alive(t, STR("ka"), STR("k"), &l, SEC, NULL, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_redis_lease_table_keep_alive(t, STR("ka"), STR("k"), &l, 0, &k, NULL), QK_ERR_INVALID_ARG);
    qk_lease bad_mode = l;
    bad_mode.mode = 7;
    CHECK_ERR(qk_redis_lease_table_keep_alive(t, STR("ka"), STR("k"), &bad_mode, SEC, &k, NULL), QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_keep_alive_on_lost(NULL, on_lost, NULL, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_keep_alive_is_lost(NULL, &lost, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_keep_alive_wait_lost(NULL, 0, &lost, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_keep_alive_lease(NULL, &now, NULL, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_keep_alive_release(NULL, NULL), QK_ERR_NULL_ARG);
    qk_keep_alive_free(NULL);
}

/* rediss:// to a self-signed server: refused unless the URL says #insecure. */
static void tls_case(void) {
    struct server srv = {0};
    if (!spawn_server(&srv, 1)) {
        fprintf(stderr, "test_redis_lease: TLS case SKIPPED: openssl or a TLS redis-server missing\n");
        stop_server(&srv);
        return;
    }
    char url[96];
    qk_redis_lease_table *t = NULL;
    qk_error err;
    qk_lease l;
    snprintf(url, sizeof url, "rediss://127.0.0.1:%d", srv.tls_port);
    /* A generous connect timeout: under valgrind the TLS handshake alone can
     * take over a second, and a timeout would hide the certificate error. */
    REQUIRE(qk_redis_lease_table_new(url, NULL, 0, 20 * SEC, SEC, &t, NULL) == QK_OK);
    CHECK_ERR(qk_redis_lease_table_try_acquire(t, STR("r"), STR("o"), SEC, QK_LEASE_EXCLUSIVE, &l, &err),
              QK_ERR_BACKEND_UNAVAILABLE);
    if (strstr(err.message, "ert") == NULL) fprintf(stderr, "TLS refusal said: %s\n", err.message);
    CHECK(strstr(err.message, "ert") != NULL); /* the certificate is named */
    qk_redis_lease_table_free(t);
    snprintf(url, sizeof url, "rediss://127.0.0.1:%d/#insecure", srv.tls_port);
    REQUIRE(qk_redis_lease_table_new(url, NULL, 0, SEC, SEC, &t, NULL) == QK_OK);
    CHECK_OK(qk_redis_lease_table_try_acquire(t, STR("r"), STR("o"), SEC, QK_LEASE_EXCLUSIVE, &l, NULL));
    CHECK_OK(qk_redis_lease_table_release(t, STR("r"), STR("o"), l.token, NULL));
    qk_redis_lease_table_free(t);
    stop_server(&srv);
}

#define REDIS_CLI "/usr/bin/redis-cli"

/* Three masters joined by redis-cli --cluster create; ports in ports[3]. */
static int start_cluster(pid_t pids[3], int ports[3], char *dir, size_t dir_len) {
    snprintf(dir, dir_len, "/tmp/qk-cluster-c-XXXXXX");
    if (!mkdtemp(dir)) return 0;
    for (int i = 0; i < 3; i++) {
        ports[i] = free_port();
        char port[16], bus[16], conf[32];
        snprintf(port, sizeof port, "%d", ports[i]);
        snprintf(bus, sizeof bus, "%d", free_port());
        snprintf(conf, sizeof conf, "nodes-%d.conf", i);
        fflush(NULL); /* else the child's exit would print buffered output again */
        pid_t pid = fork();
        if (pid == 0) {
            freopen("/dev/null", "w", stdout);
            freopen("/dev/null", "w", stderr);
            execl(REDIS_SERVER, REDIS_SERVER, "--port", port, "--bind", "127.0.0.1", "--cluster-enabled", "yes",
                  "--cluster-port", bus, "--cluster-config-file", conf, "--save", "", "--appendonly", "no",
                  "--dir", dir, (char *)NULL);
            _exit(127);
        }
        pids[i] = pid;
    }
    for (int i = 0; i < 3; i++) {
        int up = 0;
        for (int k = 0; k < 500 && !up; k++) {
            up = answers_as(ports[i], pids[i]);
            if (!up) nap_ms(10);
        }
        if (!up) return 0;
    }
    char cmd[512];
    snprintf(cmd, sizeof cmd,
             REDIS_CLI " --cluster create 127.0.0.1:%d 127.0.0.1:%d 127.0.0.1:%d --cluster-replicas 0 "
                       "--cluster-yes >/dev/null 2>&1",
             ports[0], ports[1], ports[2]);
    if (system(cmd) != 0) return 0;
    for (int k = 0; k < 400; k++) {
        int ok = 1;
        for (int i = 0; i < 3 && ok; i++) {
            snprintf(cmd, sizeof cmd, REDIS_CLI " -p %d CLUSTER INFO | grep -q cluster_state:ok", ports[i]);
            ok = system(cmd) == 0;
        }
        if (ok) return 1;
        nap_ms(50);
    }
    return 0;
}

/* The table on a Redis Cluster: grants on resources spread over the masters,
 * a blocked waiter's hand-off, and a cluster URL with a database refused. */
static void cluster_case(void) {
    pid_t pids[3] = {0, 0, 0};
    int ports[3];
    char dir[64];
    if (access(REDIS_CLI, X_OK) != 0) {
        fprintf(stderr, "test_redis_lease: cluster case SKIPPED: %s missing\n", REDIS_CLI);
        return;
    }
    REQUIRE(start_cluster(pids, ports, dir, sizeof dir));
    char url[128];
    snprintf(url, sizeof url, "redis-cluster://127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d", ports[0], ports[1],
             ports[2]);
    qk_redis_lease_table *t = NULL;
    REQUIRE(qk_redis_lease_table_new(url, STR("ccl"), SEC, SEC, &t, NULL) == QK_OK);
    qk_lease held[12], x;
    char name[16];
    for (int i = 0; i < 12; i++) {
        snprintf(name, sizeof name, "res-%d", i);
        CHECK_OK(qk_redis_lease_table_acquire(t, name, strlen(name), STR("a"), 10 * SEC, QK_LEASE_EXCLUSIVE, 0, NULL,
                                              &held[i], NULL));
        CHECK_ERR(qk_redis_lease_table_try_acquire(t, name, strlen(name), STR("b"), SEC, QK_LEASE_EXCLUSIVE, &x, NULL),
                  QK_ERR_BUSY);
    }
    /* Every master holds some of the keys. */
    for (int i = 0; i < 3; i++) {
        char cmd[128];
        snprintf(cmd, sizeof cmd, REDIS_CLI " -p %d --scan | grep -q ccl", ports[i]);
        CHECK(system(cmd) == 0);
    }
    for (int i = 0; i < 12; i++) {
        snprintf(name, sizeof name, "res-%d", i);
        CHECK_OK(qk_redis_lease_table_release(t, name, strlen(name), STR("a"), held[i].token, NULL));
    }
    /* A blocked waiter gets the lease at the release. */
    qk_lease a;
    CHECK_OK(qk_redis_lease_table_acquire(t, STR("res"), STR("a"), 30 * SEC, QK_LEASE_EXCLUSIVE, 0, NULL, &a, NULL));
    struct waiter b = {t, NULL, "b", -1, {0}, {0}};
    pthread_t tb;
    REQUIRE(pthread_create(&tb, NULL, wait_lease, &b) == 0);
    for (int i = 0; i < 500 && queued(t) < 1; i++) nap_ms(5);
    CHECK(queued(t) == 1);
    CHECK_OK(qk_redis_lease_table_release(t, STR("res"), STR("a"), a.token, NULL));
    REQUIRE(pthread_join(tb, NULL) == 0);
    CHECK(b.status == QK_OK && b.lease.token > a.token);
    CHECK_OK(qk_redis_lease_table_release(t, STR("res"), STR("b"), b.lease.token, NULL));
    qk_redis_lease_table_free(t);
    qk_error err;
    qk_redis_lease_table *bad = NULL;
    CHECK_ERR(qk_redis_lease_table_new("redis-cluster://127.0.0.1:1/3", NULL, 0, 0, 0, &bad, &err),
              QK_ERR_INVALID_ARG);
    CHECK(strstr(err.message, "database") != NULL && bad == NULL);
    for (int i = 0; i < 3; i++) {
        if (pids[i] > 0) {
            kill(pids[i], SIGKILL);
            waitpid(pids[i], NULL, 0);
        }
    }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
}

void test_redis_lease(void) {
    if (access(REDIS_SERVER, X_OK) != 0) {
        fprintf(stderr, "test_redis_lease: SKIPPED: %s missing (make sysdeps installs it)\n", REDIS_SERVER);
        return;
    }
    tls_case();
    cluster_case();
    struct server srv = {0};
    REQUIRE(start_server(&srv));
    char url[64];
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", srv.port);
    qk_redis_lease_table *t = NULL;
    qk_error err;
    REQUIRE(qk_redis_lease_table_new(url, STR("ctest"), 500 * MS, 500 * MS, &t, &err) == QK_OK);

    /* Grant, busy, FIFO hand-off to a blocked thread, tokens increasing. */
    qk_lease a, x;
    CHECK_OK(qk_redis_lease_table_acquire(t, STR("res"), STR("a"), 30 * SEC, QK_LEASE_EXCLUSIVE, 0, NULL, &a, NULL));
    CHECK_ERR(qk_redis_lease_table_try_acquire(t, STR("res"), STR("x"), SEC, QK_LEASE_EXCLUSIVE, &x, NULL),
              QK_ERR_BUSY);
    CHECK_ERR(qk_redis_lease_table_acquire(t, STR("res"), STR("x"), SEC, QK_LEASE_EXCLUSIVE, 0, NULL, &x, NULL),
              QK_ERR_TIMEOUT);
    struct waiter b = {t, NULL, "b", -1, {0}, {0}};
    pthread_t tb;
    REQUIRE(pthread_create(&tb, NULL, wait_lease, &b) == 0);
    for (int i = 0; i < 500 && queued(t) < 1; i++) nap_ms(5);
    CHECK_OK(qk_redis_lease_table_release(t, STR("res"), STR("a"), a.token, NULL));
    REQUIRE(pthread_join(tb, NULL) == 0);
    CHECK(b.status == QK_OK && b.lease.token > a.token);
    /* Owner checks: not the holder vs. the holder. */
    CHECK_ERR(qk_redis_lease_table_release(t, STR("res"), STR("a"), a.token, &err), QK_ERR_NOT_HOLDER);
    CHECK(err.status == QK_ERR_NOT_HOLDER && strstr(err.message, "res"));
    qk_lease renewed;
    CHECK_OK(qk_redis_lease_table_renew(t, STR("res"), STR("b"), b.lease.token, 10 * SEC, &renewed, NULL));
    CHECK(renewed.token == b.lease.token);

    /* A cancel stops a waiter blocked with no timeout, and withdraws it. */
    qk_cancel *c = NULL;
    REQUIRE(qk_cancel_new(&c, NULL) == QK_OK);
    struct waiter w = {t, c, "w", -1, {0}, {0}};
    pthread_t tw;
    REQUIRE(pthread_create(&tw, NULL, wait_lease, &w) == 0);
    for (int i = 0; i < 500 && queued(t) < 1; i++) nap_ms(5);
    nap_ms(50); /* into its blocking read */
    struct timespec c0, c1;
    clock_gettime(CLOCK_MONOTONIC, &c0);
    CHECK_OK(qk_cancel_fire(c, NULL));
    REQUIRE(pthread_join(tw, NULL) == 0);
    clock_gettime(CLOCK_MONOTONIC, &c1);
    /* Woken by the cancel, not by its next re-check (1 s away). */
    long cancel_ms = (c1.tv_sec - c0.tv_sec) * 1000 + (c1.tv_nsec - c0.tv_nsec) / 1000000;
    CHECK(cancel_ms < 300);
    CHECK(w.status == QK_ERR_CANCELLED && w.err.status == QK_ERR_CANCELLED);
    CHECK(queued(t) == 0);
    qk_cancel_free(c);

    /* Freeing the table cancels its blocked acquires and waits for them. */
    struct waiter f = {t, NULL, "f", -1, {0}, {0}};
    pthread_t tf;
    REQUIRE(pthread_create(&tf, NULL, wait_lease, &f) == 0);
    for (int i = 0; i < 500 && queued(t) < 1; i++) nap_ms(5);
    qk_redis_lease_table_free(t);
    REQUIRE(pthread_join(tf, NULL) == 0);
    CHECK(f.status == QK_ERR_CANCELLED);

    /* Bad input. */
    qk_redis_lease_table *bad = NULL;
    CHECK_ERR(qk_redis_lease_table_new(NULL, NULL, 0, 0, 0, &bad, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_redis_lease_table_new("http://nope", NULL, 0, 0, 0, &bad, &err), QK_ERR_INVALID_ARG);
    CHECK(strlen(err.message) > 0 && bad == NULL);
    CHECK_ERR(qk_redis_lease_table_new(url, STR("bad{ns}"), 0, 0, &bad, NULL), QK_ERR_INVALID_ARG);
    REQUIRE(qk_redis_lease_table_new(url, NULL, 0, 500 * MS, 500 * MS, &t, NULL) == QK_OK);
    CHECK_ERR(qk_redis_lease_table_try_acquire(t, STR("r"), STR("o"), SEC, 7, &x, NULL), QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_redis_lease_table_try_acquire(t, STR("r"), STR("o"), 0, QK_LEASE_EXCLUSIVE, &x, NULL),
              QK_ERR_INVALID_ARG);
    CHECK_ERR(qk_redis_lease_table_try_acquire(t, STR("r"), STR("o"), SEC, QK_LEASE_EXCLUSIVE, NULL, NULL),
              QK_ERR_NULL_ARG);
    /* NULL arguments, each with a message naming the argument. */
    size_t qn = 0;
    CHECK_ERR(qk_redis_lease_table_acquire(NULL, STR("r"), STR("o"), SEC, QK_LEASE_EXCLUSIVE, 0, NULL, &x, &err),
              QK_ERR_NULL_ARG);
    CHECK(strstr(err.message, "table") != NULL);
    CHECK_ERR(qk_redis_lease_table_acquire(t, NULL, 1, STR("o"), SEC, QK_LEASE_EXCLUSIVE, 0, NULL, &x, &err),
              QK_ERR_NULL_ARG);
    CHECK(strstr(err.message, "resource") != NULL);
    CHECK_ERR(qk_redis_lease_table_acquire(t, STR("r"), NULL, 1, SEC, QK_LEASE_EXCLUSIVE, 0, NULL, &x, &err),
              QK_ERR_NULL_ARG);
    CHECK(strstr(err.message, "owner") != NULL);
    CHECK_ERR(qk_redis_lease_table_acquire(t, STR("r"), STR("o"), SEC, QK_LEASE_EXCLUSIVE, 0, NULL, NULL, NULL),
              QK_ERR_NULL_ARG);
    CHECK_ERR(qk_redis_lease_table_renew(NULL, STR("r"), STR("o"), 1, SEC, &x, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_redis_lease_table_renew(t, STR("r"), STR("o"), 1, SEC, NULL, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_redis_lease_table_release(NULL, STR("r"), STR("o"), 1, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_redis_lease_table_release(t, NULL, 1, STR("o"), 1, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_redis_lease_table_queue_len(NULL, STR("r"), &qn, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_redis_lease_table_queue_len(t, STR("r"), NULL, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_redis_lease_table_new(url, NULL, 0, 0, 0, NULL, NULL), QK_ERR_NULL_ARG);
    CHECK_ERR(qk_redis_lease_table_new("redis://127.0.0.1:notaport", NULL, 0, 0, 0, &bad, &err),
              QK_ERR_INVALID_ARG);
    CHECK(strstr(err.message, "URL") != NULL && bad == NULL);
    /* Renew and release of a lease that is not held: NOT_HOLDER, not a crash. */
    CHECK_ERR(qk_redis_lease_table_renew(t, STR("r"), STR("o"), 12345, SEC, &x, NULL), QK_ERR_NOT_HOLDER);

    keep_alive_case(t);

    /* Leader election over Redis: the epoch is the lease's token. */
    qk_election *ea = NULL, *eb = NULL;
    REQUIRE(qk_election_new_redis(t, STR("svc"), STR("a"), 2 * SEC, &ea, NULL) == QK_OK);
    REQUIRE(qk_election_new_redis(t, STR("svc"), STR("b"), 2 * SEC, &eb, NULL) == QK_OK);
    uint64_t epa = 0, epb = 0;
    CHECK_OK(qk_election_campaign(ea, SEC, &epa, NULL));
    CHECK_ERR(qk_election_campaign(eb, 50 * MS, &epb, NULL), QK_ERR_TIMEOUT);
    CHECK_OK(qk_election_resign(ea, NULL));
    CHECK_OK(qk_election_campaign(eb, SEC, &epb, NULL));
    CHECK(epb > epa);
    char leader[16];
    size_t leader_len = 0;
    uint64_t leader_epoch = 0;
    uint8_t has = 0;
    CHECK_OK(qk_election_leader(ea, leader, sizeof leader, &leader_len, &leader_epoch, &has, NULL));
    CHECK(has == 1 && leader_len == 1 && leader[0] == 'b' && leader_epoch == epb);
    qk_election_free(eb);
    qk_election_free(ea);

    /* Redis down: a clean error within the timeouts, not a hang. */
    stop_server(&srv);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    CHECK_ERR(qk_redis_lease_table_try_acquire(t, STR("r"), STR("o"), SEC, QK_LEASE_EXCLUSIVE, &x, &err),
              QK_ERR_BACKEND_UNAVAILABLE);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    CHECK(t1.tv_sec - t0.tv_sec < 3);
    CHECK(strlen(err.message) > 0);
    CHECK_ERR(qk_redis_lease_table_acquire(t, STR("r"), STR("o"), SEC, QK_LEASE_EXCLUSIVE, SEC, NULL, &x, &err),
              QK_ERR_BACKEND_UNAVAILABLE);
    CHECK(strstr(err.message, "redis") != NULL);
    CHECK_ERR(qk_redis_lease_table_renew(t, STR("r"), STR("o"), 1, SEC, &x, NULL), QK_ERR_BACKEND_UNAVAILABLE);
    CHECK_ERR(qk_redis_lease_table_release(t, STR("r"), STR("o"), 1, NULL), QK_ERR_BACKEND_UNAVAILABLE);
    CHECK_ERR(qk_redis_lease_table_queue_len(t, STR("r"), &qn, NULL), QK_ERR_BACKEND_UNAVAILABLE);
    qk_redis_lease_table_free(t);
    qk_redis_lease_table_free(NULL);
}
