// memjs (the binary protocol, with SASL PLAIN) against Shoal's Memcached gateway.
// Usage: node memjs-workload.mjs <port> <user> <password>
import assert from "node:assert/strict";
import memjs from "memjs";

const [port, user, password] = process.argv.slice(2);
const quiet = { log() {} };
const client = memjs.Client.create(`${user}:${password}@127.0.0.1:${port}`, { timeout: 5, logger: quiet });
const bad = memjs.Client.create(`${user}:wrong@127.0.0.1:${port}`, { timeout: 5, retries: 0, logger: quiet });

// A wrong password gets no further than the SASL step.
await assert.rejects(bad.get("k"));
bad.close();

await client.flush();
assert.equal(await client.set("k", "v1", { expires: 100 }), true);
let got = await client.get("k");
assert.equal(got.value.toString(), "v1");
assert.equal(await client.add("k", "other"), false);
assert.equal(await client.add("fresh", "f"), true);
assert.equal(await client.replace("missing", "x"), false);
assert.equal(await client.replace("k", "v2"), true);
assert.equal(await client.append("k", "+a"), true);
assert.equal((await client.get("k")).value.toString(), "v2+a");
// memjs 1.3's prepend sends the append opcode (memcached answers it the same way), so it is
// not exercised here; memccapable covers binary prepend.
// Appending to nothing is "not stored", which memjs reports as an error, as with memcached.
await assert.rejects(client.append("missing", "x"), /Item not stored/);

// Counters: a miss creates the item with the initial value.
let n = await client.increment("n", 5, { initial: 10 });
assert.deepEqual(n, { success: true, value: 10 });
n = await client.increment("n", 5, {});
assert.deepEqual(n, { success: true, value: 15 });
n = await client.decrement("n", 100, {});
assert.deepEqual(n, { success: true, value: 0 });
await assert.rejects(client.increment("k", 1, {}), /Incr\/Decr on non-numeric value|non-numeric/);

assert.equal(await client.touch("k", 1000), true);
assert.equal(await client.touch("missing", 10), false);
assert.equal(await client.delete("fresh"), true);
assert.equal(await client.delete("fresh"), false);
got = await client.get("fresh");
assert.equal(got.value, null);

// Many requests at once share the connection; each gets its own answer.
const keys = Array.from({ length: 200 }, (_, i) => `many:${i}`);
await Promise.all(keys.map((key, i) => client.set(key, String(i))));
const values = await Promise.all(keys.map((key) => client.get(key)));
values.forEach((v, i) => assert.equal(v.value.toString(), String(i)));

const stats = await new Promise((resolve, reject) =>
  client.stats((err, server, s) => (err ? reject(err) : resolve(s))),
);
assert.ok(Number(stats.cmd_get) > 0 && "curr_items" in stats, JSON.stringify(stats));

client.close();
console.log("memjs: ok");
