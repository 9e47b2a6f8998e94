/**
 * @celeriac/sdk — typed tasks, producers and workers that speak Celery's protocol.
 * See GLOSSARY.md for the words used throughout.
 */
export { App, createApp, type RegisteredTask, Task } from "./app.js";
export type {
  ChordCount,
  ChordCounter,
  ChordPart,
  GroupMeta,
  ResultBackend,
  ResultMeta,
} from "./backends/backend.js";
export { createBackend } from "./backends/index.js";
export { MemoryBackend } from "./backends/memory/backend.js";
export type {
  Broker,
  BrokerCapabilities,
  Consumer,
  Delivery,
  Message,
  QueueDeclaration,
} from "./brokers/broker.js";
export { EVENT_EXCHANGE, PIDBOX_EXCHANGE, REPLY_EXCHANGE } from "./brokers/broker.js";
export { createBroker } from "./brokers/index.js";
export { MemoryBroker } from "./brokers/memory/broker.js";
export {
  Canvas,
  Chain,
  Chord,
  Chunks,
  chain,
  chord,
  chunks,
  Group,
  group,
  Signature,
  type SignatureOptions,
  signatureFromDict,
} from "./canvas/canvas.js";
export type { BroadcastOptions, Replies } from "./control/client.js";
export { ControlClient } from "./control/client.js";
export * from "./errors.js";
export { type CeleryEvent, decodeEvents, encodeEvents } from "./events/event.js";
export { EventReceiver, type ReceiverOptions } from "./events/receiver.js";
export { ClusterState, type TaskSnapshot, type WorkerSnapshot } from "./events/state.js";
export { UniqueConflictError } from "./locks/errors.js";
export type { Locks } from "./locks/locks.js";
export { MemoryLockStore } from "./locks/memory.js";
export type { OnConflict, UniqueBy, UniqueOptions } from "./locks/options.js";
export { RedisLockStore } from "./locks/redis.js";
export type { LockInfo, LockStore } from "./locks/store.js";
export {
  LOG_EVENT_TYPE,
  LOG_ROUTING_KEY,
  type LogLevel,
  type LogRecord,
  readLogEvent,
} from "./logs/event.js";
export { LogReceiver, type LogReceiverOptions } from "./logs/receiver.js";
export type { AppOptions, TaskHooks, TaskOptions } from "./options.js";
export { AsyncResult, type GetOptions } from "./producer/async-result.js";
export { TaskClient } from "./producer/client.js";
export { GroupResult, type ResultHandle } from "./producer/group-result.js";
export type { SendOptions, SignatureLike } from "./producer/options.js";
export { argsFromRepr, kwargsFromRepr, parsePythonLiteral } from "./protocol/literal.js";
export { repr, reprArgs } from "./protocol/repr.js";
export { isStateAdvance, READY_STATES, TaskState } from "./protocol/states.js";
export {
  type ArgsOf,
  defineTask,
  type KwargsOf,
  type ResultOf,
  type TaskDefinition,
  type TaskHandler,
  type TaskSchemas,
} from "./task.js";
export type { TaskEvent } from "./worker/completer.js";
export type { DeliveryInfo, RetryOptions, TaskContext, TaskMiddleware } from "./worker/context.js";
export { currentTask } from "./worker/context.js";
export type { WorkerOptions } from "./worker/options.js";
export { createWorker, Worker } from "./worker/worker.js";
