// A Node order gateway written with KafkaJS from the npm registry, against TradeGuard's published
// contract only: topic names and keys from topics.json, records checked against the JSON Schema
// files with Ajv. It logs customers in (auth.events), sends their orders (orders, keyed by
// account_id with KafkaJS's DefaultPartitioner: Java-compatible murmur2, like the engine), and
// checks every decision the engine sends back. It prints one JSON summary line and exits 0 only
// if every order got exactly one valid decision that matches it.
//
// Configuration (environment): GATEWAY_BROKERS (host:port,...), GATEWAY_TOPIC_PREFIX,
// GATEWAY_SCHEMA_DIR (streams/jsonschema), GATEWAY_ACCOUNTS, GATEWAY_ORDERS_PER_ACCOUNT,
// GATEWAY_RUN (a tag for ids), GATEWAY_TIMEOUT_MS.

import { readFileSync } from "node:fs";
import { join } from "node:path";
import Ajv2020 from "ajv/dist/2020.js";
import { Kafka, Partitioners, logLevel } from "kafkajs";

function setting(name, fallback) {
  const value = process.env[name] ?? fallback;
  if (value === undefined || value === "") throw new Error(`${name} is not set`);
  return value;
}

const brokers = setting("GATEWAY_BROKERS").split(",");
const prefix = setting("GATEWAY_TOPIC_PREFIX", "");
const schemaDir = setting("GATEWAY_SCHEMA_DIR");
const accounts = Number(setting("GATEWAY_ACCOUNTS", "20"));
const perAccount = Number(setting("GATEWAY_ORDERS_PER_ACCOUNT", "5"));
const run = setting("GATEWAY_RUN", `node-${process.pid}`);
const timeoutMs = Number(setting("GATEWAY_TIMEOUT_MS", "60000"));

// The contract: which topic carries what, keyed by which field, validated by which schema.
// Several topics may share one schema (decisions and decisions.shadow): compile each file once.
const ajv = new Ajv2020({ allErrors: true, strict: false });
const compiled = new Map();
const checker = (file) => {
  if (!compiled.has(file)) {
    compiled.set(file, ajv.compile(JSON.parse(readFileSync(join(schemaDir, file), "utf8"))));
  }
  return compiled.get(file);
};
const contract = Object.fromEntries(
  JSON.parse(readFileSync(join(schemaDir, "topics.json"), "utf8")).map((t) => [
    t.name,
    { topic: prefix + t.name, key: t.key, check: checker(t.schema) },
  ]),
);

function message(name, record) {
  const spec = contract[name];
  if (!spec.check(record)) {
    throw new Error(`our own ${name} record breaks the contract: ${ajv.errorsText(spec.check.errors)}`);
  }
  return { key: String(record[spec.key]), value: JSON.stringify(record) };
}

// Customers: most log in from home and trade as usual; a few are taken over (failed logins,
// then a login from a new device, network and country) and sell, then buy a thin ticker.
const now = Date.now();
const logins = [];
const orders = [];
for (let a = 0; a < accounts; a++) {
  const account = `${run}-acct-${a}`;
  const hijacked = a % 10 === 9;
  const home = { ip: `203.0.113.${a % 250}`, device_id: `${account}-phone`, user_agent: "Mozilla/5.0 (iPhone)", country: "JP", asn: 2516 };
  const attacker = { ip: `198.51.100.${a % 250}`, device_id: "vm-7", user_agent: "HeadlessChrome/120", country: "VN", asn: 9009 };
  const where = hijacked ? attacker : home;
  const session = `${account}-s`;
  if (hijacked) {
    for (let k = 0; k < 2; k++) {
      logins.push({ account_id: account, event: "login_failure", session_id: null, ...attacker, ts: now - 60_000 + k });
    }
  }
  logins.push({ account_id: account, event: "login_success", session_id: session, ...where, ts: now - 30_000 });
  for (let k = 0; k < perAccount; k++) {
    const dump = hijacked && k < perAccount / 2;
    orders.push({
      order_id: `${run}-o-${a}-${k}`, account_id: account,
      ticker: hijacked ? (dump ? "7203" : "9999") : ["7203", "6758", "9984"][k % 3],
      side: hijacked ? (dump ? "sell" : "buy") : k % 2 ? "sell" : "buy",
      qty: hijacked ? 5000 : 100, price: hijacked && !dump ? 120.0 : 2500.0, margin: false,
      session_id: session, ts: now + k, channel: "web", ip: where.ip, device_id: where.device_id,
      user_agent: where.user_agent,
    });
  }
}

const kafka = new Kafka({ clientId: `tradeguard-node-gateway-${run}`, brokers, logLevel: logLevel.ERROR });
const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, allowAutoTopicCreation: false });
// The embedded broker answers a fetch only when its wait expires: keep the wait short. It also
// holds a group join for the rebalance timeout (KafkaJS's default 60 s costs 15 s per join).
const consumer = kafka.consumer({
  groupId: `tradeguard-node-gateway-${run}`, maxWaitTimeInMs: 10,
  sessionTimeout: 6000, rebalanceTimeout: 3000, heartbeatInterval: 1000,
});

const sentAt = new Map();
const decisions = new Map(); // order_id -> [{record, at}]
const problems = [];
const started = Date.now();
let joinedAt = null;

async function main() {
  await producer.connect();
  await consumer.connect();
  const joined = new Promise((resolve) => consumer.on(consumer.events.GROUP_JOIN, resolve));
  await consumer.subscribe({ topic: contract.decisions.topic, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message: msg }) => {
      const at = Date.now();
      let record;
      try {
        record = JSON.parse(msg.value.toString("utf8"));
      } catch (err) {
        problems.push(`decision not JSON: ${err.message}`);
        return;
      }
      if (!sentAt.has(record.order_id)) return; // another gateway's order
      const list = decisions.get(record.order_id) ?? [];
      list.push({ record, at });
      decisions.set(record.order_id, list);
    },
  });
  await joined;
  joinedAt = Date.now();

  await producer.send({ topic: contract["auth.events"].topic, acks: -1, messages: logins.map((r) => message("auth.events", r)) });
  for (let i = 0; i < orders.length; i += 10) { // ten at a time, as a busy gateway would
    const batch = orders.slice(i, i + 10);
    const at = Date.now();
    for (const o of batch) sentAt.set(o.order_id, at);
    await producer.send({ topic: contract.orders.topic, acks: -1, messages: batch.map((o) => message("orders", o)) });
  }

  const deadline = Date.now() + timeoutMs;
  while (decisions.size < orders.length && Date.now() < deadline) await sleep(20);
  await sleep(500); // anything arriving now would be a repeat
  await consumer.disconnect();
  await producer.disconnect();
  return check();
}

function check() {
  const missing = [];
  const repeated = [];
  const roundTrips = [];
  const actions = { allow: 0, hold: 0, block: 0 };
  for (const o of orders) {
    const got = decisions.get(o.order_id) ?? [];
    if (got.length === 0) { missing.push(o.order_id); continue; }
    if (got.length > 1) repeated.push(o.order_id);
    const { record, at } = got[0];
    roundTrips.push(at - sentAt.get(o.order_id));
    if (!contract.decisions.check(record)) {
      problems.push(`${o.order_id}: decision breaks the contract: ${ajv.errorsText(contract.decisions.check.errors)}`);
      continue;
    }
    for (const field of ["account_id", "ticker", "side"]) {
      if (record[field] !== o[field]) problems.push(`${o.order_id}: decision ${field} ${record[field]} != order's ${o[field]}`);
    }
    if (record.order_ts !== o.ts) problems.push(`${o.order_id}: order_ts ${record.order_ts} != ${o.ts}`);
    actions[record.action] += 1;
  }
  roundTrips.sort((x, y) => x - y);
  const pct = (q) => (roundTrips.length ? roundTrips[Math.min(roundTrips.length - 1, Math.ceil((q / 100) * roundTrips.length) - 1)] : null);
  const summary = {
    orders: orders.length, logins: logins.length, decided: orders.length - missing.length,
    missing: missing.slice(0, 5), repeated: repeated.slice(0, 5), problems: problems.slice(0, 5),
    actions, join_ms: joinedAt - started,
    round_trip_ms: { p50: pct(50), p99: pct(99), max: roundTrips.at(-1) ?? null },
    order_ids: orders.map((o) => o.order_id),
  };
  console.log(JSON.stringify(summary));
  return missing.length === 0 && repeated.length === 0 && problems.length === 0 ? 0 : 1;
}

function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(`gateway failed: ${err.stack ?? err}`);
    process.exit(2);
  },
);
