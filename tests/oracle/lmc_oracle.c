/*
 * lmc_oracle: ask libmemcached (1.1.4, weighted ketama) where keys go.
 *
 * The reference implementation for quorumkit's KetamaRing(compat="libmemcached").
 * Build:  gcc -O2 -Wall -Wextra -o lmc_oracle tests/oracle/lmc_oracle.c -lmemcached
 *
 * Input (stdin), one command per line; hosts and keys are hex-encoded bytes
 * so any byte string survives ("-" stands for the empty key):
 *
 *   server <host-hex> <port> <weight>   add a server (in order; before any key)
 *   key <key-hex>                       locate a key
 *
 * Output (stdout): after the last server and before the first key's answer,
 * one line per server as libmemcached stored it,
 *
 *   server <index> <port> <host-hex>
 *
 * then one line per key: the server index from memcached_generate_hash().
 * Errors go to stderr with exit status 2.
 *
 * The servers are added with memcached_server_add_with_weight() on a
 * memcached_st from memcached_create(NULL) with
 * MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED = 1 (ketama distribution, MD5 hash,
 * points proportional to weight). No connection is ever made.
 *
 * libmemcached 1.1.4 aborts (an assertion in update_continuum) when a ketama
 * continuum has more than 100 servers: the oracle covers 1..100 servers.
 */
#include <libmemcached/memcached.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void die(const char *what, unsigned long line)
{
    fprintf(stderr, "lmc_oracle: line %lu: %s\n", line, what);
    exit(2);
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c = tolower(c);
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* Decodes hex `s` (or "-" for empty) into `out`; returns the length or -1. */
static long unhex(const char *s, char *out, size_t cap)
{
    if (strcmp(s, "-") == 0) return 0;
    size_t n = strlen(s);
    if (n % 2 != 0 || n / 2 > cap) return -1;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = hexval((unsigned char)s[2 * i]), lo = hexval((unsigned char)s[2 * i + 1]);
        if (hi < 0 || lo < 0) return -1;
        out[i] = (char)(hi * 16 + lo);
    }
    return (long)(n / 2);
}

static void print_hex(const char *s)
{
    if (*s == '\0') fputs("-", stdout);
    for (; *s; s++) printf("%02x", (unsigned char)*s);
}

int main(void)
{
    memcached_st *memc = memcached_create(NULL);
    if (memc == NULL) die("memcached_create failed", 0);
    if (memcached_behavior_set(memc, MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED, 1) != MEMCACHED_SUCCESS)
        die("cannot set MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED", 0);

    size_t cap = 1 << 20;
    char *line = malloc(cap);
    char *buf = malloc(cap);
    if (line == NULL || buf == NULL) die("out of memory", 0);

    unsigned long lineno = 0;
    int listed = 0;
    while (fgets(line, (int)cap, stdin) != NULL) {
        lineno++;
        size_t len = strlen(line);
        if (len == cap - 1 && line[len - 1] != '\n') die("line too long", lineno);
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        if (len == 0 || line[0] == '#') continue;

        char *cmd = strtok(line, " ");
        if (strcmp(cmd, "server") == 0) {
            if (listed) die("server after the first key", lineno);
            char *h = strtok(NULL, " "), *p = strtok(NULL, " "), *w = strtok(NULL, " ");
            if (h == NULL || p == NULL || w == NULL) die("expected: server <host-hex> <port> <weight>", lineno);
            long hl = unhex(h, buf, cap - 1);
            if (hl < 0) die("bad host hex", lineno);
            if (memchr(buf, '\0', (size_t)hl) != NULL) die("host contains a NUL byte", lineno);
            buf[hl] = '\0';
            unsigned long port = strtoul(p, NULL, 10), weight = strtoul(w, NULL, 10);
            memcached_return_t rc =
                memcached_server_add_with_weight(memc, buf, (in_port_t)port, (uint32_t)weight);
            if (rc != MEMCACHED_SUCCESS) {
                fprintf(stderr, "lmc_oracle: line %lu: memcached_server_add_with_weight: %s\n",
                        lineno, memcached_strerror(memc, rc));
                return 2;
            }
        } else if (strcmp(cmd, "key") == 0) {
            uint32_t count = memcached_server_count(memc);
            if (count == 0) die("key before any server", lineno);
            if (!listed) {
                for (uint32_t i = 0; i < count; i++) {
                    const memcached_instance_st *in = memcached_server_instance_by_position(memc, i);
                    printf("server %u %u ", i, (unsigned)memcached_server_port(in));
                    print_hex(memcached_server_name(in));
                    putchar('\n');
                }
                listed = 1;
            }
            char *k = strtok(NULL, " ");
            if (k == NULL) die("expected: key <key-hex>", lineno);
            long kl = unhex(k, buf, cap);
            if (kl < 0) die("bad key hex", lineno);
            uint32_t idx = memcached_generate_hash(memc, buf, (size_t)kl);
            if (idx >= count) die("memcached_generate_hash returned an index out of range", lineno);
            printf("%u\n", idx);
        } else {
            die("unknown command", lineno);
        }
    }
    memcached_free(memc);
    free(line);
    free(buf);
    return 0;
}
