// A ZooKeeper 3.8 Java client (the Debian package's zookeeper.jar) adds persistent and
// persistent-recursive watches and must receive their events without losing its connection.
// Run by tests/java_client.rs: `java PersistentWatchCheck HOST:PORT /root`; prints one line per
// event and "OK", or "FAIL ..." and exits 1.
//
// Before arbor sent the 4-byte ErrorResponse body of the addWatch reply, this client failed
// with EOFException in ErrorResponse.deserialize, dropped the connection and reconnected in a
// loop (so Curator's CuratorCache never initialised).
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import org.apache.zookeeper.AddWatchMode;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.WatchedEvent;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooDefs;
import org.apache.zookeeper.ZooKeeper;

public class PersistentWatchCheck {
    static void fail(String why) {
        System.out.println("FAIL " + why);
        System.exit(1);
    }

    public static void main(String[] args) throws Exception {
        String server = args[0];
        String root = args[1];
        CountDownLatch connected = new CountDownLatch(1);
        List<String> states = new ArrayList<>();
        ZooKeeper zk = new ZooKeeper(server, 30000, e -> {
            if (e.getType() == Watcher.Event.EventType.None) {
                synchronized (states) {
                    states.add(e.getState().toString());
                }
                if (e.getState() == Watcher.Event.KeeperState.SyncConnected) {
                    connected.countDown();
                }
            }
        });
        if (!connected.await(10, TimeUnit.SECONDS)) {
            fail("not connected within 10 s");
        }
        LinkedBlockingQueue<WatchedEvent> events = new LinkedBlockingQueue<>();
        byte[] d = "x".getBytes();
        zk.create(root, d, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        zk.addWatch(root, events::add, AddWatchMode.PERSISTENT_RECURSIVE);
        zk.addWatch(root + "/p", events::add, AddWatchMode.PERSISTENT);
        zk.create(root + "/a", d, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        zk.setData(root + "/a", "y".getBytes(), -1);
        zk.create(root + "/a/b", d, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        zk.delete(root + "/a/b", -1);
        zk.create(root + "/p", d, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        zk.create(root + "/p/c", d, ZooDefs.Ids.OPEN_ACL_UNSAFE, CreateMode.PERSISTENT);
        String[] want = {
            "NodeCreated " + root + "/a",
            "NodeDataChanged " + root + "/a",
            "NodeCreated " + root + "/a/b",
            "NodeDeleted " + root + "/a/b",
            // /p is under the recursive watch and has its own persistent one: the client hands
            // the one notification to both watcher objects. For /p/c the server sends
            // NodeCreated /p/c (recursive) before NodeChildrenChanged /p (persistent).
            "NodeCreated " + root + "/p",
            "NodeCreated " + root + "/p",
            "NodeCreated " + root + "/p/c",
            "NodeChildrenChanged " + root + "/p",
        };
        List<String> got = new ArrayList<>();
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (got.size() < want.length && System.nanoTime() < deadline) {
            WatchedEvent e = events.poll(100, TimeUnit.MILLISECONDS);
            if (e != null) {
                got.add(e.getType() + " " + e.getPath());
                System.out.println("event " + e.getType() + " " + e.getPath());
            }
        }
        zk.close();
        synchronized (states) {
            System.out.println("states " + states);
            if (states.contains("Disconnected")) {
                fail("the connection dropped: " + states);
            }
        }
        if (!got.equals(List.of(want))) {
            fail("events " + got + ", want " + List.of(want));
        }
        System.out.println("OK");
    }
}
