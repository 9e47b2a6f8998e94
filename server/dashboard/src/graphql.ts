/**
 * Every GraphQL document the dashboard sends, with the shapes of their results. The API is the
 * control plane's (server/schema.graphql); nothing else is called.
 */
import { gql } from "@urql/core";

export type Role = "viewer" | "operator" | "admin";

export interface TaskRow {
  id: string;
  name: string | null;
  state: string;
  queue: string | null;
  worker: string | null;
  argsRepr: string | null;
  kwargsRepr: string | null;
  args: unknown;
  retries: number;
  runtime: number | null;
  createdAt: string;
  updatedAt: string;
  rerunOf: string | null;
}

export interface TaskRef {
  id: string;
  name: string | null;
  state: string;
  createdAt: string;
}

export interface TaskEvent {
  id: string;
  type: string;
  hostname: string;
  timestamp: string;
  fields: Record<string, unknown>;
}

export interface TaskLog {
  id: string;
  level: string;
  msg: string;
  timestamp: string;
  hostname: string;
  retries: number | null;
  data: unknown;
  taskId: string | null;
}

export interface TaskDetail extends TaskRow {
  kwargs: unknown;
  result: string | null;
  exception: string | null;
  traceback: string | null;
  eta: string | null;
  expires: string | null;
  exchange: string | null;
  routingKey: string | null;
  groupId: string | null;
  rootId: string | null;
  parentId: string | null;
  sentAt: string | null;
  receivedAt: string | null;
  startedAt: string | null;
  succeededAt: string | null;
  failedAt: string | null;
  retriedAt: string | null;
  revokedAt: string | null;
  rejectedAt: string | null;
  timeline: TaskEvent[];
  parent: TaskRef | null;
  children: TaskRef[];
  reruns: TaskRef[];
}

export interface Worker {
  hostname: string;
  online: boolean;
  active: number;
  processed: number;
  concurrency: number | null;
  queues: string[];
  loadavg: number[];
  lastHeartbeat: string | null;
  heartbeatInterval: number;
  firstSeen: string;
  software: string | null;
  system: string | null;
  pid: number | null;
}

export interface Queue {
  name: string;
  messages: number | null;
  consumers: number | null;
  workers: string[];
}

export interface Lock {
  key: string;
  taskName: string;
  taskId: string;
  worker: string;
  acquiredAt: string;
  expiresAt: string;
}

export interface RegisteredTask {
  name: string;
  argsSchema: unknown;
  workers: string[];
  rateLimit: string | null;
}

export interface TaskStats {
  name: string;
  succeeded: number;
  failed: number;
  retried: number;
  revoked: number;
  throughput: number;
  runtimeP50: number | null;
  runtimeP95: number | null;
  runtimeP99: number | null;
}

export interface StatsBucket {
  at: string;
  succeeded: number;
  failed: number;
  runtimeP50: number | null;
  runtimeP95: number | null;
}

export interface WorkerReply {
  hostname: string;
  ok: boolean;
  message: string | null;
  data: unknown;
}

/** What every mutation may answer instead of success (the schema's `Error` interface). */
export interface MutationError {
  __typename: string;
  code: string;
  message: string;
  issues?: Array<{ path: string[]; message: string }>;
  requiredRole?: string;
}

export type Schedule =
  | { __typename: "IntervalSchedule"; every: number; period: IntervalPeriod }
  | {
      __typename: "CrontabSchedule";
      minute: string;
      hour: string;
      dayOfWeek: string;
      dayOfMonth: string;
      monthOfYear: string;
      timezone: string;
    }
  | { __typename: "SolarSchedule"; event: SolarEvent; latitude: number; longitude: number }
  | { __typename: "ClockedSchedule"; clockedTime: string };

export type IntervalPeriod = "SECONDS" | "MINUTES" | "HOURS" | "DAYS";
export type SolarEvent =
  | "DAWN_ASTRONOMICAL"
  | "DAWN_CIVIL"
  | "DAWN_NAUTICAL"
  | "DUSK_ASTRONOMICAL"
  | "DUSK_CIVIL"
  | "DUSK_NAUTICAL"
  | "SOLAR_NOON"
  | "SUNRISE"
  | "SUNSET";
export type MissedRunPolicy = "RUN_ONCE" | "SKIP" | "RUN_ALL";

export interface PeriodicTaskRun {
  id: string;
  trigger: string;
  status: string;
  scheduledFor: string | null;
  decidedAt: string;
  sentAt: string | null;
  taskId: string;
  error: string | null;
  task: { id: string; state: string } | null;
}

export interface PeriodicTask {
  id: string;
  name: string;
  task: string;
  args: unknown[];
  kwargs: Record<string, unknown>;
  queue: string | null;
  priority: number | null;
  enabled: boolean;
  oneOff: boolean;
  description: string;
  expires: string | null;
  expireSeconds: number | null;
  startTime: string | null;
  missedRunPolicy: MissedRunPolicy;
  maxMissedRuns: number;
  scheduleType: "INTERVAL" | "CRONTAB" | "SOLAR" | "CLOCKED";
  schedule: Schedule;
  scheduleDescription: string;
  nextRunAt: string | null;
  lastRunAt: string | null;
  totalRunCount: number;
}

export interface PageInfo {
  startCursor: string | null;
  endCursor: string | null;
  hasNextPage: boolean;
  hasPreviousPage: boolean;
}

export interface TaskFilter {
  states?: string[];
  names?: string[];
  workers?: string[];
  queues?: string[];
  search?: string;
  from?: string;
  to?: string;
  ids?: string[];
  groupId?: string;
  rootId?: string;
}

const ERROR_FIELDS = `
  ... on Error { code message }
  ... on InvalidInputError { issues { path message } }
  ... on ForbiddenError { requiredRole }
`;

const TASK_ROW = `
  id name state queue worker argsRepr kwargsRepr args retries runtime createdAt updatedAt rerunOf
`;

const TASK_DETAIL = `
  ${TASK_ROW}
  kwargs result exception traceback eta expires exchange routingKey groupId rootId parentId
  sentAt receivedAt startedAt succeededAt failedAt retriedAt revokedAt rejectedAt
  timeline { id type hostname timestamp fields }
  parent { id name state createdAt }
  children { id name state createdAt }
  reruns { id name state createdAt }
`;

const LOG_FIELDS = "id level msg timestamp hostname retries data taskId";

const WORKER_FIELDS = `
  hostname online active processed concurrency queues loadavg lastHeartbeat heartbeatInterval
  firstSeen software system pid
`;

const REPLY_FIELDS = "data { hostname ok message data }";

const PERIODIC_FIELDS = `
  id name task args kwargs queue priority enabled oneOff description expires expireSeconds startTime
  missedRunPolicy maxMissedRuns scheduleType scheduleDescription nextRunAt lastRunAt totalRunCount
  schedule {
    __typename
    ... on IntervalSchedule { every period }
    ... on CrontabSchedule { minute hour dayOfWeek dayOfMonth monthOfYear timezone }
    ... on SolarSchedule { event latitude longitude }
    ... on ClockedSchedule { clockedTime }
  }
`;

export const MeQuery = gql<{ me: { name: string; role: Role } }>`
  query Me { me { name role } }
`;

export const TasksQuery = gql<
  {
    tasks: {
      totalCountEstimate: { value: number; exact: boolean };
      pageInfo: PageInfo;
      edges: Array<{ cursor: string; node: TaskRow }>;
    };
  },
  {
    filter: TaskFilter;
    first?: number | null;
    last?: number | null;
    after?: string | null;
    before?: string | null;
    sort?: { field: string; direction: "ASC" | "DESC" } | null;
  }
>`
  query Tasks($filter: TaskFilter, $first: Int, $last: Int, $after: String, $before: String, $sort: TaskSort) {
    tasks(filter: $filter, first: $first, last: $last, after: $after, before: $before, sort: $sort) {
      totalCountEstimate { value exact }
      pageInfo { startCursor endCursor hasNextPage hasPreviousPage }
      edges { cursor node { ${TASK_ROW} } }
    }
  }
`;

export const TaskEventBatches = gql<
  { taskEventBatches: { events: Array<{ event: { type: string }; task: TaskRow }> } },
  { filter?: { names?: string[]; taskIds?: string[] } | null }
>`
  subscription TaskEventBatches($filter: TaskEventFilter) {
    taskEventBatches(filter: $filter, maxDelayMs: 250) {
      events { event { type } task { ${TASK_ROW} } }
    }
  }
`;

export const TaskQuery = gql<{ task: (TaskDetail & { logs: TaskLog[] }) | null }, { id: string }>`
  query Task($id: ID!) { task(id: $id) { ${TASK_DETAIL} logs(first: 500) { ${LOG_FIELDS} } } }
`;

export const TaskUpdated = gql<{ taskUpdated: TaskDetail }, { id: string }>`
  subscription TaskUpdated($id: ID!) { taskUpdated(id: $id) { ${TASK_DETAIL} } }
`;

export const TaskLogs = gql<{ taskLogs: TaskLog }, { taskId: string }>`
  subscription TaskLogs($taskId: ID) { taskLogs(taskId: $taskId) { ${LOG_FIELDS} } }
`;

export const RetryTask = gql<
  { retryTask: ({ __typename: "Task" } & TaskRow) | MutationError },
  { id: string }
>`
  mutation RetryTask($id: ID!) {
    retryTask(id: $id) { __typename ... on Task { ${TASK_ROW} } ${ERROR_FIELDS} }
  }
`;

export const RevokeTask = gql<
  {
    revokeTask:
      | {
          __typename: "RevokeTaskSuccess";
          data: { revoked: string[]; replies: WorkerReply[] };
        }
      | MutationError;
  },
  { id: string; terminate: boolean; signal?: string | null }
>`
  mutation RevokeTask($id: ID!, $terminate: Boolean, $signal: String) {
    revokeTask(id: $id, terminate: $terminate, signal: $signal) {
      __typename
      ... on RevokeTaskSuccess { data { revoked replies { hostname ok message data } } }
      ${ERROR_FIELDS}
    }
  }
`;

export const RetryTasks = gql<
  {
    retryTasks:
      | {
          __typename: "RetryTasksSuccess";
          data: { sent: Array<{ id: string }>; skipped: string[] };
        }
      | MutationError;
  },
  { filter: TaskFilter }
>`
  mutation RetryTasks($filter: TaskFilter!) {
    retryTasks(filter: $filter) {
      __typename
      ... on RetryTasksSuccess { data { sent { id } skipped } }
      ${ERROR_FIELDS}
    }
  }
`;

export const RevokeTasks = gql<
  {
    revokeTasks:
      | { __typename: "RevokeTasksSuccess"; data: { revoked: string[]; replies: WorkerReply[] } }
      | MutationError;
  },
  { filter: TaskFilter; terminate: boolean }
>`
  mutation RevokeTasks($filter: TaskFilter!, $terminate: Boolean) {
    revokeTasks(filter: $filter, terminate: $terminate) {
      __typename
      ... on RevokeTasksSuccess { data { revoked replies { hostname ok message data } } }
      ${ERROR_FIELDS}
    }
  }
`;

export interface SendTaskInput {
  name: string;
  args?: unknown[];
  kwargs?: Record<string, unknown>;
  countdown?: number;
  expires?: number;
  priority?: number;
  queue?: string;
}

export const SendTask = gql<
  { sendTask: ({ __typename: "Task" } & TaskRow) | MutationError },
  { input: SendTaskInput }
>`
  mutation SendTask($input: SendTaskInput!) {
    sendTask(input: $input) { __typename ... on Task { ${TASK_ROW} } ${ERROR_FIELDS} }
  }
`;

export const RegisteredTasksQuery = gql<{ registeredTasks: RegisteredTask[] }>`
  query RegisteredTasks { registeredTasks { name argsSchema workers rateLimit } }
`;

export const RegisteredTasksChanged = gql<{ registeredTasksChanged: RegisteredTask[] }>`
  subscription RegisteredTasksChanged {
    registeredTasksChanged { name argsSchema workers rateLimit }
  }
`;

export const TaskNamesQuery = gql<{
  registeredTasks: Array<{ name: string }>;
  workers: Array<{ hostname: string }>;
  queues: Array<{ name: string }>;
}>`
  query TaskNames { registeredTasks { name } workers { hostname } queues { name } }
`;

export const WorkersQuery = gql<{ workers: Worker[] }>`
  query Workers { workers { ${WORKER_FIELDS} } }
`;

export const WorkerActiveQuery = gql<
  { worker: { hostname: string; activeTasks: unknown } | null },
  { hostname: string }
>`
  query WorkerActive($hostname: ID!) { worker(hostname: $hostname) { hostname activeTasks } }
`;

export const WorkerEvents = gql<{ workerEvents: { type: string; worker: Worker } }>`
  subscription WorkerEvents { workerEvents { type worker { ${WORKER_FIELDS} } } }
`;

type ReplyResult<T extends string> = { __typename: T; data: WorkerReply[] } | MutationError;

export const ShutdownWorker = gql<
  { shutdownWorker: ReplyResult<"ShutdownWorkerSuccess"> },
  { hostname: string }
>`
  mutation ShutdownWorker($hostname: String!) {
    shutdownWorker(hostname: $hostname) {
      __typename ... on ShutdownWorkerSuccess { ${REPLY_FIELDS} } ${ERROR_FIELDS}
    }
  }
`;

export const GrowPool = gql<
  { growPool: ReplyResult<"GrowPoolSuccess"> },
  { hostname: string; n: number }
>`
  mutation GrowPool($hostname: String!, $n: Int) {
    growPool(hostname: $hostname, n: $n) {
      __typename ... on GrowPoolSuccess { ${REPLY_FIELDS} } ${ERROR_FIELDS}
    }
  }
`;

export const ShrinkPool = gql<
  { shrinkPool: ReplyResult<"ShrinkPoolSuccess"> },
  { hostname: string; n: number }
>`
  mutation ShrinkPool($hostname: String!, $n: Int) {
    shrinkPool(hostname: $hostname, n: $n) {
      __typename ... on ShrinkPoolSuccess { ${REPLY_FIELDS} } ${ERROR_FIELDS}
    }
  }
`;

export const AddConsumer = gql<
  { addConsumer: ReplyResult<"AddConsumerSuccess"> },
  { queue: string; destination: string[] }
>`
  mutation AddConsumer($queue: String!, $destination: [String!]) {
    addConsumer(queue: $queue, destination: $destination) {
      __typename ... on AddConsumerSuccess { ${REPLY_FIELDS} } ${ERROR_FIELDS}
    }
  }
`;

export const CancelConsumer = gql<
  { cancelConsumer: ReplyResult<"CancelConsumerSuccess"> },
  { queue: string; destination: string[] }
>`
  mutation CancelConsumer($queue: String!, $destination: [String!]) {
    cancelConsumer(queue: $queue, destination: $destination) {
      __typename ... on CancelConsumerSuccess { ${REPLY_FIELDS} } ${ERROR_FIELDS}
    }
  }
`;

export const SetRateLimit = gql<
  { setRateLimit: ReplyResult<"SetRateLimitSuccess"> },
  { taskName: string; rateLimit: string | null; destination: string[] | null }
>`
  mutation SetRateLimit($taskName: String!, $rateLimit: String, $destination: [String!]) {
    setRateLimit(taskName: $taskName, rateLimit: $rateLimit, destination: $destination) {
      __typename ... on SetRateLimitSuccess { ${REPLY_FIELDS} } ${ERROR_FIELDS}
    }
  }
`;

export const QueuesQuery = gql<{ queues: Queue[] }>`
  query Queues { queues { name messages consumers workers } }
`;

export const PurgeQueue = gql<
  { purgeQueue: { __typename: "PurgeQueueSuccess"; data: number } | MutationError },
  { name: string }
>`
  mutation PurgeQueue($name: String!) {
    purgeQueue(name: $name) { __typename ... on PurgeQueueSuccess { data } ${ERROR_FIELDS} }
  }
`;

export const LocksQuery = gql<{ locks: Lock[] }>`
  query Locks { locks { key taskName taskId worker acquiredAt expiresAt } }
`;

export const ReleaseLock = gql<
  { releaseLock: ({ __typename: "Lock" } & Lock) | MutationError },
  { key: string }
>`
  mutation ReleaseLock($key: String!) {
    releaseLock(key: $key) {
      __typename ... on Lock { key taskName taskId worker acquiredAt expiresAt } ${ERROR_FIELDS}
    }
  }
`;

export const StatsQuery = gql<
  { stats: TaskStats[]; statsSeries: StatsBucket[] },
  { window: number; bucket: number; names: string[] | null }
>`
  query Stats($window: Int, $bucket: Int, $names: [String!]) {
    stats(window: $window) {
      name succeeded failed retried revoked throughput runtimeP50 runtimeP95 runtimeP99
    }
    statsSeries(window: $window, bucket: $bucket, names: $names) {
      at succeeded failed runtimeP50 runtimeP95
    }
  }
`;

export const StatsLive = gql<{ stats: TaskStats[] }, { window: number }>`
  subscription StatsLive($window: Int) {
    stats(window: $window, interval: 5) {
      name succeeded failed retried revoked throughput runtimeP50 runtimeP95 runtimeP99
    }
  }
`;

export type PeriodicTaskRow = Pick<
  PeriodicTask,
  | "id"
  | "name"
  | "task"
  | "enabled"
  | "scheduleType"
  | "scheduleDescription"
  | "nextRunAt"
  | "lastRunAt"
  | "totalRunCount"
>;

/** A page of periodic tasks, by name (100 rows stay under the API's complexity limit). */
export const PeriodicTasksQuery = gql<
  {
    periodicTasks: {
      totalCount: number;
      pageInfo: PageInfo;
      edges: Array<{ node: PeriodicTaskRow }>;
    };
  },
  { after: string | null }
>`
  query PeriodicTasks($after: String) {
    periodicTasks(first: 100, after: $after) {
      totalCount
      pageInfo { startCursor endCursor hasNextPage hasPreviousPage }
      edges {
        node {
          id name task enabled scheduleType scheduleDescription nextRunAt lastRunAt totalRunCount
        }
      }
    }
  }
`;

export const PeriodicTaskQuery = gql<
  {
    periodicTask:
      | (PeriodicTask & {
          nextRuns: string[];
          runs: { edges: Array<{ node: PeriodicTaskRun }> };
        })
      | null;
  },
  { id: string }
>`
  query PeriodicTask($id: ID!) {
    periodicTask(id: $id) {
      ${PERIODIC_FIELDS}
      nextRuns(count: 5)
      runs(first: 20) {
        edges { node { id trigger status scheduledFor decidedAt sentAt taskId error task { id state } } }
      }
    }
  }
`;

export const PeriodicTaskRuns = gql<{
  periodicTaskRuns: { periodicTaskId: string; taskId: string; name: string };
}>`
  subscription PeriodicTaskRuns { periodicTaskRuns { periodicTaskId taskId name } }
`;

type PeriodicResult = ({ __typename: "PeriodicTask" } & PeriodicTask) | MutationError;

export interface PeriodicTaskInput {
  name?: string;
  task?: string;
  schedule?: Record<string, unknown>;
  args?: unknown[];
  kwargs?: Record<string, unknown>;
  queue?: string | null;
  priority?: number | null;
  enabled?: boolean;
  oneOff?: boolean;
  description?: string;
  expires?: string | null;
  expireSeconds?: number | null;
  startTime?: string | null;
  missedRunPolicy?: MissedRunPolicy;
  maxMissedRuns?: number;
}

export const CreatePeriodicTask = gql<
  { createPeriodicTask: PeriodicResult },
  { input: PeriodicTaskInput }
>`
  mutation CreatePeriodicTask($input: CreatePeriodicTaskInput!) {
    createPeriodicTask(input: $input) {
      __typename ... on PeriodicTask { ${PERIODIC_FIELDS} } ${ERROR_FIELDS}
    }
  }
`;

export const UpdatePeriodicTask = gql<
  { updatePeriodicTask: PeriodicResult },
  { id: string; input: PeriodicTaskInput }
>`
  mutation UpdatePeriodicTask($id: ID!, $input: UpdatePeriodicTaskInput!) {
    updatePeriodicTask(id: $id, input: $input) {
      __typename ... on PeriodicTask { ${PERIODIC_FIELDS} } ${ERROR_FIELDS}
    }
  }
`;

export const SetPeriodicTaskEnabled = gql<
  { setPeriodicTaskEnabled: PeriodicResult },
  { id: string; enabled: boolean }
>`
  mutation SetPeriodicTaskEnabled($id: ID!, $enabled: Boolean!) {
    setPeriodicTaskEnabled(id: $id, enabled: $enabled) {
      __typename ... on PeriodicTask { ${PERIODIC_FIELDS} } ${ERROR_FIELDS}
    }
  }
`;

export const DeletePeriodicTask = gql<
  {
    deletePeriodicTask:
      | { __typename: "DeletedPeriodicTask"; id: string; name: string }
      | MutationError;
  },
  { id: string }
>`
  mutation DeletePeriodicTask($id: ID!) {
    deletePeriodicTask(id: $id) {
      __typename ... on DeletedPeriodicTask { id name } ${ERROR_FIELDS}
    }
  }
`;

export const RunPeriodicTaskNow = gql<
  {
    runPeriodicTaskNow:
      | { __typename: "PeriodicTaskRun"; id: string; taskId: string; status: string }
      | MutationError;
  },
  { id: string }
>`
  mutation RunPeriodicTaskNow($id: ID!) {
    runPeriodicTaskNow(id: $id) {
      __typename ... on PeriodicTaskRun { id taskId status } ${ERROR_FIELDS}
    }
  }
`;
