"""pytest plugin (`-p arbor_kazoo_tls`) loaded after the kazoo runner's shim
(../shared/peers/kazoo/shim/kazoo_external.py) by scripts/test-all.sh: gives the shim's
external cluster the TLS endpoint arbor serves, so kazoo's own TestSSLClient runs against it.

The shim says "no TLS endpoint configured" (its servers' secure_address is the plain one and
get_ssl_client_configuration raises). With

  ARBOR_KAZOO_SECURE_SERVERS=127.0.0.1:22191[,...]   the secure client ports, in server order
  ARBOR_KAZOO_TLS_DIR=DIR                              ca.pem, client-key.pem, client-cert.pem

set, each server's secure_address is its secure port and the cluster hands out those PEMs,
exactly what kazoo's own harness does for the ZooKeeper it starts. Without them this plugin
changes nothing.
"""

import os

import kazoo_external

_SECURE = [s.strip() for s in os.environ.get("ARBOR_KAZOO_SECURE_SERVERS", "").split(",") if s.strip()]
_DIR = os.environ.get("ARBOR_KAZOO_TLS_DIR", "")


def _read(name):
    with open(os.path.join(_DIR, name), "rb") as f:
        return f.read()


if _SECURE and _DIR:
    if len(_SECURE) != len(kazoo_external.SERVERS):
        raise RuntimeError(
            "arbor_kazoo_tls: %d secure servers for %d servers" % (len(_SECURE), len(kazoo_external.SERVERS))
        )

    def _secure_address(self):
        return _SECURE[self.index]

    def _ssl_client_configuration(self):
        return {
            "client_key": _read("client-key.pem"),
            "client_cert": _read("client-cert.pem"),
            "ca_cert": _read("ca.pem"),
        }

    kazoo_external.ExternalServer.secure_address = property(_secure_address)
    kazoo_external.ExternalServer.secure_client_port = property(lambda self: int(_SECURE[self.index].rsplit(":", 1)[1]))
    kazoo_external.ExternalCluster.get_ssl_client_configuration = _ssl_client_configuration
