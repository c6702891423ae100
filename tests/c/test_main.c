/* The C tests of include/quorumkit.h: runs every group, prints the totals,
 * exits non-zero on any failure. */
#include "check.h"

static int passed, failed;

void check_true(int ok, const char *expr, const char *file, int line) {
    if (ok) {
        passed++;
    } else {
        failed++;
        fprintf(stderr, "%s:%d: CHECK failed: %s\n", file, line, expr);
    }
}

void check_status(qk_status got, qk_status want, const char *call, const char *file, int line) {
    const char *msg = qk_last_error_message();
    if (got != want) {
        failed++;
        fprintf(stderr, "%s:%d: %s returned %u (%s: %s), expected %u (%s)\n", file, line, call,
                got, qk_status_str(got), msg, want, qk_status_str(want));
        return;
    }
    /* The message describes the call that just returned. */
    if (msg == NULL || (want == QK_OK) != (msg[0] == '\0')) {
        failed++;
        fprintf(stderr, "%s:%d: %s: last error message \"%s\" does not fit status %u\n", file,
                line, call, msg ? msg : "(NULL)", got);
        return;
    }
    passed++;
}

static void test_basics(void) {
    /* Library and header agree. */
    CHECK(strcmp(qk_version(), QK_VERSION_STRING) == 0);
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", QK_VERSION_MAJOR, QK_VERSION_MINOR, QK_VERSION_PATCH);
    CHECK(strcmp(qk_version(), want) == 0);

    /* The ABI identity, checkable at run time: version and struct sizes. */
    CHECK(qk_abi_version() == QK_ABI_VERSION && QK_ABI_VERSION >= 1);
    CHECK(qk_sizeof_lease() == sizeof(qk_lease));
    CHECK(qk_sizeof_paxos_config() == sizeof(qk_paxos_config));
    CHECK(qk_sizeof_paxos_output() == sizeof(qk_paxos_output));
    CHECK(qk_sizeof_txn_config() == sizeof(qk_txn_config));
    CHECK(qk_sizeof_txn_output() == sizeof(qk_txn_output));
    CHECK(qk_sizeof_txn_stats() == sizeof(qk_txn_stats));
    CHECK(qk_sizeof_error() == sizeof(qk_error));
    CHECK(QK_ABI_VERSION == 2);

    /* Status codes are ABI: their numbers and names. */
    CHECK(QK_OK == 0 && QK_ERR_NULL_ARG == 1 && QK_ERR_INVALID_ARG == 2 &&
          QK_ERR_INVALID_UTF8 == 3 && QK_ERR_EMPTY == 4 && QK_ERR_NOT_FOUND == 5 &&
          QK_ERR_ALREADY_EXISTS == 6 && QK_ERR_BUFFER_TOO_SMALL == 7 && QK_ERR_PANIC == 8 &&
          QK_ERR_CORRUPT == 9 && QK_ERR_UNSUPPORTED_VERSION == 10);
    static const char *const names[] = {"ok",           "null argument",  "invalid argument",
                                        "invalid UTF-8", "empty ring",     "not found",
                                        "already exists", "buffer too small", "internal panic",
                                        "corrupt data",  "unsupported version"};
    for (qk_status s = 0; s <= QK_ERR_UNSUPPORTED_VERSION; s++) CHECK(strcmp(qk_status_str(s), names[s]) == 0);
    CHECK(strcmp(qk_status_str(11), "unknown status") == 0);
    CHECK(strcmp(qk_status_str(0xffffffffu), "unknown status") == 0);

    /* The last-error message: "" until a call fails, cleared by a success. */
    CHECK(qk_last_error_message() != NULL);
    uint64_t h = SENTINEL_U64;
    CHECK_ERR(qk_hash_key(KEY("k"), NULL, NULL), QK_ERR_NULL_ARG);
    CHECK(strstr(qk_last_error_message(), "hash_out") != NULL);
    /* Names and the version do not touch it. */
    (void)qk_status_str(QK_OK);
    (void)qk_version();
    CHECK(strstr(qk_last_error_message(), "hash_out") != NULL);
    CHECK_OK(qk_hash_key(KEY("k"), &h, NULL));
    CHECK(qk_last_error_message()[0] == '\0');
}

int main(void) {
    test_basics();
    test_ring();
    test_ketama();
    test_threads();
    test_bounded();
    test_snapshot();
    test_algos();
    test_md5ring();
    test_lease();
    test_detect();
    test_paxos();
    test_batch_flat();
    test_txn();
    test_errors();
    test_election();
    test_redis_lease();
    test_lease_client();
    test_replica();
    printf("c tests: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
