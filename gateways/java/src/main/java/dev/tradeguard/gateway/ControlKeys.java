package dev.tradeguard.gateway;

import com.fasterxml.jackson.databind.JsonNode;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import javax.crypto.Mac;
import javax.crypto.spec.SecretKeySpec;

/**
 * Control signatures as streams/signing.py makes them: {@code v1:<key id>:<hex HMAC-SHA256>} over
 * the record's canonical JSON without {@code signature}; the key id is the first 8 hex digits of
 * the key's SHA-256. A key file has one key per line (blank lines and # comments skipped).
 */
public final class ControlKeys {
  /** Public on purpose (the embedded demo and the tests sign with it): it protects nothing. */
  static final String DEVELOPMENT_KEY =
      "tradeguard development control key: public, protects nothing";

  private final List<byte[]> keys;

  ControlKeys(List<byte[]> keys) {
    if (keys.isEmpty()) throw new IllegalArgumentException("at least one control key is needed");
    this.keys = keys;
  }

  static ControlKeys fromFileOrDevelopment(String path) throws Exception {
    List<byte[]> keys = new ArrayList<>();
    if (path == null || path.isEmpty()) {
      keys.add(DEVELOPMENT_KEY.getBytes(StandardCharsets.UTF_8));
    } else {
      for (String line : Files.readAllLines(Path.of(path), StandardCharsets.UTF_8)) {
        String k = line.strip();
        if (!k.isEmpty() && !k.startsWith("#")) keys.add(k.getBytes(StandardCharsets.UTF_8));
      }
    }
    return new ControlKeys(keys);
  }

  static String keyId(byte[] key) throws Exception {
    byte[] h = MessageDigest.getInstance("SHA-256").digest(key);
    return HexFormat.of().formatHex(h).substring(0, 8);
  }

  /** Null when {@code record} is validly signed, else why not (missing, malformed, ...). */
  String problem(JsonNode record) throws Exception {
    JsonNode sig = record.get("signature");
    if (sig == null || sig.isNull()) return "missing";
    String[] parts = sig.isTextual() ? sig.textValue().split(":", -1) : new String[0];
    if (parts.length != 3 || !parts[0].equals("v1")) return "malformed";
    for (byte[] key : keys) {
      if (keyId(key).equals(parts[1])) {
        Mac mac = Mac.getInstance("HmacSHA256");
        mac.init(new SecretKeySpec(key, "HmacSHA256"));
        byte[] want = mac.doFinal(Canonical.of(record, "signature").getBytes(StandardCharsets.UTF_8));
        byte[] got;
        try {
          got = HexFormat.of().parseHex(parts[2]);
        } catch (IllegalArgumentException e) {
          return "malformed";
        }
        return MessageDigest.isEqual(want, got) ? null : "mismatch";
      }
    }
    return "unknown_key";
  }
}
