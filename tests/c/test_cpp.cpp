// Tests of the C++17 wrapper bindings/cpp/quorumkit.hpp.
#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#include "quorumkit.hpp"

static int passed, failed;

#define CHECK(cond)                                                                 \
    do {                                                                            \
        if (cond) {                                                                 \
            passed++;                                                               \
        } else {                                                                    \
            failed++;                                                               \
            std::fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        }                                                                           \
    } while (0)

// `expr` throws quorumkit::Error with `code` and a non-empty message.
#define CHECK_THROWS(expr, code)                                                    \
    do {                                                                            \
        bool threw_ = false;                                                        \
        try {                                                                       \
            (void)(expr);                                                           \
        } catch (const quorumkit::Error &e) {                                       \
            threw_ = e.status() == (code) && std::strlen(e.what()) > 0;             \
            if (!threw_)                                                            \
                std::fprintf(stderr, "%s:%d: %s threw %u (%s)\n", __FILE__, __LINE__, \
                             #expr, e.status(), e.what());                          \
        }                                                                           \
        CHECK(threw_ && #expr);                                                     \
    } while (0)

using quorumkit::Ketama;
using quorumkit::Ring;

static_assert(!std::is_copy_constructible_v<Ring> && !std::is_copy_assignable_v<Ring>);
static_assert(std::is_nothrow_move_constructible_v<Ring> &&
              std::is_nothrow_move_assignable_v<Ring>);
static_assert(!std::is_copy_constructible_v<Ketama>);
static_assert(std::is_base_of_v<std::runtime_error, quorumkit::Error>);

static void test_ring() {
    Ring ring;
    CHECK(ring.empty() && ring.size() == 0);
    CHECK_THROWS(ring.get_node("k"), QK_ERR_EMPTY);
    ring.add_node("a");
    ring.add_node("b", 2);
    ring.add_node("c");
    CHECK(ring.size() == 3);
    CHECK(ring.point_count() == 160 * 4);
    CHECK((ring.node_names() == std::vector<std::string>{"a", "b", "c"}));
    CHECK(ring.contains("b") && !ring.contains("zz"));
    CHECK(ring.node_index("c") == 2);
    CHECK(ring.weight("b") == 2);

    // Errors throw with the status code and the detailed message.
    CHECK_THROWS(ring.add_node("a"), QK_ERR_ALREADY_EXISTS);
    CHECK_THROWS(ring.add_node("d", 0), QK_ERR_INVALID_ARG);
    CHECK_THROWS(ring.add_node(std::string_view("\xff", 1)), QK_ERR_INVALID_UTF8);
    CHECK_THROWS(ring.remove_node("zz"), QK_ERR_NOT_FOUND);
    CHECK_THROWS(ring.node_index("zz"), QK_ERR_NOT_FOUND);
    CHECK_THROWS(ring.node_name(3), QK_ERR_NOT_FOUND);
    CHECK_THROWS(ring.get_nodes("k", 4), QK_ERR_INVALID_ARG);
    try {
        ring.remove_node("zz");
    } catch (const quorumkit::Error &e) {
        CHECK(std::string(e.what()).find("zz") != std::string::npos);
        CHECK(std::string(e.status_name()) == "not found");
    }

    // Lookups agree with each other.
    std::vector<std::string> keys;
    for (int i = 0; i < 1000; i++) keys.push_back("key-" + std::to_string(i));
    std::vector<size_t> batch = ring.locate_batch(keys);
    bool same = batch.size() == keys.size();
    for (size_t i = 0; same && i < keys.size(); i++) {
        same = batch[i] == ring.locate(keys[i]) &&
               ring.get_node(keys[i]) == ring.node_name(batch[i]) &&
               ring.locate_hash(Ring::hash_key(keys[i])) == batch[i];
        std::vector<std::string> pref = ring.get_nodes(keys[i], 3);
        same = same && pref.size() == 3 && pref[0] == ring.get_node(keys[i]) &&
               pref[0] != pref[1] && pref[1] != pref[2] && pref[0] != pref[2];
    }
    CHECK(same);
    CHECK(Ring::hash_key("hello") == 0x32e1567f14de0f7dull);
    std::vector<double> shares = ring.shares();
    CHECK(shares.size() == 3 && std::fabs(shares[0] + shares[1] + shares[2] - 1.0) < 1e-9);

    ring.set_weight("b", 1);
    CHECK(ring.weight("b") == 1 && ring.point_count() == 160 * 3);
    ring.remove_node("a");
    CHECK((ring.node_names() == std::vector<std::string>{"b", "c"}));

    // Move-only ownership: the moved-from object holds no handle and fails cleanly.
    Ring other(std::move(ring));
    CHECK(other.size() == 2);
    CHECK(ring.get() == nullptr);
    CHECK_THROWS(ring.size(), QK_ERR_NULL_ARG);
    Ring third(8);
    third = std::move(other);
    CHECK(third.size() == 2 && other.get() == nullptr);
    qk_ring *raw = third.release();
    CHECK(raw != nullptr && third.get() == nullptr);
    qk_ring_free(raw);
}

static void test_ketama() {
    // libmemcached 1.1.4 vectors (tests/vectors/ketama-sample.json, "two_600_400").
    Ketama k(Ketama::Compat::Libmemcached, {{"127.0.0.1", 600}, {"127.0.0.1:11212", 400}});
    CHECK(k.size() == 2 && k.point_count() == 320);
    CHECK(k.get_node("9d9") == "127.0.0.1:11212");
    CHECK(k.get_node("key-0") == "127.0.0.1");
    CHECK(k.get_node("a") == "127.0.0.1:11212");
    CHECK(Ketama::hash_key("9d9") == 3114363270u);
    CHECK(k.locate_hash(Ketama::hash_key("key-0")) == k.locate("key-0"));
    auto [pos0, owner0] = k.point(0);
    auto [pos1, owner1] = k.point(1);
    CHECK(pos0 <= pos1 && owner0 < 2 && owner1 < 2);
    CHECK_THROWS(k.point(320), QK_ERR_NOT_FOUND);

    // uhashring breaks the "9d9" tie the other way.
    Ketama u(Ketama::Compat::Uhashring, {{"127.0.0.1", 600}, {"127.0.0.1:11212", 400}});
    CHECK(u.get_node("9d9") == "127.0.0.1");

    CHECK_THROWS(Ketama(static_cast<Ketama::Compat>(9)), QK_ERR_INVALID_ARG);
    CHECK_THROWS(Ketama(Ketama::Compat::Libmemcached, {{"h:1", 1}, {"h:1", 2}}),
                 QK_ERR_ALREADY_EXISTS);
    CHECK_THROWS(Ketama(Ketama::Compat::Libmemcached, {{"h:port", 1}}), QK_ERR_INVALID_ARG);

    Ketama grown(Ketama::Compat::Libmemcached);
    CHECK_THROWS(grown.get_node("k"), QK_ERR_EMPTY);
    grown.add_server("127.0.0.1", 600);
    grown.add_server("127.0.0.1:11212", 400);
    CHECK(grown.get_node("9d9") == "127.0.0.1:11212");
    CHECK_THROWS(grown.add_server("127.0.0.1"), QK_ERR_ALREADY_EXISTS);
    grown.set_weight("127.0.0.1", 1);
    CHECK(grown.weight("127.0.0.1") == 1);
    grown.remove_server("127.0.0.1");
    CHECK(grown.size() == 1 && grown.get_node("9d9") == "127.0.0.1:11212");
    CHECK((grown.get_nodes("x", 1) == std::vector<std::string>{"127.0.0.1:11212"}));
    CHECK(grown.shares() == std::vector<double>{1.0});

    Ketama moved(std::move(grown));
    CHECK(moved.size() == 1 && grown.get() == nullptr);
}

int main() {
    CHECK(quorumkit::version() == QK_VERSION_STRING);
    test_ring();
    test_ketama();
    std::printf("c++ tests: %d passed, %d failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
