/* A tiny test harness for the C tests: each CHECK counts a pass or prints
 * file:line and counts a failure; test_main.c prints the totals and exits
 * non-zero when anything failed. */
#ifndef QK_TEST_CHECK_H
#define QK_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "quorumkit.h"

void check_true(int ok, const char *expr, const char *file, int line);
void check_status(qk_status got, qk_status want, const char *call, const char *file, int line);

/* A condition. */
#define CHECK(cond) check_true(!!(cond), #cond, __FILE__, __LINE__)
/* A call returns QK_OK (and leaves qk_last_error_message() empty). */
#define CHECK_OK(call) check_status((call), QK_OK, #call, __FILE__, __LINE__)
/* A call fails with `code` and sets a non-empty qk_last_error_message(). */
#define CHECK_ERR(call, code) check_status((call), (code), #call, __FILE__, __LINE__)
/* A condition the rest of the test cannot go on without. */
#define REQUIRE(cond)                                                          \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: REQUIRE failed: %s\n", __FILE__, __LINE__, \
                    #cond);                                                    \
            exit(2);                                                           \
        }                                                                      \
    } while (0)

/* Sentinels: out-parameters must keep them when a call fails. */
#define SENTINEL_SIZE ((size_t)0x5a5a5a5a)
#define SENTINEL_U32 0xa5a5a5a5u
#define SENTINEL_U64 0xa5a5a5a5a5a5a5a5ull

/* Sleeps `ms` milliseconds; a free TCP port on 127.0.0.1 (net_util.c). */
void nap_ms(long ms);
int free_port(void);

/* Helpers over NUL-terminated strings. */
#define STR(s) (s), strlen(s)
#define KEY(s) (const uint8_t *)(s), strlen(s)

void test_ring(void);
void test_ketama(void);
void test_threads(void);
void test_bounded(void);
void test_snapshot(void);
void test_algos(void);
void test_md5ring(void);
void test_lease(void);
void test_detect(void);
void test_paxos(void);
void test_batch_flat(void);
void test_txn(void);
void test_errors(void);
void test_election(void);
void test_redis_lease(void);
void test_lease_client(void);
void test_replica(void);

#endif
