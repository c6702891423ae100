// Consistent hashing from C++ with the header-only wrapper quorumkit.hpp:
// a virtual-node ring and a libmemcached-compatible ketama continuum.
#include <iostream>
#include <string>
#include <vector>

#include <quorumkit.hpp>

int main() {
    std::cout << "quorumkit " << quorumkit::version() << "\n";

    quorumkit::Ring ring;
    ring.add_node("cache-a");
    ring.add_node("cache-b");
    ring.add_node("cache-c", 2);
    for (const char *key : {"user:1", "user:2", "cart:42"}) {
        std::vector<std::string> replicas = ring.get_nodes(key, 2);
        std::cout << key << " -> " << replicas[0] << " (replica on " << replicas[1] << ")\n";
    }

    // The same servers a libmemcached client would pick.
    quorumkit::Ketama memcached(quorumkit::Ketama::Compat::Libmemcached,
                                {{"10.0.0.1", 1}, {"10.0.0.2:11212", 1}, {"10.0.0.3", 2}});
    std::cout << "session:9 -> " << memcached.get_node("session:9") << "\n";

    try {
        ring.remove_node("cache-z");
    } catch (const quorumkit::Error &e) {
        std::cout << "error " << e.status() << " (" << e.status_name() << "): " << e.what() << "\n";
    }
    return 0;
}
