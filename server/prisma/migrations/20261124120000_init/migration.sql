-- CreateExtension
CREATE EXTENSION IF NOT EXISTS "pg_trgm";

-- CreateTable
CREATE TABLE "tasks" (
    "id" TEXT NOT NULL,
    "name" TEXT,
    "state" TEXT NOT NULL,
    "args_repr" TEXT,
    "kwargs_repr" TEXT,
    "args" JSONB,
    "kwargs" JSONB,
    "result" TEXT,
    "exception" TEXT,
    "traceback" TEXT,
    "retries" INTEGER NOT NULL DEFAULT 0,
    "queue" TEXT,
    "exchange" TEXT,
    "routing_key" TEXT,
    "worker" TEXT,
    "parent_id" TEXT,
    "root_id" TEXT,
    "group_id" TEXT,
    "eta" TIMESTAMPTZ(3),
    "expires" TIMESTAMPTZ(3),
    "runtime" DOUBLE PRECISION,
    "sent_at" TIMESTAMPTZ(3),
    "received_at" TIMESTAMPTZ(3),
    "started_at" TIMESTAMPTZ(3),
    "succeeded_at" TIMESTAMPTZ(3),
    "failed_at" TIMESTAMPTZ(3),
    "retried_at" TIMESTAMPTZ(3),
    "revoked_at" TIMESTAMPTZ(3),
    "rejected_at" TIMESTAMPTZ(3),
    "rerun_of" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "tasks_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "task_events" (
    "id" BIGSERIAL NOT NULL,
    "task_id" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "hostname" TEXT NOT NULL,
    "clock" INTEGER NOT NULL,
    "timestamp" TIMESTAMPTZ(3) NOT NULL,
    "fields" JSONB NOT NULL,

    CONSTRAINT "task_events_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "task_logs" (
    "id" BIGSERIAL NOT NULL,
    "task_id" TEXT,
    "task_name" TEXT,
    "retries" INTEGER,
    "hostname" TEXT NOT NULL,
    "clock" INTEGER NOT NULL,
    "timestamp" TIMESTAMPTZ(3) NOT NULL,
    "level" TEXT NOT NULL,
    "msg" TEXT NOT NULL,
    "data" JSONB,

    CONSTRAINT "task_logs_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "workers" (
    "hostname" TEXT NOT NULL,
    "pid" INTEGER,
    "sw_ident" TEXT,
    "sw_ver" TEXT,
    "sw_sys" TEXT,
    "freq" DOUBLE PRECISION NOT NULL DEFAULT 2,
    "active" INTEGER NOT NULL DEFAULT 0,
    "processed" INTEGER NOT NULL DEFAULT 0,
    "loadavg" DOUBLE PRECISION[],
    "queues" TEXT[],
    "concurrency" INTEGER,
    "offline" BOOLEAN NOT NULL DEFAULT false,
    "last_heartbeat" TIMESTAMPTZ(3),
    "first_seen" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "workers_pkey" PRIMARY KEY ("hostname")
);

-- CreateTable
CREATE TABLE "registered_tasks" (
    "name" TEXT NOT NULL,
    "worker" TEXT NOT NULL,
    "args_schema" JSONB,
    "rate_limit" TEXT,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "registered_tasks_pkey" PRIMARY KEY ("name","worker")
);

-- CreateTable
CREATE TABLE "api_tokens" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "role" TEXT NOT NULL,
    "token_hash" TEXT NOT NULL,
    "prefix" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "last_used_at" TIMESTAMPTZ(3),
    "revoked_at" TIMESTAMPTZ(3),

    CONSTRAINT "api_tokens_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "audit_entries" (
    "id" BIGSERIAL NOT NULL,
    "at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "token_id" TEXT,
    "actor" TEXT NOT NULL,
    "action" TEXT NOT NULL,
    "input" JSONB NOT NULL,
    "outcome" TEXT NOT NULL,
    "error" TEXT,

    CONSTRAINT "audit_entries_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "tasks_created_at_id_idx" ON "tasks"("created_at" DESC, "id");

-- CreateIndex
CREATE INDEX "tasks_updated_at_idx" ON "tasks"("updated_at");

-- CreateIndex
CREATE INDEX "tasks_state_created_at_idx" ON "tasks"("state", "created_at" DESC);

-- CreateIndex
CREATE INDEX "tasks_name_created_at_idx" ON "tasks"("name", "created_at" DESC);

-- CreateIndex
CREATE INDEX "tasks_worker_created_at_idx" ON "tasks"("worker", "created_at" DESC);

-- CreateIndex
CREATE INDEX "tasks_queue_created_at_idx" ON "tasks"("queue", "created_at" DESC);

-- CreateIndex
CREATE INDEX "tasks_root_id_idx" ON "tasks"("root_id");

-- CreateIndex
CREATE INDEX "tasks_parent_id_idx" ON "tasks"("parent_id");

-- CreateIndex
CREATE INDEX "tasks_group_id_idx" ON "tasks"("group_id");

-- CreateIndex
CREATE INDEX "tasks_rerun_of_idx" ON "tasks"("rerun_of");

-- CreateIndex
CREATE INDEX "tasks_args_repr_trgm_idx" ON "tasks" USING GIN ("args_repr" gin_trgm_ops);

-- CreateIndex
CREATE INDEX "tasks_kwargs_repr_trgm_idx" ON "tasks" USING GIN ("kwargs_repr" gin_trgm_ops);

-- CreateIndex
CREATE INDEX "tasks_result_trgm_idx" ON "tasks" USING GIN ("result" gin_trgm_ops);

-- CreateIndex
CREATE INDEX "tasks_exception_trgm_idx" ON "tasks" USING GIN ("exception" gin_trgm_ops);

-- CreateIndex
CREATE UNIQUE INDEX "task_events_task_id_type_hostname_clock_key" ON "task_events"("task_id", "type", "hostname", "clock");

-- CreateIndex
CREATE INDEX "task_logs_task_id_timestamp_idx" ON "task_logs"("task_id", "timestamp");

-- CreateIndex
CREATE INDEX "task_logs_timestamp_idx" ON "task_logs"("timestamp");

-- CreateIndex
CREATE UNIQUE INDEX "task_logs_hostname_clock_timestamp_key" ON "task_logs"("hostname", "clock", "timestamp");

-- CreateIndex
CREATE UNIQUE INDEX "api_tokens_token_hash_key" ON "api_tokens"("token_hash");

-- CreateIndex
CREATE INDEX "audit_entries_at_idx" ON "audit_entries"("at" DESC);

-- AddForeignKey
ALTER TABLE "task_events" ADD CONSTRAINT "task_events_task_id_fkey" FOREIGN KEY ("task_id") REFERENCES "tasks"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "audit_entries" ADD CONSTRAINT "audit_entries_token_id_fkey" FOREIGN KEY ("token_id") REFERENCES "api_tokens"("id") ON DELETE SET NULL ON UPDATE CASCADE;

-- Celery's state precedence, used by ingestion so that out-of-order events never move a task back.
-- (Not expressible in schema.prisma; `prisma migrate diff` ignores functions.)
CREATE FUNCTION celeriac_state_rank(state TEXT) RETURNS INTEGER
LANGUAGE SQL IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE state
    WHEN 'SUCCESS' THEN 8 WHEN 'FAILURE' THEN 7 WHEN 'REVOKED' THEN 5 WHEN 'STARTED' THEN 4
    WHEN 'RECEIVED' THEN 3 WHEN 'REJECTED' THEN 2 WHEN 'RETRY' THEN 1 WHEN 'PENDING' THEN 0
    ELSE 6 END
$$;
