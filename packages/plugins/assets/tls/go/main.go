// A TLS client and server on Go's crypto/tls for testbed's interop matrix, in the QUIC interop runner's style:
// ROLE and TESTCASE say what to do; exit code 127 means "this test case is not supported".
// The client prints evidence lines (tls.protocol=…, tls.cipher=…, body.sha256=…) that the matrix checks.
package main

import (
	"bufio"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"
)

const payloadSize = 10 * 1024 * 1024

func env(name string) string { return os.Getenv(name) }

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

func unsupported(reason string) {
	fmt.Fprintln(os.Stderr, "unsupported:", reason)
	os.Exit(127)
}

// payload is the 10 MiB body of the transfer case: numbered lines, the same bytes every stack's server makes.
func payload() []byte {
	var b strings.Builder
	b.Grow(payloadSize + 64)
	for i := 1; b.Len() < payloadSize; i++ {
		fmt.Fprintf(&b, "testbed payload line %06d\n", i)
	}
	return []byte(b.String()[:payloadSize])
}

func config(testcase string) *tls.Config {
	pool := x509.NewCertPool()
	ca, err := os.ReadFile(env("CA"))
	if err != nil {
		fail("cannot read CA: %v", err)
	}
	pool.AppendCertsFromPEM(ca)
	cert, err := tls.LoadX509KeyPair(env("CERT"), env("KEY"))
	if err != nil {
		fail("cannot load certificate: %v", err)
	}
	c := &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12}
	if w, err := os.OpenFile(env("DIR")+"/keys.log", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err == nil {
		c.KeyLogWriter = w
	}
	switch testcase {
	case "transfer", "alpn", "resumption", "keyupdate":
	case "tls12":
		c.MaxVersion = tls.VersionTLS12
	case "tls13":
		c.MinVersion = tls.VersionTLS13
	case "chacha20":
		// Go does not let a TLS 1.3 suite be chosen; ChaCha20 is forced through TLS 1.2's list.
		c.MaxVersion = tls.VersionTLS12
		c.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}
	case "x25519":
		c.CurvePreferences = []tls.CurveID{tls.X25519}
	case "mutual-auth":
		c.ClientCAs = pool
		c.ClientAuth = tls.RequireAndVerifyClientCert
	default:
		unsupported("test case " + testcase)
	}
	// The run's one certificate: the server's, and the client's own in mutual-auth (a server without ClientAuth
	// does not ask for it).
	c.Certificates = []tls.Certificate{cert}
	if alpn := env("ALPN"); alpn != "" && testcase == "alpn" {
		c.NextProtos = strings.Split(alpn, ",")
	}
	return c
}

func versionName(v uint16) string {
	switch v {
	case tls.VersionTLS12:
		return "TLSv1.2"
	case tls.VersionTLS13:
		return "TLSv1.3"
	}
	return fmt.Sprintf("0x%04x", v)
}

func serve(testcase string) {
	c := config(testcase)
	body := []byte("testbed go server\n")
	if testcase == "transfer" {
		body = payload()
	}
	ln, err := tls.Listen("tcp", net.JoinHostPort(env("HOST"), env("PORT")), c)
	if err != nil {
		fail("listen: %v", err)
	}
	fmt.Println("listening")
	for {
		conn, err := ln.Accept()
		if err != nil {
			fail("accept: %v", err)
		}
		go handle(conn.(*tls.Conn), body)
	}
}

func handle(conn *tls.Conn, body []byte) {
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	if err := conn.Handshake(); err != nil {
		fmt.Println("handshake failed:", err)
		return
	}
	state := conn.ConnectionState()
	peer := "none"
	if len(state.PeerCertificates) > 0 {
		peer = state.PeerCertificates[0].Subject.String()
	}
	fmt.Printf("tls.protocol=%s tls.cipher=%s tls.alpn=%s tls.peer=%s\n", versionName(state.Version),
		tls.CipherSuiteName(state.CipherSuite), state.NegotiatedProtocol, peer)
	reader := bufio.NewReader(conn)
	for {
		line, err := reader.ReadString('\n')
		if err != nil || strings.TrimSpace(line) == "" {
			break
		}
	}
	conn.Write([]byte(fmt.Sprintf("HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n", len(body))))
	conn.Write(body)
}

func fetch(c *tls.Config, path string) (tls.ConnectionState, []byte) {
	addr := net.JoinHostPort(env("TARGET_HOST"), env("TARGET_PORT"))
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", addr, c)
	if err != nil {
		fail("handshake with %s failed: %v", addr, err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(60 * time.Second))
	fmt.Fprintf(conn, "GET %s HTTP/1.0\r\n\r\n", path)
	all, err := io.ReadAll(conn)
	if err != nil && len(all) == 0 {
		fail("reading the answer failed: %v", err)
	}
	return conn.ConnectionState(), all
}

func client(testcase string) {
	if testcase == "keyupdate" {
		unsupported("crypto/tls cannot initiate a KeyUpdate")
	}
	c := config(testcase)
	c.ClientSessionCache = tls.NewLRUClientSessionCache(4)
	path := "/"
	if testcase == "transfer" {
		path = "/payload.bin"
	}
	state, all := fetch(c, path)
	if testcase == "resumption" {
		state, all = fetch(c, path)
	}
	body := all
	if i := strings.Index(string(all), "\r\n\r\n"); i >= 0 {
		body = all[i+4:]
	}
	sum := sha256.Sum256(body)
	alpn := state.NegotiatedProtocol
	if alpn == "" {
		alpn = "none"
	}
	resumed := "no"
	if state.DidResume {
		resumed = "yes"
	}
	fmt.Printf("tls.protocol=%s\ntls.cipher=%s\ntls.alpn=%s\ntls.resumed=%s\ntls.verified=yes\n",
		versionName(state.Version), tls.CipherSuiteName(state.CipherSuite), alpn, resumed)
	if testcase == "x25519" {
		fmt.Println("tls.group=X25519 (the only group offered)")
	}
	fmt.Printf("body.bytes=%d\nbody.sha256=%s\n", len(body), hex.EncodeToString(sum[:]))
}

func main() {
	testcase := env("TESTCASE")
	switch env("ROLE") {
	case "server":
		serve(testcase)
	case "client":
		client(testcase)
	default:
		fail("ROLE must be server or client")
	}
}
