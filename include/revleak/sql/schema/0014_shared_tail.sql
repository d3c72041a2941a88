-- What every check shares, written once (issue 11): a leak's fingerprint and the tolerance a gap
-- must exceed. The time-weighted loss and the run's findings/gap metrics are the runner's
-- shared tail (sql/findings/results.sql).

-- A leak's stable id: the same leak on a later run or a backfill has the same fingerprint.
-- Its parts: the check, the check's own word for the leak (it may be broader than the category,
-- so a leak that changes category — unbilled to under_billed — keeps its ticket), the entity.
create or replace function revleak.fingerprint(variadic parts text[])
returns text language sql immutable parallel safe
as $$ select md5(array_to_string(parts, ':')) $$;

-- The gap a check tolerates on an amount: tolerance_pct of it, at least tolerance_min.
create or replace function revleak.tolerance(amount numeric, tolerance_pct numeric,
                                             tolerance_min numeric)
returns numeric language sql immutable parallel safe
as $$ select greatest(amount * tolerance_pct / 100, tolerance_min) $$;
