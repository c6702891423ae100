/* A consistent-hash ring from C: place keys on three cache nodes, then see
 * which keys move when one node leaves.
 *
 * Build (with quorumkit's pkg-config file on PKG_CONFIG_PATH):
 *   cc ring_example.c $(pkg-config --cflags --libs quorumkit) -o ring_example
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <quorumkit.h>

/* Prints the failed call's status and message, then exits. */
static void check(qk_status status, const char *what) {
    if (status != QK_OK) {
        fprintf(stderr, "%s: %s: %s\n", what, qk_status_str(status), qk_last_error_message());
        exit(1);
    }
}

static const char *node_name(const qk_ring *ring, size_t index) {
    const char *name;
    size_t len;
    check(qk_ring_node_name(ring, index, &name, &len, NULL), "qk_ring_node_name");
    return name; /* borrowed: valid until the ring changes */
}

int main(void) {
    printf("quorumkit %s\n", qk_version());

    qk_ring *ring = NULL;
    check(qk_ring_new(0, &ring, NULL), "qk_ring_new");
    const char *nodes[] = {"cache-a", "cache-b", "cache-c"};
    for (size_t i = 0; i < 3; i++)
        check(qk_ring_add_node(ring, nodes[i], strlen(nodes[i]), i == 2 ? 2 : 1, NULL), "add");

    const char *keys[] = {"user:1", "user:2", "user:3", "session:9", "cart:42"};
    size_t before[5];
    for (size_t k = 0; k < 5; k++) {
        check(qk_ring_get_node(ring, (const uint8_t *)keys[k], strlen(keys[k]), &before[k], NULL),
              "qk_ring_get_node");
        size_t replicas[2];
        check(qk_ring_get_nodes(ring, (const uint8_t *)keys[k], strlen(keys[k]), 2, replicas, NULL),
              "qk_ring_get_nodes");
        printf("%-10s -> %s (replica on %s)\n", keys[k], node_name(ring, replicas[0]),
               node_name(ring, replicas[1]));
    }

    double shares[3];
    check(qk_ring_shares(ring, shares, 3, NULL), "qk_ring_shares");
    for (size_t i = 0; i < 3; i++) printf("%s owns %.1f%%\n", nodes[i], 100 * shares[i]);

    /* Errors come back as a status plus a message. */
    qk_status s = qk_ring_add_node(ring, "cache-a", 7, 1, NULL);
    printf("adding cache-a again: %s (%s)\n", qk_status_str(s), qk_last_error_message());

    /* Copy names before changing the ring: borrowed names become invalid. */
    char owner[5][16];
    for (size_t k = 0; k < 5; k++) snprintf(owner[k], sizeof owner[k], "%s", node_name(ring, before[k]));
    check(qk_ring_remove_node(ring, "cache-b", 7, NULL), "qk_ring_remove_node");
    for (size_t k = 0; k < 5; k++) {
        size_t now;
        check(qk_ring_get_node(ring, (const uint8_t *)keys[k], strlen(keys[k]), &now, NULL), "lookup");
        if (strcmp(owner[k], node_name(ring, now)) != 0)
            printf("%s moved from %s to %s\n", keys[k], owner[k], node_name(ring, now));
    }

    qk_ring_free(ring);
    return 0;
}
