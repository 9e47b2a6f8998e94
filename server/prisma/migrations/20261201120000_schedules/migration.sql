-- CreateTable
CREATE TABLE "periodic_tasks" (
    "id" TEXT NOT NULL DEFAULT (gen_random_uuid())::text,
    "name" TEXT NOT NULL,
    "task" TEXT NOT NULL,
    "args" JSONB NOT NULL DEFAULT '[]',
    "kwargs" JSONB NOT NULL DEFAULT '{}',
    "queue" TEXT,
    "exchange" TEXT,
    "routing_key" TEXT,
    "priority" INTEGER,
    "headers" JSONB NOT NULL DEFAULT '{}',
    "expires" TIMESTAMPTZ(3),
    "expire_seconds" INTEGER,
    "one_off" BOOLEAN NOT NULL DEFAULT false,
    "start_time" TIMESTAMPTZ(3),
    "enabled" BOOLEAN NOT NULL DEFAULT true,
    "description" TEXT NOT NULL DEFAULT '',
    "schedule_type" TEXT NOT NULL,
    "interval_every" INTEGER,
    "interval_period" TEXT,
    "crontab_minute" TEXT,
    "crontab_hour" TEXT,
    "crontab_day_of_week" TEXT,
    "crontab_day_of_month" TEXT,
    "crontab_month_of_year" TEXT,
    "timezone" TEXT,
    "solar_event" TEXT,
    "latitude" DOUBLE PRECISION,
    "longitude" DOUBLE PRECISION,
    "clocked_time" TIMESTAMPTZ(3),
    "missed_run_policy" TEXT NOT NULL DEFAULT 'run_once',
    "max_missed_runs" INTEGER NOT NULL DEFAULT 10,
    "last_run_at" TIMESTAMPTZ(3),
    "total_run_count" INTEGER NOT NULL DEFAULT 0,
    "next_run_at" TIMESTAMPTZ(3),
    "version" INTEGER NOT NULL DEFAULT 1,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "periodic_tasks_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "periodic_task_runs" (
    "id" BIGSERIAL NOT NULL,
    "periodic_task_id" TEXT NOT NULL,
    "scheduled_for" TIMESTAMPTZ(3),
    "trigger" TEXT NOT NULL,
    "task_id" TEXT NOT NULL,
    "task_name" TEXT NOT NULL,
    "status" TEXT NOT NULL DEFAULT 'pending',
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "error" TEXT,
    "decided_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "sent_at" TIMESTAMPTZ(3),

    CONSTRAINT "periodic_task_runs_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "periodic_tasks_task_idx" ON "periodic_tasks"("task");

-- CreateIndex
CREATE UNIQUE INDEX "periodic_tasks_name_key" ON "periodic_tasks"("name");

-- CreateIndex
CREATE INDEX "periodic_task_runs_periodic_task_id_decided_at_idx" ON "periodic_task_runs"("periodic_task_id", "decided_at" DESC);

-- CreateIndex
CREATE INDEX "periodic_task_runs_status_decided_at_idx" ON "periodic_task_runs"("status", "decided_at");

-- CreateIndex
CREATE INDEX "periodic_task_runs_decided_at_idx" ON "periodic_task_runs"("decided_at");

-- CreateIndex
CREATE UNIQUE INDEX "periodic_task_runs_task_id_key" ON "periodic_task_runs"("task_id");

-- CreateIndex
CREATE UNIQUE INDEX "periodic_task_runs_periodic_task_id_scheduled_for_key" ON "periodic_task_runs"("periodic_task_id", "scheduled_for");

-- AddForeignKey
ALTER TABLE "periodic_task_runs" ADD CONSTRAINT "periodic_task_runs_periodic_task_id_fkey" FOREIGN KEY ("periodic_task_id") REFERENCES "periodic_tasks"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- What follows is not expressible in schema.prisma (`prisma migrate diff` ignores functions and
-- triggers); keep it when regenerating. Rows are validated by the API, and the beat skips (and
-- logs) a row written in SQL whose schedule it cannot read.

-- Any write but the beat's own bookkeeping (it marks its transactions with `celeriac.beat`) is an
-- edit: it bumps `version`, which the beat compares before it fires, and clears `next_run_at`
-- when the schedule changes or the entry is enabled again (unless the edit sets it), so the beat
-- computes it afresh from now. The API sets the cursor itself; edits made in SQL get the same.
CREATE FUNCTION celeriac_periodic_task_edited() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' THEN
    NEW.version := OLD.version + 1;
    NEW.updated_at := CURRENT_TIMESTAMP;
    IF NEW.next_run_at IS NOT DISTINCT FROM OLD.next_run_at AND (
      NOT OLD.enabled
      OR ROW(NEW.schedule_type, NEW.interval_every, NEW.interval_period, NEW.crontab_minute,
             NEW.crontab_hour, NEW.crontab_day_of_week, NEW.crontab_day_of_month,
             NEW.crontab_month_of_year, NEW.timezone, NEW.solar_event, NEW.latitude, NEW.longitude,
             NEW.clocked_time, NEW.start_time, NEW.expires)
         IS DISTINCT FROM
         ROW(OLD.schedule_type, OLD.interval_every, OLD.interval_period, OLD.crontab_minute,
             OLD.crontab_hour, OLD.crontab_day_of_week, OLD.crontab_day_of_month,
             OLD.crontab_month_of_year, OLD.timezone, OLD.solar_event, OLD.latitude, OLD.longitude,
             OLD.clocked_time, OLD.start_time, OLD.expires)
    ) THEN
      NEW.next_run_at := NULL;
    END IF;
  END IF;
  IF NOT NEW.enabled THEN
    NEW.next_run_at := NULL;
  END IF;
  RETURN NEW;
END
$$;

CREATE TRIGGER "periodic_tasks_edited" BEFORE INSERT OR UPDATE ON "periodic_tasks"
FOR EACH ROW WHEN (current_setting('celeriac.beat', true) IS DISTINCT FROM 'on')
EXECUTE FUNCTION celeriac_periodic_task_edited();

-- Every edit, however made (API or SQL), is announced to the beat as `<id>:<version>`
-- (`<id>:0` when deleted, `*` after a TRUNCATE); the beat's own bookkeeping is not.
CREATE FUNCTION celeriac_periodic_task_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'TRUNCATE' THEN
    PERFORM pg_notify('celeriac_periodic_tasks', '*');
  ELSIF TG_OP = 'DELETE' THEN
    PERFORM pg_notify('celeriac_periodic_tasks', OLD.id || ':0');
  ELSE
    PERFORM pg_notify('celeriac_periodic_tasks', NEW.id || ':' || NEW.version);
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER "periodic_tasks_notify" AFTER INSERT OR DELETE ON "periodic_tasks"
FOR EACH ROW EXECUTE FUNCTION celeriac_periodic_task_notify();

CREATE TRIGGER "periodic_tasks_notify_edit" AFTER UPDATE ON "periodic_tasks"
FOR EACH ROW WHEN (OLD.version IS DISTINCT FROM NEW.version)
EXECUTE FUNCTION celeriac_periodic_task_notify();

CREATE TRIGGER "periodic_tasks_notify_truncate" AFTER TRUNCATE ON "periodic_tasks"
FOR EACH STATEMENT EXECUTE FUNCTION celeriac_periodic_task_notify();
