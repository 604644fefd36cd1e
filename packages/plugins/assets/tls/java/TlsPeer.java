// A TLS client and server on Java's JSSE for testbed's interop matrix, in the QUIC interop runner's style:
// ROLE and TESTCASE say what to do; exit code 127 means "this test case is not supported".
// The client prints evidence lines (tls.protocol=…, tls.cipher=…, body.sha256=…) that the matrix checks.
import java.io.*;
import java.net.*;
import java.nio.charset.StandardCharsets;
import java.nio.file.*;
import java.security.*;
import java.security.cert.*;
import java.security.spec.PKCS8EncodedKeySpec;
import java.util.*;
import javax.net.ssl.*;

public final class TlsPeer {
  static final int PAYLOAD_SIZE = 10 * 1024 * 1024;

  static String env(String name) {
    String value = System.getenv(name);
    return value == null ? "" : value;
  }

  static void unsupported(String reason) {
    System.err.println("unsupported: " + reason);
    System.exit(127);
  }

  static void fail(String reason) {
    System.err.println(reason);
    System.exit(1);
  }

  /** The 10 MiB body of the transfer case: numbered lines, the same bytes every stack's server makes. */
  static byte[] payload() {
    StringBuilder b = new StringBuilder(PAYLOAD_SIZE + 64);
    for (int i = 1; b.length() < PAYLOAD_SIZE; i++) b.append(String.format("testbed payload line %06d\n", i));
    return b.substring(0, PAYLOAD_SIZE).getBytes(StandardCharsets.US_ASCII);
  }

  static SSLContext context() throws Exception {
    CertificateFactory factory = CertificateFactory.getInstance("X.509");
    X509Certificate cert;
    try (InputStream in = Files.newInputStream(Path.of(env("CERT")))) {
      cert = (X509Certificate) factory.generateCertificate(in);
    }
    X509Certificate ca;
    try (InputStream in = Files.newInputStream(Path.of(env("CA")))) {
      ca = (X509Certificate) factory.generateCertificate(in);
    }
    String pem = Files.readString(Path.of(env("KEY")));
    String base64 = pem.replaceAll("-----[A-Z ]+-----", "").replaceAll("\\s", "");
    PrivateKey key =
        KeyFactory.getInstance("EC").generatePrivate(new PKCS8EncodedKeySpec(Base64.getDecoder().decode(base64)));
    char[] password = "testbed".toCharArray();
    KeyStore keys = KeyStore.getInstance("PKCS12");
    keys.load(null, null);
    keys.setKeyEntry("me", key, password, new java.security.cert.Certificate[] {cert});
    KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
    kmf.init(keys, password);
    KeyStore trusted = KeyStore.getInstance("PKCS12");
    trusted.load(null, null);
    trusted.setCertificateEntry("ca", ca);
    TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
    tmf.init(trusted);
    SSLContext context = SSLContext.getInstance("TLS");
    context.init(kmf.getKeyManagers(), tmf.getTrustManagers(), null);
    return context;
  }

  static void configure(SSLSocket socket, String testcase, boolean server) {
    SSLParameters p = socket.getSSLParameters();
    switch (testcase) {
      case "tls12" -> p.setProtocols(new String[] {"TLSv1.2"});
      case "tls13", "keyupdate" -> p.setProtocols(new String[] {"TLSv1.3"});
      case "chacha20" -> p.setCipherSuites(
          new String[] {"TLS_CHACHA20_POLY1305_SHA256", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"});
      case "alpn" -> p.setApplicationProtocols(env("ALPN").split(","));
      case "mutual-auth" -> p.setNeedClientAuth(server);
      default -> {}
    }
    if (!server) {
      p.setEndpointIdentificationAlgorithm("HTTPS");
      p.setServerNames(List.of(new SNIHostName("localhost")));
    }
    socket.setSSLParameters(p);
  }

  static void serve(String testcase) throws Exception {
    byte[] body = testcase.equals("transfer") ? payload() : "testbed java server\n".getBytes(StandardCharsets.US_ASCII);
    SSLContext context = context();
    SSLServerSocket listener = (SSLServerSocket) context.getServerSocketFactory().createServerSocket();
    listener.setReuseAddress(true);
    listener.bind(new InetSocketAddress(env("HOST"), Integer.parseInt(env("PORT"))));
    System.out.println("listening");
    while (true) {
      SSLSocket socket = (SSLSocket) listener.accept();
      configure(socket, testcase, true);
      new Thread(() -> handle(socket, body)).start();
    }
  }

  static void handle(SSLSocket socket, byte[] body) {
    try (socket) {
      socket.setSoTimeout(30_000);
      socket.startHandshake();
      SSLSession s = socket.getSession();
      String peer = "none";
      try {
        peer = s.getPeerPrincipal().getName();
      } catch (SSLPeerUnverifiedException e) {
        // no client certificate: not asked for
      }
      System.out.println("tls.protocol=" + s.getProtocol() + " tls.cipher=" + s.getCipherSuite() + " tls.peer=" + peer);
      BufferedReader reader = new BufferedReader(new InputStreamReader(socket.getInputStream(), StandardCharsets.US_ASCII));
      for (String line = reader.readLine(); line != null && !line.isEmpty(); line = reader.readLine()) {}
      OutputStream out = socket.getOutputStream();
      out.write(("HTTP/1.0 200 OK\r\nContent-Length: " + body.length + "\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
      out.write(body);
      out.flush();
      // A half-close sends close_notify alone; close() on a TLS 1.3 socket would send user_canceled first.
      socket.shutdownOutput();
    } catch (IOException e) {
      System.out.println("connection failed: " + e);
    }
  }

  record Answer(SSLSession session, String alpn, byte[] all, boolean keyUpdate) {}

  static Answer fetch(SSLContext context, String testcase, String path) throws Exception {
    SSLSocket socket = (SSLSocket) context.getSocketFactory().createSocket();
    try {
      socket.connect(new InetSocketAddress(env("TARGET_HOST"), Integer.parseInt(env("TARGET_PORT"))), 10_000);
      socket.setSoTimeout(60_000);
      configure(socket, testcase, false);
      socket.startHandshake();
      boolean keyUpdate = false;
      if (testcase.equals("keyupdate")) {
        // On an established TLS 1.3 connection, JSSE's startHandshake sends a KeyUpdate (JDK 11+).
        socket.startHandshake();
        keyUpdate = socket.getSession().getProtocol().equals("TLSv1.3");
      }
      OutputStream out = socket.getOutputStream();
      out.write(("GET " + path + " HTTP/1.0\r\n\r\n").getBytes(StandardCharsets.US_ASCII));
      out.flush();
      byte[] all = socket.getInputStream().readAllBytes();
      String alpn = socket.getApplicationProtocol();
      return new Answer(socket.getSession(), alpn == null || alpn.isEmpty() ? "none" : alpn, all, keyUpdate);
    } finally {
      // The server closed first: JSSE's own alerts on close may meet a closed socket, which is no failure.
      try {
        socket.close();
      } catch (IOException e) {
        // already closed by the peer
      }
    }
  }

  static void client(String testcase) throws Exception {
    SSLContext context = context();
    String path = testcase.equals("transfer") ? "/payload.bin" : "/";
    Answer first = fetch(context, testcase, path);
    Answer answer = testcase.equals("resumption") ? fetch(context, testcase, path) : first;
    byte[] all = answer.all();
    int start = 0;
    for (int i = 0; i + 3 < all.length; i++) {
      if (all[i] == '\r' && all[i + 1] == '\n' && all[i + 2] == '\r' && all[i + 3] == '\n') {
        start = i + 4;
        break;
      }
    }
    byte[] body = Arrays.copyOfRange(all, start, all.length);
    SSLSession s = answer.session();
    System.out.println("tls.protocol=" + s.getProtocol());
    System.out.println("tls.cipher=" + s.getCipherSuite());
    System.out.println("tls.alpn=" + answer.alpn());
    if (testcase.equals("x25519")) System.out.println("tls.group=X25519 (the only group offered)");
    // Whether the second connection resumed, JSSE's API does not say: the plugin reads its handshake debug log.
    if (answer.keyUpdate()) System.out.println("tls.keyupdate=sent");
    System.out.println("tls.verified=yes");
    System.out.println("body.bytes=" + body.length);
    System.out.println("body.sha256=" + HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(body)));
  }

  public static void main(String[] args) throws Exception {
    String testcase = env("TESTCASE");
    switch (testcase) {
      case "tls12", "tls13", "chacha20", "x25519", "resumption", "alpn", "mutual-auth", "transfer", "keyupdate" -> {}
      default -> unsupported("test case " + testcase);
    }
    // Named groups are a system property in JDK 17 (SSLParameters.setNamedGroups came in JDK 20).
    if (testcase.equals("x25519")) System.setProperty("jdk.tls.namedGroups", "x25519");
    try {
      if (env("ROLE").equals("server")) serve(testcase);
      else client(testcase);
    } catch (SSLException | SocketException e) {
      fail("TLS failed: " + e);
    }
  }
}
