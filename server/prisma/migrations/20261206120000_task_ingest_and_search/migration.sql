-- Ingestion writes a task row and its timeline events in every batch; these changes cut what
-- each write costs Postgres, and bound what the pending entries of the trigram indexes cost
-- text search.

-- DropForeignKey
-- The foreign key checked every inserted timeline event against its task, one lookup and row lock
-- each: a quarter of the cost of writing an event. The ingestion writes the task in the same
-- transaction before its events (and nothing else writes events), so the check never failed;
-- the cascade it gave is kept by the triggers below.
ALTER TABLE "task_events" DROP CONSTRAINT "task_events_task_id_fkey";

-- Partial indexes: these columns are null for most tasks (only canvas members, re-runs, … have
-- them), they are only ever looked up by value, and every task written no longer pays an index
-- entry for its nulls.
-- DropIndex
DROP INDEX "tasks_root_id_idx";
DROP INDEX "tasks_parent_id_idx";
DROP INDEX "tasks_group_id_idx";
DROP INDEX "tasks_rerun_of_idx";

-- CreateIndex
CREATE INDEX "tasks_root_id_idx" ON "tasks"("root_id") WHERE root_id IS NOT NULL;

-- CreateIndex
CREATE INDEX "tasks_parent_id_idx" ON "tasks"("parent_id") WHERE parent_id IS NOT NULL;

-- CreateIndex
CREATE INDEX "tasks_group_id_idx" ON "tasks"("group_id") WHERE group_id IS NOT NULL;

-- CreateIndex
CREATE INDEX "tasks_rerun_of_idx" ON "tasks"("rerun_of") WHERE rerun_of IS NOT NULL;

-- What follows is not expressible in schema.prisma; keep it when regenerating.

-- A GIN index queues new entries in a pending list that every search reads through, entry by
-- entry, until the list is merged into the index. At the default 4 MB, with steady ingestion,
-- that was most of a search's time (tens of milliseconds for each of the four indexes); at
-- 256 kB it is about a millisecond, for merges eight times as frequent (each one smaller).
ALTER INDEX "tasks_args_repr_trgm_idx" SET (gin_pending_list_limit = 256);
ALTER INDEX "tasks_kwargs_repr_trgm_idx" SET (gin_pending_list_limit = 256);
ALTER INDEX "tasks_result_trgm_idx" SET (gin_pending_list_limit = 256);
ALTER INDEX "tasks_exception_trgm_idx" SET (gin_pending_list_limit = 256);

-- Deleting tasks (retention, or by hand) deletes their timelines, as the foreign key's cascade
-- did, but once per statement rather than once per task.
CREATE FUNCTION celeriac_tasks_deleted() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM task_events WHERE task_id IN (SELECT id FROM deleted_tasks);
  RETURN NULL;
END
$$;

CREATE TRIGGER "tasks_deleted" AFTER DELETE ON "tasks"
REFERENCING OLD TABLE AS deleted_tasks
FOR EACH STATEMENT EXECUTE FUNCTION celeriac_tasks_deleted();

CREATE FUNCTION celeriac_tasks_truncated() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  TRUNCATE task_events;
  RETURN NULL;
END
$$;

CREATE TRIGGER "tasks_truncated" AFTER TRUNCATE ON "tasks"
FOR EACH STATEMENT EXECUTE FUNCTION celeriac_tasks_truncated();
