package dev.tradeguard.gateway;

import com.fasterxml.jackson.databind.JsonNode;
import java.math.BigDecimal;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

/**
 * RFC 8785 (JSON Canonicalization Scheme) for the records TradeGuard signs: keys sorted by UTF-16
 * code units (Java's String order), no whitespace, strings escaped as ECMAScript's JSON.stringify
 * does, numbers printed as ECMAScript's Number.prototype.toString. The Python side
 * (streams/signing.py, the rfc8785 package) produces the vectors it is tested against.
 */
public final class Canonical {
  private Canonical() {}

  /** The canonical form of {@code node}, leaving out a top-level field {@code skip} (or none). */
  public static String of(JsonNode node, String skip) {
    StringBuilder out = new StringBuilder();
    write(node, skip, out);
    return out.toString();
  }

  private static void write(JsonNode node, String skip, StringBuilder out) {
    if (node.isObject()) {
      List<String> keys = new ArrayList<>();
      for (Iterator<Map.Entry<String, JsonNode>> it = node.fields(); it.hasNext(); ) {
        String k = it.next().getKey();
        if (!k.equals(skip)) keys.add(k);
      }
      keys.sort(null); // String.compareTo compares UTF-16 code units: RFC 8785's order
      out.append('{');
      for (int i = 0; i < keys.size(); i++) {
        if (i > 0) out.append(',');
        string(keys.get(i), out);
        out.append(':');
        write(node.get(keys.get(i)), null, out);
      }
      out.append('}');
    } else if (node.isArray()) {
      out.append('[');
      for (int i = 0; i < node.size(); i++) {
        if (i > 0) out.append(',');
        write(node.get(i), null, out);
      }
      out.append(']');
    } else if (node.isTextual()) {
      string(node.textValue(), out);
    } else if (node.isBoolean()) {
      out.append(node.booleanValue());
    } else if (node.isNull()) {
      out.append("null");
    } else if (node.isIntegralNumber()) {
      // JSON numbers are IEEE doubles in RFC 8785: an integer beyond 2^53 has no canonical form.
      if (!node.canConvertToLong() || Math.abs(node.longValue()) > (1L << 53)) {
        throw new IllegalArgumentException("integer beyond 2^53 has no canonical form: " + node);
      }
      out.append(node.longValue());
    } else if (node.isNumber()) {
      out.append(number(node.doubleValue()));
    } else {
      throw new IllegalArgumentException("not JSON: " + node);
    }
  }

  /** ECMAScript Number::toString for a finite double. */
  static String number(double d) {
    if (Double.isNaN(d) || Double.isInfinite(d)) {
      throw new IllegalArgumentException("NaN and infinities have no canonical form");
    }
    if (d == 0) return "0"; // -0 too
    String sign = d < 0 ? "-" : "";
    // Double.toString gives digits that read back to d; stripped, they are ES's k digits.
    BigDecimal bd = new BigDecimal(Double.toString(Math.abs(d))).stripTrailingZeros();
    String digits = bd.unscaledValue().toString();
    int k = digits.length();
    int n = k - bd.scale(); // value = digits * 10^(n - k)
    StringBuilder s = new StringBuilder(sign);
    if (k <= n && n <= 21) {
      s.append(digits).append("0".repeat(n - k));
    } else if (0 < n && n <= 21) {
      s.append(digits, 0, n).append('.').append(digits, n, k);
    } else if (-6 < n && n <= 0) {
      s.append("0.").append("0".repeat(-n)).append(digits);
    } else {
      int e = n - 1;
      s.append(digits.charAt(0));
      if (k > 1) s.append('.').append(digits, 1, k);
      s.append('e').append(e < 0 ? '-' : '+').append(Math.abs(e));
    }
    return s.toString();
  }

  private static void string(String v, StringBuilder out) {
    out.append('"');
    for (int i = 0; i < v.length(); i++) {
      char c = v.charAt(i);
      switch (c) {
        case '"' -> out.append("\\\"");
        case '\\' -> out.append("\\\\");
        case '\b' -> out.append("\\b");
        case '\f' -> out.append("\\f");
        case '\n' -> out.append("\\n");
        case '\r' -> out.append("\\r");
        case '\t' -> out.append("\\t");
        default -> {
          if (c < 0x20) out.append(String.format("\\u%04x", (int) c));
          else out.append(c);
        }
      }
    }
    out.append('"');
  }
}
