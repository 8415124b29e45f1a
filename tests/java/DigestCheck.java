// ZooKeeper 3.8's own DataTree applies a script of txns and prints its tree digest after
// each one, then its digest log: tests/digest_zk.rs runs the same txns through arbor's tree
// and compares every line. One txn per line, fields separated by single spaces:
//   N session zxid time                         createSession
//   X session zxid time                         closeSession (deletes the session's ephemerals)
//   C session zxid time kind ttl path data      create; kind p(ersistent) e(phemeral) c(ontainer) t(tl)
//   S session zxid time version path data       setData
//   D session zxid time path                    delete
//   A session zxid time version path            setACL (to READ_ACL_UNSAFE)
// data: hex bytes, "." for empty, "-" for null.
// Output: "0 <digest>" for the fresh tree, "<zxid> <digest>" per txn, "log <zxid> <digest>"
// per entry of getDigestLog(). Exit 2 if ZooKeeper refuses a txn.

import java.io.BufferedReader;
import java.io.FileInputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;

import org.apache.jute.Record;
import org.apache.zookeeper.ZooDefs;
import org.apache.zookeeper.ZooDefs.OpCode;
import org.apache.zookeeper.server.DataTree;
import org.apache.zookeeper.txn.CreateContainerTxn;
import org.apache.zookeeper.txn.CreateSessionTxn;
import org.apache.zookeeper.txn.CreateTTLTxn;
import org.apache.zookeeper.txn.CreateTxn;
import org.apache.zookeeper.txn.DeleteTxn;
import org.apache.zookeeper.txn.SetACLTxn;
import org.apache.zookeeper.txn.SetDataTxn;
import org.apache.zookeeper.txn.TxnHeader;

public class DigestCheck {
    static byte[] data(String s) {
        if (s.equals("-")) {
            return null;
        }
        if (s.equals(".")) {
            return new byte[0];
        }
        byte[] b = new byte[s.length() / 2];
        for (int i = 0; i < b.length; i++) {
            b[i] = (byte) Integer.parseInt(s.substring(2 * i, 2 * i + 2), 16);
        }
        return b;
    }

    public static void main(String[] args) throws Exception {
        DataTree dt = new DataTree();
        StringBuilder out = new StringBuilder();
        out.append("0 ").append(dt.getTreeDigest()).append('\n');
        try (BufferedReader r = new BufferedReader(new InputStreamReader(new FileInputStream(args[0]), StandardCharsets.UTF_8))) {
            String line;
            while ((line = r.readLine()) != null) {
                String[] f = line.split(" ");
                long session = Long.parseLong(f[1]);
                long zxid = Long.parseLong(f[2]);
                long time = Long.parseLong(f[3]);
                int type;
                Record txn;
                switch (f[0]) {
                    case "N":
                        type = OpCode.createSession;
                        txn = new CreateSessionTxn(30000);
                        break;
                    case "X":
                        type = OpCode.closeSession;
                        txn = null;
                        break;
                    case "C": {
                        String path = f[6];
                        byte[] d = data(f[7]);
                        switch (f[4]) {
                            case "c":
                                type = OpCode.createContainer;
                                txn = new CreateContainerTxn(path, d, ZooDefs.Ids.OPEN_ACL_UNSAFE, -1);
                                break;
                            case "t":
                                type = OpCode.createTTL;
                                txn = new CreateTTLTxn(path, d, ZooDefs.Ids.OPEN_ACL_UNSAFE, -1, Long.parseLong(f[5]));
                                break;
                            default:
                                type = OpCode.create;
                                txn = new CreateTxn(path, d, ZooDefs.Ids.OPEN_ACL_UNSAFE, f[4].equals("e"), -1);
                        }
                        break;
                    }
                    case "S":
                        type = OpCode.setData;
                        txn = new SetDataTxn(f[5], data(f[6]), Integer.parseInt(f[4]));
                        break;
                    case "D":
                        type = OpCode.delete;
                        txn = new DeleteTxn(f[4]);
                        break;
                    case "A":
                        type = OpCode.setACL;
                        txn = new SetACLTxn(f[5], ZooDefs.Ids.READ_ACL_UNSAFE, Integer.parseInt(f[4]));
                        break;
                    default:
                        throw new IllegalArgumentException("unknown line: " + line);
                }
                DataTree.ProcessTxnResult rc = dt.processTxn(new TxnHeader(session, 1, zxid, time, type), txn);
                if (rc.err != 0) {
                    System.out.print(out);
                    System.out.println("error " + rc.err + " at: " + line);
                    System.exit(2);
                }
                out.append(zxid).append(' ').append(dt.getTreeDigest()).append('\n');
            }
        }
        for (DataTree.ZxidDigest z : dt.getDigestLog()) {
            out.append("log ").append(z.getZxid()).append(' ').append(z.getDigest()).append('\n');
        }
        System.out.print(out);
    }
}
