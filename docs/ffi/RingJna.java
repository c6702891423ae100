import com.sun.jna.Library;
import com.sun.jna.Memory;
import com.sun.jna.Native;
import com.sun.jna.Pointer;
import com.sun.jna.Structure;
import com.sun.jna.ptr.PointerByReference;
import java.nio.charset.StandardCharsets;

public class RingJna {
    @Structure.FieldOrder({"status", "message"})
    public static class QkError extends Structure { // filled by each call, on any thread
        public int status;
        public byte[] message = new byte[512];
        String text() { return Native.toString(message, "UTF-8"); }
    }

    public interface Qk extends Library {
        int qk_ring_new(int vnodes, PointerByReference out, QkError err);
        int qk_ring_add_node(Pointer ring, byte[] name, long len, int weight, QkError err);
        int qk_ring_remove_node(Pointer ring, byte[] name, long len, QkError err);
        int qk_ring_get_node(Pointer ring, byte[] key, long len, long[] index, QkError err);
        int qk_ring_node_name(Pointer ring, long index, PointerByReference name, long[] len, QkError err);
        void qk_ring_free(Pointer ring);
    }

    public static void main(String[] args) {
        String path = System.getenv().getOrDefault("QUORUMKIT_LIB", "quorumkit");
        Qk qk = Native.load(path, Qk.class);
        QkError err = new QkError();
        PointerByReference out = new PointerByReference();
        if (qk.qk_ring_new(0, out, err) != 0) throw new IllegalStateException(err.text());
        Pointer ring = out.getValue();
        for (String name : new String[] {"cache-a", "kaché-e"}) {
            byte[] b = name.getBytes(StandardCharsets.UTF_8); // byte length, not name.length()
            if (qk.qk_ring_add_node(ring, b, b.length, 1, err) != 0) throw new IllegalStateException(err.text());
        }
        byte[] key = "user:42".getBytes(StandardCharsets.UTF_8);
        long[] idx = new long[1];
        if (qk.qk_ring_get_node(ring, key, key.length, idx, err) != 0) throw new IllegalStateException(err.text());
        PointerByReference name = new PointerByReference();
        long[] len = new long[1];
        qk.qk_ring_node_name(ring, idx[0], name, len, err);
        byte[] copy = name.getValue().getByteArray(0, (int) len[0]); // the ring owns the original
        System.out.println("user:42 -> " + new String(copy, StandardCharsets.UTF_8));
        byte[] ghost = "ghost".getBytes(StandardCharsets.UTF_8);
        int st = qk.qk_ring_remove_node(ring, ghost, ghost.length, err);
        if (st != 5 || err.status != 5 || !err.text().contains("ghost")) throw new IllegalStateException("expected NOT_FOUND");
        System.out.println("error: " + err.text());
        qk.qk_ring_free(ring);
    }
}
