// quorumkit.hpp: a header-only C++17 wrapper over the C API in quorumkit.h.
//
// RAII, move-only handles (quorumkit::Ring, quorumkit::Ketama) whose methods
// return std::string / std::vector and throw quorumkit::Error (a
// std::runtime_error carrying the qk_status) when the C call fails.
//
//     quorumkit::Ring ring;
//     ring.add_node("cache-a");
//     ring.add_node("cache-b", 2);
//     std::string node = ring.get_node("user:42");
//
// Thread safety is the C API's: const methods may run concurrently on one
// object; non-const methods need exclusive access.
//
// SPDX-License-Identifier: MIT OR Apache-2.0
#ifndef QUORUMKIT_HPP
#define QUORUMKIT_HPP

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "quorumkit.h"

namespace quorumkit {

// A failed call: what() is the library's detailed message, status() the code.
class Error : public std::runtime_error {
public:
    Error(qk_status status, const std::string &message)
        : std::runtime_error(message), status_(status) {}

    // The QK_ERR_* code.
    qk_status status() const noexcept { return status_; }
    // The code's static name ("not found", ...).
    const char *status_name() const noexcept { return qk_status_str(status_); }

private:
    qk_status status_;
};

// The library's version string ("MAJOR.MINOR.PATCH").
inline std::string version() { return qk_version(); }

namespace detail {

// Throws quorumkit::Error unless `status` is QK_OK.
inline void check(qk_status status) {
    if (status == QK_OK) return;
    std::string message = qk_last_error_message();
    if (message.empty()) message = qk_status_str(status);
    throw Error(status, message);
}

inline const uint8_t *bytes(std::string_view s) {
    return reinterpret_cast<const uint8_t *>(s.data());
}

// The C functions of one handle type, for the shared Placement base.
struct RingApi {
    using handle = qk_ring;
    static constexpr auto free = &qk_ring_free;
    static constexpr auto remove = &qk_ring_remove_node;
    static constexpr auto set_weight = &qk_ring_set_weight;
    static constexpr auto weight = &qk_ring_weight;
    static constexpr auto node_count = &qk_ring_node_count;
    static constexpr auto point_count = &qk_ring_point_count;
    static constexpr auto node_name = &qk_ring_node_name;
    static constexpr auto node_index = &qk_ring_node_index;
    static constexpr auto get_node = &qk_ring_get_node;
    static constexpr auto get_nodes = &qk_ring_get_nodes;
    static constexpr auto get_node_batch = &qk_ring_get_node_batch;
    static constexpr auto shares = &qk_ring_shares;
    using hash_type = std::uint64_t;
    static constexpr auto hash_key = &qk_hash_key;
    static constexpr auto get_node_by_hash = &qk_ring_get_node_by_hash;
};

struct KetamaApi {
    using handle = qk_ketama;
    static constexpr auto free = &qk_ketama_free;
    static constexpr auto remove = &qk_ketama_remove_server;
    static constexpr auto set_weight = &qk_ketama_set_weight;
    static constexpr auto weight = &qk_ketama_weight;
    static constexpr auto node_count = &qk_ketama_node_count;
    static constexpr auto point_count = &qk_ketama_point_count;
    static constexpr auto node_name = &qk_ketama_node_name;
    static constexpr auto node_index = &qk_ketama_node_index;
    static constexpr auto get_node = &qk_ketama_get_node;
    static constexpr auto get_nodes = &qk_ketama_get_nodes;
    static constexpr auto get_node_batch = &qk_ketama_get_node_batch;
    static constexpr auto shares = &qk_ketama_shares;
    using hash_type = std::uint32_t;
    static constexpr auto hash_key = &qk_ketama_hash;
    static constexpr auto get_node_by_hash = &qk_ketama_get_node_by_hash;
};

// What Ring and Ketama share: ownership of the handle, names, lookups.
template <class Api>
class Placement {
public:
    using handle_type = typename Api::handle;

    Placement(const Placement &) = delete;
    Placement &operator=(const Placement &) = delete;
    Placement(Placement &&other) noexcept : h_(std::exchange(other.h_, nullptr)) {}
    Placement &operator=(Placement &&other) noexcept {
        if (this != &other) {
            Api::free(h_);
            h_ = std::exchange(other.h_, nullptr);
        }
        return *this;
    }
    ~Placement() { Api::free(h_); }

    // The C handle, still owned by this object (NULL once moved from).
    const handle_type *get() const noexcept { return h_; }
    handle_type *get() noexcept { return h_; }
    // Gives up ownership: the caller must free the handle.
    handle_type *release() noexcept { return std::exchange(h_, nullptr); }

    // Number of nodes.
    std::size_t size() const {
        std::size_t n = 0;
        check(Api::node_count(h_, &n, nullptr));
        return n;
    }
    bool empty() const { return size() == 0; }

    // Number of points on the continuum.
    std::size_t point_count() const {
        std::size_t n = 0;
        check(Api::point_count(h_, &n, nullptr));
        return n;
    }

    // Name of node `index` (a copy).
    std::string node_name(std::size_t index) const {
        const char *name = nullptr;
        std::size_t len = 0;
        check(Api::node_name(h_, index, &name, &len, nullptr));
        return std::string(name, len);
    }

    // All node names in index order.
    std::vector<std::string> node_names() const {
        std::vector<std::string> out;
        const std::size_t n = size();
        out.reserve(n);
        for (std::size_t i = 0; i < n; i++) out.push_back(node_name(i));
        return out;
    }

    // Index of the named node; throws QK_ERR_NOT_FOUND.
    std::size_t node_index(std::string_view name) const {
        std::size_t index = 0;
        check(Api::node_index(h_, name.data(), name.size(), &index, nullptr));
        return index;
    }

    // True when the named node is present.
    bool contains(std::string_view name) const {
        std::size_t index = 0;
        qk_status s = Api::node_index(h_, name.data(), name.size(), &index, nullptr);
        if (s == QK_ERR_NOT_FOUND) return false;
        check(s);
        return true;
    }

    std::uint32_t weight(std::string_view name) const {
        std::uint32_t w = 0;
        check(Api::weight(h_, name.data(), name.size(), &w, nullptr));
        return w;
    }

    void set_weight(std::string_view name, std::uint32_t weight) {
        check(Api::set_weight(h_, name.data(), name.size(), weight, nullptr));
    }

    // Index of the node owning `key`.
    std::size_t locate(std::string_view key) const {
        std::size_t index = 0;
        check(Api::get_node(h_, bytes(key), key.size(), &index, nullptr));
        return index;
    }

    // Name of the node owning `key`.
    std::string get_node(std::string_view key) const { return node_name(locate(key)); }

    // Indices of the first `n` distinct nodes for `key`, in preference order.
    std::vector<std::size_t> locate_n(std::string_view key, std::size_t n) const {
        std::vector<std::size_t> out(n);
        check(Api::get_nodes(h_, bytes(key), key.size(), n, out.data(), nullptr));
        return out;
    }

    // Names of the first `n` distinct nodes for `key`.
    std::vector<std::string> get_nodes(std::string_view key, std::size_t n) const {
        std::vector<std::string> out;
        out.reserve(n);
        for (std::size_t i : locate_n(key, n)) out.push_back(node_name(i));
        return out;
    }

    // Node indices of many keys at once.
    template <class Strings>
    std::vector<std::size_t> locate_batch(const Strings &keys) const {
        std::vector<const uint8_t *> ptrs;
        std::vector<std::size_t> lens;
        for (const auto &k : keys) {
            std::string_view v(k);
            ptrs.push_back(bytes(v));
            lens.push_back(v.size());
        }
        std::vector<std::size_t> out(ptrs.size());
        check(Api::get_node_batch(h_, ptrs.data(), lens.data(), ptrs.size(), out.data(), nullptr));
        return out;
    }

    // The hash that places `key` (Ring: xxh3-64 with quorumkit's fixed
    // seed; Ketama: the little-endian uint32 of MD5(key)[0..4]).
    static typename Api::hash_type hash_key(std::string_view key) {
        typename Api::hash_type h = 0;
        check(Api::hash_key(bytes(key), key.size(), &h, nullptr));
        return h;
    }

    // Index of the node owning a key hashed with hash_key().
    std::size_t locate_hash(typename Api::hash_type hash) const {
        std::size_t index = 0;
        check(Api::get_node_by_hash(h_, hash, &index, nullptr));
        return index;
    }

    // Each node's exact fraction of the hash space, by node index.
    std::vector<double> shares() const {
        std::vector<double> out(size());
        check(Api::shares(h_, out.data(), out.size(), nullptr));
        return out;
    }

protected:
    explicit Placement(handle_type *h) noexcept : h_(h) {}

    void remove_named(std::string_view name) {
        check(Api::remove(h_, name.data(), name.size(), nullptr));
    }

    handle_type *h_;
};

}  // namespace detail

// A consistent-hash ring with weighted virtual nodes (qk_ring).
class Ring : public detail::Placement<detail::RingApi> {
public:
    // An empty ring; `vnodes` points per unit of weight (0: the default, 160).
    explicit Ring(std::uint32_t vnodes = 0) : Placement(make(vnodes)) {}

    void add_node(std::string_view name, std::uint32_t weight = 1) {
        detail::check(qk_ring_add_node(h_, name.data(), name.size(), weight, nullptr));
    }
    void remove_node(std::string_view name) { remove_named(name); }

private:
    static qk_ring *make(std::uint32_t vnodes) {
        qk_ring *r = nullptr;
        detail::check(qk_ring_new(vnodes, &r, nullptr));
        return r;
    }
};

// A ketama continuum, bit-exact with libmemcached or uhashring (qk_ketama).
class Ketama : public detail::Placement<detail::KetamaApi> {
public:
    enum class Compat : qk_ketama_compat {
        Libmemcached = QK_KETAMA_LIBMEMCACHED,
        Uhashring = QK_KETAMA_UHASHRING,
    };
    // A server: "host", "host:port" or "[v6addr]:port", and its weight.
    struct Server {
        std::string spec;
        std::uint32_t weight = 1;
    };

    explicit Ketama(Compat compat, const std::vector<Server> &servers = {})
        : Placement(make(compat, servers)) {}

    void add_server(std::string_view spec, std::uint32_t weight = 1) {
        detail::check(qk_ketama_add_server(h_, spec.data(), spec.size(), weight, nullptr));
    }
    void remove_server(std::string_view name) { remove_named(name); }

    // Point `index` of the continuum: (position, server index).
    std::pair<std::uint32_t, std::size_t> point(std::size_t index) const {
        std::uint32_t pos = 0;
        std::size_t server = 0;
        detail::check(qk_ketama_point(h_, index, &pos, &server, nullptr));
        return {pos, server};
    }

private:
    static qk_ketama *make(Compat compat, const std::vector<Server> &servers) {
        std::vector<const char *> specs;
        std::vector<std::size_t> lens;
        std::vector<std::uint32_t> weights;
        for (const Server &s : servers) {
            specs.push_back(s.spec.data());
            lens.push_back(s.spec.size());
            weights.push_back(s.weight);
        }
        qk_ketama *k = nullptr;
        detail::check(qk_ketama_new(static_cast<qk_ketama_compat>(compat), specs.data(),
                                    lens.data(), weights.data(), servers.size(), &k, nullptr));
        return k;
    }
};

}  // namespace quorumkit

#endif  // QUORUMKIT_HPP
