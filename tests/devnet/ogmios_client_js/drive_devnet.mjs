// Drives a running devnet with the official Ogmios TypeScript client (@cardano-ogmios/client 6.14.0): the
// queries a dApp library makes at start-up, chain-sync across a forced rollback, submit, mempool monitoring.
// Run by tests/devnet/test_ogmios_client_js.py; prints one JSON summary line; exits non-zero on any failure.
//
// env: OGMIOS_PORT, CONTROL_URL (the devnet control API), TX_CBOR / TX_ID (a signed payment), ADDRESS.

import {
  createChainSynchronizationClient,
  createConnectionObject,
  createInteractionContext,
  createLedgerStateQueryClient,
  createMempoolMonitoringClient,
  createTransactionSubmissionClient,
  getServerHealth,
} from '@cardano-ogmios/client'

const { OGMIOS_PORT, CONTROL_URL, TX_CBOR, TX_ID, ADDRESS } = process.env
const connection = { host: '127.0.0.1', port: Number(OGMIOS_PORT) }

function check (condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`)
}

async function control (path, body) {
  const response = await fetch(CONTROL_URL + path, { method: 'POST', body: JSON.stringify(body) })
  check(response.ok, `${path} answered ${response.status}`)
  return response.json()
}

async function until (predicate, what, timeoutMs = 20000) {
  const deadline = Date.now() + timeoutMs
  while (!predicate()) {
    check(Date.now() < deadline, `timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

async function queries (context, summary) {
  const health = await getServerHealth({ connection: createConnectionObject(connection) })
  check(health.currentEra === 'conway', `health era ${health.currentEra}`)
  const query = await createLedgerStateQueryClient(context)
  const params = await query.protocolParameters()
  const v3 = params.plutusCostModels['plutus:v3']
  check(Array.isArray(v3) && v3.length === 251, 'a plutus:v3 cost model of 251 parameters')
  check(params.minFeeReferenceScripts.range === 25600, 'minFeeReferenceScripts')
  const tip = await query.ledgerTip()
  const summaries = await query.eraSummaries()
  check(summaries.length === 7, `${summaries.length} era summaries`)
  const start = await query.networkStartTime()
  check(!Number.isNaN(Date.parse(start)), `network start time ${start}`)
  await query.epoch()
  await query.networkBlockHeight()
  await query.genesisConfiguration('shelley')
  const utxo = await query.utxo({ addresses: [ADDRESS] })
  check(utxo.length > 0, 'the genesis key has UTxO')
  summary.queries = { tip, eraSummaries: summaries.length, utxo: utxo.length, plutusV3: v3.length }
  await query.shutdown()
}

async function chainSyncAcrossRollback (context, summary) {
  const forwards = []
  const backwards = []
  const sync = await createChainSynchronizationClient(context, {
    async rollForward ({ block }, next) { forwards.push({ id: block.id, height: block.height }); next() },
    async rollBackward ({ point }, next) { backwards.push(point); next() },
  })
  await sync.resume(['origin'], 10)
  const produced = await control('/devnet/blocks', { count: 3 })
  const top = produced.tip.height
  await until(() => forwards.some((b) => b.height === top), `block ${top} over chain-sync`)
  const keep = forwards.find((b) => b.height === top - 2)
  await control('/devnet/rollback', { blocks: 2 })
  await until(() => backwards.some((p) => p !== 'origin' && p.id === keep.id), 'the rollback to the kept block')
  const seenBefore = forwards.length
  await control('/devnet/fund', { address: ADDRESS, lovelace: 3000000 })  // the new branch differs
  await control('/devnet/blocks', { count: 2 })
  await until(() => forwards.length >= seenBefore + 2, 'the new branch over chain-sync')
  const replaced = forwards.slice(seenBefore).find((b) => b.height === top - 1)
  const dropped = forwards.slice(0, seenBefore).find((b) => b.height === top - 1)
  check(replaced && dropped && replaced.id !== dropped.id, 'a new block at the rolled-back height')
  summary.chainSync = { forwards: forwards.length, rollbacks: backwards.filter((p) => p !== 'origin').length }
  return { sync, forwards }
}

async function submitAndMempool (submitContext, mempoolContext, forwards, summary) {
  const submission = await createTransactionSubmissionClient(submitContext)
  const id = await submission.submitTransaction(TX_CBOR)
  check(id === TX_ID, `submitted id ${id}`)
  let refusal = null
  try {
    await submission.submitTransaction(TX_CBOR)  // its input is spent by the mempool now
  } catch (error) {
    refusal = error.code
  }
  check(refusal === 3117, `a second submission refused with 3117, got ${refusal}`)
  const mempool = await createMempoolMonitoringClient(mempoolContext)
  await mempool.acquireMempool()
  check(await mempool.hasTransaction(TX_ID), 'hasTransaction')
  const size = await mempool.sizeOfMempool()
  check(size.transactions.count === 1, `mempool of ${size.transactions.count}`)
  check(await mempool.nextTransaction() === TX_ID, 'nextTransaction')
  check(await mempool.nextTransaction() === null, 'the snapshot ends')
  await mempool.releaseMempool()
  const before = forwards.length
  await control('/devnet/blocks', { count: 1 })
  await until(() => forwards.length > before, 'the block with the tx')
  summary.submitted = id
  await mempool.shutdown()
  await submission.shutdown()
}

async function main () {
  const summary = {}
  const errors = []
  // One connection per client: a client's shutdown closes its socket.
  const context = () => createInteractionContext((error) => errors.push(error), () => {}, { connection })
  await queries(await context(), summary)
  const { sync, forwards } = await chainSyncAcrossRollback(await context(), summary)
  await submitAndMempool(await context(), await context(), forwards, summary)
  await sync.shutdown()
  check(errors.length === 0, `socket errors: ${errors}`)
  console.log(JSON.stringify(summary))
}

main().then(() => process.exit(0), (error) => {
  console.error(error && error.stack ? error.stack : error)
  process.exit(1)
})
