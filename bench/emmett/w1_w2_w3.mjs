// The W1, W2 and W3 workloads of bench/ on Emmett's in-memory event store and message bus, the peer that
// tools/bench.py compares the library with (the "Peer: Emmett" table of docs/performance.md).
//
//   node bench/emmett/w1_w2_w3.mjs --module PATH [--repetitions N]
//
// PATH is the file that `require.resolve('@event-driven-io/emmett')` names; tools/bench.py resolves it from
// bench/emmett/, so `npm install --no-save --prefix bench/emmett @event-driven-io/emmett` is enough. The workloads are those of bench/workload.hpp and
// bench/w3_bus.cpp, with the same events ({account_id: "acc-000123", amount}, three types):
//   W1/append/1, W1/append/10  1,000 streams x 100 events appended round-robin with an expected-version check
//                              (appendToStream's expectedStreamVersion), 1 or 10 events per append, into a
//                              fresh getInMemoryEventStore(); time for the whole workload.
//   W2/replay-1M               aggregateStream of one 1,000,000-event stream into an account (evolve adds and
//                              subtracts, as bench::Account does); time per replay.
//   W2/replay-w1               aggregateStream of each of the 1,000 W1 streams, by id; time for all of them.
//   W3/publish/1, /10, /1000   getInMemoryMessageBus().publish of one bench.deposited event to 1, 10 or 1,000
//                              subscribed handlers, each adding the amount to a sum; time per publish.
// Each workload runs once untimed (the JIT's warm-up), then N timed repetitions. Prints one JSON object on
// standard output: {"emmett": version, "node": version, "module": PATH, "repetitions": N,
// "results": {workload: [nanoseconds of each repetition]}}.

import { readFileSync, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const fail = (message) => {
  process.stderr.write(`w1_w2_w3.mjs: ${message}\n`);
  process.exit(2);
};

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const at = args.indexOf(name);
  if (at < 0) return fallback;
  if (at + 1 >= args.length) fail(`${name} needs a value`);
  return args[at + 1];
};
const modulePath = option('--module', undefined);
if (!modulePath) fail('--module PATH is required (the file require.resolve("@event-driven-io/emmett") names)');
const repetitions = Number(option('--repetitions', '5'));
if (!Number.isInteger(repetitions) || repetitions < 1) fail('--repetitions must be a positive integer');

let emmett;
try {
  emmett = createRequire(import.meta.url)(modulePath);
} catch (error) {
  fail(`cannot load ${modulePath}: ${error.message}`);
}
for (const name of ['getInMemoryEventStore', 'getInMemoryMessageBus'])
  if (typeof emmett[name] !== 'function') fail(`${modulePath} has no ${name}()`);

// The version of the package the module belongs to.
const emmettVersion = (() => {
  for (let dir = dirname(modulePath); dir !== dirname(dir); dir = dirname(dir)) {
    const manifest = join(dir, 'package.json');
    if (!existsSync(manifest)) continue;
    const parsed = JSON.parse(readFileSync(manifest, 'utf8'));
    if (parsed.name === '@event-driven-io/emmett') return parsed.version;
  }
  return null;
})();

// --- the workload (bench/workload.hpp) ----------------------------------------------------------------------

const streams = 1000;
const eventsPerStream = 100;
const accountId = (i) => `acc-${String(i).padStart(6, '0')}`;

// The n-th event of a stream: opened first, then deposits and withdrawals (bench::make_event).
const makeEvent = (account, n) => {
  if (n === 0) return { type: 'bench.opened', data: { account_id: account, amount: 0 } };
  if (n % 3 === 0) return { type: 'bench.withdrawn', data: { account_id: account, amount: (n % 7) + 1 } };
  return { type: 'bench.deposited', data: { account_id: account, amount: (n % 11) + 5 } };
};

// The account every replay folds into (bench::Account).
const initialState = () => ({ opened: false, balance: 0 });
const evolve = (state, { type, data }) => {
  switch (type) {
    case 'bench.opened':
      return { opened: data.amount >= 0, balance: state.balance };
    case 'bench.deposited':
      return { opened: state.opened, balance: state.balance + data.amount };
    case 'bench.withdrawn':
      return { opened: state.opened, balance: state.balance - data.amount };
    default:
      return state;
  }
};

// W1's batches in append order: [round][stream] -> batch of plain events.
const w1Input = (perAppend) => {
  const ids = Array.from({ length: streams }, (_, s) => accountId(s));
  const rounds = [];
  for (let r = 0; r < eventsPerStream / perAppend; ++r)
    rounds.push(ids.map((id) => Array.from({ length: perAppend }, (_, k) => makeEvent(id, r * perAppend + k))));
  return { ids, rounds };
};

const appendW1 = async (store, { ids, rounds }, perAppend) => {
  for (let r = 0; r < rounds.length; ++r)
    for (let s = 0; s < ids.length; ++s)
      await store.appendToStream(ids[s], rounds[r][s], { expectedStreamVersion: BigInt(r * perAppend) });
};

const now = () => process.hrtime.bigint();

// Runs `setup` and `body` once untimed, then `repetitions` times timed (body only); nanoseconds per unit.
const measure = async (setup, body, units = 1) => {
  const times = [];
  for (let i = 0; i <= repetitions; ++i) {
    const input = await setup();
    const start = now();
    await body(input);
    const elapsed = Number(now() - start) / units;
    if (i > 0) times.push(elapsed);
  }
  return times;
};

const results = {};

for (const perAppend of [1, 10]) {
  const input = w1Input(perAppend);
  results[`W1/append/${perAppend}`] = await measure(
    () => emmett.getInMemoryEventStore(),
    async (store) => {
      await appendW1(store, input, perAppend);
      const { currentStreamVersion } = await store.readStream(input.ids[0]);
      if (currentStreamVersion !== BigInt(eventsPerStream)) fail('W1: a stream did not keep its events');
    },
  );
}

{
  const length = 1000000;
  const store = emmett.getInMemoryEventStore();
  for (let i = 0; i < length; i += 10000) {
    const chunk = Array.from({ length: 10000 }, (_, k) => makeEvent('acc-000001', i + k));
    await store.appendToStream('acc-000001', chunk, { expectedStreamVersion: BigInt(i) });
  }
  results['W2/replay-1M'] = await measure(
    () => undefined,
    async () => {
      const { state, currentStreamVersion } = await store.aggregateStream('acc-000001', { evolve, initialState });
      if (currentStreamVersion !== BigInt(length) || !state.opened) fail('W2: the replay missed events');
    },
  );
}

{
  const input = w1Input(1);
  const store = emmett.getInMemoryEventStore();
  await appendW1(store, input, 1);
  results['W2/replay-w1'] = await measure(
    () => undefined,
    async () => {
      let versions = 0n;
      for (const id of input.ids) {
        const { currentStreamVersion } = await store.aggregateStream(id, { evolve, initialState });
        versions += currentStreamVersion;
      }
      if (versions !== BigInt(streams * eventsPerStream)) fail('W2: the replay of the W1 streams missed events');
    },
  );
}

for (const handlers of [1, 10, 1000]) {
  const bus = emmett.getInMemoryMessageBus();
  let sum = 0;
  for (let h = 0; h < handlers; ++h)
    bus.subscribe((event) => {
      sum += event.data.amount;
    }, 'bench.deposited');
  const event = { type: 'bench.deposited', data: { account_id: 'acc-000123', amount: 7 } };
  const publishes = Math.max(1000, Math.floor(200000 / handlers));
  results[`W3/publish/${handlers}`] = await measure(
    () => undefined,
    async () => {
      const before = sum;
      for (let i = 0; i < publishes; ++i) await bus.publish(event);
      if (sum - before !== publishes * handlers * 7) fail('W3: a handler missed an event');
    },
    publishes,
  );
}

process.stdout.write(
  JSON.stringify({ emmett: emmettVersion, node: process.version, module: modulePath, repetitions, results }) + '\n',
);
