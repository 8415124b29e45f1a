#!/usr/bin/env bash
# Make a throwaway PKI for trying TLS with arbor (config/tls.cfg, config/tls-3.cfg) and for
# scripts/test-all.sh's TLS runs:
#
#   scripts/make-test-certs.sh [DIR]        (default /tmp/arbor/tls)
#
# DIR/ca.pem            the CA certificate: the trust store of servers and clients
# DIR/server.pem        a server's key store: private key + certificate in one PEM file (as
#                       ZooKeeper reads ssl.keyStore.type=PEM), for 127.0.0.1 and localhost;
#                       also used as the quorum key store (serverAuth + clientAuth)
# DIR/client.pem        a client's key store (key + certificate), subject O=arbor tests,CN=client:
#                       its x509 id is "CN=client,O=arbor tests"
# DIR/client-key.pem, DIR/client-cert.pem   the same, separately (kazoo, Python's ssl)
# DIR/server.p12, DIR/client.p12   the same key stores as PKCS#12 (password "changeit")
# DIR/trust.p12         the CA as a PKCS#12 trust store (password "changeit"; made with
#                       keytool when it is installed, so Java clients trust it too)
#
# ECDSA P-256, valid 30 days, unencrypted keys (arbor refuses encrypted ones). Needs openssl.
# For anything real, use certificates from your own CA.
set -euo pipefail
d=${1:-/tmp/arbor/tls}
mkdir -p "$d"
gen=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)
openssl req -x509 "${gen[@]}" -keyout "$d/ca-key.pem" -out "$d/ca.pem" -days 30 -subj "/CN=arbor test CA" 2>/dev/null
leaf() { # name subject extensions
  openssl req "${gen[@]}" -keyout "$d/$1-key.pem" -out "$d/$1.csr" -subj "$2" 2>/dev/null
  printf '%b' "$3" >"$d/$1.ext"
  openssl x509 -req -in "$d/$1.csr" -CA "$d/ca.pem" -CAkey "$d/ca-key.pem" -CAcreateserial \
    -days 30 -extfile "$d/$1.ext" -out "$d/$1-cert.pem" 2>/dev/null
  cat "$d/$1-key.pem" "$d/$1-cert.pem" >"$d/$1.pem"
  rm -f "$d/$1.csr" "$d/$1.ext"
}
leaf server "/CN=arbor-server" 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n'
leaf client "/O=arbor tests/CN=client" 'extendedKeyUsage=clientAuth\n'
for n in server client; do
  openssl pkcs12 -export -in "$d/$n-cert.pem" -inkey "$d/$n-key.pem" -certfile "$d/ca.pem" -name "$n" \
    -passout pass:changeit -out "$d/$n.p12"
done
rm -f "$d/trust.p12"
if command -v keytool >/dev/null; then
  keytool -importcert -noprompt -alias ca -file "$d/ca.pem" -keystore "$d/trust.p12" -storetype PKCS12 \
    -storepass changeit >/dev/null 2>&1
else
  openssl pkcs12 -export -nokeys -in "$d/ca.pem" -passout pass:changeit -out "$d/trust.p12"
fi
[[ -s $d/server.pem && -s $d/client.pem && -s $d/server.p12 && -s $d/trust.p12 ]] || { echo "make-test-certs.sh: openssl failed in $d" >&2; exit 1; }
echo "$d: ca.pem server.pem client.pem client-key.pem client-cert.pem server.p12 client.p12 trust.p12 (PKCS#12 password: changeit)"
