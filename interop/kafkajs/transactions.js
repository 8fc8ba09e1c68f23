// kafkajs transactions against strata (interop/kafkajs.sh):
//
//   node transactions.js HOST:PORT[,HOST:PORT...] RF
//
// A transactional producer commits 10 records a partition, aborts 10 more,
// then runs one consume-transform-produce transaction that sends the
// group's offsets with it (sendOffsets); a second producer with the same
// transactional id fences the first. A read_committed consumer must see
// every committed record once and no aborted one, and the group's offsets
// must be those sent in the transaction. Prints "ok ..." per check; exits
// non-zero at the first failure.
'use strict'

const { Kafka, logLevel } = require('kafkajs')

const brokers = process.argv[2].split(',')
const rf = parseInt(process.argv[3] || '1', 10)
const suffix = Date.now().toString(36)
const topic = `kafkajs-txn-${suffix}`
const src = `kafkajs-txn-in-${suffix}`
const txnId = `kafkajs-${suffix}`
const kafka = new Kafka({ clientId: 'strata-interop', brokers, logLevel: logLevel.NOTHING, retry: { retries: 10 } })

function fail (msg) {
  console.log(`kafkajs transactions: FAIL: ${msg}`)
  process.exit(1)
}

const records = (prefix) => [0, 1].flatMap(p =>
  Array.from({ length: 10 }, (_, i) => ({ topic, partition: p, value: `${prefix}-${p}-${i}` })))

async function send (txn, recs) {
  for (const r of recs) {
    await txn.send({ topic: r.topic, messages: [{ value: r.value, partition: r.partition }] })
  }
}

// readAll reads topic from the start with a fresh group, read_committed
// (kafkajs's default), until n records or a quiet spell after them.
async function readAll (t, n) {
  const c = kafka.consumer({ groupId: `reader-${suffix}-${Math.random()}`, readUncommitted: false, maxWaitTimeInMs: 200 })
  await c.connect()
  await c.subscribe({ topic: t, fromBeginning: true })
  const seen = []
  let last = Date.now()
  await c.run({ eachMessage: async ({ message }) => { seen.push(message.value.toString()); last = Date.now() } })
  const deadline = Date.now() + 90000
  while (Date.now() < deadline && (seen.length < n || Date.now() - last < 3000)) {
    await new Promise(resolve => setTimeout(resolve, 200))
  }
  await c.disconnect()
  return seen
}

async function main () {
  const admin = kafka.admin()
  await admin.connect()
  await admin.createTopics({ waitForLeaders: true, topics: [{ topic, numPartitions: 2, replicationFactor: rf }, { topic: src, numPartitions: 2, replicationFactor: rf }] })

  const producer = kafka.producer({ transactionalId: txnId, idempotent: true, maxInFlightRequests: 1, transactionTimeout: 60000 })
  await producer.connect()

  let txn = await producer.transaction()
  await send(txn, records('committed'))
  await txn.commit()
  console.log('ok commit')

  txn = await producer.transaction()
  await send(txn, records('aborted'))
  await txn.abort()
  console.log('ok abort')

  // Consume-transform-produce: 20 input records, their offsets sent with
  // the output in one transaction.
  const plain = kafka.producer()
  await plain.connect()
  await plain.send({ topic: src, messages: Array.from({ length: 20 }, (_, i) => ({ value: `in-${i}`, partition: i % 2 })) })
  await plain.disconnect()
  const group = `etl-${suffix}`
  const consumer = kafka.consumer({ groupId: group, maxWaitTimeInMs: 200 })
  await consumer.connect()
  await consumer.subscribe({ topic: src, fromBeginning: true })
  const got = []
  await consumer.run({ autoCommit: false, eachMessage: async ({ partition, message }) => { got.push({ partition, message }) } })
  const deadline = Date.now() + 90000
  while (got.length < 20 && Date.now() < deadline) {
    await new Promise(resolve => setTimeout(resolve, 200))
  }
  await consumer.disconnect()
  if (got.length !== 20) fail(`etl: read ${got.length} of 20 input records`)
  txn = await producer.transaction()
  await send(txn, got.map(({ partition, message }) => ({ topic, partition, value: `etl-${message.value}` })))
  const next = {}
  for (const { partition, message } of got) {
    next[partition] = Math.max(next[partition] || 0, Number(message.offset) + 1)
  }
  await txn.sendOffsets({ consumerGroupId: group, topics: [{ topic: src, partitions: Object.entries(next).map(([p, o]) => ({ partition: Number(p), offset: String(o) })) }] })
  await txn.commit()
  console.log('ok consume-transform-produce with sendOffsets')

  const want = records('committed').map(r => r.value).concat(Array.from({ length: 20 }, (_, i) => `etl-in-${i}`)).sort()
  const seen = (await readAll(topic, want.length)).sort()
  if (JSON.stringify(seen) !== JSON.stringify(want)) {
    fail(`read_committed saw ${seen.length} records, want ${want.length}: aborted ${seen.filter(v => v.startsWith('aborted')).length}`)
  }
  console.log(`ok read_committed sees the ${seen.length} committed records and no aborted one`)

  const offsets = await admin.fetchOffsets({ groupId: group, topics: [src] })
  const committed = offsets[0].partitions.map(p => Number(p.offset)).sort()
  if (JSON.stringify(committed) !== JSON.stringify([10, 10])) fail(`group offsets ${committed}, want [10, 10]`)
  console.log('ok group offsets committed with the transaction')

  // Zombie fencing: a new producer with the same transactional id.
  txn = await producer.transaction()
  await txn.send({ topic, messages: [{ value: 'zombie', partition: 0 }] })
  const producer2 = kafka.producer({ transactionalId: txnId, idempotent: true, maxInFlightRequests: 1 })
  await producer2.connect()
  // kafkajs initialises the transactional producer id (InitProducerId,
  // which fences the first producer) with its first transaction.
  const txn2 = await producer2.transaction()
  let fenced = false
  try {
    await txn.commit()
  } catch (e) {
    fenced = true
  }
  if (!fenced) fail("the fenced producer's commit succeeded")
  await txn2.send({ topic, messages: [{ value: 'after-fence', partition: 0 }] })
  await txn2.commit()
  const final = await readAll(topic, want.length + 1)
  if (final.includes('zombie') || !final.includes('after-fence')) fail(`after fencing: zombie ${final.includes('zombie')}, after-fence ${final.includes('after-fence')}`)
  console.log('ok zombie fenced; the new producer commits')

  await producer.disconnect().catch(() => {})
  await producer2.disconnect()
  await admin.disconnect()
}

main().then(() => process.exit(0), e => fail(e.stack || String(e)))
