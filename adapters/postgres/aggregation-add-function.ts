
/**
 * The unqualified name of the add function. It folds a batch (a `text[]` of input ids): the function
 * of one input before it, `interchange_aggregation_add(…, text, …) RETURNS text`, could not be
 * replaced in place (`CREATE OR REPLACE` changes neither argument nor return types), so the batch one
 * has a name of its own. The old one is left where it was: instances not yet upgraded go on calling it
 * during a rolling upgrade (both write the same rows with the same semantics, one id per write).
 */
export const ADD_FUNCTION_NAME = 'interchange_aggregation_add_batch';

/** The input argument types of the add function, as `to_regprocedure` and `CREATE FUNCTION` spell them. */
export const ADD_FUNCTION_ARGUMENTS = 'text, text, text[], integer, json, json, text, bigint, bigint, bigint, bigint, text, text, bigint';

/**
 * The add function's OUT columns, as `addFunctionResultExpression` reads them from the catalog. A function of the
 * same arguments with other OUT columns (the first batch function returned `outcome text, seen_ids text[]`,
 * without the group's version) is outdated: `CREATE OR REPLACE` cannot change a function's result
 * type, so `dropOutdatedAddFunctionStatement` removes it first.
 */
export const ADD_FUNCTION_RESULT = 'outcome text, seen_ids text[], version integer';

/**
 * An SQL expression (a scalar subquery, `text`): the OUT columns, as `ADD_FUNCTION_RESULT` spells them, of
 * the function `signature` names (an SQL text expression, a parameter or a literal, of a `regprocedure`:
 * the quoted name and `ADD_FUNCTION_ARGUMENTS`); null when there is no such function, or it has no OUT
 * columns. Reads the catalog only (no lock taken).
 */
export function addFunctionResultExpression(signature: string): string {
  return `(SELECT string_agg(a.name || ' ' || format_type(a.type, NULL), ', ' ORDER BY a.ord)
    FROM pg_proc p, unnest(p.proargnames, p.proargmodes::text[], p.proallargtypes) WITH ORDINALITY AS a(name, mode, type, ord)
    WHERE p.oid = to_regprocedure(${signature}) AND a.mode = 'o')`;
}

/**
 * Drops the add function of `add` (the quoted name) if it exists with OUT columns other than
 * `ADD_FUNCTION_RESULT` (one idempotent statement, to run right before `addFunctionStatement`, in the
 * same transaction: other sessions then find the old function or the new one, never none). A current
 * one is left alone, so running the migration statements again does not drop the function instances
 * are calling. Instances not yet upgraded go on calling the new one (they read `outcome, seen_ids`
 * only; the version they assume for a group they created is wrong, so their next write to it is a
 * `conflict`, retried after reading the group).
 */
export function dropOutdatedAddFunctionStatement(add: string): string {
  const signature = `${add}(${ADD_FUNCTION_ARGUMENTS})`;
  return `DO $drop$ BEGIN
    IF to_regprocedure(${quoteLiteral(signature)}) IS NOT NULL AND ${addFunctionResultExpression(quoteLiteral(signature))} IS DISTINCT FROM ${quoteLiteral(ADD_FUNCTION_RESULT)} THEN
      DROP FUNCTION IF EXISTS ${signature};
    END IF;
  END $drop$`;
}

/** A completion overwrites an unconfirmed aggregate of the same id, as the reference implementation does (the add function and `complete`). */
export const OVERWRITE_COMPLETED = `ON CONFLICT (name, id) DO UPDATE SET key = EXCLUDED.key, value = EXCLUDED.value, input_ids = EXCLUDED.input_ids,
  correlation_id = EXCLUDED.correlation_id, first_at = EXCLUDED.first_at, last_at = EXCLUDED.last_at, completed_by = EXCLUDED.completed_by,
  completed_at = EXCLUDED.completed_at, attempts = 1, claimed_until = EXCLUDED.claimed_until`;

/** The quoted names the function works on (the repository's `AggregationTables`). */
export interface AddFunctionTables {
  readonly groups: string;
  readonly completed: string;
  readonly seen: string;
  readonly add: string;
}

/**
 * `add` in one statement, with the reference semantics: 1) any of the write's input ids
 * (`p_write_ids`, a `text[]`) seen within the retention → 'duplicate', naming those ids in the write's
 * order; 2) the versioned write of the group (or its removal, with a completion) → 'conflict' when the
 * group is not at `p_expected`; 3) the completed aggregate stored, every input id recorded. Returns one
 * row `(outcome text, seen_ids text[], version integer)` (`ADD_FUNCTION_RESULT`): outcome 'added' |
 * 'completed' | 'duplicate' | 'conflict'; `seen_ids` is set for 'duplicate' only; `version` for 'added'
 * only: the group's version as written, `p_expected` + 1, or for a new group (`p_expected` 0) a random
 * one in [1, 2^30], so a key's successive groups never share a version (a writer with a stale view of a
 * completed group would otherwise match the key's next group at the same version: lost inputs). The last two leave nothing written (they return before any
 * write, but for the first-input duplicate below, which removes its own row again). The ids must not
 * repeat (the repository removes repeats). Plans are made per call (`plan_cache_mode`): the generic plans
 * a session caches, made while the tables were small, went on scanning them whole once they had grown
 * (three times slower).
 *
 * Concurrency (READ COMMITTED: each statement here takes a new snapshot): the versioned write
 * serialises writers of a key. At a version > 0 the `UPDATE`/`DELETE … WHERE version` of a concurrent
 * writer waits for the first one's row, then matches nothing: 'conflict' (retried, it then finds its
 * inputs seen). At version 0 the `INSERT … ON CONFLICT DO NOTHING` waits the same way; but a first
 * batch that completes its group inserts and removes its row, so a concurrent first writer inserts
 * after it commits: the seen ids of the whole batch are read again after that insert, and any of them
 * committed meanwhile undoes the insert (its own row) and is a 'duplicate' naming them. Should an id
 * still be recorded concurrently, the statement fails (rolled back whole: a `DatabaseError`,
 * redelivered). Seen ids are recorded in sorted order, so two writes never lock them crosswise.
 */
export function addFunctionStatement(tables: AddFunctionTables): string {
  const { groups, completed, seen, add } = tables;
  const seenAmong = `(SELECT array_agg(w.id ORDER BY w.ord) FROM unnest(p_write_ids) WITH ORDINALITY AS w(id, ord)
        WHERE EXISTS (SELECT 1 FROM ${seen} s WHERE s.name = p_name AND s.key = p_key AND s.input_id = w.id AND s.seen_at > p_seen_cutoff))`;
  return `CREATE OR REPLACE FUNCTION ${add}(p_name text, p_key text, p_write_ids text[], p_expected integer, p_value json, p_input_ids json,
      p_correlation_id text, p_first_at bigint, p_last_at bigint, p_now bigint, p_seen_cutoff bigint,
      p_completion_id text, p_completed_by text, p_claimed_until bigint, OUT outcome text, OUT seen_ids text[], OUT version integer)
    LANGUAGE plpgsql VOLATILE SET plan_cache_mode = force_custom_plan AS $fn$
    DECLARE
      recorded bigint;
      written integer;
    BEGIN
      seen_ids := ${seenAmong};
      IF seen_ids IS NOT NULL THEN
        outcome := 'duplicate';
        RETURN;
      END IF;
      IF p_expected = 0 THEN
        written := floor(random() * 1073741824)::int + 1;
        INSERT INTO ${groups} (name, key, value, input_ids, correlation_id, first_at, last_at, version)
        VALUES (p_name, p_key, p_value, p_input_ids, p_correlation_id, p_first_at, p_last_at, written)
        ON CONFLICT (name, key) DO NOTHING;
        IF NOT FOUND THEN
          outcome := 'conflict';
          RETURN;
        END IF;
        -- A new snapshot, taken after the insert waited for any concurrent first write of this key.
        seen_ids := ${seenAmong};
        IF seen_ids IS NOT NULL THEN
          DELETE FROM ${groups} g WHERE g.name = p_name AND g.key = p_key;
          outcome := 'duplicate';
          RETURN;
        END IF;
        IF p_completion_id IS NOT NULL THEN
          -- A group of one batch: its row was written and is removed, which made a concurrent first write wait on it.
          DELETE FROM ${groups} g WHERE g.name = p_name AND g.key = p_key;
        END IF;
      ELSIF p_completion_id IS NULL THEN
        written := p_expected + 1;
        UPDATE ${groups} g SET value = p_value, input_ids = p_input_ids, correlation_id = p_correlation_id,
          first_at = p_first_at, last_at = p_last_at, version = written
        WHERE g.name = p_name AND g.key = p_key AND g.version = p_expected;
        IF NOT FOUND THEN
          outcome := 'conflict';
          RETURN;
        END IF;
      ELSE
        DELETE FROM ${groups} g WHERE g.name = p_name AND g.key = p_key AND g.version = p_expected;
        IF NOT FOUND THEN
          outcome := 'conflict';
          RETURN;
        END IF;
      END IF;
      IF p_completion_id IS NOT NULL THEN
        INSERT INTO ${completed} AS c (name, id, key, value, input_ids, correlation_id, first_at, last_at, completed_by, completed_at, attempts, claimed_until)
        VALUES (p_name, p_completion_id, p_key, p_value, p_input_ids, p_correlation_id, p_first_at, p_last_at, p_completed_by, p_now, 1, p_claimed_until)
        ${OVERWRITE_COMPLETED};
      END IF;
      -- An id seen before the retention counts as unseen: re-stamped.
      INSERT INTO ${seen} AS s (name, key, input_id, seen_at)
      SELECT p_name, p_key, w.id, p_now FROM unnest(p_write_ids) AS w(id) ORDER BY w.id
      ON CONFLICT (name, key, input_id) DO UPDATE SET seen_at = EXCLUDED.seen_at WHERE s.seen_at <= p_seen_cutoff;
      GET DIAGNOSTICS recorded = ROW_COUNT;
      IF recorded < cardinality(p_write_ids) THEN
        RAISE EXCEPTION 'an input of group % was recorded by a concurrent write', p_key USING ERRCODE = 'serialization_failure';
      END IF;
      IF p_completion_id IS NULL THEN
        outcome := 'added';
        version := written;
      ELSE
        outcome := 'completed';
      END IF;
    END $fn$`;
}

/** `text` as an SQL string literal. */
function quoteLiteral(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}
