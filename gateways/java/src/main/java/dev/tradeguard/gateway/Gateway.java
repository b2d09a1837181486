package dev.tradeguard.gateway;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.networknt.schema.JsonSchema;
import com.networknt.schema.JsonSchemaFactory;
import com.networknt.schema.SpecVersion;
import com.networknt.schema.ValidationMessage;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.*;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * A reference order gateway in Java, written against TradeGuard's published contract only
 * (streams/jsonschema: topics.json and the schemas). It logs customers in, sends their orders
 * keyed by account_id with kafka-clients' default partitioner (murmur2, as the engine routes),
 * waits for each decision until a deadline, keeps the control topics (a control counts only if
 * its signature verifies with the key) and validates every decision against its schema. It
 * prints one JSON summary line and exits 0 only if every order got exactly one valid decision.
 *
 * <p>Configuration (environment): GATEWAY_BROKERS, GATEWAY_TOPIC_PREFIX, GATEWAY_SCHEMA_DIR,
 * GATEWAY_ACCOUNTS, GATEWAY_ORDERS_PER_ACCOUNT, GATEWAY_RUN, GATEWAY_TIMEOUT_MS,
 * GATEWAY_CONTROL_KEY_FILE (empty: the public development key). {@code java ... Gateway canon}
 * instead reads JSON lines on stdin and prints each one's canonical form and signature check.
 */
public final class Gateway {
  static final ObjectMapper JSON = new ObjectMapper();

  record Spec(String topic, String key, JsonSchema schema) {}

  static String setting(String name, String fallback) {
    String v = System.getenv(name);
    if (v == null || v.isEmpty()) v = fallback;
    if (v == null) throw new IllegalArgumentException(name + " is not set");
    return v;
  }

  public static void main(String[] args) throws Exception {
    ControlKeys keys = ControlKeys.fromFileOrDevelopment(System.getenv("GATEWAY_CONTROL_KEY_FILE"));
    if (args.length > 0 && args[0].equals("canon")) {
      canon(keys);
      return;
    }
    System.exit(run(keys) ? 0 : 1);
  }

  /** Vectors from the Python side: one JSON record a line in, canonical form TAB check out. */
  static void canon(ControlKeys keys) throws Exception {
    BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    for (String line; (line = in.readLine()) != null; ) {
      if (line.isBlank()) continue;
      JsonNode node = JSON.readTree(line);
      String problem = keys.problem(node);
      System.out.println(Canonical.of(node, "signature") + "\t" + (problem == null ? "ok" : problem));
    }
  }

  static Map<String, Spec> contract(Path dir, String prefix) throws Exception {
    JsonSchemaFactory factory = JsonSchemaFactory.getInstance(SpecVersion.VersionFlag.V202012);
    Map<String, JsonSchema> compiled = new HashMap<>();
    Map<String, Spec> out = new HashMap<>();
    for (JsonNode t : JSON.readTree(dir.resolve("topics.json").toFile())) {
      String file = t.get("schema").asText();
      JsonSchema schema = compiled.get(file);
      if (schema == null) {
        schema = factory.getSchema(JSON.readTree(dir.resolve(file).toFile()));
        compiled.put(file, schema);
      }
      String name = t.get("name").asText();
      out.put(name, new Spec(prefix + name, t.get("key").asText(), schema));
    }
    return out;
  }

  static String invalid(Spec spec, JsonNode record) {
    Set<ValidationMessage> errors = spec.schema().validate(record);
    return errors.isEmpty() ? null : errors.toString();
  }

  static boolean run(ControlKeys keys) throws Exception {
    String brokers = setting("GATEWAY_BROKERS", null);
    String prefix = setting("GATEWAY_TOPIC_PREFIX", "");
    Map<String, Spec> contract = contract(Path.of(setting("GATEWAY_SCHEMA_DIR", null)), prefix);
    int accounts = Integer.parseInt(setting("GATEWAY_ACCOUNTS", "20"));
    int perAccount = Integer.parseInt(setting("GATEWAY_ORDERS_PER_ACCOUNT", "5"));
    String run = setting("GATEWAY_RUN", "java-" + ProcessHandle.current().pid());
    long timeoutMs = Long.parseLong(setting("GATEWAY_TIMEOUT_MS", "60000"));

    // Customers as the Node gateway makes them: most at home, every tenth taken over.
    long now = System.currentTimeMillis();
    List<ObjectNode> logins = new ArrayList<>();
    List<ObjectNode> orders = new ArrayList<>();
    for (int a = 0; a < accounts; a++) {
      String account = run + "-acct-" + a;
      boolean hijacked = a % 10 == 9;
      String ip = hijacked ? "198.51.100." + (a % 250) : "203.0.113." + (a % 250);
      String device = hijacked ? "vm-7" : account + "-phone";
      String agent = hijacked ? "HeadlessChrome/120" : "Mozilla/5.0 (iPhone)";
      ObjectNode login = JSON.createObjectNode().put("account_id", account)
          .put("event", "login_success").put("session_id", account + "-s").put("ip", ip)
          .put("device_id", device).put("user_agent", agent).put("country", hijacked ? "VN" : "JP")
          .put("asn", hijacked ? 9009 : 2516).put("ts", now - 30_000);
      logins.add(login);
      for (int k = 0; k < perAccount; k++) {
        boolean dump = hijacked && k < perAccount / 2;
        String[] tickers = {"7203", "6758", "9984"};
        orders.add(JSON.createObjectNode().put("order_id", run + "-o-" + a + "-" + k)
            .put("account_id", account)
            .put("ticker", hijacked ? (dump ? "7203" : "9999") : tickers[k % 3])
            .put("side", hijacked ? (dump ? "sell" : "buy") : (k % 2 == 1 ? "sell" : "buy"))
            .put("qty", hijacked ? 5000 : 100).put("price", hijacked && !dump ? 120.0 : 2500.0)
            .put("margin", false).put("session_id", account + "-s").put("ts", now + k)
            .put("channel", "web").put("ip", ip).put("device_id", device).put("user_agent", agent));
      }
    }

    Properties pp = new Properties();
    pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, brokers);
    pp.put(ProducerConfig.ACKS_CONFIG, "all");
    pp.put(ProducerConfig.LINGER_MS_CONFIG, "1");
    // No partitioner.class: the default partitioner hashes the key with murmur2, as the engine.
    Properties cp = new Properties();
    cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, brokers);
    cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
    cp.put(ConsumerConfig.FETCH_MAX_WAIT_MS_CONFIG, "10");
    cp.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");

    Map<String, Long> sentAt = new HashMap<>();
    Map<String, ObjectNode> byId = new HashMap<>();
    Map<String, List<Long>> answered = new HashMap<>();
    Map<String, JsonNode> board = new HashMap<>(); // topic|key -> the latest verified control
    Map<String, Integer> rejected = new TreeMap<>();
    int verified = 0;
    List<String> problems = new ArrayList<>();
    Spec decisions = contract.get("decisions");
    List<String> controlTopics = List.of("controls.tickers", "controls.accounts");
    long started = System.currentTimeMillis();

    try (KafkaProducer<String, String> producer =
            new KafkaProducer<>(pp, new StringSerializer(), new StringSerializer());
        KafkaConsumer<String, String> consumer =
            new KafkaConsumer<>(cp, new StringDeserializer(), new StringDeserializer())) {
      // Manual assignment from the beginning: no group join to wait for, and every control.
      List<TopicPartition> parts = new ArrayList<>();
      for (String name : List.of("decisions", "controls.tickers", "controls.accounts")) {
        for (PartitionInfo p : consumer.partitionsFor(contract.get(name).topic())) {
          parts.add(new TopicPartition(p.topic(), p.partition()));
        }
      }
      consumer.assign(parts);
      consumer.seekToBeginning(parts);

      for (ObjectNode login : logins) {
        send(producer, contract.get("auth.events"), login);
      }
      producer.flush();
      long deadline = 0;
      for (int i = 0; i < orders.size(); i++) {
        ObjectNode o = orders.get(i);
        String id = o.get("order_id").asText();
        byId.put(id, o);
        sentAt.put(id, System.nanoTime());
        send(producer, contract.get("orders"), o);
        if (i % 10 == 9) producer.flush(); // ten at a time, as a busy gateway would
      }
      producer.flush();
      deadline = System.currentTimeMillis() + timeoutMs;
      long quietUntil = Long.MAX_VALUE;
      while (System.currentTimeMillis() < Math.min(deadline, quietUntil)) {
        for (ConsumerRecord<String, String> rec : consumer.poll(Duration.ofMillis(20))) {
          long at = System.nanoTime();
          String bare = rec.topic().substring(prefix.length());
          if (controlTopics.contains(bare)) {
            if (rec.value() == null) {
              rejected.merge("tombstone", 1, Integer::sum);
              continue;
            }
            JsonNode control = JSON.readTree(rec.value());
            String problem = keys.problem(control);
            if (problem == null) problem = invalid(contract.get(bare), control);
            if (problem == null) {
              verified++;
              board.put(bare + "|" + rec.key(), control);
            } else {
              rejected.merge(problem.startsWith("[") ? "schema" : problem, 1, Integer::sum);
            }
            continue;
          }
          JsonNode d;
          try {
            d = JSON.readTree(rec.value());
          } catch (Exception e) {
            problems.add("decision not JSON: " + e.getMessage());
            continue;
          }
          String id = d.path("order_id").asText();
          ObjectNode sent = byId.get(id);
          if (sent == null) continue; // another gateway's order
          answered.computeIfAbsent(id, x -> new ArrayList<>()).add(at);
          String bad = invalid(decisions, d);
          if (bad != null) problems.add(id + ": decision breaks the schema: " + bad);
          for (String f : List.of("account_id", "ticker", "side")) {
            if (!d.path(f).asText().equals(sent.get(f).asText())) {
              problems.add(id + ": decision " + f + " " + d.path(f) + " != " + sent.get(f));
            }
          }
        }
        if (answered.size() == orders.size() && quietUntil == Long.MAX_VALUE) {
          quietUntil = System.currentTimeMillis() + 500; // anything now would be a repeat
        }
      }
    }

    List<String> missing = new ArrayList<>();
    List<String> repeated = new ArrayList<>();
    List<Double> rtt = new ArrayList<>();
    for (ObjectNode o : orders) {
      String id = o.get("order_id").asText();
      List<Long> got = answered.getOrDefault(id, List.of());
      if (got.isEmpty()) missing.add(id);
      if (got.size() > 1) repeated.add(id);
      if (!got.isEmpty()) rtt.add((got.get(0) - sentAt.get(id)) / 1e6);
    }
    Collections.sort(rtt);
    ObjectNode summary = JSON.createObjectNode();
    summary.put("gateway", "java kafka-clients " + org.apache.kafka.common.utils.AppInfoParser.getVersion());
    summary.put("orders", orders.size()).put("decided", answered.size());
    summary.set("missing", JSON.valueToTree(missing));
    summary.set("repeated", JSON.valueToTree(repeated));
    summary.set("problems", JSON.valueToTree(problems.subList(0, Math.min(20, problems.size()))));
    summary.put("round_trip_ms_p50", pct(rtt, 0.50)).put("round_trip_ms_p99", pct(rtt, 0.99))
        .put("round_trip_ms_max", rtt.isEmpty() ? -1 : rtt.get(rtt.size() - 1));
    summary.put("controls_verified", verified).put("controls_in_force", board.size());
    summary.set("controls_rejected", JSON.valueToTree(rejected));
    summary.put("elapsed_ms", System.currentTimeMillis() - started);
    summary.set("order_ids", JSON.valueToTree(byId.keySet()));
    System.out.println(JSON.writeValueAsString(summary));
    return missing.isEmpty() && repeated.isEmpty() && problems.isEmpty();
  }

  static double pct(List<Double> sorted, double q) {
    if (sorted.isEmpty()) return -1;
    return sorted.get(Math.min(sorted.size() - 1, (int) Math.ceil(q * sorted.size()) - 1));
  }

  static void send(KafkaProducer<String, String> producer, Spec spec, ObjectNode record)
      throws Exception {
    String bad = invalid(spec, record);
    if (bad != null) throw new IllegalStateException("our own record breaks the contract: " + bad);
    producer.send(new ProducerRecord<>(spec.topic(), record.get(spec.key()).asText(),
        JSON.writeValueAsString(record)));
  }
}
